// Non-throwing reads and writes for the hot path: EINTR is retried here, every other errno is returned.
#pragma once

#include <cerrno>
#include <cstddef>
#include <sys/types.h>

namespace muxkit {

struct IoResult {
    ssize_t n = 0;  // bytes moved; 0 from a read means end of file
    int err = 0;    // errno when the call failed (n < 0): EAGAIN, ECONNRESET, EPIPE, ...
    bool failed() const noexcept { return n < 0; }
    bool would_block() const noexcept { return n < 0 && (err == EAGAIN || err == EWOULDBLOCK); }
};

IoResult read_some(int fd, void* buf, std::size_t len) noexcept;
IoResult write_some(int fd, const void* buf, std::size_t len) noexcept;
// send() with MSG_NOSIGNAL: a vanished peer gives EPIPE, never SIGPIPE.
IoResult send_some(int fd, const void* buf, std::size_t len) noexcept;

// Blocking helpers for setup and child processes: loop until done; return errno or 0.
int write_all(int fd, const void* buf, std::size_t len) noexcept;
// Reads until len bytes or EOF; returns the bytes read, or -errno.
ssize_t read_full(int fd, void* buf, std::size_t len) noexcept;

}  // namespace muxkit
