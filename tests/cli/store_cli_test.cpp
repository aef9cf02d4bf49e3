#define BOOST_TEST_MODULE store_cli
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <muxkit/store.hpp>

#include "support/test_support.hpp"

using namespace muxkit;
using namespace muxkit::test;
namespace bdata = boost::unit_test::data;

namespace {

const auto kModels = with_io_uring({"select", "poll", "epoll", "epoll-et", "fork", "epoll/2", "select/2"});

struct TempPath {
    std::string path;
    explicit TempPath(const std::string& name) : path(fmt::format("/tmp/muxkit-store-{}-{}", ::getpid(), name)) {
        ::unlink(path.c_str());
    }
    ~TempPath() { ::unlink(path.c_str()); }
};

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Client i sends `size` bytes that carry i, in chunks, and reads the echo back.
std::string client_data(int i, std::size_t size) {
    std::string s = random_bytes(size, 100 + i);
    return s;
}

// The client threads only move bytes; every assertion is made here, in the test's own thread
// (Boost.Test is not thread-safe).
void run_clients(const std::string& address, int clients, std::size_t size) {
    std::vector<Fd> fds;
    for (int i = 0; i < clients; ++i) fds.push_back(connect_to(address));
    std::vector<std::string> echoed(clients);
    std::vector<std::thread> threads;
    for (int i = 0; i < clients; ++i)
        threads.emplace_back([&, i] {
            int fd = fds[i].get();
            std::string data = client_data(i, size);
            std::thread reader([&] { echoed[i] = recv_exact(fd, data.size(), 60s); });
            for (std::size_t off = 0; off < data.size();) {
                ssize_t n = ::send(fd, data.data() + off, std::min<std::size_t>(7000, data.size() - off), MSG_NOSIGNAL);
                if (n <= 0) break;
                off += static_cast<std::size_t>(n);
            }
            reader.join();
        });
    for (auto& t : threads) t.join();
    for (int i = 0; i < clients; ++i) BOOST_TEST((echoed[i] == client_data(i, size)), "client " << i);
}


}  // namespace

BOOST_DATA_TEST_CASE(jsonl_store_reconstructs_every_clients_stream, bdata::make(kModels), model) {
    TempPath file("jsonl");
    EchoServer server({"-m", model, "--store", file.path, "--store-format", "jsonl"});
    run_clients(server.address(), 8, 50000);
    RunResult r = server.stop(SIGTERM);
    BOOST_TEST(r.exit_code == 0, r.err);
    Json s = summary_of(r);
    BOOST_TEST(s["store"]["bytes"] == s["bytes"]["in"]);
    BOOST_TEST(s["bytes"]["in"] == 8 * 50000);
    // Rebuild each connection's stream from the records.
    std::map<std::uint64_t, std::string> streams;
    std::istringstream in(read_file(file.path));
    std::string line;
    std::size_t records = 0;
    while (std::getline(in, line)) {
        BOOST_REQUIRE(line.size() + 1 <= static_cast<std::size_t>(PIPE_BUF));
        StoreRecord rec = parse_store_record(line);
        BOOST_TEST(rec.peer.starts_with("127.0.0.1:"));
        streams[rec.conn] += rec.data;
        ++records;
    }
    BOOST_TEST(records == s["store"]["records"].get<std::size_t>());
    BOOST_REQUIRE(streams.size() == 8u);
    std::vector<std::string> got, want;
    for (auto& [conn, data] : streams) got.push_back(data);
    for (int i = 0; i < 8; ++i) want.push_back(client_data(i, 50000));
    std::sort(got.begin(), got.end());
    std::sort(want.begin(), want.end());
    BOOST_TEST((got == want));
}

BOOST_DATA_TEST_CASE(raw_store_holds_every_byte_received, bdata::make(kModels), model) {
    TempPath file("raw");
    EchoServer server({"-m", model, "--store", file.path});
    {
        Fd fd = connect_to(server.address());
        std::string data = random_bytes(1 << 20, 5);
        std::string echoed;
        std::thread reader([&] { echoed = recv_exact(fd.get(), data.size(), 60s); });
        send_all(fd.get(), data);
        reader.join();
        BOOST_TEST((echoed == data));
        RunResult r = server.stop(SIGINT);
        BOOST_TEST(r.exit_code == 0);
        Json s = summary_of(r);
        BOOST_TEST(s["store"]["bytes"] == 1 << 20);
        BOOST_TEST((read_file(file.path) == data));
    }
    struct stat st;
    BOOST_REQUIRE(::stat(file.path.c_str(), &st) == 0);
    BOOST_TEST((st.st_mode & 0777) == 0600u);
}

BOOST_AUTO_TEST_CASE(store_appends_to_an_existing_file) {
    TempPath file("append");
    std::ofstream(file.path) << "before|";
    EchoServer server({"--store", file.path});
    Fd fd = connect_to(server.address());
    send_all(fd.get(), "after");
    BOOST_TEST(recv_exact(fd.get(), 5) == "after");
    BOOST_TEST(server.stop().exit_code == 0);
    BOOST_TEST(read_file(file.path) == "before|after");
}

