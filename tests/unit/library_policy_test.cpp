#define BOOST_TEST_MODULE library_policy
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <csignal>
#include <thread>

#include <sys/resource.h>

#include <muxkit/echo_server.hpp>
#include <muxkit/multi_connect.hpp>
#include <muxkit/signals.hpp>

using namespace muxkit;
using namespace std::chrono_literals;

namespace {

bool default_handlers() {
    for (int sig : {SIGINT, SIGTERM, SIGUSR1, SIGCHLD, SIGPIPE}) {
        struct sigaction sa {};
        ::sigaction(sig, nullptr, &sa);
        if (sa.sa_handler != SIG_DFL) return false;
    }
    return true;
}

rlim_t soft_nofile() {
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    return rl.rlim_cur;
}

}  // namespace

// A program that links libmuxkit keeps its own signal handlers and limits: process-wide policy
// belongs to the muxkit tool.
BOOST_AUTO_TEST_CASE(runs_replace_no_signal_handler_and_raise_no_limit) {
    BOOST_REQUIRE(default_handlers());
    const rlim_t nofile = soft_nofile();

    EchoServerConfig server;
    server.addresses.push_back(Address::parse("127.0.0.1:0"));
    server.duration = 50ms;
    EchoServerObserver quiet;
    run_echo_server(server, quiet);

    LoadConfig load;
    load.target = Address::parse("127.0.0.1:1");
    load.connect_timeout = 200ms;
    LoadObserver none;
    LoadStats s = run_load(load, none);
    BOOST_TEST(s.failed == 1u);

    BOOST_TEST(default_handlers());
    BOOST_TEST(soft_nofile() == nofile);
}

BOOST_AUTO_TEST_CASE(request_stop_ends_a_server_from_another_thread) {
    EchoServerConfig server;
    server.addresses.push_back(Address::parse("127.0.0.1:0"));
    server.duration = 30s;
    EchoServerObserver quiet;
    std::thread stopper([] {
        std::this_thread::sleep_for(100ms);
        SignalPipe::request_stop();
    });
    const auto start = std::chrono::steady_clock::now();
    EchoServerStats stats = run_echo_server(server, quiet);
    stopper.join();
    BOOST_TEST(stats.duration_s < 10.0);
    BOOST_TEST((std::chrono::steady_clock::now() - start < 10s));
}
