// UDP: echo-server on udp: addresses with every model, and multi-connect's exact counts of lost,
// duplicated, reordered and corrupted datagrams against a peer that makes those faults.
#define BOOST_TEST_MODULE udp_cli
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <csignal>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <muxkit/socket.hpp>

#include "support/test_support.hpp"

using namespace muxkit;
using namespace muxkit::test;
namespace bdata = boost::unit_test::data;

namespace {

const auto kServers = with_io_uring({"select", "poll", "epoll", "epoll-et", "epoll/2"}, {"io_uring", "io_uring/2"});
const auto kClients = with_io_uring({"select", "poll", "epoll", "epoll/2"}, {"io_uring", "io_uring/2"});

// A datagram socket connected to a udp: address, for sending by hand.
Fd udp_socket_to(const std::string& address) {
    Endpoint ep = resolve(Address::parse(address), false).front();
    Fd fd(::socket(ep.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
    BOOST_REQUIRE(fd);
    BOOST_REQUIRE(::connect(fd.get(), ep.sa(), ep.length) == 0);
    return fd;
}

// The next datagram, or "<none>" after timeout.
std::string recv_datagram(int fd, int timeout_ms = 2000) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) != 1) return "<none>";
    std::string buf(70000, '\0');
    const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n < 0) return "<none>";
    buf.resize(static_cast<std::size_t>(n));
    return buf;
}

// The counts from the peer's last "did ..." line.
std::map<std::string, int> peer_did(Child& peer) {
    peer.signal(SIGTERM);
    RunResult r = peer.wait(10s);
    std::map<std::string, int> did;
    const auto at = r.out.rfind("did ");
    BOOST_REQUIRE(at != std::string::npos);
    std::istringstream in(r.out.substr(at + 4, r.out.find('\n', at) - at - 4));
    for (std::string kv; in >> kv;) did[kv.substr(0, kv.find('='))] = std::stoi(kv.substr(kv.find('=') + 1));
    return did;
}

// udp:127.0.0.1:PORT of a UDP port that was free a moment ago and has no socket.
std::string closed_udp_address() {
    Fd s = bind_datagram(resolve(Address::parse("udp:127.0.0.1:0"), true).front());
    return "udp:" + local_endpoint(s.get()).to_string();
}

}  // namespace

// ---------------------------------------------------------------- echo-server

BOOST_DATA_TEST_CASE(each_model_echoes_datagrams_unchanged_and_drops_those_too_long, bdata::make(kServers), variant) {
    EchoServer server({"udp:127.0.0.1:0", "-m", variant, "--buffer-size", "1000", "-v"});
    BOOST_TEST(server.address().starts_with("udp:127.0.0.1:"));
    Fd a = udp_socket_to(server.address()), b = udp_socket_to(server.address());
    const std::string one = "x", exact = random_bytes(1000, 1), too_long = random_bytes(1001, 2);
    for (const std::string* d : {&one, &exact}) {
        BOOST_REQUIRE(::send(a.get(), d->data(), d->size(), 0) == static_cast<ssize_t>(d->size()));
        BOOST_TEST(recv_datagram(a.get()) == *d);
    }
    BOOST_REQUIRE(::send(a.get(), too_long.data(), too_long.size(), 0) == 1001);
    BOOST_TEST(recv_datagram(a.get(), 300) == "<none>");  // never echoed cut short
    BOOST_REQUIRE(::send(b.get(), "hello", 5, 0) == 5);
    BOOST_TEST(recv_datagram(b.get()) == "hello");
    RunResult r = server.stop();
    BOOST_TEST(r.exit_code == 0, r.err);
    Json s = summary_of(r);
    BOOST_TEST(s["datagrams"]["in"] == 4);
    BOOST_TEST(s["datagrams"]["out"] == 3);
    BOOST_TEST(s["datagrams"]["truncated"] == 1);
    BOOST_TEST(s["datagrams"]["dropped"] == 1);
    BOOST_TEST(s["peers"] == 2);
    BOOST_TEST(s["bytes"]["in"] == 1006);  // a truncated datagram's bytes are not counted
    BOOST_TEST(s["bytes"]["out"] == 1006);
    BOOST_TEST(s["connections"]["accepted"] == 0);
    int peer_events = 0;
    for (const auto& j : r.json_lines())
        if (j["type"] == "peer") {
            ++peer_events;
            BOOST_TEST(j["peer"].get<std::string>().starts_with("udp:127.0.0.1:"));
        }
    BOOST_TEST(peer_events == 2);  // -v: one event per new sender
}