BOOST_AUTO_TEST_CASE(a_symlink_at_the_store_path_is_refused) {
    TempPath file("link");
    TempPath target("target");
    BOOST_REQUIRE(::symlink(target.path.c_str(), file.path.c_str()) == 0);
    RunResult r = run_muxkit({"echo-server", "127.0.0.1:0", "--store", file.path});
    BOOST_TEST(r.exit_code == 3);
    BOOST_TEST(r.out.empty());  // refused before listening
    BOOST_TEST(r.err.find("symbolic link") != std::string::npos, r.err);
    BOOST_TEST(!std::filesystem::exists(target.path));
}

BOOST_DATA_TEST_CASE(killing_the_writer_exits_3_with_an_error, bdata::make(with_io_uring({"epoll", "fork"}, {"io_uring"})), model) {
    TempPath file("kill");
    EchoServer server({"-m", model, "--store", file.path});
    Fd fd = connect_to(server.address());
    send_all(fd.get(), "x");
    BOOST_TEST(recv_exact(fd.get(), 1) == "x");
    auto kids = children_of(server.process().pid());
    if (std::string(model) == "fork") {
        // The writer is the child that is not serving fd: the one started first (lowest pid).
        std::sort(kids.begin(), kids.end());
    }
    BOOST_REQUIRE(!kids.empty());
    ::kill(kids.front(), SIGKILL);
    // The server notices at once: it closes its clients and exits 3.
    std::string rest = recv_until_eof(fd.get(), 10s);
    RunResult r = server.process().wait(10s);
    BOOST_TEST(!r.timed_out);
    BOOST_TEST(r.exit_code == 3);
    BOOST_TEST(r.err.find("error: the store writer") != std::string::npos, r.err);
    auto lines = r.json_lines();
    BOOST_REQUIRE(!lines.empty());
    BOOST_TEST(lines.back()["type"] == "error");
}

BOOST_DATA_TEST_CASE(a_stopped_writer_gives_backpressure_not_loss_or_growth, bdata::make(with_io_uring({"epoll"}, {"io_uring"})), model) {
    TempPath file("stopped");
    EchoServer server({"-m", model, "--store", file.path});
    pid_t server_pid = server.process().pid();
    auto kids = children_of(server_pid);
    BOOST_REQUIRE(kids.size() == 1u);
    pid_t writer = kids.front();
    ::kill(writer, SIGSTOP);
    Fd fd = connect_to(server.address());
    std::uint64_t rss_before = rss_bytes(server_pid);
    std::string chunk = random_bytes(64 * 1024, 6);
    std::string sent_all;
    std::string echoed;
    // Send while reading the echo: once the store pipe and the server's bounded queue fill,
    // the server stops reading and our sends stall.
    for (int i = 0; i < 400; ++i) {
        pollfd p[1] = {{fd.get(), POLLOUT | POLLIN, 0}};
        if (::poll(p, 1, 200) <= 0) break;
        if (p[0].revents & POLLIN) {
            char buf[65536];
            ssize_t n = ::recv(fd.get(), buf, sizeof buf, MSG_DONTWAIT);
            if (n > 0) echoed.append(buf, static_cast<std::size_t>(n));
        }
        if (p[0].revents & POLLOUT) {
            ssize_t n = ::send(fd.get(), chunk.data(), chunk.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n > 0) sent_all.append(chunk.data(), static_cast<std::size_t>(n));
        }
    }
    std::uint64_t rss_stalled = rss_bytes(server_pid);
    BOOST_TEST(sent_all.size() < 64u * 1024 * 1024, "sent " << sent_all.size() << " bytes with the writer stopped");
    BOOST_TEST(rss_stalled < rss_before + 16u * 1024 * 1024, "rss " << rss_before << " -> " << rss_stalled);
    ::kill(writer, SIGCONT);
    echoed += recv_exact(fd.get(), sent_all.size() - echoed.size(), 60s);
    BOOST_TEST((echoed == sent_all));
    fd.reset();
    RunResult r = server.stop();
    BOOST_TEST(r.exit_code == 0, r.err);
    BOOST_TEST(summary_of(r)["store"]["bytes"] == sent_all.size());
    BOOST_TEST((read_file(file.path) == sent_all));
}

BOOST_AUTO_TEST_CASE(fork_with_large_messages_keeps_records_whole) {
    TempPath file("forkbig");
    EchoServer server({"-m", "fork", "--store", file.path, "--store-format", "jsonl", "--buffer-size", "64K"});
    RunResult load = run_muxkit({"multi-connect", server.address(), "-c", "6", "-n", "20", "-s", "40K", "--reply-timeout", "60s",
                                 "--connect-timeout", "60s", "--json"},
                                {}, 120s);  // generous: sanitizer builds fork slowly on a busy machine
    BOOST_TEST(load.exit_code == 0, load.err);
    RunResult r = server.stop();
    BOOST_TEST(r.exit_code == 0);
    Json s = summary_of(r);
    std::istringstream in(read_file(file.path));
    std::string line;
    std::uint64_t bytes = 0;
    while (std::getline(in, line)) bytes += parse_store_record(line).data.size();  // every line parses
    BOOST_TEST(bytes == 6u * 20 * 40 * 1024);
    BOOST_TEST(s["store"]["bytes"] == bytes);
}

BOOST_AUTO_TEST_CASE(store_format_without_store_is_a_usage_error) {
    RunResult r = run_muxkit({"echo-server", "--store-format", "jsonl"});
    BOOST_TEST(r.exit_code == 2);
    BOOST_TEST(run_muxkit({"echo-server", "--store", "/tmp/x", "--store-format", "xml"}).exit_code == 2);
}
