// multi-connect --mode connect and --mode request against real servers that are not muxkit
// (Python's http.server, a Redis-like line server, servers that never answer or answer wrong,
// a closed port, a listener whose backlog overflows), on every client model and with --threads 2.
#define BOOST_TEST_MODULE modes_cli
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <cstring>
#include <fstream>

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include "support/test_support.hpp"

using namespace muxkit;
using namespace muxkit::test;
namespace bdata = boost::unit_test::data;

namespace {

const auto kClients = with_io_uring({"select", "poll", "epoll", "epoll/2"}, {"io_uring", "io_uring/2"});

const std::string kHttpGet = R"(GET / HTTP/1.0\r\n\r\n)";  // as a user types it: escapes, not bytes
const std::string kPing = R"(PING\r\n)";
const std::string kPong = R"(+PONG\r\n)";

bool has_error_line(const RunResult& r) {
    for (const auto& line : r.err_lines())
        if (line.find("error:") != std::string::npos) return true;
    return false;
}

}  // namespace

// ---------------------------------------------------------------- request mode

BOOST_DATA_TEST_CASE(request_mode_checks_a_web_server, bdata::make(kClients), variant) {
    TempDir dir;
    std::ofstream(dir.path + "/index.html") << "<html>muxkit</html>\n";
    Peer http = http_server(dir.path);
    // HTTP/1.0 closes after each reply: one request per connection.
    RunResult r = run_muxkit(load_client(variant, {http.address(), "--mode", "request", "--payload", kHttpGet, "--expect",
                                                   "HTTP/1.0 200", "-c", "4", "-n", "1", "--json"}));
    BOOST_TEST(r.exit_code == 0, r.err);
    Json s = summary_of(r);
    BOOST_TEST(s["mode"] == "request");
    BOOST_TEST(s["model"] == model_of(variant));
    BOOST_TEST(s["connections"]["established"] == 4);
    BOOST_TEST(s["connections"]["completed"] == 4);
    BOOST_TEST(s["messages"]["sent"] == 4);
    BOOST_TEST(s["messages"]["received"] == 4);
    BOOST_TEST(s["messages"]["verify_failures"] == 0);
    BOOST_TEST(s["rtt_us"]["samples"] == 4);
    BOOST_TEST(s["settings"]["size"] == 18);  // the escapes became bytes: "GET / HTTP/1.0" CR LF CR LF
    BOOST_TEST(s["settings"]["expect_bytes"] == 12);
}

BOOST_DATA_TEST_CASE(request_mode_pings_a_line_server_pipelined, bdata::make(kClients), variant) {
    Peer redis = python_peer("redis");
    RunResult r = run_muxkit(load_client(variant, {redis.address(), "--mode", "request", "--payload", kPing, "--expect", kPong,
                                                   "-c", "5", "-n", "200", "--pipeline", "4", "--max-p99", "5s", "--json"}));
    BOOST_TEST(r.exit_code == 0, r.err);
    Json s = summary_of(r);
    BOOST_TEST(s["messages"]["sent"] == 1000);
    BOOST_TEST(s["messages"]["received"] == 1000);
    BOOST_TEST(s["messages"]["verify_failures"] == 0);
    BOOST_TEST(s["connections"]["completed"] == 5);
    BOOST_TEST(s["rtt_us"]["samples"] == 1000);
    BOOST_TEST(s["settings"]["verify"] == true);
    BOOST_TEST(s["check"]["p99_us"].is_number());
}

BOOST_DATA_TEST_CASE(request_mode_without_expect_takes_the_first_bytes, bdata::make(kClients), variant) {
    Peer redis = python_peer("redis");
    RunResult r = run_muxkit(load_client(variant, {redis.address(), "--mode", "request", "--payload", R"(HELLO\n)", "-c", "2",
                                                   "-n", "50", "--json"}));
    BOOST_TEST(r.exit_code == 0, r.err);
    Json s = summary_of(r);
    BOOST_TEST(s["messages"]["received"] == 100);
    BOOST_TEST(s["messages"]["verify_failures"] == 0);  // -ERR, but nothing was expected
    BOOST_TEST(s["settings"]["verify"] == false);
    BOOST_TEST(s["settings"]["expect_bytes"].is_null());
}

