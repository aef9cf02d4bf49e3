// Sockets: listening and connecting, non-blocking and close-on-exec from the start.
#pragma once

#include <chrono>
#include <string>

#include "muxkit/address.hpp"
#include "muxkit/fd.hpp"

namespace muxkit {

// Binds and listens (SO_REUSEADDR; IPV6_V6ONLY so [::] and 0.0.0.0 can both be bound; a stale
// Unix socket file nobody listens on is replaced). Throws SystemError "cannot listen on ADDR: why".
// reuse_port: SO_REUSEPORT, so several sockets (one per event loop) share the address.
Fd listen_on(const Endpoint& endpoint, int backlog, bool reuse_port = false);

// A bound datagram socket (SO_REUSEADDR, IPV6_V6ONLY as listen_on; reuse_port: SO_REUSEPORT, and
// the kernel spreads the senders over the sockets by their address). Throws SystemError
// "cannot listen on udp:ADDR: why".
Fd bind_datagram(const Endpoint& endpoint, bool reuse_port = false);

struct Accepted {
    Fd fd;
    int err = 0;  // EAGAIN when nothing is pending, EMFILE, ECONNABORTED, ...
};
// accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC; EINTR retried.
Accepted accept_connection(int listen_fd) noexcept;

struct Connecting {
    Fd fd;
    int err = 0;              // errno of socket() or connect(), when it failed at once
    bool in_progress = false;  // EINPROGRESS: wait for writability, then read socket_error()
};
Connecting connect_nonblocking(const Endpoint& endpoint) noexcept;
// A datagram socket connected to endpoint (a local step: nothing is sent); err on failure. Its
// receive queue holds at least receive_room bytes of datagrams, as far as net.core.rmem_max lets.
Connecting connect_datagram(const Endpoint& endpoint, std::size_t receive_room = 0) noexcept;

int socket_error(int fd) noexcept;  // SO_ERROR: the outcome of a non-blocking connect
// Datagrams the kernel dropped for this socket (its receive queue was full), 0 if unknown.
std::uint64_t socket_drops(int fd) noexcept;
// Bytes written to a TCP socket that its peer has not acknowledged (so may never get, if the
// socket is reset now); 0 for other sockets, whose written bytes are already the peer's.
std::uint64_t unacknowledged_bytes(int fd) noexcept;

// A connect that waits at most timeout (and no longer once a stop is requested): err is 0 when
// connected, else the errno (ETIMEDOUT when the time ran out). The socket stays non-blocking.
struct Connected {
    Fd fd;
    int err = 0;
};
Connected connect_within(const Endpoint& endpoint, std::chrono::nanoseconds timeout) noexcept;
Endpoint local_endpoint(int fd);
Endpoint peer_endpoint(int fd);
// The peer as text, or "unknown" when the kernel no longer knows it (the peer already left).
std::string peer_name(int fd);
void set_nodelay(int fd) noexcept;  // TCP_NODELAY on TCP sockets; nothing on others

// One descriptor held in reserve (on /dev/null). Out of descriptors (EMFILE), a server gives it
// up to accept and close the pending connection, so the client is refused and the listener stops
// being ready instead of spinning; then it takes the reserve back.
class SpareFd {
public:
    // Throws RuntimeError when the descriptor limit leaves no room even for the reserve: such a
    // server could neither serve nor refuse anyone.
    SpareFd();
    bool held() const noexcept { return static_cast<bool>(fd_); }
    // Refuses one pending connection of listen_fd; true when the caller may go on accepting (one
    // was refused, or none was pending, and the reserve is back), false when it should pause.
    bool refuse_one(int listen_fd, std::uint64_t& refused) noexcept;
    void take_back() noexcept;  // after a pause, when the reserve could not be had back

private:
    Fd fd_;
};

}  // namespace muxkit
