// Attacks on muxkit that once found faults: unbounded inputs, output that cannot be written,
// hostile peer names, limits that wrapped, timeouts that never came. Each case runs in a bounded
// time and asserts what the program produced.
#define BOOST_TEST_MODULE faults_cli
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>

#include <muxkit/address.hpp>
#include <muxkit/io.hpp>
#include <muxkit/socket.hpp>

#include "support/test_support.hpp"

using namespace muxkit;
using namespace muxkit::test;

namespace {

RunResult sh(const std::string& command, std::chrono::milliseconds timeout = 20s) {
    Child c({"/bin/sh", "-c", command}, {}, false);
    return c.wait(timeout);
}

const std::string kMuxkit = MUXKIT_BINARY;

// A Unix stream client bound to a path of its own choosing, connected to server_path.
Fd unix_client_bound_to(const std::string& own_path, const std::string& server_path) {
    Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", own_path.c_str());
    BOOST_REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    sockaddr_un s{};
    s.sun_family = AF_UNIX;
    std::snprintf(s.sun_path, sizeof s.sun_path, "%s", server_path.c_str());
    BOOST_REQUIRE(::connect(fd.get(), reinterpret_cast<sockaddr*>(&s), sizeof s) == 0);
    return fd;
}

}  // namespace

BOOST_AUTO_TEST_CASE(payload_files_that_never_end_or_block_are_refused) {
    TempDir dir;
    const std::string fifo = dir.path + "/fifo";
    BOOST_REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    for (std::string bad : {std::string("/dev/zero"), fifo, dir.path, dir.path + "/missing"}) {
        auto start = std::chrono::steady_clock::now();
        RunResult r = run_muxkit({"multi-connect", "127.0.0.1:9", "--payload", "@" + bad}, {}, 10s);
        BOOST_TEST(!r.timed_out, bad);
        BOOST_CHECK(std::chrono::steady_clock::now() - start < 5s);
        BOOST_TEST(r.exit_code == 2, bad << ": " << r.err);
        BOOST_TEST(r.err.find(bad) != std::string::npos, r.err);  // names the file
        BOOST_TEST(r.err_lines().size() == 1u, r.err);
    }
}

BOOST_AUTO_TEST_CASE(messages_in_flight_are_bounded_before_anything_is_allocated) {
    for (auto c : {"1000", "200"}) {
        RunResult r = run_muxkit({"multi-connect", "127.0.0.1:9", "-c", c, "--pipeline", "1000000", "-d", "1s"}, {}, 10s);
        BOOST_TEST(r.exit_code == 2, r.err);
        BOOST_TEST(r.err.find("in flight") != std::string::npos, r.err);
    }
    // With -n the window is what a connection can have in flight at all.
    EchoServer server({});
    RunResult ok = run_muxkit({"multi-connect", server.address(), "-c", "200", "--pipeline", "1000000", "-n", "3", "--json"});
    BOOST_TEST(ok.exit_code == 0, ok.err);
    BOOST_TEST(summary_of(ok)["messages"]["received"] == 600);
}

BOOST_AUTO_TEST_CASE(counts_that_would_wrap_and_empty_values_are_usage_errors) {
    const std::vector<std::vector<std::string>> bad = {
        {"echo-server", "--max-connections", "-1"},
        {"echo-server", "--max-connections", "99999999999999999999999"},
        {"echo-server", "--max-clients", "-1"},
        {"echo-server", "--store", ""},
        {"echo-server", "--idle-timeout", "0"},
        {"fd-watch", "-t", "0"},
    };
    for (const auto& args : bad) {
        RunResult r = run_muxkit(args, {}, 10s);
        BOOST_TEST(r.exit_code == 2, fmt::format("{}", fmt::join(args, " ")) << ": " << r.err);
        BOOST_TEST(r.err.find("error:") != std::string::npos, r.err);
    }
}

BOOST_AUTO_TEST_CASE(fd_watch_times_out_while_an_exec_source_runs) {
    auto start = std::chrono::steady_clock::now();
    RunResult r = run_muxkit({"fd-watch", "--once", "-t", "100ms", "exec:sleep 2", "--json"}, {}, 10s);
    BOOST_CHECK(std::chrono::steady_clock::now() - start < 1500ms);
    BOOST_TEST(r.exit_code == 1);
    BOOST_TEST(r.json_lines().front()["event"] == "timeout");
}