BOOST_DATA_TEST_CASE(request_mode_counts_a_wrong_reply_and_ends_that_connection, bdata::make(kClients), variant) {
    Peer redis = python_peer("redis");
    RunResult r = run_muxkit(load_client(variant, {redis.address(), "--mode", "request", "--payload", R"(GET key\r\n)",
                                                   "--expect", kPong, "-c", "3", "-n", "5", "--json"}));
    BOOST_TEST(r.exit_code == 1);
    Json s = summary_of(r);
    // Ping-pong: the first reply of each connection differs, and a reply that differs has no known
    // end, so the connection ends there.
    BOOST_TEST(s["messages"]["sent"] == 3);
    BOOST_TEST(s["messages"]["received"] == 3);
    BOOST_TEST(s["messages"]["verify_failures"] == 3);
    BOOST_TEST(s["connections"]["failed"] == 0);  // a verify failure is a message failure
    BOOST_TEST(s["check"]["failures"] == 3);
    BOOST_TEST(r.err.find("hint: reply differs at byte 0: received '-ERR unknown com") != std::string::npos, r.err);
    BOOST_TEST(r.err.find("does " + redis.address() + " answer this request?") != std::string::npos, r.err);
}

BOOST_DATA_TEST_CASE(request_mode_counts_wrong_bytes_from_a_server_that_flips_them, bdata::make(kClients), variant) {
    Peer wrong = python_peer("wrong");
    RunResult r = run_muxkit(load_client(variant, {wrong.address(), "--mode", "request", "--payload", kPing, "--expect", kPing,
                                                   "-c", "2", "-n", "3", "-v", "--json"}));
    BOOST_TEST(r.exit_code == 1);
    std::size_t failure_events = 0;
    for (const Json& j : r.json_lines())
        if (j["type"] == "failure") {
            ++failure_events;
            BOOST_TEST(j["phase"] == "verify");
            BOOST_TEST(j["offset"] == 0);
            BOOST_TEST(j["expected_text"] == "PING\\x0d\\n");
            BOOST_TEST(j["received_text"] == "ping-*");  // each byte ^ 0x20
        }
    BOOST_TEST(failure_events == 2);
    BOOST_TEST(summary_of(r)["messages"]["verify_failures"] == 2);
}

// A server that answers after the first 4 KiB of a 16 MiB request (as one with a body size limit
// does): that reply is not the reply to the request, so the message fails, once, and nothing is
// counted received that was not sent whole.
BOOST_DATA_TEST_CASE(request_mode_fails_a_reply_that_comes_before_its_request_was_written, bdata::make(kClients), variant) {
    TempDir dir;
    const std::string payload = dir.path + "/body";
    std::ofstream(payload) << std::string(16 << 20, 'b');
    Peer early = python_peer("early-reply", 4096);
    RunResult r = run_muxkit(load_client(variant, {early.address(), "--mode", "request", "--payload", "@" + payload, "-n", "1",
                                                   "-v", "--json"}));
    BOOST_TEST(r.exit_code == 1, r.err);
    Json s = summary_of(r);
    BOOST_TEST(s["messages"]["sent"] == 0);
    BOOST_TEST(s["messages"]["received"] == 0);
    BOOST_TEST(s["connections"]["failed"] == 1);
    BOOST_TEST(s["failures_by_phase"]["receive"] == 1);
    BOOST_TEST(s["errors"]["early_reply"] == 1);
    BOOST_TEST(s["check"]["failures"] == 1);
    BOOST_TEST(s["bytes"]["sent"].get<std::uint64_t>() < (16u << 20));
    BOOST_TEST(r.err.find("replied when") != std::string::npos, r.err);
    std::size_t events = 0;
    for (const Json& j : r.json_lines())
        if (j["type"] == "failure") {
            ++events;
            BOOST_TEST(j["phase"] == "early_reply");
            BOOST_TEST(j["request_bytes_written"].get<std::uint64_t>() >= 4096u);
        }
    BOOST_TEST(events == 1);
}