BOOST_AUTO_TEST_CASE(datagrams_the_kernel_dropped_for_a_full_queue_are_counted) {
    EchoServer server({"udp:127.0.0.1:0", "--buffer-size", "2K"});
    Fd s = udp_socket_to(server.address());
    const std::string d(1000, 'x');
    server.process().signal(SIGSTOP);  // nobody reads: the server's receive queue fills up
    int sent = 0;
    for (int i = 0; i < 6000; ++i)
        if (::send(s.get(), d.data(), d.size(), 0) == 1000) ++sent;
    server.process().signal(SIGCONT);
    BOOST_TEST(eventually([&] {  // until the server has read what its queue held
        const Json st = server.stats();
        return st["datagrams"]["in"].get<int>() + st["datagrams"]["overflowed"].get<int>() == sent;
    }));
    Json j = summary_of(server.stop());
    const Json& g = j["datagrams"];
    BOOST_TEST(g["overflowed"].get<int>() > 0);
    BOOST_TEST(g["in"].get<int>() + g["overflowed"].get<int>() == sent);  // every one sent, seen or counted
}

BOOST_AUTO_TEST_CASE(one_server_listens_on_tcp_unix_and_udp_at_once) {
    TempDir dir;
    EchoServer server({"127.0.0.1:0", "unix:" + dir.path + "/s", "udp:127.0.0.1:0"}, {}, 3);
    BOOST_TEST(server.address(2).starts_with("udp:"));
    for (std::size_t i = 0; i < 2; ++i) {
        Fd c = connect_to(server.address(i));
        send_all(c.get(), "stream");
        BOOST_TEST(recv_exact(c.get(), 6) == "stream");
    }
    Fd u = udp_socket_to(server.address(2));
    BOOST_REQUIRE(::send(u.get(), "dgram", 5, 0) == 5);
    BOOST_TEST(recv_datagram(u.get()) == "dgram");
    Json s = summary_of(server.stop());
    BOOST_TEST(s["connections"]["accepted"] == 2);
    BOOST_TEST(s["datagrams"]["out"] == 1);
    BOOST_TEST(s["bytes"]["in"] == 17);
}

BOOST_AUTO_TEST_CASE(fork_and_store_refuse_udp_with_a_usage_error) {
    RunResult fork = run_muxkit({"echo-server", "udp:127.0.0.1:0", "-m", "fork"});
    BOOST_TEST(fork.exit_code == 2);
    BOOST_TEST(fork.err.find("error:") != std::string::npos);
    BOOST_TEST(fork.err.find("fork") != std::string::npos);
    TempDir dir;
    RunResult store = run_muxkit({"echo-server", "udp:127.0.0.1:0", "--store", dir.path + "/s"});
    BOOST_TEST(store.exit_code == 2);
}

BOOST_AUTO_TEST_CASE(a_public_udp_echo_is_warned_about) {
    RunResult r = run_muxkit({"echo-server", "udp:0.0.0.0:0", "--duration", "100ms"});
    BOOST_TEST(r.exit_code == 0, r.err);
    BOOST_TEST(r.err.find("reflector") != std::string::npos, r.err);
    RunResult local = run_muxkit({"echo-server", "udp:127.0.0.1:0", "--duration", "100ms"});
    BOOST_TEST(local.err.find("warning") == std::string::npos, local.err);
}

// ---------------------------------------------------------------- multi-connect against faults