BOOST_AUTO_TEST_CASE(a_closed_stdout_ends_quietly_and_a_full_one_is_a_runtime_error) {
    // The reader went away: exit 0, nothing on stderr, no hang.
    EchoServer server({});
    const std::string load = "multi-connect " + server.address() + " -d 10s --interval 50ms";
    // A server writes seldom: it ends when its stdout reports the reader gone, not at its next line.
    for (std::string cmd : {std::string("fd-watch exec:yes"), std::string("fd-watch --json file:/dev/zero"), std::string("pipe-test"), load,
                            std::string("echo-server --json 127.0.0.1:0"), std::string("echo-server -m fork 127.0.0.1:0"), std::string("echo-server udp:127.0.0.1:0"),
                            std::string("echo-server -m io_uring --threads 2 127.0.0.1:0")}) {
        RunResult r = sh(fmt::format("bash -c '{} {} | head -c 1 >/dev/null; echo ${{PIPESTATUS[0]}}'", kMuxkit, cmd), 15s);
        BOOST_TEST(!r.timed_out, cmd);
        BOOST_TEST(r.out == "0\n", cmd << ": " << r.out << r.err);
        BOOST_TEST(r.err.empty(), cmd << ": " << r.err);
    }
    // No room on stdout: one error line and exit 3, never a silent success.
    for (std::string cmd : {"pipe-test capacity", "echo-server --duration 0.2 127.0.0.1:0", "fd-watch --count 1 file:/dev/null",
                            "multi-connect 127.0.0.1:9"}) {
        RunResult r = sh(fmt::format("{} {} >/dev/full", kMuxkit, cmd), 15s);
        BOOST_TEST(r.exit_code == 3, cmd << ": " << r.err);
        BOOST_TEST(r.err.find("cannot write to stdout: No space left on device") != std::string::npos, cmd << ": " << r.err);
    }
}

BOOST_AUTO_TEST_CASE(peer_chosen_socket_paths_never_reach_the_terminal_raw) {
    TempDir dir;
    const std::string server_path = dir.path + "/s";
    const std::string evil = dir.path + "/c\x1b[31mEVIL\x1b]0;pwned\x07";
    {
        Child server({"echo-server", "unix:" + server_path, "-v"});
        BOOST_TEST(server.read_line().starts_with("listening on unix:"));
        Fd c = unix_client_bound_to(evil, server_path);
        send_all(c.get(), "hi");
        BOOST_TEST(recv_exact(c.get(), 2) == "hi");
        c.reset();
        server.read_line_with("closed");
        server.signal(SIGTERM);
        RunResult r = server.wait(10s);
        BOOST_TEST(r.out.find('\x1b') == std::string::npos);
        BOOST_TEST(r.out.find('\x07') == std::string::npos);
        BOOST_TEST(r.out.find("\\x1b[31mEVIL") != std::string::npos, r.out);
    }
    ::unlink(evil.c_str());
    {
        Child watch({"fd-watch", "listen:unix:" + server_path, "--show", "text", "--count", "3"});
        BOOST_REQUIRE(wait_listening("unix:" + server_path));
        Fd c = unix_client_bound_to(evil, server_path);
        send_all(c.get(), "hi");
        c.reset();
        RunResult r = watch.wait(10s);
        BOOST_TEST(r.exit_code == 0, r.err);
        BOOST_TEST(r.out.find('\x1b') == std::string::npos);
        BOOST_TEST(r.out.find("\\x1b[31mEVIL") != std::string::npos, r.out);
        BOOST_TEST(!std::filesystem::exists(server_path));  // the listener's socket file is removed
    }
}

