// multi-connect's exit code against real peers that are not muxkit: can the check say 0 when the
// service did not do what was asked? Each failure kind is counted once, with exact counts, and
// --max-failures is tried at, below and above them.
#define BOOST_TEST_MODULE check_cli
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <csignal>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include <muxkit/address.hpp>
#include <muxkit/socket.hpp>

#include "support/test_support.hpp"

using namespace muxkit;
using namespace muxkit::test;
namespace bdata = boost::unit_test::data;

namespace {

const auto kClients = with_io_uring({"select", "epoll", "epoll/2"}, {"io_uring", "io_uring/2"});

RunResult run_json(std::vector<std::string> args) {
    args.push_back("--json");
    return run_muxkit(args);
}

// Bytes that arrived at a listener's port and wait to be read, over all its connections (accepted
// or not), from /proc/net/tcp: how a test knows a client's request is on its way without a reply.
std::uint64_t bytes_queued_at(const std::string& address) {
    const std::string port = fmt::format(":{:04X}", resolve(Address::parse(address), false).front().port());
    std::ifstream in("/proc/net/tcp");
    std::string line;
    std::getline(in, line);
    std::uint64_t total = 0;
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::string slot, local, remote, state, queues;
        fields >> slot >> local >> remote >> state >> queues;
        if (local.ends_with(port) && state == "01") total += std::stoull(queues.substr(queues.find(':') + 1), nullptr, 16);
    }
    return total;
}

bool has_reason(const Json& s, const std::string& start) {
    for (const auto& r : s["check"]["reasons"])
        if (r.get<std::string>().starts_with(start)) return true;
    return false;
}

// The run's failure count n, then --max-failures n-1 fails, n and n+1 pass (when nothing else
// fails the check).
void max_failures_bounds(const std::vector<std::string>& args, std::uint64_t n) {
    auto with = [&](std::uint64_t max) {
        auto a = args;
        a.insert(a.end(), {"--max-failures", std::to_string(max), "--json"});
        return run_muxkit(a, {}, 60s);
    };
    RunResult below = with(n - 1), at = with(n), above = with(n + 1);
    BOOST_TEST(below.exit_code == 1, below.out);
    BOOST_TEST(summary_of(below)["check"]["failures"] == n);
    BOOST_TEST(at.exit_code == 0, at.out);
    BOOST_TEST(summary_of(at)["check"]["passed"] == true);
    BOOST_TEST(above.exit_code == 0, above.out);
}

}  // namespace

BOOST_DATA_TEST_CASE(refused_connects_count_once_each, bdata::make(kClients), variant) {
    const std::string address = closed_port_address();
    RunResult r = run_muxkit(load_client(variant, {address, "-c", "3", "--json"}));
    BOOST_TEST(r.exit_code == 1);
    Json s = summary_of(r);
    BOOST_TEST(s["connections"]["failed"] == 3);
    BOOST_TEST(s["errors"]["ECONNREFUSED"] == 3);
    BOOST_TEST(s["failures_by_phase"]["connect"] == 3);
    BOOST_TEST(s["check"]["failures"] == 3);
    // Zero connections never pass, whatever --max-failures allows.
    RunResult tolerant = run_muxkit(load_client(variant, {address, "-c", "3", "--max-failures", "10", "--max-p99", "1ms", "--json"}));
    BOOST_TEST(tolerant.exit_code == 1);
    Json t = summary_of(tolerant);
    BOOST_TEST(t["check"]["passed"] == false);
    BOOST_TEST(has_reason(t, "no connection established"), t["check"].dump());
    BOOST_TEST(has_reason(t, "p99 not measured"), t["check"].dump());
    BOOST_TEST(t["check"]["p99_us"].is_null());
}

