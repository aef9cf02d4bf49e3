#include "support/test_support.hpp"

#include <muxkit/echo_server.hpp>

#include <csignal>
#include <filesystem>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <fmt/format.h>

#include <muxkit/address.hpp>
#include <muxkit/clock.hpp>
#include <muxkit/io.hpp>
#include <muxkit/socket.hpp>

namespace muxkit::test {

std::vector<Json> RunResult::json_lines() const {
    std::vector<Json> out;
    std::istringstream in(this->out);
    std::string line;
    while (std::getline(in, line)) {
        try {
            out.push_back(Json::parse(line));
        } catch (const std::exception& e) {
            BOOST_FAIL("stdout line is not JSON: '" << line << "': " << e.what());
        }
    }
    return out;
}

std::vector<std::string> RunResult::err_lines() const {
    std::vector<std::string> out;
    std::istringstream in(err);
    std::string line;
    while (std::getline(in, line)) out.push_back(line);
    return out;
}

Child::Child(std::vector<std::string> args, SpawnOptions opts, bool muxkit) {
    if (muxkit) args.insert(args.begin(), MUXKIT_BINARY);
    int in[2], out[2], err[2];
    BOOST_REQUIRE(::pipe2(in, O_CLOEXEC) == 0 && ::pipe2(out, O_CLOEXEC) == 0 && ::pipe2(err, O_CLOEXEC) == 0);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = ::fork();
    BOOST_REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
        ::dup2(in[0], 0);
        ::dup2(out[1], 1);
        ::dup2(err[1], 2);
        for (int fd : opts.inherit_fds) {
            int flags = ::fcntl(fd, F_GETFD);
            ::fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
        }
        ::signal(SIGPIPE, SIG_DFL);
        if (opts.in_child) opts.in_child();
        ::execvp(argv[0], argv.data());  // a peer program may be named, not given by path
        ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    ::close(err[1]);
    in_ = Fd(in[1]);
    out_ = Fd(out[0]);
    err_ = Fd(err[0]);
    ::signal(SIGPIPE, SIG_IGN);
    stdin_left_ = std::move(opts.stdin_data);
    close_stdin_after_ = !opts.keep_stdin_open;
    set_nonblocking(in_.get());
    if (stdin_left_.empty() && close_stdin_after_) in_.reset();
}

Child::~Child() {
    if (!waited_ && pid_ > 0) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
}

void Child::pump(int timeout_ms) {
    pollfd p[3] = {{out_.get(), POLLIN, 0}, {err_.get(), POLLIN, 0}, {-1, POLLOUT, 0}};
    if (!stdin_left_.empty() && in_) p[2].fd = in_.get();
    if (::poll(p, 3, timeout_ms) <= 0) return;
    if (p[2].revents) {
        ssize_t n = ::write(in_.get(), stdin_left_.data(), stdin_left_.size());
        if (n > 0) stdin_left_.erase(0, static_cast<std::size_t>(n));
        if (n < 0 && errno != EAGAIN) stdin_left_.clear();
        if (stdin_left_.empty() && close_stdin_after_) in_.reset();
    }
    char buf[65536];
    for (int i = 0; i < 2; ++i) {
        if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        Fd& fd = i == 0 ? out_ : err_;
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n > 0) (i == 0 ? out_buf_ : err_buf_).append(buf, static_cast<std::size_t>(n));
        else if (n == 0) fd.reset();
    }
}

std::string Child::read_line(std::chrono::milliseconds timeout) {
    const std::int64_t deadline = now_ns() + std::chrono::nanoseconds(timeout).count();
    for (;;) {
        auto nl = out_buf_.find('\n', out_consumed_);
        if (nl != std::string::npos) {
            std::string line = out_buf_.substr(out_consumed_, nl - out_consumed_);
            out_consumed_ = nl + 1;
            return line;
        }
        std::int64_t left = deadline - now_ns();
        if (left <= 0 || !out_) break;
        pump(static_cast<int>(left / 1'000'000) + 1);
    }
    BOOST_FAIL("no line on stdout in time; stdout so far: '" << out_buf_ << "' stderr: '" << err_buf_ << "'");
    return {};
}

std::string Child::read_line_with(std::string_view needle, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        std::string line = read_line(std::max(left, std::chrono::milliseconds(1)));
        if (line.find(needle) != std::string::npos) return line;
    }
}

void Child::signal(int sig) {
    if (!waited_) ::kill(pid_, sig);
}