BOOST_AUTO_TEST_CASE(fd_watch_listener_state_stays_bounded_over_many_peers) {
    const std::string address = closed_port_address();
    TempDir dir;
    const std::string out = dir.path + "/out";
    // Its events go to a file: a pipe nobody reads during the loop would stop the watcher.
    Child watch({"/bin/sh", "-c", fmt::format("exec {} fd-watch listen:{} --json -t 30s >{}", kMuxkit, address, out)}, {}, false);
    BOOST_REQUIRE(wait_listening(address));
    const Endpoint ep = resolve(Address::parse(address), false).front();
    for (int i = 0; i < 2000; ++i) {
        Fd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        const int rc = ::connect(c.get(), ep.sa(), ep.length);
        const int err = errno;
        BOOST_REQUIRE_MESSAGE(rc == 0, "connect " << i << ": " << std::strerror(err));
    }
    BOOST_TEST(eventually([&] {  // until it has seen every peer come and go
        std::ifstream events(out);
        int eofs = 0;
        for (std::string line; std::getline(events, line);) eofs += line.find("\"event\":\"eof\"") != std::string::npos;
        return eofs == 2000;
    }, 30s));
    watch.signal(SIGTERM);
    RunResult r = watch.wait(20s);
    BOOST_TEST(r.exit_code == 0, r.err);
    std::ifstream in(out);
    r.out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    Json s = summary_of(r);
    // One entry for the listener and one for all its connections, not one per peer.
    BOOST_TEST(s["by_source"].size() <= 2u, s["by_source"].dump().substr(0, 300));
    BOOST_TEST(s["by_source"]["listen:" + address]["accepted"] == 2000, s["by_source"].dump().substr(0, 300));
    BOOST_TEST(s["by_source"]["accepted:listen:" + address]["eof"] == 2000, s["by_source"].dump().substr(0, 300));
    BOOST_TEST(r.out.substr(r.out.rfind('{')).size() < 2000u);
}

namespace {

SpawnOptions nofile(rlim_t n) {
    SpawnOptions o;
    o.in_child = [n] {
        ::close_range(3, ~0U, 0);  // nothing inherited from whoever runs the test: the limit is exact
        rlimit rl{n, n};           // soft and hard: muxkit cannot raise it back
        ::setrlimit(RLIMIT_NOFILE, &rl);
    };
    return o;
}

}  // namespace

// Every client is served or refused (closed at once), on every model and every loop of
// --threads, with the hard descriptor limit lowered too; none hangs and nothing spins.
BOOST_AUTO_TEST_CASE(descriptor_exhaustion_serves_or_refuses_every_client_on_every_model) {
#ifdef MUXKIT_SANITIZED
    BOOST_TEST_MESSAGE("skipped under a sanitizer, whose runtime needs descriptors at this limit");
    return;
#endif
    for (const std::string& model : with_io_uring({"select", "poll", "epoll", "epoll-et", "fork", "epoll/2"}, {"io_uring"})) {
        EchoServer server({"-m", model}, nofile(24));
        std::vector<Fd> clients;
        for (int i = 0; i < 40; ++i) clients.push_back(connect_to(server.address()));
        int served = 0, refused = 0;
        for (auto& c : clients) {
            if (::send(c.get(), "hi", 2, MSG_NOSIGNAL) != 2) {
                ++refused;
                continue;
            }
            pollfd p{c.get(), POLLIN, 0};
            char buf[8];
            if (::poll(&p, 1, 3000) != 1) continue;  // neither served nor refused: hanging
            ssize_t n = ::recv(c.get(), buf, sizeof buf, 0);
            if (n == 2) ++served;
            else ++refused;  // EOF or reset: refused
        }
        BOOST_TEST(served + refused == 40, model << ": served " << served << " refused " << refused);
        BOOST_TEST(served >= 1, model);
        clients.clear();
        RunResult r = server.stop();
        BOOST_TEST(r.exit_code == 0, model << ": " << r.err);
        Json s = summary_of(r);
        BOOST_TEST(s["connections"]["accepted"].get<int>() + s["connections"]["refused"].get<int>() == 40, model << ": " << s.dump());
    }
}

