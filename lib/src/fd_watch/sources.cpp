// SourceSpec: what the user wrote; and describe_fd, split_command for the tool.
#include "fd_watch/sources.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstring>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include "muxkit/error.hpp"
#include "muxkit/io.hpp"
#include "muxkit/pipe.hpp"
#include "muxkit/process.hpp"
#include "muxkit/socket.hpp"

namespace muxkit {

std::vector<std::string> split_command(std::string_view command) {
    std::vector<std::string> words;
    std::string word;
    bool in_word = false;
    char quote = 0;
    for (std::size_t i = 0; i < command.size(); ++i) {
        char c = command[i];
        if (quote) {
            if (c == quote) quote = 0;
            else if (c == '\\' && quote == '"' && i + 1 < command.size()) word += command[++i];
            else word += c;
        } else if (c == '\'' || c == '"') {
            quote = c;
            in_word = true;
        } else if (c == '\\' && i + 1 < command.size()) {
            word += command[++i];
            in_word = true;
        } else if (c == ' ' || c == '\t' || c == '\n') {
            if (in_word) words.push_back(std::move(word));
            word.clear();
            in_word = false;
        } else {
            word += c;
            in_word = true;
        }
    }
    if (quote) throw UsageError(fmt::format("invalid command '{}': unterminated quote", command));
    if (in_word) words.push_back(std::move(word));
    return words;
}

SourceSpec SourceSpec::parse(std::string_view text) {
    SourceSpec s;
    s.text = std::string(text);
    auto rest = [&](std::string_view prefix) { return std::string(text.substr(prefix.size())); };
    if (text == "-" || text == "stdin") {
        s.fd = 0;
        s.text = "stdin";
        return s;
    }
    if (!text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), s.fd);
        if (ec != std::errc()) throw UsageError(fmt::format("invalid source '{}': descriptor out of range", text));
        return s;
    }
    if (text.starts_with("file:")) {
        s.type = Type::file;
        s.path = rest("file:");
    } else if (text.starts_with("fifo:")) {
        s.type = Type::fifo;
        s.path = rest("fifo:");
    } else if (text.starts_with("listen:")) {
        s.type = Type::listen;
        s.address = Address::parse(rest("listen:"));
        return s;
    } else if (text.starts_with("connect:")) {
        s.type = Type::connect;
        s.address = Address::parse(rest("connect:"));
        return s;
    } else if (text.starts_with("udp:")) {
        s.type = Type::udp;
        s.address = Address::parse(text);
        return s;
    } else if (text.starts_with("exec:")) {
        s.type = Type::exec;
        s.argv = split_command(rest("exec:"));
        if (s.argv.empty()) throw UsageError(fmt::format("invalid source '{}': empty command", text));
        return s;
    } else {
        throw UsageError(fmt::format(
            "invalid source '{}': expected N, -, stdin, file:PATH, fifo:PATH, listen:ADDRESS, connect:ADDRESS, udp:ADDRESS or exec:COMMAND", text));
    }
    if (s.path.empty()) throw UsageError(fmt::format("invalid source '{}': missing path", text));
    return s;
}

std::string describe_fd(int fd) {
    struct stat st;
    if (::fstat(fd, &st) != 0) return "closed";
    if (S_ISFIFO(st.st_mode)) {
        char link[64] = {};
        std::string proc = fmt::format("/proc/self/fd/{}", fd);
        ssize_t n = ::readlink(proc.c_str(), link, sizeof link - 1);
        return (n > 0 && std::strncmp(link, "pipe:", 5) == 0) ? "pipe" : "fifo";
    }
    if (S_ISREG(st.st_mode)) return "file";
    if (S_ISDIR(st.st_mode)) return "dir";
    if (S_ISCHR(st.st_mode)) return ::isatty(fd) ? "tty" : "chr";
    if (S_ISBLK(st.st_mode)) return "blk";
    if (S_ISSOCK(st.st_mode)) {
        int domain = 0, type = 0;
        socklen_t len = sizeof domain;
        ::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len);
        len = sizeof type;
        ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len);
        if (domain == AF_UNIX) return "unix";
        if (type == SOCK_STREAM) return "tcp";
        if (type == SOCK_DGRAM) return "udp";
        return "socket";
    }
    return "other";
}

