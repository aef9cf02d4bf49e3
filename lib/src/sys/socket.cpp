#include "muxkit/socket.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>

#include "muxkit/clock.hpp"
#include "muxkit/error.hpp"
#include "muxkit/signals.hpp"

namespace muxkit {

namespace {

// A Unix socket path that exists but refuses connections is left over from a dead server.
void remove_stale_unix_socket(const Endpoint& endpoint) {
    auto un = reinterpret_cast<const sockaddr_un*>(&endpoint.storage);
    struct stat st;
    if (::lstat(un->sun_path, &st) != 0 || !S_ISSOCK(st.st_mode)) return;
    Fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (probe && ::connect(probe.get(), endpoint.sa(), endpoint.length) != 0 && errno == ECONNREFUSED)
        ::unlink(un->sun_path);
}

}  // namespace

Fd listen_on(const Endpoint& endpoint, int backlog, bool reuse_port) {
    const std::string where = "cannot listen on " + endpoint.to_string();
    Fd fd(::socket(endpoint.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) throw_errno(where);
    int one = 1;
    if (endpoint.family() != AF_UNIX) {
        ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (reuse_port && ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) throw_errno(where);
        if (endpoint.family() == AF_INET6) ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    } else {
        remove_stale_unix_socket(endpoint);
    }
    if (::bind(fd.get(), endpoint.sa(), endpoint.length) != 0) throw_errno(where);
    if (::listen(fd.get(), backlog) != 0) throw_errno(where);
    return fd;
}

Fd bind_datagram(const Endpoint& endpoint, bool reuse_port) {
    const std::string where = "cannot listen on udp:" + endpoint.to_string();
    Fd fd(::socket(endpoint.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) throw_errno(where);
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuse_port && ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) throw_errno(where);
    if (endpoint.family() == AF_INET6) ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    // Every sender shares this queue: the default (about 200 small datagrams) overflows, and the
    // kernel drops, under a few hundred in flight. The kernel caps it at net.core.rmem_max.
    const int room = 4 << 20;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &room, sizeof room);
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDBUF, &room, sizeof room);
    if (::bind(fd.get(), endpoint.sa(), endpoint.length) != 0) throw_errno(where);
    return fd;
}

Connecting connect_datagram(const Endpoint& endpoint, std::size_t receive_room) noexcept {
    Connecting c;
    c.fd = Fd(::socket(endpoint.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!c.fd) {
        c.err = errno;
        return c;
    }
    int have = 0;
    socklen_t len = sizeof have;
    if (receive_room > 0 && ::getsockopt(c.fd.get(), SOL_SOCKET, SO_RCVBUF, &have, &len) == 0 &&
        static_cast<std::size_t>(have) < receive_room) {
        const int want = static_cast<int>(std::min<std::size_t>(receive_room, 64u << 20));
        ::setsockopt(c.fd.get(), SOL_SOCKET, SO_RCVBUF, &want, sizeof want);
    }
    if (::connect(c.fd.get(), endpoint.sa(), endpoint.length) != 0) {
        c.err = errno;
        c.fd.reset();
    }
    return c;
}

Accepted accept_connection(int listen_fd) noexcept {
    for (;;) {
        int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) return {Fd(fd), 0};
        if (errno != EINTR) return {Fd(), errno};
    }
}

Connecting connect_nonblocking(const Endpoint& endpoint) noexcept {
    Connecting c;
    c.fd = Fd(::socket(endpoint.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!c.fd) {
        c.err = errno;
        return c;
    }
    set_nodelay(c.fd.get());
    if (::connect(c.fd.get(), endpoint.sa(), endpoint.length) == 0) return c;
    if (errno == EINPROGRESS || errno == EINTR) {
        c.in_progress = true;
        return c;
    }
    c.err = errno;
    c.fd.reset();
    return c;
}

int socket_error(int fd) noexcept {
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
    return err;
}

std::uint64_t socket_drops(int fd) noexcept {
    std::uint32_t info[SK_MEMINFO_VARS] = {};
    socklen_t len = sizeof info;
    if (::getsockopt(fd, SOL_SOCKET, SO_MEMINFO, info, &len) != 0 || len <= SK_MEMINFO_DROPS * sizeof(std::uint32_t)) return 0;
    return info[SK_MEMINFO_DROPS];
}

std::uint64_t unacknowledged_bytes(int fd) noexcept {
    tcp_info info{};
    socklen_t len = sizeof info;
    int queued = 0;
    if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0 || ::ioctl(fd, SIOCOUTQ, &queued) != 0 || queued <= 0) return 0;
    // SIOCOUTQ counts sequence numbers, and a FIN takes one until the peer acknowledges it.
    const bool fin_unacknowledged = info.tcpi_state == TCP_FIN_WAIT1 || info.tcpi_state == TCP_CLOSING || info.tcpi_state == TCP_LAST_ACK;
    return static_cast<std::uint64_t>(queued) - (fin_unacknowledged ? 1 : 0);
}

Endpoint local_endpoint(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) throw_errno("getsockname");
    return Endpoint::from(reinterpret_cast<sockaddr*>(&ss), len);
}

Endpoint peer_endpoint(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) throw_errno("getpeername");
    return Endpoint::from(reinterpret_cast<sockaddr*>(&ss), len);
}

Connected connect_within(const Endpoint& endpoint, std::chrono::nanoseconds timeout) noexcept {
    Connecting c = connect_nonblocking(endpoint);
    Connected out{std::move(c.fd), c.err};
    if (out.err || !c.in_progress) return out;
    const std::int64_t deadline = now_ns() + timeout.count();
    for (;;) {
        const std::int64_t left = deadline - now_ns();
        pollfd p{out.fd.get(), POLLOUT, 0};
        const int rc = left <= 0 ? 0 : ::poll(&p, 1, static_cast<int>((left + 999'999) / 1'000'000));
        if (rc < 0 && errno == EINTR && !SignalPipe::stop_requested()) continue;
        out.err = rc > 0 ? socket_error(out.fd.get()) : rc == 0 ? ETIMEDOUT : errno;
        return out;
    }
}

std::string peer_name(int fd) {
    try {
        return peer_endpoint(fd).to_string();
    } catch (const SystemError&) {
        return "unknown";
    }
}

void set_nodelay(int fd) noexcept {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // fails harmlessly on Unix sockets
}

}  // namespace muxkit

namespace muxkit {

SpareFd::SpareFd() : fd_(open_dev_null()) {
    if (!fd_) {
        const int err = errno;
        rlimit rl{};
        ::getrlimit(RLIMIT_NOFILE, &rl);
        throw RuntimeError(fmt::format("the descriptor limit ({}) leaves no room for a connection: {}", rl.rlim_cur,
                                       std::strerror(err)));
    }
}

bool SpareFd::refuse_one(int listen_fd, std::uint64_t& refused) noexcept {
    if (!fd_) return false;
    fd_.reset();
    Accepted a = accept_connection(listen_fd);
    const bool one = static_cast<bool>(a.fd);
    if (one) ++refused;
    a.fd.reset();
    take_back();
    return (one || a.err == EAGAIN) && fd_;
}

void SpareFd::take_back() noexcept {
    if (!fd_) fd_ = open_dev_null();
}

}  // namespace muxkit