BOOST_AUTO_TEST_CASE(a_limit_with_no_room_for_a_connection_is_a_clear_error_not_a_spin) {
#ifdef MUXKIT_SANITIZED
    BOOST_TEST_MESSAGE("skipped under a sanitizer, whose runtime needs descriptors below this limit");
    return;
#endif
    for (std::string model : {"fork", "select", "epoll"}) {
        auto start = std::chrono::steady_clock::now();
        RunResult r = run_muxkit({"echo-server", "-m", model, "127.0.0.1:0", "--json"}, nofile(8), 10s);
        BOOST_TEST(!r.timed_out, model);
        BOOST_CHECK(std::chrono::steady_clock::now() - start < 3s);
        BOOST_TEST(r.exit_code == 3, model << ": " << r.out << r.err);
        // Either the reserve descriptor or the loop's own (epoll_create1) could not be had.
        BOOST_TEST((r.err.find("leaves no room for a connection") != std::string::npos ||
                    r.err.find("Too many open files") != std::string::npos),
                   model << ": " << r.err);
        BOOST_TEST(r.err_lines().size() == 1u, r.err);
    }
}

BOOST_AUTO_TEST_CASE(fork_model_reports_connection_events_with_v) {
    EchoServer server({"-m", "fork", "-v"});
    {
        Fd c = connect_to(server.address());
        send_all(c.get(), "hello");
        BOOST_TEST(recv_exact(c.get(), 5) == "hello");
    }
    server.process().read_line_with("\"closed\"");
    RunResult r = server.stop();
    int opened = 0, closed = 0;
    for (const auto& j : r.json_lines()) {
        if (j["type"] != "connection") continue;
        BOOST_TEST(j["peer"].get<std::string>().starts_with("127.0.0.1:"));
        BOOST_TEST(j["id"] == 1);
        if (j["event"] == "opened") ++opened;
        if (j["event"] == "closed") {
            ++closed;
            BOOST_TEST(j["bytes_in"] == 5);
            BOOST_TEST(j["bytes_out"] == 5);
            BOOST_TEST(j["reason"] == "eof");
        }
    }
    BOOST_TEST(opened == 1, r.out);
    BOOST_TEST(closed == 1, r.out);
}

// SIGTERM under load, with --store: every byte received is echoed, or counted unsent, and
// stored; each client gets exactly a prefix of what it sent, and all of them together exactly
// bytes.out. Two of the clients never read until the stop.
BOOST_AUTO_TEST_CASE(stop_under_load_loses_nothing_it_received_on_every_model) {
    for (const std::string& model :
         with_io_uring({"select", "poll", "epoll", "epoll-et", "fork", "epoll/2"}, {"io_uring", "io_uring/2"})) {
        TempDir dir;
        const std::string store = dir.path + "/store";
        EchoServer server({"-m", model, "--store", store});
        constexpr int kClients = 8;
        constexpr std::size_t kBytes = 8 << 20;
        struct Client {
            Fd fd;
            std::string data;
            std::size_t sent = 0, got = 0;
            bool prefix_ok = true, done = false;
        };
        std::vector<Client> clients(kClients);
        for (int i = 0; i < kClients; ++i) {
            clients[i].fd = connect_to(server.address());
            set_nonblocking(clients[i].fd.get());
            clients[i].data = random_bytes(kBytes, static_cast<std::uint32_t>(i + 1));
        }
        char buf[65536];
        auto pump = [&](bool sending, bool everyone_reads) {
            for (int i = 0; i < kClients; ++i) {
                Client& c = clients[i];
                if (c.done) continue;
                if (sending && c.sent < kBytes) {
                    ssize_t n = ::send(c.fd.get(), c.data.data() + c.sent, std::min<std::size_t>(kBytes - c.sent, 65536), MSG_NOSIGNAL);
                    if (n > 0) c.sent += static_cast<std::size_t>(n);
                }
                if (i < 2 && !everyone_reads) continue;  // the non-readers
                for (;;) {
                    ssize_t n = ::recv(c.fd.get(), buf, sizeof buf, 0);
                    if (n > 0) {
                        if (c.got + n > c.sent || std::memcmp(buf, c.data.data() + c.got, n) != 0) c.prefix_ok = false;
                        c.got += static_cast<std::size_t>(n);
                        continue;
                    }
                    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) c.done = true;
                    break;
                }
            }
        };
        const auto until = std::chrono::steady_clock::now() + 700ms;
        while (std::chrono::steady_clock::now() < until) {
            pump(true, false);
            std::this_thread::sleep_for(1ms);
        }
        server.process().signal(SIGTERM);
        const auto give_up = std::chrono::steady_clock::now() + 15s;
        while (std::chrono::steady_clock::now() < give_up &&
               std::any_of(clients.begin(), clients.end(), [](const Client& c) { return !c.done; })) {
            pump(false, true);
            std::this_thread::sleep_for(1ms);
        }
        RunResult r = server.process().wait(20s);
        BOOST_TEST(r.exit_code == 0, model << ": " << r.err);
        Json s = summary_of(r);
        const auto in = s["bytes"]["in"].get<std::uint64_t>(), out = s["bytes"]["out"].get<std::uint64_t>(),
                   unsent = s["bytes"]["unsent"].get<std::uint64_t>();
        std::uint64_t got = 0;
        for (const auto& c : clients) {
            BOOST_TEST(c.prefix_ok, model);
            BOOST_TEST(c.done, model);
            got += c.got;
        }
        BOOST_TEST(in == out + unsent, model << ": " << s["bytes"].dump());
        BOOST_TEST(got == out, model << ": clients got " << got << ", " << s["bytes"].dump());
        BOOST_TEST(s["store"]["bytes"].get<std::uint64_t>() == in, model);
        BOOST_TEST(std::filesystem::file_size(store) == in, model);
        BOOST_TEST(s["errors"]["ECONNRESET"] == 0, model << ": " << s["errors"].dump());
        BOOST_TEST(in > 0u, model);
    }
}