BOOST_AUTO_TEST_CASE(connect_timeouts_count_once_each) {
    // Backlog 0 and no accept: the kernel queues one connection and drops the others' SYNs.
    Peer peer = python_peer("backlog");
    RunResult r = run_muxkit({"multi-connect", peer.address(), "-c", "3", "--connect-timeout", "300ms", "--reply-timeout",
                              "300ms", "--json"});
    BOOST_TEST(r.exit_code == 1);
    Json s = summary_of(r);
    BOOST_TEST(s["connections"]["established"] == 1);
    BOOST_TEST(s["connections"]["failed"] == 2);
    BOOST_TEST(s["errors"]["ETIMEDOUT"] == 2);
    BOOST_TEST(s["failures_by_phase"]["connect"] == 2);
    BOOST_TEST(s["messages"]["timeouts"] == 1);  // the queued one never gets a reply
    BOOST_TEST(s["check"]["failures"] == 3);
}

BOOST_DATA_TEST_CASE(reply_timeouts_count_once_each, bdata::make(kClients), variant) {
    Peer peer = python_peer("silent");
    std::vector<std::string> args = load_client(variant, {peer.address(), "-c", "2", "-n", "3", "--reply-timeout", "300ms"});
    RunResult r = run_json(args);
    BOOST_TEST(r.exit_code == 1);
    Json s = summary_of(r);
    BOOST_TEST(s["messages"]["timeouts"] == 2);
    BOOST_TEST(s["connections"]["failed"] == 0);  // a timeout is a message failure, once
    BOOST_TEST(s["failures_by_phase"]["timeout"] == 2);
    BOOST_TEST(s["check"]["failures"] == 2);
    max_failures_bounds(args, 2);
}

BOOST_DATA_TEST_CASE(verify_mismatches_count_once_each, bdata::make(kClients), variant) {
    Peer peer = python_peer("wrong");
    std::vector<std::string> args = load_client(variant, {peer.address(), "-c", "2", "-n", "3"});
    RunResult r = run_json(args);
    BOOST_TEST(r.exit_code == 1);
    Json s = summary_of(r);
    BOOST_TEST(s["messages"]["received"] == 6);
    BOOST_TEST(s["messages"]["verify_failures"] == 6);
    BOOST_TEST(s["connections"]["failed"] == 0);
    BOOST_TEST(s["check"]["failures"] == 6);
    max_failures_bounds(args, 6);
}

BOOST_DATA_TEST_CASE(reset_mid_run_counts_once_per_connection, bdata::make(kClients), variant) {
    Peer peer = python_peer("reset-after", 64);  // echoes the first message, then resets
    std::vector<std::string> args = load_client(variant, {peer.address(), "-c", "2", "-n", "5", "-s", "64"});
    RunResult r = run_json(args);
    BOOST_TEST(r.exit_code == 1);
    Json s = summary_of(r);
    BOOST_TEST(s["messages"]["received"] == 2);
    BOOST_TEST(s["connections"]["established"] == 2);
    BOOST_TEST(s["connections"]["failed"] == 2);
    BOOST_TEST(s["failures_by_phase"]["send"].get<int>() + s["failures_by_phase"]["receive"].get<int>() == 2);
    BOOST_TEST(s["check"]["failures"] == 2);
    max_failures_bounds(args, 2);
}

BOOST_DATA_TEST_CASE(peer_close_mid_run_counts_once_per_connection, bdata::make(kClients), variant) {
    Peer peer = python_peer("close-after", 64);  // echoes the first message, then EOF
    std::vector<std::string> args = load_client(variant, {peer.address(), "-c", "2", "-n", "5", "-s", "64"});
    RunResult r = run_json(args);
    BOOST_TEST(r.exit_code == 1);
    Json s = summary_of(r);
    BOOST_TEST(s["messages"]["received"] == 2);
    BOOST_TEST(s["connections"]["failed"] == 2);
    BOOST_TEST(s["errors"]["unexpected_eof"] == 2);
    BOOST_TEST(s["failures_by_phase"]["receive"] == 2);
    BOOST_TEST(s["check"]["failures"] == 2);
    max_failures_bounds(args, 2);
}

