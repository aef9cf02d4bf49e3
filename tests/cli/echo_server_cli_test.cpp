#define BOOST_TEST_MODULE echo_server_cli
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <csignal>
#include <cstddef>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>
#include <tuple>

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <muxkit/socket.hpp>

#include "support/test_support.hpp"

using namespace muxkit;
using namespace muxkit::test;
namespace bdata = boost::unit_test::data;

namespace {

// Every model, and the multiplexed ones again with two event loops (--threads 2).
const auto kVariants = with_io_uring({"select", "poll", "epoll", "epoll-et", "fork", "select/2", "poll/2", "epoll/2", "epoll-et/2"});


// Writes payload in random chunk sizes while a thread reads the echo; returns what came back.
std::string echo_concurrently(const std::string& address, const std::string& payload, std::uint32_t seed) {
    Fd fd = connect_to(address);
    std::string got;
    std::thread reader([&] { got = recv_exact(fd.get(), payload.size(), 60s); });
    std::mt19937 rng(seed);
    std::size_t off = 0;
    while (off < payload.size()) {
        std::size_t n = std::min<std::size_t>(payload.size() - off, 1 + rng() % 70000);
        send_all(fd.get(), payload.substr(off, n));
        off += n;
    }
    reader.join();
    return got;
}


void raise_own_fd_limit(std::uint64_t n) { raise_fd_limit(n); }

}  // namespace

BOOST_DATA_TEST_CASE(echoes_a_multi_mib_payload_exactly_in_random_chunks, bdata::make(kVariants), model) {
    EchoServer server({"-m", model, "--buffer-size", "4K"});
    std::string payload = random_bytes(3 * 1024 * 1024 + 17, 1);
    std::string got = echo_concurrently(server.address(), payload, 2);
    BOOST_TEST(got.size() == payload.size());
    BOOST_TEST((got == payload));
    RunResult r = server.stop();
    BOOST_TEST(r.exit_code == 0);
    Json s = summary_of(r);
    BOOST_TEST(s["model"].get<std::string>() == model_of(model));
    BOOST_TEST(s["bytes"]["in"].get<std::uint64_t>() == payload.size());
    BOOST_TEST(s["bytes"]["out"].get<std::uint64_t>() == payload.size());
    BOOST_TEST(s["connections"]["accepted"].get<int>() == 1);
}

BOOST_DATA_TEST_CASE(serves_two_hundred_concurrent_clients, bdata::make(kVariants), model) {
    raise_own_fd_limit(4096);
    EchoServer server({"-m", model});
    std::vector<Fd> clients;
    for (int i = 0; i < 200; ++i) clients.push_back(connect_to(server.address()));
    for (int i = 0; i < 200; ++i) send_all(clients[i].get(), fmt::format("client {} says hello\n", i));
    for (int i = 0; i < 200; ++i) {
        std::string want = fmt::format("client {} says hello\n", i);
        BOOST_TEST(recv_exact(clients[i].get(), want.size()) == want);
    }
    clients.clear();
    RunResult r = server.stop();
    Json s = summary_of(r);
    BOOST_TEST(s["connections"]["accepted"].get<int>() == 200);
    BOOST_TEST(s["connections"]["peak"].get<int>() >= 100);
    BOOST_TEST(s["connections"]["refused"].get<int>() == 0);
}

BOOST_DATA_TEST_CASE(half_closed_client_still_gets_the_whole_echo, bdata::make(kVariants), model) {
    EchoServer server({"-m", model, "--buffer-size", "1K"});
    Fd fd = connect_to(server.address());
    std::string payload = random_bytes(200000, 3);
    std::thread writer([&] {
        send_all(fd.get(), payload);
        ::shutdown(fd.get(), SHUT_WR);
    });
    std::string got = recv_until_eof(fd.get(), 30s);  // EOF: the server closed after the echo
    writer.join();
    BOOST_TEST((got == payload));
    Json s = summary_of(server.stop());
    BOOST_TEST(s["connections"]["current"].get<int>() == 0);
}

