#define BOOST_TEST_MODULE fd_watch_cli
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <muxkit/error.hpp>
#include <muxkit/socket.hpp>
#include <muxkit/fd_watch.hpp>

#include "support/test_support.hpp"

using namespace muxkit;
using namespace muxkit::test;

namespace {

std::vector<Json> events_of(const RunResult& r) {
    std::vector<Json> out;
    for (auto& j : r.json_lines())
        if (j["type"] == "event") out.push_back(j);
    return out;
}

struct TempFifo {
    std::string dir, path;
    TempFifo() {
        char tmpl[] = "/tmp/muxkit-watch-XXXXXX";
        BOOST_REQUIRE(::mkdtemp(tmpl));
        dir = tmpl;
        path = dir + "/f";
        BOOST_REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
    }
    ~TempFifo() {
        ::unlink(path.c_str());
        ::rmdir(dir.c_str());
    }
};

}  // namespace

BOOST_AUTO_TEST_CASE(piped_hello_gives_a_5_byte_readable_event_then_eof) {
    SpawnOptions opts;
    opts.stdin_data = "hello";
    RunResult r = run_muxkit({"fd-watch", "--count", "2", "--json"}, opts);
    BOOST_TEST(r.exit_code == 0);
    auto ev = events_of(r);
    BOOST_REQUIRE(ev.size() == 2u);
    BOOST_TEST(ev[0]["event"] == "readable");
    BOOST_TEST(ev[0]["bytes"] == 5);
    BOOST_TEST(ev[0]["fd"] == 0);
    BOOST_TEST(ev[0]["source"] == "stdin");
    BOOST_TEST(ev[0]["kind"] == "pipe");
    BOOST_TEST(ev[1]["event"] == "eof");
    BOOST_TEST(ev[0]["t_s"].get<double>() <= ev[1]["t_s"].get<double>());
}

BOOST_AUTO_TEST_CASE(a_source_that_reached_eof_ends_the_run_without_a_busy_loop) {
    SpawnOptions opts;
    opts.stdin_data = "x";
    RunResult r = run_muxkit({"fd-watch", "--json", "-t", "10s"}, opts, 5s);
    BOOST_TEST(!r.timed_out);
    BOOST_TEST(r.exit_code == 0);
    Json s = summary_of(r);
    BOOST_TEST(s["events"] == 2);
    BOOST_TEST(s["all_sources_ended"] == true);
    BOOST_TEST(s["by_source"]["stdin"]["eof"] == 1);
}

BOOST_AUTO_TEST_CASE(silent_pipe_gives_timeout_events) {
    SpawnOptions opts;
    opts.keep_stdin_open = true;
    Child c({"fd-watch", "-t", "50ms", "--count", "3", "--json"}, opts);
    RunResult r = c.wait(10s);
    BOOST_TEST(r.exit_code == 0);
    auto ev = events_of(r);
    BOOST_REQUIRE(ev.size() == 3u);
    for (auto& e : ev) {
        BOOST_TEST(e["event"] == "timeout");
        BOOST_TEST(e["fd"].is_null());
    }
    BOOST_TEST(ev[2]["t_s"].get<double>() >= 0.15);
}