std::size_t Child::thread_count() {
    std::size_t n = 0;
    if (DIR* d = ::opendir(fmt::format("/proc/{}/task", pid_).c_str())) {
        while (auto e = ::readdir(d))
            if (e->d_name[0] != '.') ++n;
        ::closedir(d);
    }
    return n;
}

bool Child::running() {
    if (waited_) return false;
    int status;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == 0) return true;
    waited_ = true;
    result_.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    result_.term_signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    return false;
}

RunResult Child::wait(std::chrono::milliseconds timeout) {
    const std::int64_t deadline = now_ns() + std::chrono::nanoseconds(timeout).count();
    while ((out_ || err_) && now_ns() < deadline) pump(50);
    if (out_ || err_) {
        result_.timed_out = true;
        ::kill(pid_, SIGKILL);
        for (int i = 0; i < 20 && (out_ || err_); ++i) pump(50);
    }
    if (!waited_) {
        int status = 0;
        while (!waited_) {
            pid_t r = ::waitpid(pid_, &status, WNOHANG);
            if (r == pid_) {
                waited_ = true;
                result_.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
                result_.term_signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
            } else if (now_ns() > deadline) {
                result_.timed_out = true;
                ::kill(pid_, SIGKILL);
                ::usleep(10000);
            } else {
                ::usleep(2000);
            }
        }
    }
    result_.out = out_buf_;  // all of stdout, including lines read_line() already returned
    result_.err = err_buf_;
    return result_;
}

RunResult run_muxkit(std::vector<std::string> args, SpawnOptions opts, std::chrono::milliseconds timeout) {
    Child c(std::move(args), std::move(opts));
    return c.wait(timeout);
}

Peer::Peer(std::vector<std::string> args) : child_(std::move(args), stdin_kept_open(), false) {
    for (int i = 0; i < 5 && address_.empty(); ++i) {
        std::string line = child_.read_line(20s);
        auto at = line.find("port ");
        if (at == std::string::npos) continue;
        address_ = "127.0.0.1:" + std::to_string(std::stoi(line.substr(at + 5)));
    }
    BOOST_REQUIRE_MESSAGE(!address_.empty(), "the peer named no port");
}

std::string model_of(const std::string& variant) { return variant.substr(0, variant.find('/')); }

std::vector<std::string> load_client(const std::string& variant, std::vector<std::string> args) {
    args.insert(args.begin(), "multi-connect");
    auto slash = variant.find('/');
    args.insert(args.end(), {"-m", model_of(variant), "--threads", slash == std::string::npos ? "1" : variant.substr(slash + 1)});
    return args;
}

std::string closed_port_address() {
    Fd l = listen_on(resolve(Address::parse("127.0.0.1:0"), true).front(), 1);
    return local_endpoint(l.get()).to_string();  // closed again when l goes
}

Peer python_peer(const std::string& mode, std::size_t n) {
    return Peer({"/usr/bin/env", "python3", MUXKIT_SOURCE_DIR "/tests/support/peer_server.py", mode, std::to_string(n)});
}

Peer http_server(const std::string& dir) {
    return Peer({"/usr/bin/env", "python3", "-u", "-m", "http.server", "--bind", "127.0.0.1", "--directory", dir, "0"});
}

EchoServer::EchoServer(std::vector<std::string> extra_args, SpawnOptions opts, int listeners)
    : child_([&] {
          std::vector<std::string> args = {"echo-server", "--json"};
          bool has_address = false;
          for (auto& a : extra_args) {
              if (!a.empty() && a[0] != '-' && (a.find(':') != std::string::npos)) has_address = true;
          }
          if (!has_address) args.push_back("127.0.0.1:0");
          for (std::size_t i = 0; i < extra_args.size(); ++i) {
              auto slash = extra_args[i].find('/');
              if (i > 0 && extra_args[i - 1] == "-m" && slash != std::string::npos) {
                  args.push_back(extra_args[i].substr(0, slash));
                  args.push_back("--threads");
                  args.push_back(extra_args[i].substr(slash + 1));
              } else {
                  args.push_back(extra_args[i]);
              }
          }
          return args;
      }(), std::move(opts)) {
    for (int i = 0; i < listeners; ++i) {
        const std::string line = child_.read_line();
        addresses_.push_back(listening_address(line));
        BOOST_REQUIRE_MESSAGE(!addresses_.back().empty(), "not a listening line: " << line);
        Address a = Address::parse(addresses_.back());
        ports_.push_back(a.port);
    }
}

Json EchoServer::stats() {
    child_.signal(SIGUSR1);
    return Json::parse(child_.read_line_with("\"type\":\"stats\""));
}

RunResult EchoServer::stop(int sig) {
    child_.signal(sig);
    return child_.wait(30s);
}

