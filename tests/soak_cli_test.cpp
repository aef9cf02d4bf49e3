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
    int ok = 0;
    while (std::getline(in, line)) {
        if (!line.starts_with("soak ")) continue;
        BOOST_TEST(line.ends_with(": ok"), line);
        BOOST_TEST(line.find(" 0 bytes lost") != std::string::npos, line);
        BOOST_TEST(line.find("zombies 0") != std::string::npos, line);
        ok += line.ends_with(": ok");
    }
    BOOST_TEST(ok == static_cast<int>(with_io_uring({"select", "poll", "epoll", "epoll-et", "fork"}, {"io_uring"}).size()));
}
