#define BOOST_TEST_MODULE multi_connect_cli
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <thread>

#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <muxkit/event_loop.hpp>
#include <muxkit/io.hpp>
#include <muxkit/multi_connect.hpp>
#include <muxkit/socket.hpp>

#include "support/test_support.hpp"

using namespace muxkit;
using namespace muxkit::test;
namespace bdata = boost::unit_test::data;

namespace {

// The client's models, each also with two event loops ("epoll/2": -m epoll --threads 2).
const auto kClients = with_io_uring({"epoll", "epoll/2"}, {"io_uring", "io_uring/2"});


// A misbehaving server in a thread of the test: alters a byte now and then, or never answers.
class BadServer {
public:
    enum class Kind { alter_bytes, never_answer };
    explicit BadServer(Kind kind) : kind_(kind) {
        listener_ = listen_on(resolve(Address::parse("127.0.0.1:0"), true).front(), 128);
        address_ = local_endpoint(listener_.get()).to_string();
        int fds[2];
        BOOST_REQUIRE(::pipe(fds) == 0);
        wake_r_ = Fd(fds[0]);
        wake_w_ = Fd(fds[1]);
        thread_ = std::thread([this] { serve(); });
    }
    ~BadServer() {
        ::write(wake_w_.get(), "x", 1);
        thread_.join();
    }
    const std::string& address() const { return address_; }

private:
    void serve() {
        auto loop = EventLoop::create(Model::poll);
        loop->add(listener_.get(), kReadable);
        loop->add(wake_r_.get(), kReadable);
        std::vector<Fd> clients;
        std::uint64_t total = 0;
        char buf[65536];
        for (;;) {
            for (const Event& ev : loop->wait(std::nullopt)) {
                if (ev.fd == wake_r_.get()) return;
                if (ev.fd == listener_.get()) {
                    Accepted a = accept_connection(listener_.get());
                    if (a.fd) {
                        loop->add(a.fd.get(), kReadable);
                        clients.push_back(std::move(a.fd));
                    }
                    continue;
                }
                IoResult r = read_some(ev.fd, buf, sizeof buf);
                if (r.n <= 0) {
                    if (r.would_block()) continue;
                    loop->remove(ev.fd);
                    ::shutdown(ev.fd, SHUT_RDWR);
                    continue;
                }
                if (kind_ == Kind::never_answer) continue;
                for (ssize_t i = 0; i < r.n; ++i)
                    if (++total % 997 == 0) buf[i] ^= 0x5a;
                set_nonblocking(ev.fd, false);
                write_all(ev.fd, buf, static_cast<std::size_t>(r.n));
                set_nonblocking(ev.fd, true);
            }
        }
    }
    Kind kind_;
    Fd listener_, wake_r_, wake_w_;
    std::string address_;
    std::thread thread_;
};


}  // namespace

BOOST_DATA_TEST_CASE(verified_run_against_echo_server_counts_everything, bdata::make(kClients), variant) {
    EchoServer server({});
    RunResult r = run_muxkit(load_client(variant, {server.address(), "-c", "20", "-n", "50", "-s", "100", "--json"}));
    BOOST_TEST(r.exit_code == 0, r.err);
    Json s = summary_of(r);
    BOOST_TEST(s["command"] == "multi-connect");
    BOOST_TEST(s["target"] == server.address());
    BOOST_TEST(s["model"] == model_of(variant));
    BOOST_TEST(s["settings"]["threads"] == (variant.find('/') == std::string::npos ? 1 : 2));
    BOOST_TEST(s["connections"]["requested"] == 20);
    BOOST_TEST(s["connections"]["established"] == 20);
    BOOST_TEST(s["connections"]["failed"] == 0);
    BOOST_TEST(s["messages"]["sent"] == 1000);
    BOOST_TEST(s["messages"]["received"] == 1000);
    BOOST_TEST(s["messages"]["verify_failures"] == 0);
    BOOST_TEST(s["rtt_us"]["samples"] == 1000);
    BOOST_TEST(s["rtt_us"]["p50"].get<double>() <= s["rtt_us"]["p99"].get<double>());
    BOOST_TEST(s["rtt_us"]["p99"].get<double>() <= s["rtt_us"]["max"].get<double>() * 1.01);
    BOOST_TEST(s["connect_us"]["samples"] == 20);
    BOOST_TEST(s["throughput"]["messages_per_s"].get<double>() > 0);
    BOOST_TEST(s["environment"].contains("nofile_soft"));
    Json es = summary_of(server.stop());
    BOOST_TEST(es["bytes"]["in"] == 100000);
    BOOST_TEST(es["connections"]["accepted"] == 20);
}