// A --duration shorter than --reply-timeout against a peer that never answers: nothing came back,
// so the run fails with a reason; with a reply timeout shorter than the run's end, what waited
// that long is a timeout, not in flight.
BOOST_DATA_TEST_CASE(a_peer_that_never_answers_fails_however_short_the_run, bdata::make(kClients), variant) {
    Peer peer = python_peer("silent");
    RunResult r = run_json(load_client(variant, {peer.address(), "-c", "5", "-d", "300ms"}));
    BOOST_TEST(r.exit_code == 1, r.out);
    Json s = summary_of(r);
    BOOST_TEST(s["messages"]["sent"] == 5);
    BOOST_TEST(s["messages"]["received"] == 0);
    BOOST_TEST(s["messages"]["in_flight"] == 5);  // they waited 2.3 s of their 5 s
    BOOST_TEST(s["check"]["passed"] == false);
    BOOST_TEST(has_reason(s, "no reply came back to 5 messages sent"), s["check"].dump());

    // A listener that never accepts: the kernel completes the handshakes, takes the requests and
    // the FINs, and nobody ever answers or closes.
    Fd mute = listen_on(resolve(Address::parse("127.0.0.1:0"), true).front(), 16);
    const std::string mute_address = local_endpoint(mute.get()).to_string();
    RunResult timed = run_json(load_client(variant, {mute_address, "-c", "5", "-d", "100ms", "--reply-timeout", "200ms"}));
    BOOST_TEST(timed.exit_code == 1, timed.out);
    Json t = summary_of(timed);
    BOOST_TEST(t["messages"]["timeouts"] == 5);
    BOOST_TEST(t["messages"]["in_flight"] == 0);
    BOOST_TEST(t["check"]["failures"] == 5);
}

BOOST_AUTO_TEST_CASE(a_udp_peer_that_never_answers_fails_however_short_the_run) {
    Fd silent = bind_datagram(resolve(Address::parse("udp:127.0.0.1:0"), true).front());
    const std::string address = "udp:" + local_endpoint(silent.get()).to_string();
    RunResult r = run_json({"multi-connect", address, "-c", "5", "-d", "300ms"});
    BOOST_TEST(r.exit_code == 1, r.out);
    Json s = summary_of(r);
    BOOST_TEST(s["messages"]["received"] == 0);
    BOOST_TEST(s["messages"]["sent"].get<int>() >= 5);
    BOOST_TEST(has_reason(s, "no reply came back"), s["check"].dump());
}

BOOST_AUTO_TEST_CASE(a_run_too_short_to_send_anything_fails) {
    EchoServer server({"-m", "epoll"});
    for (int i = 0; i < 5; ++i) {
        RunResult r = run_json({"multi-connect", server.address(), "-c", "3", "-d", "1us"});
        Json s = summary_of(r);
        if (s["messages"]["received"] == 0) {
            BOOST_TEST(r.exit_code == 1, r.out);
            BOOST_TEST((has_reason(s, "no message was sent") || has_reason(s, "no reply came back") ||
                        has_reason(s, "no connection established")),
                       s["check"].dump());
        } else {
            BOOST_TEST(r.exit_code == 0, r.out);
        }
    }
}

BOOST_AUTO_TEST_CASE(interrupted_run_fails_unless_allowed) {
    Fd mute = listen_on(resolve(Address::parse("127.0.0.1:0"), true).front(), 16);  // never accepts, never answers
    const std::string address = local_endpoint(mute.get()).to_string();
    for (bool allow : {false, true}) {
        std::vector<std::string> args = {"multi-connect", address, "--reply-timeout", "30s", "--json"};
        if (allow) args.push_back("--allow-interrupt");
        const std::uint64_t before = bytes_queued_at(address);
        Child c(args);
        BOOST_REQUIRE(eventually([&] { return bytes_queued_at(address) == before + 64; }));  // its message is on its way
        c.signal(SIGINT);
        RunResult r = c.wait(10s);
        BOOST_TEST(!r.timed_out);
        BOOST_TEST(r.exit_code == (allow ? 0 : 1), r.out << r.err);
        Json s = summary_of(r);
        BOOST_TEST(s["interrupted"] == true);
        BOOST_TEST(s["messages"]["in_flight"] == 1);
        BOOST_TEST(has_reason(s, "interrupted") == !allow, s["check"].dump());
    }
    // The text report says so too.
    const std::uint64_t before = bytes_queued_at(address);
    Child c({"multi-connect", address, "--reply-timeout", "30s"});
    BOOST_REQUIRE(eventually([&] { return bytes_queued_at(address) == before + 64; }));
    c.signal(SIGTERM);
    RunResult r = c.wait(10s);
    BOOST_TEST(r.exit_code == 1);
    BOOST_TEST(r.out.find("interrupted: true") != std::string::npos, r.out);
    BOOST_TEST(r.out.find("interrupted before the run was complete") != std::string::npos, r.out);
}