BOOST_AUTO_TEST_CASE(once_on_a_silent_pipe_exits_1_and_on_data_exits_0) {
    SpawnOptions silent;
    silent.keep_stdin_open = true;
    Child c({"fd-watch", "--once", "-t", "100ms"}, silent);
    RunResult r = c.wait(10s);
    BOOST_TEST(r.exit_code == 1);
    BOOST_TEST(r.out.find("timeout") != std::string::npos);
    SpawnOptions data;
    data.stdin_data = "go";
    RunResult ok = run_muxkit({"fd-watch", "--once", "-t", "5s"}, data);
    BOOST_TEST(ok.exit_code == 0);
    BOOST_TEST(ok.out.find("readable") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(fifo_waits_quietly_for_a_late_writer_and_reports_each_eof) {
    TempFifo fifo;
    Child c({"fd-watch", "fifo:" + fifo.path, "-t", "10s", "--count", "4", "--json", "--show", "text"});
    ::usleep(200000);  // no writer yet: no event, and fd-watch did not block opening the FIFO
    for (const char* msg : {"one", "two"}) {
        int w = ::open(fifo.path.c_str(), O_WRONLY);
        BOOST_REQUIRE(w >= 0);
        BOOST_REQUIRE(::write(w, msg, 3) == 3);
        ::close(w);
        c.read_line_with("\"eof\"");  // seen, before the next writer opens it
    }
    RunResult r = c.wait(10s);
    BOOST_TEST(r.exit_code == 0);
    auto ev = events_of(r);
    BOOST_REQUIRE(ev.size() == 4u);
    BOOST_TEST(ev[0]["event"] == "readable");  // nothing was reported while there was no writer
    BOOST_TEST(ev[0]["data"] == "one");
    BOOST_TEST(ev[0]["kind"] == "fifo");
    BOOST_TEST(ev[1]["event"] == "eof");
    BOOST_TEST(ev[2]["data"] == "two");
    BOOST_TEST(ev[3]["event"] == "eof");
}

BOOST_AUTO_TEST_CASE(listen_source_with_known_port_gets_a_client) {
    // Reserve a free port, release it, and ask fd-watch to listen there.
    Fd probe = listen_on(resolve(Address::parse("127.0.0.1:0"), true).front(), 1);
    std::string address = local_endpoint(probe.get()).to_string();
    probe.reset();
    Child c({"fd-watch", "listen:" + address, "--count", "3", "--json", "--show", "text", "-t", "10s"});
    Fd client;
    for (int i = 0; i < 100 && !client; ++i) {
        Endpoint ep = resolve(Address::parse(address), false).front();
        Fd fd(::socket(AF_INET, SOCK_STREAM, 0));
        if (::connect(fd.get(), ep.sa(), ep.length) == 0) client = std::move(fd);
        else ::usleep(20000);
    }
    BOOST_REQUIRE(client);
    send_all(client.get(), "ping");
    c.read_line_with("\"readable\"");
    client.reset();
    RunResult r = c.wait(10s);
    BOOST_TEST(r.exit_code == 0);
    auto ev = events_of(r);
    BOOST_REQUIRE(ev.size() == 3u);
    BOOST_TEST(ev[0]["event"] == "accepted");
    BOOST_TEST(ev[0]["peer"].get<std::string>().starts_with("127.0.0.1:"));
    BOOST_TEST(ev[1]["event"] == "readable");
    BOOST_TEST(ev[1]["data"] == "ping");
    BOOST_TEST(ev[1]["kind"] == "tcp");
    BOOST_TEST(ev[2]["event"] == "eof");
}

BOOST_AUTO_TEST_CASE(udp_source_reports_each_datagram_with_its_size_and_sender) {
    Fd probe = bind_datagram(resolve(Address::parse("udp:127.0.0.1:0"), true).front());
    const Endpoint ep = local_endpoint(probe.get());
    probe.reset();
    Child c({"fd-watch", "udp:" + ep.to_string(), "--count", "2", "--json", "--show", "text", "-t", "10s"});
    // Bound once a plain bind of the same port fails.
    for (int i = 0; i < 200; ++i) {
        Fd fd(::socket(AF_INET, SOCK_DGRAM, 0));
        if (::bind(fd.get(), ep.sa(), ep.length) != 0) break;
        fd.reset();
        ::usleep(10000);
    }
    Fd sender(::socket(AF_INET, SOCK_DGRAM, 0));
    BOOST_REQUIRE(::connect(sender.get(), ep.sa(), ep.length) == 0);
    const Endpoint from = local_endpoint(sender.get());
    BOOST_REQUIRE(::send(sender.get(), "hello", 5, 0) == 5);
    BOOST_REQUIRE(::send(sender.get(), "", 0, 0) == 0);  // an empty datagram is one too
    RunResult r = c.wait(10s);
    BOOST_TEST(r.exit_code == 0, r.err);
    auto ev = events_of(r);
    BOOST_REQUIRE(ev.size() == 2u);
    BOOST_TEST(ev[0]["event"] == "datagram");
    BOOST_TEST(ev[0]["bytes"] == 5);
    BOOST_TEST(ev[0]["data"] == "hello");
    BOOST_TEST(ev[0]["peer"] == "udp:" + from.to_string());
    BOOST_TEST(ev[0]["source"] == "udp:" + ep.to_string());
    BOOST_TEST(ev[1]["event"] == "datagram");
    BOOST_TEST(ev[1]["bytes"] == 0);
}

BOOST_AUTO_TEST_CASE(exec_source_reports_stdout_stderr_and_exit_status) {
    RunResult r = run_muxkit({"fd-watch", "exec:sh -c 'echo out; echo error >&2; exit 3'", "--json", "--show", "text"});
    BOOST_TEST(r.exit_code == 0);
    std::string out_data, err_data;
    Json exited;
    for (auto& e : events_of(r)) {
        std::string src = e["source"];
        if (e["event"] == "readable" && src.ends_with("[stdout]")) out_data += e["data"].get<std::string>();
        if (e["event"] == "readable" && src.ends_with("[stderr]")) err_data += e["data"].get<std::string>();
        if (e["event"] == "exited") exited = e;
    }
    BOOST_TEST(out_data == "out\n");
    BOOST_TEST(err_data == "error\n");
    BOOST_TEST(exited["exit_code"] == 3);  // schema 2: a number, not "exit 3"
    BOOST_TEST(!exited.contains("signal"));
    BOOST_TEST(!exited.contains("status"));
    BOOST_TEST(summary_of(r)["all_sources_ended"] == true);
}

BOOST_AUTO_TEST_CASE(exec_of_a_missing_program_is_a_runtime_error) {
    RunResult r = run_muxkit({"fd-watch", "exec:/no/such/program"});
    BOOST_TEST(r.exit_code == 3);
    BOOST_TEST(r.err.find("cannot run '/no/such/program': No such file or directory") != std::string::npos, r.err);
}

BOOST_AUTO_TEST_CASE(urgent_data_on_a_socket_is_an_exception_event) {
    Fd listener = listen_on(resolve(Address::parse("127.0.0.1:0"), true).front(), 4);
    std::string address = local_endpoint(listener.get()).to_string();
    Child c({"fd-watch", "connect:" + address, "-e", "r,x", "--count", "1", "--json", "--show", "text", "-t", "10s"});
    Accepted a;
    for (int i = 0; i < 200 && !a.fd; ++i) {
        a = accept_connection(listener.get());
        if (!a.fd) ::usleep(10000);
    }
    BOOST_REQUIRE(a.fd);
    ::usleep(100000);
    BOOST_REQUIRE(::send(a.fd.get(), "!", 1, MSG_OOB) == 1);
    RunResult r = c.wait(10s);
    auto ev = events_of(r);
    BOOST_REQUIRE(ev.size() == 1u);
    BOOST_TEST(ev[0]["event"] == "exception");
    BOOST_TEST(ev[0]["data"] == "!");
    BOOST_TEST(ev[0]["kind"] == "tcp");
}

BOOST_AUTO_TEST_CASE(inherited_descriptor_3_is_watched) {
    int fds[2];
    BOOST_REQUIRE(::pipe(fds) == 0);
    SpawnOptions opts;
    opts.keep_stdin_open = true;
    opts.in_child = [fds] {
        ::dup2(fds[0], 3);
        if (fds[1] != 3) ::close(fds[1]);  // the child must not hold a write end, or EOF never comes
    };
    Child c({"fd-watch", "3", "--count", "2", "--json", "-t", "10s"}, opts);
    BOOST_REQUIRE(::write(fds[1], "abc", 3) == 3);
    ::close(fds[1]);
    ::close(fds[0]);
    RunResult r = c.wait(10s);
    auto ev = events_of(r);
    BOOST_REQUIRE(ev.size() == 2u);
    BOOST_TEST(ev[0]["fd"] == 3);
    BOOST_TEST(ev[0]["bytes"] == 3);
    BOOST_TEST(ev[1]["event"] == "eof");
}

BOOST_AUTO_TEST_CASE(write_side_reports_writable_then_hangup_when_the_reader_goes) {
    for (const char* model : {"select", "poll", "epoll"}) {
        int p[2];
        BOOST_REQUIRE(::pipe(p) == 0);
        SpawnOptions o;
        o.keep_stdin_open = true;
        ::close(p[0]);  // no reader at all: the write side has hung up
        o.in_child = [p] { ::dup2(p[1], 4); };
        RunResult r = run_muxkit({"fd-watch", "4", "-e", "w", "-m", model, "--json", "-t", "2s"}, o, 10s);
        ::close(p[1]);
        auto ev = events_of(r);
        BOOST_REQUIRE_MESSAGE(!ev.empty(), model);
        BOOST_TEST(ev.back()["event"] == "hangup", model);
        BOOST_TEST(summary_of(r)["all_sources_ended"] == true);
    }
}

BOOST_AUTO_TEST_CASE(a_file_is_read_to_the_end) {
    RunResult r = run_muxkit({"fd-watch", "file:/proc/self/stat", "-m", "poll", "--json"});
    BOOST_TEST(r.exit_code == 0);
    auto ev = events_of(r);
    BOOST_REQUIRE(!ev.empty());
    BOOST_TEST(ev.back()["event"] == "eof");
}

BOOST_AUTO_TEST_CASE(epoll_on_a_regular_file_is_refused_clearly) {
    RunResult r = run_muxkit({"fd-watch", "file:/etc/hostname", "-m", "epoll"});
    BOOST_TEST(r.exit_code == 2);
    BOOST_TEST(r.err.find("epoll cannot watch a regular file") != std::string::npos, r.err);
}

BOOST_AUTO_TEST_CASE(select_refuses_a_descriptor_past_fd_setsize) {
    SpawnOptions opts;
    opts.in_child = [] {
        rlimit rl{2048, 2048};
        ::setrlimit(RLIMIT_NOFILE, &rl);
        ::dup2(0, 1500);
    };
    RunResult r = run_muxkit({"fd-watch", "1500"}, opts);
    BOOST_TEST(r.exit_code == 2);
    BOOST_TEST(r.err.find("FD_SETSIZE") != std::string::npos, r.err);
    RunResult p = run_muxkit({"fd-watch", "1500", "-m", "poll", "--count", "1"}, opts);
    BOOST_TEST(p.exit_code == 0, p.err);
}

BOOST_AUTO_TEST_CASE(bad_source_specs_exit_2) {
    for (std::string bad : {"nonsense", "file:", "fifo:", "listen:nowhere", "connect:1.2.3.4", "exec:", "exec:'unclosed",
                            "-1"}) {
        RunResult r = run_muxkit({"fd-watch", bad});
        BOOST_TEST(r.exit_code == 2, bad << ": " << r.err);
        BOOST_TEST(r.out.empty());
        BOOST_TEST(r.err.find("error: ") != std::string::npos);
    }
    for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
             {"-e", "q"}, {"-t", "soon"}, {"--count", "0"}, {"--show", "pretty"}, {"-m", "kqueue"}}) {
        args.insert(args.begin(), "fd-watch");
        BOOST_TEST(run_muxkit(args).exit_code == 2);
    }
    RunResult closed = run_muxkit({"fd-watch", "77"});
    BOOST_TEST(closed.exit_code == 3);
}