BOOST_AUTO_TEST_CASE(every_model_pipelined_and_large_messages) {
    EchoServer server({"--buffer-size", "4K"});
    for (const std::string& model : with_io_uring({"select", "poll", "epoll", "epoll/2"}, {"io_uring", "io_uring/2"})) {
        RunResult r = run_muxkit(load_client(model, {server.address(), "-c", "8", "-n", "40", "--pipeline", "8", "-s", "100K", "--json"}));
        BOOST_TEST(r.exit_code == 0, model << ": " << r.err);
        Json s = summary_of(r);
        BOOST_TEST(s["model"] == model_of(model));
        BOOST_TEST(s["messages"]["received"] == 320);
        BOOST_TEST(s["messages"]["verify_failures"] == 0);
    }
}

BOOST_DATA_TEST_CASE(altered_bytes_are_verify_failures_and_exit_1, bdata::make(kClients), variant) {
    BadServer bad(BadServer::Kind::alter_bytes);
    RunResult r = run_muxkit(load_client(variant, {bad.address(), "-c", "4", "-n", "100", "-s", "64", "--json"}));
    BOOST_TEST(r.exit_code == 1);
    Json s = summary_of(r);
    BOOST_TEST(s["messages"]["verify_failures"].get<int>() > 0);
    BOOST_TEST(s["messages"]["received"] == 400);
    BOOST_TEST(s["connections"]["failed"] == 0);  // a verify failure is a message failure
    BOOST_TEST(s["check"]["passed"] == false);
    // Tolerated when --max-failures allows it.
    int vf = s["messages"]["verify_failures"].get<int>();
    RunResult ok = run_muxkit(load_client(variant, {bad.address(), "-c", "4", "-n", "100", "--max-failures", "1000"}));
    BOOST_TEST(ok.exit_code == 0, ok.out);
    BOOST_TEST(vf <= 400);
}

BOOST_DATA_TEST_CASE(no_verify_ignores_altered_bytes, bdata::make(kClients), variant) {
    BadServer bad(BadServer::Kind::alter_bytes);
    RunResult r = run_muxkit(load_client(variant, {bad.address(), "-c", "2", "-n", "100", "--no-verify", "--json"}));
    BOOST_TEST(r.exit_code == 0);
    BOOST_TEST(summary_of(r)["messages"]["verify_failures"] == 0);
}

BOOST_DATA_TEST_CASE(server_that_never_answers_ends_by_reply_timeout, bdata::make(kClients), variant) {
    BadServer silent(BadServer::Kind::never_answer);
    auto start = std::chrono::steady_clock::now();
    RunResult r = run_muxkit(load_client(variant, {silent.address(), "-c", "3", "-n", "5", "--reply-timeout", "300ms", "--json"}),
                             {}, 20s);
    auto took = std::chrono::steady_clock::now() - start;
    BOOST_TEST(!r.timed_out);
    BOOST_CHECK(took < 5s);
    BOOST_TEST(r.exit_code == 1);
    Json s = summary_of(r);
    BOOST_TEST(s["messages"]["timeouts"] == 3);
    BOOST_TEST(s["failures_by_phase"]["timeout"] == 3);
    BOOST_TEST(s["messages"]["received"] == 0);
}