// "+PONG\r\n" against --expect '+PONG': the two bytes after each reply were asked for by nobody.
// The hint says so (not "differs at byte 0 ... expected ''"), and what the connection left unsent.
BOOST_AUTO_TEST_CASE(request_mode_names_bytes_beyond_expect_and_the_messages_left_unsent) {
    Peer redis = python_peer("redis");
    RunResult r = run_muxkit({"multi-connect", redis.address(), "--mode", "request", "--payload", kPing, "--expect", "+PONG", "-n",
                              "3", "-v", "--json"});
    BOOST_TEST(r.exit_code == 1, r.err);
    Json s = summary_of(r);
    BOOST_TEST(s["messages"]["sent"] == 1);
    BOOST_TEST(s["messages"]["received"] == 1);
    BOOST_TEST(s["messages"]["verify_failures"] == 1);
    BOOST_TEST(r.err.find("sent more than --expect's 5 bytes after reply 1: received '\\x0d\\n'; that connection stopped "
                          "there, 2 of its messages unsent") != std::string::npos,
               r.err);
    BOOST_TEST(r.err.find("expected ''") == std::string::npos, r.err);
    bool seen = false;
    for (const Json& j : r.json_lines())
        if (j["type"] == "failure") {
            seen = true;
            BOOST_TEST(j["unasked"] == true);
            BOOST_TEST(j["messages_not_sent"] == 2);
        }
    BOOST_TEST(seen);
}

BOOST_AUTO_TEST_CASE(an_unreadable_expect_file_is_named_as_expect) {
    RunResult r = run_muxkit({"multi-connect", "127.0.0.1:1", "--mode", "request", "--payload", "x", "--expect", "@/nonexistent/reply"});
    BOOST_TEST(r.exit_code == 2, r.err);
    BOOST_TEST(r.err.find("cannot read --expect file '/nonexistent/reply': No such file or directory") != std::string::npos, r.err);
    RunResult dir = run_muxkit({"multi-connect", "127.0.0.1:1", "--mode", "request", "--payload", "@/tmp"});
    BOOST_TEST(dir.exit_code == 2, dir.err);
    BOOST_TEST(dir.err.find("--payload file '/tmp' is a directory") != std::string::npos, dir.err);
}

BOOST_DATA_TEST_CASE(request_mode_times_out_on_a_server_that_never_answers, bdata::make(kClients), variant) {
    Peer silent = python_peer("silent");
    RunResult r = run_muxkit(load_client(variant, {silent.address(), "--mode", "request", "--payload", kPing, "--expect", kPong,
                                                   "-c", "2", "-n", "3", "--reply-timeout", "300ms", "--json"}));
    BOOST_TEST(r.exit_code == 1);
    Json s = summary_of(r);
    BOOST_TEST(s["messages"]["timeouts"] == 2);
    BOOST_TEST(s["messages"]["received"] == 0);
    BOOST_TEST(s["failures_by_phase"]["timeout"] == 2);
    BOOST_TEST(r.err.find("hint: no reply within 300ms: does " + silent.address() + " answer this request?") != std::string::npos,
               r.err);
}

BOOST_AUTO_TEST_CASE(request_mode_under_rate_is_timed_from_when_each_request_was_due) {
    Peer redis = python_peer("redis");
    RunResult r = run_muxkit({"multi-connect", redis.address(), "--mode", "request", "--payload", kPing, "--expect", kPong, "-c",
                              "2", "-n", "20", "--rate", "100", "--json"});
    BOOST_TEST(r.exit_code == 0, r.err);
    Json s = summary_of(r);
    BOOST_TEST(s["messages"]["received"] == 40);
    BOOST_TEST(s["settings"]["rate_per_s"] == 100.0);
    BOOST_TEST(s["duration_s"].get<double>() >= 0.35);  // 40 requests at 100/s: the last is due at 0.39 s
}