BOOST_DATA_TEST_CASE(loss_duplicates_reordering_and_corruption_are_counted_exactly, bdata::make(kClients), variant) {
    Peer peer({"/usr/bin/env", "python3", MUXKIT_SOURCE_DIR "/tests/support/udp_fault_peer.py", "97"});
    RunResult r = run_muxkit(load_client(variant, {"udp:" + peer.address(), "-c", "3", "-n", "100", "--pipeline", "4",
                                                   "--reply-timeout", "300ms", "--json"}));
    std::map<std::string, int> did = peer_did(peer.process());
    BOOST_TEST(did["dropped"] == 30);
    BOOST_TEST(did["duplicated"] == 30);
    BOOST_TEST(did["reordered"] <= 27);  // some held ones may have gone alone
    BOOST_TEST(r.exit_code == 1, r.err);  // lost datagrams fail the default --max-loss 0
    Json s = summary_of(r);
    const Json& m = s["messages"];
    BOOST_TEST(m["sent"] == 300);
    BOOST_TEST(m["lost"] == did["dropped"]);
    BOOST_TEST(m["received"] == 300 - did["dropped"]);
    BOOST_TEST(m["duplicates"] == did["duplicated"]);
    BOOST_TEST(m["reordered"] == did["reordered"]);
    BOOST_TEST(m["corrupted"] == did["truncated"] + did["corrupted"]);
    BOOST_TEST(m["late"] == 0);
    BOOST_TEST(s["rtt_us"]["samples"] == 270);
    BOOST_TEST(s["connect_us"].is_null());
    BOOST_TEST(s["connections"]["established"] == 3);
    BOOST_TEST(s["check"]["lost_percent"] == 10.0);
    BOOST_TEST(s["messages"]["reordered"] > 0);
}

BOOST_AUTO_TEST_CASE(max_loss_and_max_failures_let_known_faults_pass) {
    Peer peer({"/usr/bin/env", "python3", MUXKIT_SOURCE_DIR "/tests/support/udp_fault_peer.py", "97"});
    RunResult r = run_muxkit({"multi-connect", "udp:" + peer.address(), "-n", "100", "--pipeline", "4", "--reply-timeout", "300ms",
                              "--max-loss", "10", "--max-failures", "2", "--json"});
    BOOST_TEST(r.exit_code == 0, r.err);
    Json s = summary_of(r);
    BOOST_TEST(s["check"]["passed"] == true, s.dump());
    BOOST_TEST(s["check"]["max_loss_percent"] == 10.0);
    RunResult strict = run_muxkit({"multi-connect", "udp:" + peer.address(), "-n", "100", "--pipeline", "4", "--reply-timeout",
                                   "300ms", "--max-loss", "9.9%", "--max-failures", "2", "--json"});
    BOOST_TEST(strict.exit_code == 1, strict.err);
    BOOST_TEST(summary_of(strict)["check"]["reasons"].dump().find("--max-loss") != std::string::npos);
}

// ---------------------------------------------------------------- multi-connect against echo-server

// Every client model times a datagram from its own send to its own echo's receive: none records a
// round trip below what a loopback round trip can take, and each gives the distribution the
// io_uring client gives (a readiness client once stamped sends with the time of an earlier
// receive, so a third of its round trips read 0).
BOOST_AUTO_TEST_CASE(every_client_model_times_datagrams_alike_and_none_reads_zero) {
    EchoServer server({"udp:127.0.0.1:0"});
    constexpr double kLoopbackFloorUs = 1.0;  // no datagram goes out and back through the kernel faster
    auto p50_of = [&](const std::string& variant) {
        RunResult r = run_muxkit(load_client(variant, {server.address(), "-c", "1", "-n", "5000", "--pipeline", "4",
                                                       "--percentiles", "--json"}));
        BOOST_TEST_REQUIRE(r.exit_code == 0, variant << ": " << r.err);
        Json s = summary_of(r);
        BOOST_TEST(s["rtt_us"]["samples"] == 5000, variant);
        BOOST_TEST(s["errors"].value("negative_rtt", 0) == 0, variant);
        const double lowest = s["percentiles"].at(0)["value_us"].get<double>();
        BOOST_TEST(lowest >= kLoopbackFloorUs, variant << ": the fastest round trip read " << lowest << " us");
        return s["rtt_us"]["p50"].get<double>();
    };
    std::map<std::string, double> p50;
    for (const std::string& variant : kClients) p50[variant] = p50_of(variant);
    if (!p50.contains("io_uring")) return;  // this kernel refuses io_uring: no reference
#ifdef MUXKIT_SANITIZED
    // A sanitizer slows the readiness clients' system-call path far more than io_uring's batches
    // (97 us against 27 us seen under ASan): the floor above is what holds there.
    return;
#endif
    for (const auto& [variant, value] : p50) {
        double reference = p50["io_uring"];
        if (value > 2 * reference || value < reference / 2) {  // a busy machine: measure both once more
            const double again = p50_of(variant);
            reference = std::min(reference, p50_of("io_uring"));
            BOOST_TEST((again <= 2 * reference && again >= reference / 2),
                       variant << ": p50 " << again << " us against io_uring's " << reference << " us");
        }
    }
}

