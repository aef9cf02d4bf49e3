// Helpers for tests that run the real muxkit binary and talk to it over loopback.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

#include <muxkit/echo_server.hpp>
#include <muxkit/fd.hpp>
#include <muxkit/report.hpp>

#include "support/proc_info.hpp"
#include "support/spawn.hpp"

namespace muxkit::test {

using namespace std::chrono_literals;

struct RunResult {
    int exit_code = -1;  // -1 when killed by a signal
    int term_signal = 0;
    bool timed_out = false;
    std::string out, err;
    std::vector<Json> json_lines() const;  // parses every stdout line; fails the test on a bad one
    std::vector<std::string> err_lines() const;
};

struct SpawnOptions {
    std::string stdin_data;              // written then closed (unless keep_stdin_open)
    bool keep_stdin_open = false;
    std::function<void()> in_child;      // runs in the child before exec (setrlimit, ...)
    std::vector<int> inherit_fds;        // descriptors to keep open in the child (same numbers)
};

inline SpawnOptions with_stdin(std::string data) {
    SpawnOptions o;
    o.stdin_data = std::move(data);
    return o;
}

inline SpawnOptions stdin_kept_open() {
    SpawnOptions o;
    o.keep_stdin_open = true;
    return o;
}

// A running muxkit (or other program) with its stdout and stderr piped back.
class Child {
public:
    Child(std::vector<std::string> args, SpawnOptions opts = {}, bool muxkit = true);
    ~Child();
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;

    pid_t pid() const noexcept { return pid_; }
    int stdin_fd() const noexcept { return in_.get(); }
    void close_stdin() { in_.reset(); }
    // The next line of stdout (without newline); fails the test after timeout.
    std::string read_line(std::chrono::milliseconds timeout = 10s);
    // Reads stdout lines until one contains needle, and returns it; fails the test after timeout.
    std::string read_line_with(std::string_view needle, std::chrono::milliseconds timeout = 10s);
    void signal(int sig);
    // Waits for the exit, collecting all remaining output; kills it after timeout.
    RunResult wait(std::chrono::milliseconds timeout = 30s);
    bool running();
    std::size_t thread_count();  // the process's threads, from /proc/PID/task

private:
    void pump(int timeout_ms);
    pid_t pid_ = -1;
    Fd in_, out_, err_;
    std::string out_buf_, err_buf_;
    std::string stdin_left_;  // written as the child reads it, so a big input cannot deadlock
    bool close_stdin_after_ = true;
    std::size_t out_consumed_ = 0;
    bool waited_ = false;
    RunResult result_;
};

RunResult run_muxkit(std::vector<std::string> args, SpawnOptions opts = {}, std::chrono::milliseconds timeout = 60s);

// echo-server on 127.0.0.1:0 (or the given addresses); reads the listening line(s).
// A model written "epoll/2" after -m runs that model with --threads 2.
class EchoServer {
public:
    explicit EchoServer(std::vector<std::string> extra_args, SpawnOptions opts = {}, int listeners = 1);
    std::uint16_t port(std::size_t i = 0) const { return ports_.at(i); }
    std::string address(std::size_t i = 0) const { return addresses_.at(i); }
    Child& process() { return child_; }
    RunResult stop(int sig = 15);  // SIGTERM, then collect the summary
    Json stats();                  // its counts now: SIGUSR1, then the stats line it prints

private:
    Child child_;
    std::vector<std::uint16_t> ports_;
    std::vector<std::string> addresses_;
};

// A peer program that is not muxkit (a Python server, nc, ...), run with its stdin kept open and
// killed by its PID when the test ends. The address is read from its first stdout line that has
// "port N" in it.
class Peer {
public:
    explicit Peer(std::vector<std::string> args);
    const std::string& address() const { return address_; }  // 127.0.0.1:PORT
    Child& process() { return child_; }

private:
    Child child_;
    std::string address_;
};

// tests/support/peer_server.py MODE [N]: silent, backlog, close-after N, reset-after N, wrong,
// redis (PING gets +PONG), banner.
Peer python_peer(const std::string& mode, std::size_t n = 0);
// python3 -m http.server on 127.0.0.1, serving DIR.
Peer http_server(const std::string& dir);

// "epoll/2" is -m epoll --threads 2: the model part of such a variant.
std::string model_of(const std::string& variant);
// multi-connect ARGS... -m MODEL --threads N, for a client variant such as "io_uring/2".
std::vector<std::string> load_client(const std::string& variant, std::vector<std::string> args);
// 127.0.0.1:PORT of a port that was free a moment ago and has no listener.
std::string closed_port_address();

// The variants, plus the io_uring ones where this kernel allows io_uring; the case
// io_uring_is_tested_or_refused_clearly says why when it does not.
std::vector<std::string> with_io_uring(std::vector<std::string> variants,
                                       const std::vector<std::string>& uring_variants = {"io_uring", "io_uring/2"});

// A directory of the test's own under $TMPDIR (or /tmp), removed with everything in it.
struct TempDir {
    std::string path;
    TempDir();
    ~TempDir();
};

// Blocking client helpers.
Fd connect_to(const std::string& address);
void send_all(int fd, const std::string& data);
std::string recv_exact(int fd, std::size_t n, std::chrono::milliseconds timeout = 10s);
std::string recv_until_eof(int fd, std::chrono::milliseconds timeout = 10s);
std::string random_bytes(std::size_t n, std::uint32_t seed);


Json summary_of(const RunResult& r);  // the last JSON line, which must be the summary

// Waits on a condition instead of sleeping a guess: polls it until true; false after timeout.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 10s);
// Waits until a socket listens on address (HOST:PORT, unix:PATH) or is bound to it (udp:), as the
// kernel lists them in /proc/net, without connecting to it; false after timeout.
bool wait_listening(const std::string& address, std::chrono::milliseconds timeout = 10s);

}  // namespace muxkit::test