// ---------------------------------------------------------------- connect mode

BOOST_DATA_TEST_CASE(connect_mode_counts_every_connect_the_server_accepted, bdata::make(kClients), variant) {
    EchoServer server({"-m", "epoll"});
    RunResult r = run_muxkit(load_client(variant, {server.address(), "--mode", "connect", "-c", "4", "-n", "50", "--json"}));
    BOOST_TEST(r.exit_code == 0, r.err);
    Json s = summary_of(r);
    BOOST_TEST(s["mode"] == "connect");
    BOOST_TEST(s["connections"]["requested"] == 200);
    BOOST_TEST(s["connections"]["established"] == 200);
    BOOST_TEST(s["connections"]["failed"] == 0);
    BOOST_TEST(s["connections"]["completed"] == 200);
    BOOST_TEST(s["connect_us"]["samples"] == 200);
    BOOST_TEST(s["connect_us"]["p999"].is_number());
    // What connect mode cannot fill is null, never left out.
    BOOST_TEST(s["messages"].is_null());
    BOOST_TEST(s["rtt_us"].is_null());
    BOOST_TEST(s["failures_by_phase"]["connect"] == 0);
    BOOST_TEST(s["failures_by_phase"]["verify"].is_null());
    BOOST_TEST(s["throughput"]["messages_per_s"].is_null());
    BOOST_TEST(s["throughput"]["connections_per_s"].get<double>() > 0);
    BOOST_TEST(s["settings"]["size"].is_null());
    BOOST_TEST(s["settings"]["connects_per_connection"] == 50);
    // The server saw each connect once, and no byte.
    Json served = summary_of(server.stop());
    BOOST_TEST(served["connections"]["accepted"] == 200);
    BOOST_TEST(served["bytes"]["in"] == 0);
    BOOST_TEST(served["errors"]["ECONNRESET"] == 0);  // closed with a FIN, never reset
}

BOOST_DATA_TEST_CASE(connect_mode_against_a_web_server_and_a_banner_server, bdata::make(kClients), variant) {
    TempDir dir;
    Peer http = http_server(dir.path);
    RunResult r = run_muxkit(load_client(variant, {http.address(), "--mode", "connect", "-c", "2", "-n", "10", "--json"}));
    BOOST_TEST(r.exit_code == 0, r.err);
    BOOST_TEST(summary_of(r)["connections"]["established"] == 20);
    // A service that speaks first (sshd's banner): read and dropped during the hold.
    Peer banner = python_peer("banner");
    RunResult b = run_muxkit(load_client(variant, {banner.address(), "--mode", "connect", "-c", "2", "-n", "3", "--hold", "50ms", "--json"}));
    BOOST_TEST(b.exit_code == 0, b.err);
    Json s = summary_of(b);
    BOOST_TEST(s["connections"]["established"] == 6);
    BOOST_TEST(s["connections"]["completed"] == 6);
}

// A server that accepts and resets at once: the handshake completed, so every connect succeeded,
// whether the reset landed before multi-connect looked at the connect's outcome or after. The same
// verdict every time (once, some runs failed with ECONNRESET).
BOOST_DATA_TEST_CASE(connect_mode_counts_an_accept_then_reset_as_connected_every_time, bdata::make(kClients), variant) {
    Peer reset = python_peer("reset");
    for (int run = 0; run < 20; ++run) {
        RunResult r = run_muxkit(load_client(variant, {reset.address(), "--mode", "connect", "-c", "5", "-n", "4", "--json"}));
        BOOST_TEST_REQUIRE(r.exit_code == 0, "run " << run << ": " << r.out << r.err);
        Json s = summary_of(r);
        BOOST_TEST(s["connections"]["established"] == 20);
        BOOST_TEST(s["connections"]["failed"] == 0);
        BOOST_TEST(s["connections"]["completed"] == 20);
    }
}