BOOST_DATA_TEST_CASE(closed_port_fails_every_connection_with_econnrefused, bdata::make(kClients), variant) {
    std::string address = closed_port_address();
    RunResult r = run_muxkit(load_client(variant, {address, "-c", "7", "--json"}));
    BOOST_TEST(r.exit_code == 1);
    Json s = summary_of(r);
    BOOST_TEST(s["connections"]["requested"] == 7);
    BOOST_TEST(s["connections"]["established"] == 0);
    BOOST_TEST(s["connections"]["failed"] == 7);
    BOOST_TEST(s["errors"]["ECONNREFUSED"] == 7);
    BOOST_TEST(s["failures_by_phase"]["connect"] == 7);
}

BOOST_DATA_TEST_CASE(duration_ends_on_time_and_reports_in_flight_separately, bdata::make(kClients), variant) {
    EchoServer server({});
    auto start = std::chrono::steady_clock::now();
    RunResult r = run_muxkit(load_client(variant, {server.address(), "-c", "4", "-d", "500ms", "--pipeline", "4", "--json"}));
    auto took = std::chrono::steady_clock::now() - start;
    BOOST_TEST(r.exit_code == 0, r.err);
    BOOST_CHECK(took >= 500ms);
    BOOST_CHECK(took < 3s);
    Json s = summary_of(r);
    BOOST_TEST(s["duration_s"].get<double>() >= 0.5);
    BOOST_TEST(s["duration_s"].get<double>() < 1.5);
    BOOST_TEST(s["messages"]["received"].get<int>() > 0);
    BOOST_TEST(s["messages"]["sent"].get<int>() == s["messages"]["received"].get<int>() + s["messages"]["in_flight"].get<int>());
    BOOST_TEST(s["messages"]["timeouts"] == 0);
}

BOOST_DATA_TEST_CASE(rate_paces_messages_and_intervals_are_reported, bdata::make(kClients), variant) {
    EchoServer server({});
    RunResult r = run_muxkit(load_client(variant, {server.address(), "-c", "5", "--rate", "500", "-d", "1s", "--interval",
                              "250ms", "--json"}));
    BOOST_TEST(r.exit_code == 0, r.err);
    auto lines = r.json_lines();
    int intervals = 0;
    for (auto& l : lines) {
        BOOST_TEST(l.contains("type"));
        if (l["type"] == "interval") {
            ++intervals;
            BOOST_TEST(l.contains("rtt_us"));
        }
    }
    BOOST_TEST(intervals >= 3);
    Json s = lines.back();
    int received = s["messages"]["received"].get<int>();
    BOOST_TEST(received >= 400);  // 500/s for 1 s, less what was still due at the end
    BOOST_TEST(received <= 510);
    BOOST_TEST(s["settings"]["rate_per_s"].get<double>() == 500.0);
}

BOOST_AUTO_TEST_CASE(max_p99_below_any_real_round_trip_exits_1) {
    EchoServer server({});
    RunResult r = run_muxkit({"multi-connect", server.address(), "-n", "50", "--max-p99", "1us", "--json"});
    BOOST_TEST(r.exit_code == 1);
    Json s = summary_of(r);
    BOOST_TEST(s["check"]["passed"] == false);
    BOOST_TEST(s["check"]["failures"] == 0);
    RunResult ok = run_muxkit({"multi-connect", server.address(), "-n", "50", "--max-p99", "10s"});
    BOOST_TEST(ok.exit_code == 0);
}

BOOST_DATA_TEST_CASE(payload_text_and_file_are_sent_and_verified, bdata::make(kClients), variant) {
    EchoServer server({});
    RunResult r = run_muxkit(load_client(variant, {server.address(), "-n", "10", "--payload", "hello muxkit", "--json"}));
    BOOST_TEST(r.exit_code == 0);
    BOOST_TEST(summary_of(r)["settings"]["size"] == 12);
    std::string path = fmt::format("/tmp/muxkit-payload-{}", ::getpid());
    std::ofstream(path) << random_bytes(5000, 4);
    RunResult f = run_muxkit(load_client(variant, {server.address(), "-n", "10", "--payload", "@" + path, "--json"}));
    ::unlink(path.c_str());
    BOOST_TEST(f.exit_code == 0);
    Json s = summary_of(f);
    BOOST_TEST(s["settings"]["size"] == 5000);
    BOOST_TEST(s["messages"]["verify_failures"] == 0);
    RunResult missing = run_muxkit(load_client(variant, {server.address(), "--payload", "@/nonexistent/file"}));
    BOOST_TEST(missing.exit_code == 2);
}