BOOST_AUTO_TEST_CASE(source_specs_parse) {
    BOOST_TEST(SourceSpec::parse("-").fd == 0);
    BOOST_TEST(SourceSpec::parse("stdin").text == "stdin");
    BOOST_TEST(SourceSpec::parse("7").fd == 7);
    BOOST_TEST((SourceSpec::parse("fifo:/tmp/x").type == SourceSpec::Type::fifo));
    BOOST_TEST(SourceSpec::parse("listen:9000").address.port == 9000);
    auto words = split_command(R"(sh -c 'echo "a b"' x\ y "q\"t")");
    BOOST_TEST(words == (std::vector<std::string>{"sh", "-c", "echo \"a b\"", "x y", "q\"t"}), boost::test_tools::per_element());
    BOOST_CHECK_THROW(SourceSpec::parse("bogus:1"), UsageError);
}

// listen: and udp: sources on port 0 say which port they bound (a listening line, text and
// JSON), and --ready-file holds those addresses while fd-watch goes on watching.
BOOST_AUTO_TEST_CASE(listeners_on_port_zero_say_their_port_and_fill_the_ready_file) {
    TempDir dir;
    const std::string ready = dir.path + "/ready";
    Child watch({"fd-watch", "listen:127.0.0.1:0", "udp:127.0.0.1:0", "--ready-file", ready, "--json", "--count", "1", "-t", "10s"});
    const Json tcp = Json::parse(watch.read_line()), udp = Json::parse(watch.read_line());
    BOOST_TEST(tcp["type"] == "listening");
    BOOST_TEST(tcp["address"].get<std::string>().starts_with("127.0.0.1:"));
    BOOST_TEST(tcp["source"] == "listen:" + tcp["address"].get<std::string>());
    BOOST_TEST(udp["address"].get<std::string>().starts_with("udp:127.0.0.1:"));
    BOOST_REQUIRE(eventually([&] { return std::filesystem::exists(ready); }));
    std::ifstream in(ready);
    std::string first, second;
    std::getline(in, first);
    std::getline(in, second);
    BOOST_TEST(first == tcp["address"].get<std::string>());
    BOOST_TEST(second == udp["address"].get<std::string>());
    Fd c = connect_to(first);  // the one event it waits for
    RunResult r = watch.wait(10s);
    BOOST_TEST(r.exit_code == 0, r.err);
    BOOST_TEST(events_of(r).size() == 1u);  // a listening line is not an event: --count is unchanged

    RunResult text = run_muxkit({"fd-watch", "listen:127.0.0.1:0", "--duration", "100ms"});
    BOOST_TEST(text.out.starts_with("listening on 127.0.0.1:"), text.out);
}