// --hold: a connection the server closes or resets before its hold ends failed its hold (once
// such a check passed with unexpected_eof=5), unless --allow-early-close says that is expected.
BOOST_DATA_TEST_CASE(connect_mode_fails_connections_the_server_ends_before_their_hold, bdata::make(kClients), variant) {
    for (const char* how : {"close", "reset"}) {
        Peer peer = python_peer(how);
        const std::vector<std::string> args = {peer.address(), "--mode", "connect", "-c", "5", "-n", "2", "--hold", "2s", "--json"};
        RunResult held = run_muxkit(load_client(variant, args));
        BOOST_TEST(held.exit_code == 1, how << ": " << held.out);
        Json h = summary_of(held);
        BOOST_TEST(h["connections"]["established"] == 10, how);
        BOOST_TEST(h["connections"]["failed"] == 10, how);
        BOOST_TEST(h["failures_by_phase"]["hold"] == 10, how);
        BOOST_TEST(h["check"]["failures"] == 10, how);
        BOOST_TEST(held.err.find("before its --hold 2s ended") != std::string::npos, held.err);
        std::vector<std::string> allowed = args;
        allowed.push_back("--allow-early-close");
        RunResult early = run_muxkit(load_client(variant, allowed));
        BOOST_TEST(early.exit_code == 0, how << ": " << early.out);
        BOOST_TEST(summary_of(early)["failures_by_phase"]["hold"] == 0, how);
    }
}

BOOST_DATA_TEST_CASE(connect_mode_counts_every_refused_connect, bdata::make(kClients), variant) {
    RunResult r = run_muxkit(load_client(variant, {closed_port_address(), "--mode", "connect", "-c", "2", "-n", "5", "--json"}));
    BOOST_TEST(r.exit_code == 1);
    Json s = summary_of(r);
    BOOST_TEST(s["connections"]["requested"] == 10);
    BOOST_TEST(s["connections"]["established"] == 0);
    BOOST_TEST(s["connections"]["failed"] == 10);
    BOOST_TEST(s["errors"]["ECONNREFUSED"] == 10);
    BOOST_TEST(s["failures_by_phase"]["connect"] == 10);
    BOOST_TEST(s["connect_us"]["samples"] == 0);
    BOOST_TEST(r.err.find("hint: no connection established") != std::string::npos, r.err);
}

BOOST_DATA_TEST_CASE(connect_mode_times_out_when_the_backlog_overflows, bdata::make(kClients), variant) {
    Peer full = python_peer("backlog");  // listen(0) and never accept
    RunResult r = run_muxkit(load_client(variant, {full.address(), "--mode", "connect", "-c", "6", "-n", "1", "--hold", "1s",
                                                   "--connect-timeout", "300ms", "--max-failures", "100", "--json"}));
    Json s = summary_of(r);
    const auto established = s["connections"]["established"].get<std::uint64_t>();
    const auto failed = s["connections"]["failed"].get<std::uint64_t>();
    BOOST_TEST(s["connections"]["requested"] == 6);
    BOOST_TEST(established + failed == 6u);
    BOOST_TEST(failed >= 1u);  // the queue holds one or two: the rest wait for a SYN-ACK that never comes
    BOOST_TEST(s["errors"]["ETIMEDOUT"] == failed);
    BOOST_TEST(s["failures_by_phase"]["connect"] == failed);
    BOOST_TEST(r.exit_code == (established > 0 ? 0 : 1), r.err);
}