BOOST_DATA_TEST_CASE(ipv6_and_unix_targets, bdata::make(kClients), variant) {
    std::string path = fmt::format("/tmp/muxkit-mc-{}.sock", ::getpid());
    EchoServer server({"[::1]:0", "unix:" + path}, {}, 2);
    for (int i = 0; i < 2; ++i) {
        RunResult r = run_muxkit(load_client(variant, {server.address(i), "-c", "5", "-n", "20", "--json"}));
        BOOST_TEST(r.exit_code == 0, server.address(i) << ": " << r.err);
        BOOST_TEST(summary_of(r)["messages"]["received"] == 100);
    }
    BOOST_TEST(server.stop().exit_code == 0);
    BOOST_TEST(::access(path.c_str(), F_OK) != 0);  // the server removed its socket
}

BOOST_AUTO_TEST_CASE(interactive_echoes_stdin_lines_exactly) {
    EchoServer server({});
    SpawnOptions opts;
    opts.stdin_data = "first line\nsecond line\n";
    RunResult r = run_muxkit({"multi-connect", server.address(), "-i"}, opts);
    BOOST_TEST(r.exit_code == 0, r.err);
    BOOST_TEST(r.out == "first line\nsecond line\n");
    BOOST_TEST(r.err.empty());
    SpawnOptions big;
    big.stdin_data = random_bytes(2 * 1024 * 1024, 9);
    RunResult b = run_muxkit({"multi-connect", server.address(), "-i"}, big);
    BOOST_TEST(b.exit_code == 0);
    BOOST_TEST((b.out == big.stdin_data));
}

BOOST_DATA_TEST_CASE(connect_rate_spreads_connections, bdata::make(kClients), variant) {
    EchoServer server({});
    auto start = std::chrono::steady_clock::now();
    RunResult r = run_muxkit(load_client(variant, {server.address(), "-c", "10", "-n", "1", "--connect-rate", "40", "--json"}));
    auto took = std::chrono::steady_clock::now() - start;
    BOOST_TEST(r.exit_code == 0);
    BOOST_CHECK(took >= 200ms);  // 10 connections at 40/s take at least 9/40 s
    BOOST_TEST(summary_of(r)["connections"]["established"] == 10);
}

BOOST_AUTO_TEST_CASE(bad_input_exits_2) {
    std::vector<std::vector<std::string>> cases = {
        {"-c", "0"}, {"-c", "-5"}, {"-c", "lots"}, {"-s", "-1"}, {"-s", "12Q"}, {"-s", "0"},
        {"--rate", "0"}, {"--rate", "fast"}, {"--pipeline", "0"}, {"-d", "forever"}, {"-n", "5", "-d", "1s"},
        {"-s", "10", "--payload", "x"}, {"-m", "epoll-et"}, {"--max-p99", "x"}, {"--max-failures", "-1"},
        {"not:an:address"}, {"127.0.0.1:99999"}, {"-m", "select", "-c", "2000"}, {"--threads", "0"}, {"--threads", "many"},
    };
    for (auto args : cases) {
        args.insert(args.begin(), "multi-connect");
        RunResult r = run_muxkit(args);
        BOOST_TEST(r.exit_code == 2, fmt::format("{}: {}", fmt::join(args, " "), r.err));
        BOOST_TEST(r.out.empty());
        BOOST_TEST(r.err.find("error: ") != std::string::npos);
    }
}

BOOST_AUTO_TEST_CASE(unresolvable_host_is_a_runtime_error) {
    RunResult r = run_muxkit({"multi-connect", "no-such-host.invalid:7007", "--json"});
    BOOST_TEST(r.exit_code == 3);
    auto lines = r.json_lines();
    BOOST_REQUIRE(lines.size() == 1u);
    BOOST_TEST(lines[0]["type"] == "error");
    BOOST_TEST(lines[0]["exit"] == 3);
    BOOST_TEST(lines[0]["command"] == "multi-connect");
}