BOOST_DATA_TEST_CASE(client_that_never_reads_cannot_grow_server_memory,
                     bdata::make(with_io_uring({"epoll", "select", "epoll-et"}, {"io_uring"})), model) {
    EchoServer server({"-m", model});
    Fd fd = connect_to(server.address());
    int small = 4096;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    std::uint64_t rss_before = rss_bytes(server.process().pid());
    std::string chunk(64 * 1024, 'x');
    std::uint64_t sent = 0;
    // Send for a while without reading: the kernel buffers fill, then the server must stop reading.
    for (int i = 0; i < 2000 && sent < 256u * 1024 * 1024; ++i) {
        pollfd p{fd.get(), POLLOUT, 0};
        if (::poll(&p, 1, 50) <= 0) break;  // the server stopped reading: backpressure reached us
        ssize_t n = ::send(fd.get(), chunk.data(), chunk.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) sent += static_cast<std::uint64_t>(n);
    }
    std::uint64_t rss_after = rss_bytes(server.process().pid());
    BOOST_TEST(sent < 64u * 1024 * 1024, "sent " << sent << " bytes without the server pushing back");
    BOOST_TEST(rss_after < rss_before + 8u * 1024 * 1024, "rss grew from " << rss_before << " to " << rss_after);
    // The server is still healthy for others.
    Fd other = connect_to(server.address());
    send_all(other.get(), "ping");
    BOOST_TEST(recv_exact(other.get(), 4) == "ping");
    fd.reset();
    BOOST_TEST(server.stop().exit_code == 0);
}

// Each stuck client may keep what the server owes it, but no shared resource (io_uring's ring
// buffers: 64 of them at --buffer-size 64K) may run out for the others.
BOOST_DATA_TEST_CASE(clients_that_never_read_cannot_starve_the_others, bdata::make(with_io_uring({"epoll"}, {"io_uring"})), model) {
    EchoServer server({"-m", model, "--buffer-size", "64K"});
    std::vector<Fd> stuck;
    std::string chunk(64 * 1024, 's');
    for (int i = 0; i < 40; ++i) {
        Fd fd = connect_to(server.address());
        int small = 4096;
        ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        for (int k = 0; k < 200; ++k) {  // until the server stops reading from it
            pollfd p{fd.get(), POLLOUT, 0};
            if (::poll(&p, 1, 20) <= 0) break;
            ::send(fd.get(), chunk.data(), chunk.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        }
        stuck.push_back(std::move(fd));
    }
    Fd other = connect_to(server.address());
    send_all(other.get(), "still serving?");
    BOOST_TEST(recv_exact(other.get(), 14) == "still serving?");
    other.reset();
    stuck.clear();
    RunResult r = server.stop();
    BOOST_TEST(r.exit_code == 0, r.err);
    BOOST_TEST(summary_of(r)["connections"]["accepted"] == 41);
}

BOOST_AUTO_TEST_CASE(select_refuses_connections_past_fd_setsize_and_keeps_serving) {
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_max < 2400) {
        BOOST_TEST_MESSAGE("hard RLIMIT_NOFILE too low for this test");
        return;
    }
    raise_own_fd_limit(2400);
    SpawnOptions opts;
    opts.in_child = [] {
        rlimit r{2048, 2048};
        ::setrlimit(RLIMIT_NOFILE, &r);
    };
    EchoServer server({"-m", "select"}, opts);
    std::vector<Fd> clients;
    for (int i = 0; i < 1100; ++i) clients.push_back(connect_to(server.address()));
    BOOST_TEST(eventually([&] {  // until the server has taken or refused every one
        const Json st = server.stats();
        return st["connections"]["accepted"].get<int>() + st["connections"]["refused"].get<int>() == 1100;
    }));
    // Early clients still echo.
    for (int i = 0; i < 20; ++i) {
        send_all(clients[i].get(), "still here");
        BOOST_TEST(recv_exact(clients[i].get(), 10) == "still here");
    }
    BOOST_TEST(server.process().running());
    clients.clear();
    RunResult r = server.stop();
    BOOST_TEST(r.exit_code == 0);
    Json s = summary_of(r);
    BOOST_TEST(s["connections"]["refused_by"]["fd_setsize"].get<int>() > 0);
    BOOST_TEST(s["connections"]["accepted"].get<int>() + s["connections"]["refused"].get<int>() == 1100);
    BOOST_TEST(s["connections"]["accepted"].get<int>() < 1024);
}