BOOST_AUTO_TEST_CASE(connect_mode_holds_each_connection_open) {
    EchoServer server({"-m", "epoll"});
    RunResult r = run_muxkit({"multi-connect", server.address(), "--mode", "connect", "-c", "3", "-n", "2", "--hold", "150ms",
                              "--json"});
    BOOST_TEST(r.exit_code == 0, r.err);
    Json s = summary_of(r);
    BOOST_TEST(s["connections"]["completed"] == 6);
    BOOST_TEST(s["settings"]["hold_s"] == 0.15);
    BOOST_TEST(s["duration_s"].get<double>() >= 0.3);  // two holds, one after the other, per slot
    // Three held at once; a slot's next connect may be accepted before the server has read the
    // last one's close, so the server can briefly see a few more.
    const auto peak = summary_of(server.stop())["connections"]["peak"].get<int>();
    BOOST_TEST(peak >= 3);
    BOOST_TEST(peak <= 6);
}

BOOST_AUTO_TEST_CASE(connect_mode_paces_connects_by_rate_and_reports_intervals) {
    EchoServer server({"-m", "epoll"});
    RunResult r = run_muxkit({"multi-connect", server.address(), "--mode", "connect", "-c", "4", "-n", "25", "--rate", "200",
                              "--interval", "200ms", "--json"});
    BOOST_TEST(r.exit_code == 0, r.err);
    Json s = summary_of(r);
    BOOST_TEST(s["connections"]["established"] == 100);
    BOOST_TEST(s["duration_s"].get<double>() >= 0.45);  // 100 connects at 200/s: the last is due at 0.495 s
    std::uint64_t in_intervals = 0;
    for (const Json& j : r.json_lines())
        if (j["type"] == "interval") {
            BOOST_TEST(j.contains("connect_us"));
            in_intervals += j["connections"].get<std::uint64_t>();
        }
    BOOST_TEST(in_intervals > 0u);
    BOOST_TEST(in_intervals <= 100u);
}

BOOST_AUTO_TEST_CASE(connect_mode_max_p99_applies_to_connects) {
    EchoServer server({"-m", "epoll"});
    RunResult tight = run_muxkit({"multi-connect", server.address(), "--mode", "connect", "-c", "2", "-n", "20", "--max-p99",
                                  "1us", "--json"});
    BOOST_TEST(tight.exit_code == 1);
    Json s = summary_of(tight);
    BOOST_TEST(s["check"]["p99_us"].is_number());
    BOOST_TEST(s["check"]["reasons"][0].get<std::string>().find("over --max-p99 1 us") != std::string::npos);
    RunResult loose = run_muxkit({"multi-connect", server.address(), "--mode", "connect", "-c", "2", "-n", "20", "--max-p99", "10s"});
    BOOST_TEST(loose.exit_code == 0, loose.err);
}

// Local ports that run out are counted (EADDRNOTAVAIL) and explained, never silent: in a network
// namespace of the test's own with four ephemeral ports and no TIME_WAIT reuse.
BOOST_AUTO_TEST_CASE(connect_mode_counts_local_ports_that_run_out) {
    const pid_t probe = ::fork();
    if (probe == 0) ::_exit(::unshare(CLONE_NEWNET) == 0 ? 0 : 1);
    int status = 0;
    ::waitpid(probe, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        BOOST_TEST_MESSAGE("skipped: no network namespaces here (needs root)");
        return;
    }
    SpawnOptions in_namespace;
    in_namespace.in_child = [] {
        if (::unshare(CLONE_NEWNET) != 0) ::_exit(120);
        const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        ifreq ifr{};
        std::snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
        ifr.ifr_flags = IFF_UP | IFF_LOOPBACK | IFF_RUNNING;
        if (s < 0 || ::ioctl(s, SIOCSIFFLAGS, &ifr) != 0) ::_exit(121);
        ::close(s);
        auto write_file = [](const char* path, const char* text) {
            const int fd = ::open(path, O_WRONLY | O_CLOEXEC);
            if (fd < 0 || ::write(fd, text, std::strlen(text)) < 0) ::_exit(122);
            ::close(fd);
        };
        write_file("/proc/sys/net/ipv4/ip_local_port_range", "40000 40003");
        write_file("/proc/sys/net/ipv4/tcp_tw_reuse", "0");
    };
    EchoServer server({"-m", "epoll", "127.0.0.1:7007"}, in_namespace);  // not on one of the four ports
    const std::string ns = fmt::format("/proc/{}/ns/net", server.process().pid());
    SpawnOptions joined;
    joined.in_child = [ns] {
        const int fd = ::open(ns.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) ::_exit(123);
    };
    RunResult r = run_muxkit({"multi-connect", server.address(), "--mode", "connect", "-c", "1", "-n", "10", "--json"}, joined);
    BOOST_TEST(r.exit_code == 1, r.err);
    Json s = summary_of(r);
    BOOST_TEST(s["connections"]["requested"] == 10);
    BOOST_TEST(s["connections"]["established"] == 4);  // one per local port, each then in TIME_WAIT
    BOOST_TEST(s["connections"]["failed"] == 6);
    BOOST_TEST(s["errors"]["EADDRNOTAVAIL"] == 6);
    BOOST_TEST(r.err.find("hint: 6 connects found no free local port (EADDRNOTAVAIL)") != std::string::npos, r.err);
}