BOOST_DATA_TEST_CASE(thousands_of_connections_against_epoll_server, bdata::make(with_io_uring({"epoll"}, {"io_uring/2"})), variant) {
    raise_fd_limit(12000);
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_max < 12000) {
        BOOST_TEST_MESSAGE("hard RLIMIT_NOFILE below 12000: skipping");
        return;
    }
    EchoServer server({"-m", "epoll"});
    RunResult r = run_muxkit(load_client(variant, {server.address(), "-c", "10000", "-n", "2", "--json"}), {}, 120s);
    BOOST_TEST(r.exit_code == 0, r.err);
    Json s = summary_of(r);
    BOOST_TEST(s["connections"]["established"] == 10000);
    BOOST_TEST(s["messages"]["received"] == 20000);
    Json es = summary_of(server.stop());
    BOOST_TEST(es["connections"]["peak"].get<int>() > 1000);
}

BOOST_AUTO_TEST_CASE(pattern_differs_per_connection_sequence_and_offset) {
    char a[64], b[64], c[64];
    fill_pattern(1, 1, 0, a, 64);
    fill_pattern(1, 2, 0, b, 64);
    fill_pattern(2, 1, 0, c, 64);
    BOOST_TEST(std::memcmp(a, b, 64) != 0);
    BOOST_TEST(std::memcmp(a, c, 64) != 0);
    char part[32];
    fill_pattern(1, 1, 32, part, 32);
    BOOST_TEST(std::memcmp(a + 32, part, 32) == 0);
}

// ---------------------------------------------------------------- the report people read

// The text report starts with its verdict; -q leaves the verdict alone, -qq nothing (the exit code
// says it); the JSON is the interface and the same at every level. Figures are in human units.
BOOST_AUTO_TEST_CASE(quiet_levels_keep_the_verdict_then_nothing_and_json_is_unchanged) {
    EchoServer server({"-m", "epoll"});
    const std::vector<std::string> run = {"multi-connect", server.address(), "-c", "2", "-n", "20"};
    auto with = [&](std::vector<std::string> extra) {
        std::vector<std::string> args = run;
        args.insert(args.end(), extra.begin(), extra.end());
        return run_muxkit(args);
    };
    RunResult full = with({});
    BOOST_TEST(full.exit_code == 0, full.err);
    BOOST_TEST(full.out.starts_with("PASS\ncommand:     multi-connect\n"), full.out);
    BOOST_TEST(full.out.find("rtt:         p50=") != std::string::npos, full.out);
    BOOST_TEST((full.out.find(" us, ") != std::string::npos || full.out.find(" ms, ") != std::string::npos), full.out);
    BOOST_TEST(full.out.find("n/a") == std::string::npos, full.out);  // what does not apply is left out
    BOOST_TEST(full.out.find("duplicates") == std::string::npos, full.out);

    RunResult quiet = with({"-q"});
    BOOST_TEST(quiet.exit_code == 0);
    BOOST_TEST(quiet.out == "PASS\n");
    RunResult silent = with({"-qq"});
    BOOST_TEST(silent.exit_code == 0);
    BOOST_TEST(silent.out == "");

    RunResult failed = with({"--max-p99", "1ns", "-q"});
    BOOST_TEST(failed.exit_code == 1);
    BOOST_TEST(failed.out.starts_with("FAIL: p99 "), failed.out);
    BOOST_TEST(failed.out.find(" over --max-p99 0.001 us\n") != std::string::npos, failed.out);  // 1ns in the report's unit
    BOOST_TEST(std::count(failed.out.begin(), failed.out.end(), '\n') == 1);
    BOOST_TEST(with({"--max-p99", "1ns", "-qq"}).out == "");

    RunResult json = with({"--json"}), json_quiet = with({"--json", "-qq"});
    const Json a = summary_of(json), b = summary_of(json_quiet);
    BOOST_TEST(b["check"]["passed"] == true);
    for (auto it = a.begin(); it != a.end(); ++it) BOOST_TEST(b.contains(it.key()), it.key());
    BOOST_TEST(a.size() == b.size());
}