BOOST_DATA_TEST_CASE(clients_that_reset_mid_echo_are_counted_and_harmless, bdata::make(kVariants), model) {
    EchoServer server({"-m", model, "--buffer-size", "1K"});
    for (int i = 0; i < 20; ++i) {
        Fd fd = connect_to(server.address());
        int small = 2048;
        ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        std::string junk(300000, 'r');
        ::send(fd.get(), junk.data(), junk.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        linger lg{1, 0};  // close with RST while the echo is in flight
        ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    ::usleep(200000);
    Fd fd = connect_to(server.address());
    send_all(fd.get(), "alive?");
    BOOST_TEST(recv_exact(fd.get(), 6) == "alive?");
    fd.reset();
    RunResult r = server.stop();
    BOOST_TEST(r.exit_code == 0);
    Json s = summary_of(r);
    BOOST_TEST(s["connections"]["accepted"].get<int>() == 21);
    BOOST_TEST(s["errors"]["ECONNRESET"].get<int>() > 0);
}

BOOST_DATA_TEST_CASE(descriptor_exhaustion_does_not_spin, bdata::make(with_io_uring({"epoll", "poll", "select"}, {"io_uring"})), model) {
#ifdef MUXKIT_SANITIZED
    // UBSan's vptr check opens a pipe to probe memory: out of descriptors it reports a false
    // "invalid vptr" (the plain build runs this case).
    BOOST_TEST_MESSAGE("skipped under a sanitizer, whose runtime needs descriptors at this limit");
    return;
#endif
    SpawnOptions opts;
    opts.in_child = [] {
        rlimit r{24, 24};
        ::setrlimit(RLIMIT_NOFILE, &r);
    };
    EchoServer server({"-m", model}, opts);
    std::vector<Fd> clients;
    for (int i = 0; i < 60; ++i) clients.push_back(connect_to(server.address()));
    ::usleep(300000);
    double cpu_before = cpu_seconds(server.process().pid());
    ::usleep(1000000);
    double cpu_used = cpu_seconds(server.process().pid()) - cpu_before;
    BOOST_TEST(cpu_used < 0.2, "the server used " << cpu_used << " s of CPU in 1 s while out of descriptors");
    // The first clients are served.
    send_all(clients[0].get(), "first");
    BOOST_TEST(recv_exact(clients[0].get(), 5) == "first");
    clients.clear();
    RunResult r = server.stop();
    Json s = summary_of(r);
    BOOST_TEST(s["connections"]["refused_by"]["emfile"].get<int>() > 0);
    BOOST_TEST(s["connections"]["accepted"].get<int>() + s["connections"]["refused"].get<int>() == 60);
}

BOOST_AUTO_TEST_CASE(bad_input_exits_2_with_one_error_line_and_nothing_on_stdout) {
    std::vector<std::vector<std::string>> cases = {
        {"echo-server", "--model", "kqueue"},
        {"echo-server", "--buffer-size", "12Q"},
        {"echo-server", "--buffer-size", "0"},
        {"echo-server", "--duration", "soon"},
        {"echo-server", "--idle-timeout", "-1s"},
        {"echo-server", "--no-such-option"},
        {"echo-server", "host-without-port"},
        {"echo-server", "127.0.0.1:70000"},
        {"echo-server", "--max-connections", "0"},
        {"echo-server", "--max-connections", "many"},
        {"no-such-subcommand"},
    };
    for (auto& args : cases) {
        RunResult r = run_muxkit(args);
        BOOST_TEST(r.exit_code == 2, fmt::format("{}", fmt::join(args, " ")));
        BOOST_TEST(r.out.empty(), fmt::format("{}: stdout '{}'", fmt::join(args, " "), r.out));
        auto lines = r.err_lines();
        BOOST_REQUIRE(!lines.empty());
        BOOST_TEST(lines.front().find("error: ") != std::string::npos, lines.front());
        BOOST_TEST(lines.size() <= 2u, r.err);
    }
}

BOOST_AUTO_TEST_CASE(usage_error_under_json_is_also_a_json_error_object) {
    RunResult r = run_muxkit({"echo-server", "--json", "--buffer-size", "12Q"});
    BOOST_TEST(r.exit_code == 2);
    auto lines = r.json_lines();
    BOOST_REQUIRE(lines.size() == 1u);
    BOOST_TEST(lines[0]["type"].get<std::string>() == "error");
    BOOST_TEST(lines[0]["exit"].get<int>() == 2);
    BOOST_TEST(lines[0]["command"] == "echo-server");
    BOOST_TEST(lines[0]["message"].get<std::string>().find("12Q") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(port_in_use_exits_3_naming_the_address) {
    EchoServer first({});
    RunResult r = run_muxkit({"echo-server", first.address()});
    BOOST_TEST(r.exit_code == 3);
    BOOST_TEST(r.out.empty());
    BOOST_TEST(r.err.find("cannot listen on " + first.address() + ": Address already in use") != std::string::npos, r.err);
}

BOOST_AUTO_TEST_CASE(listens_on_ipv4_ipv6_and_unix_at_once) {
    std::string path = fmt::format("/tmp/muxkit-test-{}.sock", ::getpid());
    EchoServer server({"127.0.0.1:0", "[::1]:0", "unix:" + path}, {}, 3);
    BOOST_TEST(server.address(0).starts_with("127.0.0.1:"));
    BOOST_TEST(server.address(1).starts_with("[::1]:"));
    BOOST_TEST(server.address(2) == "unix:" + path);
    for (int i = 0; i < 3; ++i) {
        Fd fd = connect_to(server.address(i));
        send_all(fd.get(), "abc");
        BOOST_TEST(recv_exact(fd.get(), 3) == "abc");
    }
    BOOST_TEST(server.stop().exit_code == 0);
    BOOST_TEST(!std::filesystem::exists(path));
}

BOOST_AUTO_TEST_CASE(text_listening_line_names_the_real_port_and_model) {
    Child c({"echo-server", "127.0.0.1:0", "-m", "poll"});
    std::string line = c.read_line();
    BOOST_TEST(line.starts_with("listening on 127.0.0.1:"));
    BOOST_TEST(line.find(":0 ") == std::string::npos);
    BOOST_TEST(line.ends_with("(model poll)"));
    c.signal(SIGINT);
    RunResult r = c.wait();
    BOOST_TEST(r.exit_code == 0);
    BOOST_TEST(r.out.find("accepted=0") != std::string::npos, r.out);
}

BOOST_DATA_TEST_CASE(max_connections_refuses_and_counts_the_rest, bdata::make(kVariants), model) {
    EchoServer server({"-m", model, "--max-connections", "3"});
    std::vector<Fd> clients;
    for (int i = 0; i < 3; ++i) {
        clients.push_back(connect_to(server.address()));
        send_all(clients.back().get(), "x");
        BOOST_TEST(recv_exact(clients.back().get(), 1) == "x");
    }
    Fd extra = connect_to(server.address());
    BOOST_TEST(recv_until_eof(extra.get(), 5s).empty());  // closed at once
    clients.clear();
    Json s = summary_of(server.stop());
    BOOST_TEST(s["connections"]["accepted"].get<int>() == 3);
    BOOST_TEST(s["connections"]["refused_by"]["max_connections"].get<int>() == 1);
    BOOST_TEST(s["connections"]["refused"].get<int>() == 1);
}

BOOST_DATA_TEST_CASE(idle_timeout_closes_silent_connections, bdata::make(kVariants), model) {
    EchoServer server({"-m", model, "--idle-timeout", "200ms"});
    Fd fd = connect_to(server.address());
    send_all(fd.get(), "hi");
    BOOST_TEST(recv_exact(fd.get(), 2) == "hi");
    auto start = std::chrono::steady_clock::now();
    BOOST_TEST(recv_until_eof(fd.get(), 5s).empty());
    BOOST_CHECK(std::chrono::steady_clock::now() - start < 3s);
    Json s = summary_of(server.stop());
    BOOST_TEST(s["connections"]["idle_closed"].get<int>() == 1);
}

BOOST_DATA_TEST_CASE(max_clients_ends_the_run_with_exit_0, bdata::make(kVariants), model) {
    EchoServer server({"-m", model, "--max-clients", "2"});
    for (int i = 0; i < 2; ++i) {
        Fd fd = connect_to(server.address());
        send_all(fd.get(), "bye");
        BOOST_TEST(recv_exact(fd.get(), 3) == "bye");
    }
    RunResult r = server.process().wait(10s);
    BOOST_TEST(!r.timed_out);
    BOOST_TEST(r.exit_code == 0);
    BOOST_TEST(summary_of(r)["connections"]["accepted"].get<int>() == 2);
}

BOOST_AUTO_TEST_CASE(duration_ends_the_run_on_time) {
    auto start = std::chrono::steady_clock::now();
    RunResult r = run_muxkit({"echo-server", "127.0.0.1:0", "--duration", "300ms", "--json"}, {}, 10s);
    auto took = std::chrono::steady_clock::now() - start;
    BOOST_TEST(r.exit_code == 0);
    BOOST_CHECK(took >= 300ms);
    BOOST_CHECK(took < 3s);
    Json s = summary_of(r);
    BOOST_TEST(s["duration_s"].get<double>() >= 0.3);
    BOOST_TEST(s["schema_version"].get<int>() == 2);
    BOOST_TEST(s["environment"]["pipe_buf"].get<int>() == 4096);
}

BOOST_DATA_TEST_CASE(stats_interval_and_sigusr1_print_stats, bdata::make(with_io_uring({"epoll", "fork"}, {"io_uring"})), model) {
    EchoServer server({"-m", model, "--stats-interval", "100ms"});
    Json j = Json::parse(server.process().read_line());
    BOOST_TEST(j["type"].get<std::string>() == "stats");
    BOOST_TEST(j.contains("connections"));
    server.process().signal(SIGUSR1);
    Json k = Json::parse(server.process().read_line());
    BOOST_TEST(k["type"].get<std::string>() == "stats");
    BOOST_TEST(server.stop().exit_code == 0);
}

BOOST_AUTO_TEST_CASE(verbose_json_reports_each_connection) {
    EchoServer server({"-v"});
    {
        Fd fd = connect_to(server.address());
        send_all(fd.get(), "12345");
        BOOST_TEST(recv_exact(fd.get(), 5) == "12345");
    }
    server.process().read_line_with("\"closed\"");
    auto lines = server.stop().json_lines();
    int opened = 0, closed = 0;
    for (auto& l : lines) {
        if (l["type"] != "connection") continue;
        if (l["event"] == "opened") ++opened;
        if (l["event"] == "closed") {
            ++closed;
            BOOST_TEST(l["bytes_in"].get<int>() == 5);
            BOOST_TEST(l["reason"].get<std::string>() == "eof");
            BOOST_TEST(l["peer"].get<std::string>().starts_with("127.0.0.1:"));
        }
    }
    BOOST_TEST(opened == 1);
    BOOST_TEST(closed == 1);
}

BOOST_AUTO_TEST_CASE(fork_model_reaps_children_and_a_stop_ends_them_all) {
    EchoServer server({"-m", "fork"});
    pid_t pid = server.process().pid();
    // One at a time: each process ends once its client has gone (a loaded machine may take a
    // while), so the peak below is the four held open.
    for (int i = 0; i < 5; ++i) {
        Fd fd = connect_to(server.address());
        send_all(fd.get(), "z");
        BOOST_TEST(recv_exact(fd.get(), 1) == "z");
        fd.reset();
        for (int j = 0; j < 1000 && !children_of(pid).empty(); ++j) ::usleep(10000);
        BOOST_TEST(children_of(pid).empty(), "processes or zombies left behind");
    }
    std::vector<Fd> open;
    for (int i = 0; i < 4; ++i) {
        open.push_back(connect_to(server.address()));
        send_all(open.back().get(), "y");
        BOOST_TEST(recv_exact(open.back().get(), 1) == "y");
    }
    auto kids = children_of(pid, false);
    BOOST_TEST(kids.size() == 4u);
    RunResult r = server.stop();
    BOOST_TEST(r.exit_code == 0);
    for (pid_t k : kids) BOOST_TEST(::kill(k, 0) != 0, "child " << k << " outlived the server");
    Json s = summary_of(r);
    BOOST_TEST(s["connections"]["accepted"].get<int>() == 9);
    BOOST_TEST(s["connections"]["peak"].get<int>() == 4);
    BOOST_TEST(s["bytes"]["in"].get<int>() == 9);
    BOOST_TEST(s["bytes"]["out"].get<int>() == 9);
}

BOOST_AUTO_TEST_CASE(threads_spread_connections_over_loops_with_one_summary) {
    EchoServer server({"-m", "epoll", "--threads", "2", "--stats-interval", "50ms"});
    std::vector<Fd> clients;
    for (int i = 0; i < 100; ++i) clients.push_back(connect_to(server.address()));
    for (auto& c : clients) send_all(c.get(), "abcd");
    for (auto& c : clients) BOOST_TEST(recv_exact(c.get(), 4) == "abcd");
    BOOST_TEST(server.process().thread_count() >= 3u);  // the coordinator and two loops
    clients.clear();
    RunResult r = server.stop();
    BOOST_TEST(r.exit_code == 0);
    Json s = summary_of(r);
    BOOST_TEST(s["connections"]["accepted"] == 100);
    BOOST_TEST(s["connections"]["peak"] == 100);
    BOOST_TEST(s["bytes"]["in"] == 400);
    BOOST_TEST(s["bytes"]["out"] == 400);
    RunResult fork = run_muxkit({"echo-server", "-m", "fork", "--threads", "2"});
    BOOST_TEST(fork.exit_code == 2);
    BOOST_TEST(run_muxkit({"echo-server", "--threads", "0"}).exit_code == 2);
}

BOOST_AUTO_TEST_CASE(io_uring_is_tested_or_refused_clearly) {
    const std::string why = model_unavailable_reason(Model::io_uring);
    if (why.empty()) {
        BOOST_TEST_MESSAGE("io_uring is available: the behaviour cases run on -m io_uring too");
        EchoServer server({"-m", "io_uring"});
        Fd fd = connect_to(server.address());
        send_all(fd.get(), "ring");
        BOOST_TEST(recv_exact(fd.get(), 4) == "ring");
        fd.reset();
        BOOST_TEST(summary_of(server.stop())["model"] == "io_uring");
        return;
    }
    BOOST_TEST_MESSAGE("io_uring cases skipped: " << why);
    RunResult r = run_muxkit({"echo-server", "127.0.0.1:0", "-m", "io_uring", "--duration", "1s"});
    BOOST_TEST(r.exit_code == 3);
    BOOST_TEST(r.err.find("error: the io_uring model is not available here") != std::string::npos, r.err);
    BOOST_TEST(r.out.empty());
}

// A seccomp filter, as container runtimes install, that makes io_uring_setup fail with EPERM.
void refuse_io_uring() {
    sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog prog{static_cast<unsigned short>(std::size(filter)), filter};
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) ::_exit(99);
}

BOOST_AUTO_TEST_CASE(io_uring_refused_by_the_kernel_is_one_clear_error) {
    SpawnOptions refused;
    refused.in_child = refuse_io_uring;
    RunResult server = run_muxkit({"echo-server", "127.0.0.1:0", "-m", "io_uring", "--duration", "5s"}, refused);
    BOOST_TEST(server.exit_code == 3, server.err);
    BOOST_TEST(server.err_lines().size() == 1u, server.err);
    BOOST_TEST(server.err.find("error: the io_uring model is not available here: io_uring_setup failed: Operation not permitted") !=
                   std::string::npos,
               server.err);
    BOOST_TEST(server.out.empty());
    RunResult client = run_muxkit({"multi-connect", "127.0.0.1:9", "-m", "io_uring"}, refused);
    BOOST_TEST(client.exit_code == 3, client.err);
    BOOST_TEST(client.err.find("error: the io_uring model is not available here") != std::string::npos, client.err);
    // The other models do not need it.
    RunResult epoll = run_muxkit({"echo-server", "127.0.0.1:0", "-m", "epoll", "--duration", "100ms"}, refused);
    BOOST_TEST(epoll.exit_code == 0, epoll.err);
}

// What a kernel without multishot accept and receive gets: one operation each, renewed.
BOOST_AUTO_TEST_CASE(io_uring_single_shot_fallback_echoes_exactly) {
    if (const std::string why = model_unavailable_reason(Model::io_uring); !why.empty()) {
        BOOST_TEST_MESSAGE("io_uring unavailable: " << why);
        return;
    }
    SpawnOptions single;
    single.in_child = [] { ::setenv("MUXKIT_URING_SINGLESHOT", "1", 1); };
    EchoServer server({"-m", "io_uring", "--buffer-size", "4K"}, single);
    std::string payload = random_bytes(2 * 1024 * 1024 + 5, 11);
    BOOST_TEST((echo_concurrently(server.address(), payload, 12) == payload));
    RunResult mc = run_muxkit({"multi-connect", server.address(), "-m", "io_uring", "-c", "20", "-n", "200", "--pipeline", "4",
                               "-s", "3000", "--json"},
                              single);
    BOOST_TEST(mc.exit_code == 0, mc.err);
    BOOST_TEST(summary_of(mc)["messages"]["received"] == 4000);
    Json s = summary_of(server.stop());
    BOOST_TEST(s["bytes"]["in"].get<std::uint64_t>() == payload.size() + 20 * 200 * 3000);
    BOOST_TEST(s["bytes"]["out"] == s["bytes"]["in"]);
}

BOOST_AUTO_TEST_CASE(help_and_version_go_to_stdout_with_exit_0) {
    RunResult h = run_muxkit({"--help"});
    BOOST_TEST(h.exit_code == 0);
    BOOST_TEST(h.out.find("echo-server") != std::string::npos);
    RunResult sh = run_muxkit({"echo-server", "--help"});
    BOOST_TEST(sh.exit_code == 0);
    BOOST_TEST(sh.out.find("--max-connections") != std::string::npos);
    RunResult v = run_muxkit({"--version"});
    BOOST_TEST(v.exit_code == 0);
    BOOST_TEST(v.out.starts_with("muxkit "));
}

BOOST_AUTO_TEST_CASE(threads_are_named_in_the_listening_line_and_the_summary) {
    Child server({"echo-server", "127.0.0.1:0", "-m", "epoll", "--threads", "2", "--json"});
    Json listening = Json::parse(server.read_line());
    BOOST_TEST(listening["type"] == "listening");
    BOOST_TEST(listening["threads"] == 2);
    server.signal(SIGTERM);
    BOOST_TEST(summary_of(server.wait(10s))["threads"] == 2);
    Child text({"echo-server", "127.0.0.1:0", "-m", "poll", "--threads", "3"});
    BOOST_TEST(text.read_line().ends_with("(model poll, 3 threads)"));
    text.signal(SIGTERM);
    text.wait(10s);
}

// Whether this machine's resolver gives "localhost" an address of the family (/etc/hosts).
static bool localhost_resolves_as(int family) {
    Address a = Address::parse("localhost:1");
    a.family = family;
    try {
        return !resolve(a, false).empty();
    } catch (const RuntimeError&) {
        return false;
    }
}

BOOST_AUTO_TEST_CASE(dash_4_and_dash_6_choose_the_address_family_of_a_name) {
    for (auto [flag, family, prefix] : {std::tuple{"-4", AF_INET, "127.0.0.1:"}, {"-6", AF_INET6, "[::1]:"}}) {
        if (!localhost_resolves_as(family)) {
            BOOST_TEST_MESSAGE("localhost has no " << flag << " address here");
            continue;
        }
        EchoServer server({flag, "localhost:0"});
        BOOST_TEST(server.address().starts_with(prefix), server.address());
        RunResult r = run_muxkit({"multi-connect", flag, fmt::format("localhost:{}", server.port()), "-n", "10", "--json"});
        BOOST_TEST(r.exit_code == 0, r.err);
        BOOST_TEST(summary_of(r)["messages"]["received"] == 10);
        Json s = summary_of(server.stop());
        BOOST_TEST(s["connections"]["accepted"] == 1);
    }
    for (std::vector<std::string> args : {std::vector<std::string>{"echo-server", "-4", "-6"},
                                          {"echo-server", "-6", "127.0.0.1:0"},
                                          {"echo-server", "-4", "udp:[::1]:0"},
                                          {"multi-connect", "-6", "127.0.0.1:9"},
                                          {"fd-watch", "-4", "listen:[::1]:0"}}) {
        RunResult r = run_muxkit(args);
        BOOST_TEST(r.exit_code == 2, fmt::format("{}: {}", fmt::join(args, " "), r.err));
        BOOST_TEST(r.err.find("error:") != std::string::npos);
    }
}

// --ready-file: once every address is bound the file holds them (real ports in place of 0), and
// the server keeps serving; a script reads the ports from it. NOTIFY_SOCKET gets READY=1 too.
BOOST_AUTO_TEST_CASE(ready_file_names_every_bound_address_and_the_server_keeps_running) {
    TempDir dir;
    const std::string ready = dir.path + "/ready", sock = dir.path + "/s", notify = dir.path + "/notify";
    Fd manager = bind_datagram(resolve(Address::parse("unix:" + notify), true).front());
    SpawnOptions env;
    env.in_child = [notify] { ::setenv("NOTIFY_SOCKET", notify.c_str(), 1); };
    Child server({"echo-server", "127.0.0.1:0", "udp:127.0.0.1:0", "unix:" + sock, "--ready-file", ready, "-qq"}, env);
    BOOST_REQUIRE(eventually([&] { return std::filesystem::exists(ready); }));
    std::ifstream in(ready);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    BOOST_REQUIRE(lines.size() == 3u);
    BOOST_TEST(lines[0].starts_with("127.0.0.1:"));
    BOOST_TEST(!lines[0].ends_with(":0"));
    BOOST_TEST(lines[1].starts_with("udp:127.0.0.1:"));
    BOOST_TEST(lines[2] == "unix:" + sock);
    for (const std::string& address : {lines[0], lines[2]}) {  // it serves what the file names
        Fd c = connect_to(address);
        send_all(c.get(), "ready?");
        BOOST_TEST(recv_exact(c.get(), 6) == "ready?");
    }
    BOOST_TEST(server.running());
    pollfd p{manager.get(), POLLIN, 0};
    BOOST_REQUIRE(::poll(&p, 1, 5000) == 1);
    char buf[512];
    const ssize_t n = ::recv(manager.get(), buf, sizeof buf, 0);
    BOOST_REQUIRE(n > 0);
    BOOST_TEST(std::string(buf, static_cast<std::size_t>(n)).starts_with("READY=1\n"));
    server.signal(SIGTERM);
    RunResult r = server.wait(10s);
    BOOST_TEST(r.exit_code == 0, r.err);
    BOOST_TEST(r.out.empty());  // -qq

    RunResult nowhere = run_muxkit({"echo-server", "127.0.0.1:0", "--ready-file", dir.path + "/missing/ready"}, {}, 10s);
    BOOST_TEST(nowhere.exit_code == 3, nowhere.err);
    BOOST_TEST(nowhere.err.find("cannot write --ready-file '" + dir.path + "/missing/ready': No such file or directory") !=
                   std::string::npos,
               nowhere.err);
}