// ---------------------------------------------------------------- what each mode refuses

BOOST_AUTO_TEST_CASE(options_a_mode_has_no_use_for_are_usage_errors) {
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
        {{"--mode", "request"}, "--mode request needs --payload"},
        {{"--mode", "echo", "--expect", "x"}, "--expect is for --mode request"},
        {{"--expect", "x"}, "--expect is for --mode request"},
        {{"--hold", "1s"}, "--hold is for --mode connect"},
        {{"--mode", "request", "--payload", "x", "--hold", "1s"}, "--hold is for --mode connect"},
        {{"--mode", "connect", "--payload", "x"}, "--payload has no use in --mode connect"},
        {{"--mode", "connect", "--pipeline", "4"}, "--pipeline has no use in --mode connect"},
        {{"--mode", "connect", "--size", "4K"}, "--size has no use in --mode connect"},
        {{"--mode", "connect", "--connect-rate", "10"}, "--rate paces its connects"},
        {{"--mode", "connect", "--hold", "soon"}, "invalid duration"},
        {{"--mode", "request", "--payload", "x", "--pipeline", "2"}, "--pipeline needs --expect"},
        {{"--mode", "request", "--payload", "x", "--expect", ""}, "the expectation is empty"},
        {{"--mode", "request", "--payload", R"(a\q)"}, R"(unknown escape '\q')"},
        {{"--payload", R"(a\x4)"}, R"('\x' needs two hex digits)"},
        {{"--payload", R"(a\)"}, "lone"},
        {{"--mode", "bogus"}, "--mode"},
        {{"-i", "--mode", "connect"}, "--interactive is an echo client"},
        {{"--mode", "connect", "--allow-early-close"}, "--allow-early-close is for --mode connect with --hold"},
        {{"--min-rate-share", "50"}, "--min-rate-share needs --rate"},
    };
    for (const auto& [args, message] : cases) {
        std::vector<std::string> argv = {"multi-connect", "127.0.0.1:1"};
        argv.insert(argv.end(), args.begin(), args.end());
        RunResult r = run_muxkit(argv);
        BOOST_TEST(r.exit_code == 2, args.back() << ": " << r.err);
        BOOST_TEST(has_error_line(r), r.err);
        BOOST_TEST(r.err.find(message) != std::string::npos, message << " not in: " << r.err);
    }
}

BOOST_AUTO_TEST_CASE(echo_mode_is_named_in_the_summary) {
    EchoServer server({"-m", "epoll"});
    RunResult r = run_muxkit({"multi-connect", server.address(), "--payload", R"(a\tb\x00c\\)", "-n", "3", "--json"});
    BOOST_TEST(r.exit_code == 0, r.err);
    Json s = summary_of(r);
    BOOST_TEST(s["mode"] == "echo");
    BOOST_TEST(s["settings"]["size"] == 6);  // a TAB b NUL c backslash
    BOOST_TEST(s.contains("rtt_us"));
    BOOST_TEST(summary_of(server.stop())["bytes"]["in"] == 18);
}