BOOST_AUTO_TEST_CASE(verdicts_are_coloured_only_when_asked_or_on_a_terminal) {
    EchoServer server({"-m", "epoll"});
    RunResult always = run_muxkit({"multi-connect", server.address(), "-n", "5", "--max-p99", "1ns", "-q", "--color", "always"});
    BOOST_TEST(always.out.starts_with("\x1b["), always.out);
    BOOST_TEST(always.out.find("31m") != std::string::npos);  // red
    BOOST_TEST(always.out.find("FAIL") != std::string::npos);
    RunResult pass = run_muxkit({"multi-connect", server.address(), "-n", "5", "-q", "--color", "always"});
    BOOST_TEST(pass.out.find("32m") != std::string::npos);  // green
    // auto: stdout is a pipe here, so no colour; never: none either.
    for (const char* when : {"auto", "never"}) {
        RunResult plain = run_muxkit({"multi-connect", server.address(), "-n", "5", "-q", "--color", when});
        BOOST_TEST(plain.out == "PASS\n", when);
    }
}

BOOST_AUTO_TEST_CASE(every_subcommand_is_quiet_at_qq_and_says_its_verdict_at_q) {
    RunResult pipes = run_muxkit({"pipe-test", "eof,capacity", "-q"});
    BOOST_TEST(pipes.exit_code == 0, pipes.err);
    BOOST_TEST(pipes.out == "PASS\n");
    BOOST_TEST(run_muxkit({"pipe-test", "eof,capacity", "-qq"}).out == "");
    RunResult server = run_muxkit({"echo-server", "127.0.0.1:0", "--duration", "100ms", "-q"});
    BOOST_TEST(server.exit_code == 0, server.err);
    BOOST_TEST(server.out == "");  // a server has no verdict
    RunResult watch = run_muxkit({"fd-watch", "--count", "1", "-q"}, with_stdin("x"));
    BOOST_TEST(watch.exit_code == 0, watch.err);
    BOOST_TEST(watch.out == "");
}

// --rate: the summary gives the share of the rate the run reached; a run far below it fails
// (once 10318/s of 20000/s asked passed without a word), one that reaches it passes.
BOOST_AUTO_TEST_CASE(a_rate_the_run_cannot_reach_fails_with_the_share_it_reached) {
    EchoServer server({"-m", "epoll"});
    // One connection in ping-pong cannot send a million messages a second.
    RunResult slow = run_muxkit({"multi-connect", server.address(), "-c", "1", "-d", "300ms", "--rate", "1M", "--json"});
    BOOST_TEST(slow.exit_code == 1, slow.out);
    Json s = summary_of(slow);
    BOOST_TEST(s["throughput"]["rate_share"].get<double>() < 0.9);
    bool named = false;
    for (const auto& r : s["check"]["reasons"]) named = named || r.get<std::string>().find("below --min-rate-share 90%") != std::string::npos;
    BOOST_TEST(named, s["check"].dump());
    RunResult tolerated = run_muxkit({"multi-connect", server.address(), "-c", "1", "-d", "300ms", "--rate", "1M", "--min-rate-share", "0",
                                      "--json"});
    BOOST_TEST(tolerated.exit_code == 0, tolerated.out);

    RunResult met = run_muxkit({"multi-connect", server.address(), "-c", "2", "-n", "25", "--rate", "100", "--json"});
    BOOST_TEST(met.exit_code == 0, met.out);
    const double share = summary_of(met)["throughput"]["rate_share"].get<double>();
    BOOST_TEST(share > 0.9);
    BOOST_TEST(share < 1.1);
    RunResult none = run_muxkit({"multi-connect", server.address(), "-n", "5", "--json"});
    BOOST_TEST(summary_of(none)["throughput"]["rate_share"].is_null());
}