namespace detail {

Fd open_fifo(const std::string& path) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));  // never blocks on a missing writer
    if (!fd) throw SystemError(errno, "cannot open fifo " + path);
    struct stat st;
    if (::fstat(fd.get(), &st) == 0 && !S_ISFIFO(st.st_mode)) throw RuntimeError(fmt::format("{} is not a FIFO", path));
    return fd;
}

OpenedSource open_source(const SourceSpec& spec) {
    OpenedSource s;
    s.name = spec.text;
    switch (spec.type) {
    case SourceSpec::Type::fd:
        if (::fcntl(spec.fd, F_GETFD) < 0)
            throw RuntimeError(fmt::format("cannot watch descriptor {}: it is not open", spec.fd));
        s.fd = spec.fd;
        return s;
    case SourceSpec::Type::file:
        s.owned = Fd(::open(spec.path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
        if (!s.owned) throw SystemError(errno, "cannot open " + spec.path);
        s.fd = s.owned.get();
        return s;
    case SourceSpec::Type::fifo:
        s.owned = open_fifo(spec.path);
        s.fd = s.owned.get();
        s.role = Role::fifo;
        s.fifo_path = spec.path;
        return s;
    case SourceSpec::Type::listen: {
        Endpoint ep = resolve(spec.address, true).front();
        s.owned = listen_on(ep, 128);
        s.fd = s.owned.get();
        s.role = Role::listener;
        s.name = "listen:" + (spec.address.kind == Address::Kind::unix_path ? ep.to_string()
                                                                             : local_endpoint(s.fd).to_string());
        if (spec.address.kind == Address::Kind::unix_path) s.unix_path = spec.address.path;
        return s;
    }
    case SourceSpec::Type::connect: {
        Endpoint ep = resolve(spec.address, false).front();
        Connected c = connect_within(ep, kConnectTimeout);
        if (c.err) throw SystemError(c.err, "cannot connect to " + ep.to_string());
        s.owned = std::move(c.fd);
        s.fd = s.owned.get();
        return s;
    }
    case SourceSpec::Type::udp: {
        s.owned = bind_datagram(resolve(spec.address, true).front());
        s.fd = s.owned.get();
        s.role = Role::datagram;
        s.name = "udp:" + local_endpoint(s.fd).to_string();
        return s;
    }
    case SourceSpec::Type::exec: break;
    }
    throw RuntimeError("an exec source is started, not opened");
}

StartedExec start_exec(const SourceSpec& spec) {
    Pipe out = make_pipe(), err = make_pipe(), status = make_pipe();
    std::vector<char*> argv;
    for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const pid_t pid = fork_child([&] {
        ::dup2(open_dev_null().get(), 0);  // dup2 leaves 0 without close-on-exec
        ::dup2(out.write.get(), 1);
        ::dup2(err.write.get(), 2);
        ::signal(SIGPIPE, SIG_DFL);
        ::execvp(argv[0], argv.data());
        int e = errno;
        write_all(status.write.get(), &e, sizeof e);  // the close-on-exec pipe tells the parent why
        return 127;
    });
    out.write.reset();
    err.write.reset();
    status.write.reset();
    int exec_errno = 0;
    if (read_full(status.read.get(), &exec_errno, sizeof exec_errno) == static_cast<ssize_t>(sizeof exec_errno)) {
        wait_child(pid);
        throw SystemError(exec_errno, fmt::format("cannot run '{}'", spec.argv[0]));
    }
    set_nonblocking(out.read.get());
    set_nonblocking(err.read.get());
    return {pid, std::move(out.read), std::move(err.read)};
}

}  // namespace detail

}  // namespace muxkit