// A client that sends and never reads, and a stop whose --drain-timeout passes: the server resets
// it, and bytes.out is exactly what the client can still read (the FIN the server had queued is
// not a byte of echo, though the kernel's count of unacknowledged data includes it).
BOOST_AUTO_TEST_CASE(bytes_out_after_a_drain_timeout_is_what_the_client_got_on_every_model) {
    for (const std::string& model : with_io_uring({"select", "poll", "epoll", "epoll-et", "fork"}, {"io_uring"})) {
        EchoServer server({"-m", model, "--drain-timeout", "1s"});
        Fd client = connect_to(server.address());
        set_nonblocking(client.get());
        const std::string data = random_bytes(200 * 1000, 3);
        std::size_t sent = 0;
        for (const auto until = std::chrono::steady_clock::now() + 3s; sent < data.size() && std::chrono::steady_clock::now() < until;) {
            const ssize_t n = ::send(client.get(), data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
            if (n > 0) sent += static_cast<std::size_t>(n);
            else std::this_thread::sleep_for(5ms);  // full: the server echoes into our unread queue
        }
        std::this_thread::sleep_for(200ms);  // what the server can still take, it takes
        RunResult r = server.stop();
        BOOST_TEST(r.exit_code == 0, model << ": " << r.err);
        std::string got;
        char buf[65536];
        for (ssize_t n; (n = ::recv(client.get(), buf, sizeof buf, 0)) > 0;) got.append(buf, static_cast<std::size_t>(n));
        Json s = summary_of(r);
        const auto in = s["bytes"]["in"].get<std::uint64_t>(), out = s["bytes"]["out"].get<std::uint64_t>();
        BOOST_TEST(got.size() == out, model << ": the client got " << got.size() << ", " << s["bytes"].dump());
        BOOST_TEST(in == out + s["bytes"]["unsent"].get<std::uint64_t>(), model << ": " << s["bytes"].dump());
        BOOST_TEST(s["bytes"]["unsent"].get<std::uint64_t>() > 0u, model << ": the drain was meant to time out");
        BOOST_TEST((got == data.substr(0, got.size())), model);
    }
}

BOOST_AUTO_TEST_CASE(store_is_never_reached_through_a_link_and_never_blocks_on_a_fifo) {
    TempDir dir;
    std::filesystem::create_directory(dir.path + "/real");
    std::filesystem::create_directory_symlink(dir.path + "/real", dir.path + "/link");
    RunResult through = run_muxkit({"echo-server", "--store", dir.path + "/link/f", "--duration", "100ms", "127.0.0.1:0"}, {}, 10s);
    BOOST_TEST(through.exit_code == 3, through.err);
    BOOST_TEST(through.err.find("a symbolic link is never followed") != std::string::npos, through.err);
    BOOST_TEST(!std::filesystem::exists(dir.path + "/real/f"));

    const std::string fifo = dir.path + "/fifo";
    BOOST_REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    auto start = std::chrono::steady_clock::now();
    RunResult blocked = run_muxkit({"echo-server", "--store", fifo, "--duration", "100ms", "127.0.0.1:0"}, {}, 10s);
    BOOST_TEST(!blocked.timed_out);
    BOOST_CHECK(std::chrono::steady_clock::now() - start < 3s);
    BOOST_TEST(blocked.exit_code == 3, blocked.err);
    BOOST_TEST(blocked.err.find("a FIFO with no reader") != std::string::npos, blocked.err);

    const std::string wide = dir.path + "/wide";
    std::ofstream(wide).put('x');
    std::filesystem::permissions(wide, std::filesystem::perms(0644));
    RunResult warned = run_muxkit({"echo-server", "--store", wide, "--duration", "100ms", "127.0.0.1:0"}, {}, 10s);
    BOOST_TEST(warned.exit_code == 0, warned.err);
    BOOST_TEST(warned.err.find("warning: store " + wide + " is open to other users (mode 0644)") != std::string::npos, warned.err);
}

// Slowloris clients, a connect storm and a SIGSTOP of the server: afterwards it still echoes a
// new client exactly, and ends cleanly.
BOOST_AUTO_TEST_CASE(slowloris_connect_storm_and_sigstop_leave_every_model_serving) {
    for (const std::string& model :
         with_io_uring({"select", "poll", "epoll", "epoll-et", "fork", "epoll/2"}, {"io_uring", "io_uring/2"})) {
        EchoServer server({"-m", model});
        std::vector<Fd> slow;
        for (int i = 0; i < 20; ++i) slow.push_back(connect_to(server.address()));
        for (int round = 0; round < 10; ++round) {
            for (auto& c : slow) send_all(c.get(), "x");
            std::this_thread::sleep_for(20ms);
        }
        for (auto& c : slow) BOOST_TEST(recv_exact(c.get(), 10) == std::string(10, 'x'), model);
        for (int i = 0; i < 300; ++i) connect_to(server.address());  // connect and vanish
        server.process().signal(SIGSTOP);
        Fd during = connect_to(server.address());  // the kernel queues it meanwhile
        send_all(during.get(), "while stopped");
        std::this_thread::sleep_for(300ms);
        server.process().signal(SIGCONT);
        BOOST_TEST(recv_exact(during.get(), 13) == "while stopped", model);
        const std::string data = random_bytes(64 * 1024, 7);
        Fd fresh = connect_to(server.address());
        send_all(fresh.get(), data);
        BOOST_TEST((recv_exact(fresh.get(), data.size()) == data), model);
        slow.clear();
        during.reset();
        fresh.reset();
        RunResult r = server.stop();
        BOOST_TEST(r.exit_code == 0, model << ": " << r.err);
        Json s = summary_of(r);
        BOOST_TEST(s["bytes"]["in"] == s["bytes"]["out"].get<std::uint64_t>() + s["bytes"]["unsent"].get<std::uint64_t>(), model);
        BOOST_TEST(s["connections"]["accepted"].get<int>() + s["connections"]["refused"].get<int>() == 20 + 300 + 2, model);
    }
}

BOOST_AUTO_TEST_CASE(store_on_a_read_only_file_system_is_a_runtime_error_naming_it) {
    RunResult r = run_muxkit({"echo-server", "--store", "/proc/muxkit-store", "--duration", "100ms", "127.0.0.1:0"}, {}, 10s);
    BOOST_TEST(r.exit_code == 3, r.err);
    BOOST_TEST(r.err.find("cannot open store /proc/muxkit-store") != std::string::npos, r.err);
    BOOST_TEST(r.out.empty());
}