Fd connect_to(const std::string& address) {
    Endpoint ep = resolve(Address::parse(address), false).front();
    Fd fd(::socket(ep.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
    BOOST_REQUIRE(fd);
    BOOST_REQUIRE_MESSAGE(::connect(fd.get(), ep.sa(), ep.length) == 0,
                          "connect " << address << ": " << std::strerror(errno));
    return fd;
}

void send_all(int fd, const std::string& data) {
    std::size_t off = 0;
    while (off < data.size()) {
        ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
        BOOST_REQUIRE_MESSAGE(n > 0, "send: " << std::strerror(errno));
        off += static_cast<std::size_t>(n);
    }
}

std::string recv_exact(int fd, std::size_t n, std::chrono::milliseconds timeout) {
    std::string out;
    const std::int64_t deadline = now_ns() + std::chrono::nanoseconds(timeout).count();
    char buf[65536];
    while (out.size() < n) {
        std::int64_t left = deadline - now_ns();
        if (left <= 0) break;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left / 1'000'000) + 1) <= 0) continue;
        ssize_t r = ::recv(fd, buf, std::min(sizeof buf, n - out.size()), 0);
        if (r <= 0) break;
        out.append(buf, static_cast<std::size_t>(r));
    }
    return out;
}

std::string recv_until_eof(int fd, std::chrono::milliseconds timeout) {
    std::string out;
    const std::int64_t deadline = now_ns() + std::chrono::nanoseconds(timeout).count();
    char buf[65536];
    for (;;) {
        std::int64_t left = deadline - now_ns();
        if (left <= 0) break;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left / 1'000'000) + 1) <= 0) continue;
        ssize_t r = ::recv(fd, buf, sizeof buf, 0);
        if (r <= 0) break;
        out.append(buf, static_cast<std::size_t>(r));
    }
    return out;
}

TempDir::TempDir() {
    std::string tmpl = temp_directory() + "/muxkit-test-XXXXXX";
    BOOST_REQUIRE(::mkdtemp(tmpl.data()));
    path = tmpl;
}

TempDir::~TempDir() { std::filesystem::remove_all(path); }

std::vector<std::string> with_io_uring(std::vector<std::string> variants, const std::vector<std::string>& uring_variants) {
    if (model_unavailable_reason(Model::io_uring).empty()) variants.insert(variants.end(), uring_variants.begin(), uring_variants.end());
    return variants;
}

std::string random_bytes(std::size_t n, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(rng() & 0xff);
    return s;
}

Json summary_of(const RunResult& r) {
    auto lines = r.json_lines();
    BOOST_REQUIRE_MESSAGE(!lines.empty(), "no JSON on stdout; stderr: " << r.err);
    BOOST_REQUIRE_EQUAL(lines.back()["type"].get<std::string>(), "summary");
    return lines.back();
}

}  // namespace muxkit::test

namespace muxkit::test {

namespace {

// Whether /proc/net/FILE has a socket on local port `port` in state `state` (hex, as listed).
bool proc_net_has(const char* file, std::uint16_t port, const char* state) {
    std::ifstream in(std::string("/proc/net/") + file);
    std::string line;
    std::getline(in, line);  // the legend
    const std::string want = fmt::format(":{:04X}", port);
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::string slot, local, remote, st;
        fields >> slot >> local >> remote >> st;
        if (local.ends_with(want) && st == state) return true;
    }
    return false;
}

// Whether a Unix stream socket listens on path (flag __SO_ACCEPTCON in /proc/net/unix).
bool unix_listening(const std::string& path) {
    std::ifstream in("/proc/net/unix");
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::string num, refs, protocol, flags, type, st, inode, name;
        fields >> num >> refs >> protocol >> flags >> type >> st >> inode;
        std::getline(fields >> std::ws, name);
        if (name == path && flags == "00010000") return true;
    }
    return false;
}

}  // namespace

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (condition()) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(5ms);
    }
}

bool wait_listening(const std::string& address, std::chrono::milliseconds timeout) {
    const Address a = Address::parse(address);
    if (a.kind == Address::Kind::unix_path) return eventually([&] { return unix_listening(a.path); }, timeout);
    const std::uint16_t port = resolve(a, false).front().port();
    if (a.datagram()) return eventually([&] { return proc_net_has("udp", port, "07") || proc_net_has("udp6", port, "07"); }, timeout);
    return eventually([&] { return proc_net_has("tcp", port, "0A") || proc_net_has("tcp6", port, "0A"); }, timeout);
}

}  // namespace muxkit::test