BOOST_AUTO_TEST_CASE(interrupted_message_count_run_fails_against_a_real_echo_server) {
    EchoServer server({});
    Child c({"multi-connect", server.address(), "-c", "2", "-n", "100000000", "--interval", "50ms", "--json"});
    c.read_line_with("\"type\":\"interval\"");  // it is under way
    c.signal(SIGINT);
    RunResult r = c.wait(10s);
    BOOST_TEST(r.exit_code == 1);
    Json s = summary_of(r);
    BOOST_TEST(s["interrupted"] == true);
    BOOST_TEST(s["messages"]["received"].get<std::uint64_t>() > 0);
    BOOST_TEST(s["check"]["failures"] == 0);
    // A run that ended by its own --duration is not interrupted.
    RunResult d = run_muxkit({"multi-connect", server.address(), "-d", "200ms", "--json"});
    BOOST_TEST(d.exit_code == 0, d.out);
    BOOST_TEST(summary_of(d)["interrupted"] == false);
}

// The load's normal end is a clean close: the server counts no reset, on every server model,
// ended by -n or -d, pipelined, and what was in flight at the end is echoed or in_flight.
BOOST_DATA_TEST_CASE(normal_end_makes_no_server_errors,
                     bdata::make(with_io_uring({"select", "poll", "epoll", "epoll-et", "fork", "epoll/2"}, {"io_uring"})),
                     model) {
    EchoServer server({"-m", model});
    for (const auto& clients : kClients) {
        for (std::vector<std::string> end : {std::vector<std::string>{"-d", "300ms"}, std::vector<std::string>{"-n", "200"}}) {
            auto args = load_client(clients, {server.address(), "-c", "5", "--pipeline", "4", "--json"});
            args.insert(args.end(), end.begin(), end.end());
            RunResult r = run_muxkit(args);
            BOOST_TEST(r.exit_code == 0, model << " " << clients << ": " << r.out << r.err);
            Json s = summary_of(r);
            BOOST_TEST(s["messages"]["sent"].get<std::uint64_t>() ==
                       s["messages"]["received"].get<std::uint64_t>() + s["messages"]["in_flight"].get<std::uint64_t>());
        }
    }
    Json es = summary_of(server.stop());
    BOOST_TEST(es["errors"]["ECONNRESET"] == 0, model << ": " << es.dump());
    BOOST_TEST(es["errors"].size() == 1u, model << ": " << es["errors"].dump());  // nothing but the zero ECONNRESET
    BOOST_TEST(es["bytes"]["in"] == es["bytes"]["out"]);
}