BOOST_DATA_TEST_CASE(sizes_from_one_byte_to_the_largest_datagram_come_back, bdata::make(kClients), variant) {
    EchoServer server({"udp:127.0.0.1:0", "--buffer-size", "64K"});
    for (const char* size : {"1", "65507"}) {
        RunResult r = run_muxkit(load_client(variant, {server.address(), "-c", "2", "-n", "50", "-s", size, "--pipeline", "8",
                                                       "--json"}));
        BOOST_TEST(r.exit_code == 0, size << ": " << r.err);
        Json s = summary_of(r);
        BOOST_TEST(s["messages"]["received"] == 100);
        BOOST_TEST(s["messages"]["lost"] == 0);
        BOOST_TEST(s["messages"]["corrupted"] == 0);
        BOOST_TEST(s["messages"]["duplicates"] == 0);
        BOOST_TEST(s["bytes"]["received"] == 100 * std::stoull(size));
    }
    Json s = summary_of(server.stop());
    BOOST_TEST(s["datagrams"]["in"] == 200);
    BOOST_TEST(s["datagrams"]["out"] == 200);
}

BOOST_DATA_TEST_CASE(each_server_model_serves_every_datagram, bdata::make(kServers), variant) {
    EchoServer server({"udp:127.0.0.1:0", "-m", variant, "--buffer-size", "1000"});
    RunResult r = run_muxkit({"multi-connect", server.address(), "-c", "10", "-n", "200", "-s", "1000", "--pipeline", "4", "--json"});
    BOOST_TEST(r.exit_code == 0, r.err);
    BOOST_TEST(summary_of(r)["messages"]["received"] == 2000);
    Json s = summary_of(server.stop());
    BOOST_TEST(s["datagrams"]["out"] == 2000);
    BOOST_TEST(s["datagrams"]["truncated"] == 0);
    BOOST_TEST(s["peers"] == 10);
}

BOOST_AUTO_TEST_CASE(fifty_sockets_from_two_processes_at_once) {
    EchoServer server({"udp:127.0.0.1:0", "-m", "epoll", "--threads", "2"});
    Child one(load_client("epoll", {server.address(), "-c", "25", "-n", "200", "--pipeline", "2", "--json"}));
    Child two(load_client(with_io_uring({"poll"}).back(), {server.address(), "-c", "25", "-n", "200", "--pipeline", "2", "--json"}));
    for (Child* c : {&one, &two}) {
        RunResult r = c->wait(60s);
        BOOST_TEST(r.exit_code == 0, r.err);
        BOOST_TEST(summary_of(r)["messages"]["received"] == 5000);
    }
    Json s = summary_of(server.stop());
    BOOST_TEST(s["datagrams"]["in"] == 10000);
    BOOST_TEST(s["datagrams"]["out"] == 10000);
    // Peers are distinct sender address:port pairs: when one process has ended before the other
    // began (a slow start under a sanitizer), the second may be given a port the first let go,
    // and that sender is rightly one peer (seen once in CI: 49).
    BOOST_TEST(s["peers"].get<int>() <= 50);
    BOOST_TEST(s["peers"].get<int>() >= 48);
}

