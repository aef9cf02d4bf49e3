#define BOOST_TEST_MODULE soak_cli
#include <boost/test/unit_test.hpp>

#include <sstream>

#include "support/test_support.hpp"

using namespace muxkit::test;

BOOST_AUTO_TEST_CASE(every_model_survives_a_short_soak_with_nothing_lost) {
    Child c({MUXKIT_SOAK, "--seconds", "6"}, {}, false);
    RunResult r = c.wait(180s);
    BOOST_TEST(!r.timed_out);
    BOOST_TEST(r.exit_code == 0, r.out << r.err);
    std::istringstream in(r.out);
    std::string line;
    int ok = 0, stops = 0, emfile = 0;
    while (std::getline(in, line)) {
        if (!line.starts_with("soak ")) continue;
        BOOST_TEST(line.ends_with(": ok"), line);
        if (line.find("stop under load") != std::string::npos) {
            stops += line.ends_with(": ok");
        } else if (line.find("at nofile") != std::string::npos) {
            BOOST_TEST(line.find(" 0 hung") != std::string::npos, line);
            emfile += line.ends_with(": ok");
        } else {
            BOOST_TEST(line.find(" 0 bytes lost") != std::string::npos, line);
            BOOST_TEST(line.find("zombies 0") != std::string::npos, line);
            ok += line.ends_with(": ok");
        }
    }
    const int models = static_cast<int>(with_io_uring({"select", "poll", "epoll", "epoll-et", "fork"}, {"io_uring"}).size());
    BOOST_TEST(ok == models);
    BOOST_TEST(stops == models);  // graceful stop under load: in = out + unsent, clients got out
#ifdef MUXKIT_SANITIZED
    BOOST_TEST(emfile == 0);  // not run under a sanitizer
#else
    BOOST_TEST(emfile == 1);  // the fork model at the descriptor limit
#endif
}