BOOST_AUTO_TEST_CASE(failures_explain_themselves) {
    // A silent server: one hint line without -v.
    Peer silent = python_peer("silent");
    RunResult r = run_muxkit({"multi-connect", silent.address(), "--reply-timeout", "300ms"});
    BOOST_TEST(r.exit_code == 1);
    BOOST_TEST(r.err.find("hint: no reply within 300ms: is " + silent.address() + " an echo server?") != std::string::npos, r.err);

    // Not an echo server: the reply is shown where it differs.
    TempDir dir;
    std::ofstream(dir.path + "/index.html") << "<html>hello</html>\n";
    Peer http = http_server(dir.path);
    RunResult h = run_muxkit({"multi-connect", http.address(), "--payload", "GET / HTTP/1.0\r\n\r\n"});
    BOOST_TEST(h.exit_code == 1);
    BOOST_TEST(h.err.find("hint: reply differs at byte 0: received 'HTTP/1.0 200 OK\\x0d'") != std::string::npos, h.err);

    // -v: one event per failure, with the phase, errno and excerpts.
    RunResult v = run_muxkit({"multi-connect", http.address(), "--payload", "GET / HTTP/1.0\r\n\r\n", "-v", "--json"});
    bool seen = false;
    for (const auto& j : v.json_lines())
        if (j["type"] == "failure") {
            seen = true;
            BOOST_TEST(j["phase"] == "verify");
            BOOST_TEST(j["offset"] == 0);
            BOOST_TEST(j["received_text"] == "HTTP/1.0 200 OK\\x0d");
            BOOST_TEST(j["expected_text"] == "GET / HTTP/1.0\\x0d\\n");
            BOOST_TEST(j["received_hex"].get<std::string>().starts_with("485454502f312e30"));
        }
    BOOST_TEST(seen, v.out);
    const std::string refused = closed_port_address();
    RunResult c = run_muxkit({"multi-connect", refused, "-c", "2", "-v"});
    BOOST_TEST(c.exit_code == 1);
    BOOST_TEST(c.out.find("failure connection=0 phase=connect error=ECONNREFUSED") != std::string::npos, c.out);
    BOOST_TEST(c.out.find("failure connection=1 phase=connect error=ECONNREFUSED") != std::string::npos, c.out);
    BOOST_TEST(c.err.find("hint: no connection established: connect to " + refused) != std::string::npos, c.err);
}

BOOST_AUTO_TEST_CASE(nc_that_never_answers_gets_a_hint) {
    Child probe({"/bin/sh", "-c", "command -v nc"}, {}, false);
    BOOST_REQUIRE_MESSAGE(probe.wait(5s).exit_code == 0, "nc missing (./dev test installs netcat-openbsd)");
    const std::string address = closed_port_address();
    const std::string port = address.substr(address.rfind(':') + 1);
    Child nc({"/bin/sh", "-c", "exec nc -l 127.0.0.1 " + port + " >/dev/null"}, stdin_kept_open(), false);
    RunResult r;
    for (int i = 0; i < 50; ++i) {  // until nc listens
        r = run_muxkit({"multi-connect", address, "--reply-timeout", "300ms"});
        if (r.err.find("Connection refused") == std::string::npos) break;
        std::this_thread::sleep_for(100ms);
    }
    BOOST_TEST(r.exit_code == 1);
    BOOST_TEST(r.err.find("hint: no reply within 300ms") != std::string::npos, r.err);
}

BOOST_AUTO_TEST_CASE(interactive_fails_like_load_mode) {
    RunResult json = run_muxkit({"multi-connect", "-i", "--json"}, with_stdin("x\n"));
    BOOST_TEST(json.exit_code == 2);
    BOOST_TEST(json.err.find("error: --interactive") != std::string::npos, json.err);

    RunResult refused = run_muxkit({"multi-connect", "-i", closed_port_address()}, with_stdin("x\n"));
    BOOST_TEST(refused.exit_code == 1);  // as a refused connection in load mode
    BOOST_TEST(refused.out.empty());
    BOOST_TEST(refused.err.find("cannot connect to") != std::string::npos, refused.err);

    TempDir dir;
    std::ofstream(dir.path + "/index.html") << "<html>hello</html>\n";
    Peer http = http_server(dir.path);
    RunResult incomplete = run_muxkit({"multi-connect", "-i", http.address(), "--reply-timeout", "2s"},
                                      with_stdin("GET / HTTP/1.0\r\n\r\n"));
    BOOST_TEST(incomplete.exit_code == 1);
    BOOST_TEST(incomplete.out.starts_with("HTTP/1.0 200"), incomplete.out);
    BOOST_TEST(incomplete.err.find("not an echo: sent 18 bytes, received") != std::string::npos, incomplete.err);
}