BOOST_DATA_TEST_CASE(an_unreachable_port_counts_refusals_and_loses_everything, bdata::make(kClients), variant) {
    RunResult r = run_muxkit(load_client(variant, {closed_udp_address(), "-c", "2", "-n", "3", "--reply-timeout", "200ms", "--json"}));
    BOOST_TEST(r.exit_code == 1, r.err);
    Json s = summary_of(r);
    BOOST_TEST(s["messages"]["sent"] == 6);
    BOOST_TEST(s["messages"]["lost"] == 6);
    BOOST_TEST(s["errors"]["ECONNREFUSED"].get<int>() >= 1);
    BOOST_TEST(s["connections"]["established"] == 2);  // not fatal: each socket went on sending
    BOOST_TEST(r.err.find("port unreachable") != std::string::npos, r.err);
}

BOOST_AUTO_TEST_CASE(rate_and_duration_work_over_udp) {
    EchoServer server({"udp:127.0.0.1:0"});
    RunResult r = run_muxkit({"multi-connect", server.address(), "-c", "4", "--rate", "400", "-d", "1s", "--json"});
    BOOST_TEST(r.exit_code == 0, r.err);
    Json s = summary_of(r);
    const auto got = s["messages"]["received"].get<int>();
    BOOST_TEST(got >= 350);
    BOOST_TEST(got <= 410);
    BOOST_TEST(s["messages"]["lost"] == 0);
    BOOST_TEST(!s["service_us"].is_null());
}

BOOST_AUTO_TEST_CASE(settings_udp_cannot_use_are_usage_errors) {
    for (std::vector<std::string> args : {std::vector<std::string>{"--mode", "connect"},
                                          {"--mode", "request", "--payload", "x"},
                                          {"--payload", "x"},
                                          {"-s", "65508"},
                                          {"-s", "1", "--pipeline", "200", "-n", "1000"},
                                          {"--max-loss", "101"},
                                          {"-i"}}) {
        args.insert(args.begin(), {"multi-connect", "udp:127.0.0.1:9"});
        RunResult r = run_muxkit(args);
        BOOST_TEST(r.exit_code == 2, fmt::format("{}: {}", fmt::join(args, " "), r.err));
        BOOST_TEST(r.err.find("error:") != std::string::npos);
    }
    RunResult tcp = run_muxkit({"multi-connect", "127.0.0.1:9", "--max-loss", "1"});
    BOOST_TEST(tcp.exit_code == 2);
}

BOOST_AUTO_TEST_CASE(udp_runs_merge_with_their_datagram_counts) {
    TempDir dir;
    Peer peer({"/usr/bin/env", "python3", MUXKIT_SOURCE_DIR "/tests/support/udp_fault_peer.py", "97"});
    std::vector<std::string> files;
    for (int i = 0; i < 2; ++i) {
        RunResult r = run_muxkit({"multi-connect", "udp:" + peer.address(), "-n", "100", "--pipeline", "4", "--reply-timeout", "300ms",
                                  "--max-loss", "10", "--max-failures", "2", "--json"});
        BOOST_TEST(r.exit_code == 0, r.err);
        files.push_back(fmt::format("{}/run{}.jsonl", dir.path, i));
        std::ofstream(files.back()) << r.out;
    }
    RunResult strict = run_muxkit({"merge", files[0], files[1], "--max-failures", "4", "--json"});
    BOOST_TEST(strict.exit_code == 1, strict.err);  // the default --max-loss 0 holds for merged UDP runs too
    RunResult r = run_muxkit({"merge", files[0], files[1], "--max-failures", "4", "--max-loss", "10", "--json"});
    BOOST_TEST(r.exit_code == 0, r.err);
    Json s = summary_of(r);
    BOOST_TEST(s["messages"]["sent"] == 200);
    BOOST_TEST(s["messages"]["lost"] == 20);
    BOOST_TEST(s["messages"]["duplicates"] == 20);
    BOOST_TEST(s["messages"]["corrupted"] == 4);
    BOOST_TEST(s["connect_us"].is_null());
    BOOST_TEST(s["rtt_us"]["samples"] == 180);
}
