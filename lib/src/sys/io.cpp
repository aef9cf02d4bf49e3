#include "muxkit/io.hpp"

#include <cerrno>
#include <sys/socket.h>
#include <unistd.h>

namespace muxkit {

IoResult read_some(int fd, void* buf, std::size_t len) noexcept {
    for (;;) {
        ssize_t n = ::read(fd, buf, len);
        if (n >= 0) return {n, 0};
        if (errno != EINTR) return {-1, errno};
    }
}

IoResult write_some(int fd, const void* buf, std::size_t len) noexcept {
    for (;;) {
        ssize_t n = ::write(fd, buf, len);
        if (n >= 0) return {n, 0};
        if (errno != EINTR) return {-1, errno};
    }
}

IoResult send_some(int fd, const void* buf, std::size_t len) noexcept {
    for (;;) {
        ssize_t n = ::send(fd, buf, len, MSG_NOSIGNAL);
        if (n >= 0) return {n, 0};
        if (errno == ENOTSOCK) return write_some(fd, buf, len);
        if (errno != EINTR) return {-1, errno};
    }
}

int write_all(int fd, const void* buf, std::size_t len) noexcept {
    auto p = static_cast<const char*>(buf);
    while (len > 0) {
        IoResult r = write_some(fd, p, len);
        if (r.failed()) return r.err;
        p += r.n;
        len -= static_cast<std::size_t>(r.n);
    }
    return 0;
}

ssize_t read_full(int fd, void* buf, std::size_t len) noexcept {
    auto p = static_cast<char*>(buf);
    std::size_t got = 0;
    while (got < len) {
        IoResult r = read_some(fd, p + got, len - got);
        if (r.failed()) return -r.err;
        if (r.n == 0) break;
        got += static_cast<std::size_t>(r.n);
    }
    return static_cast<ssize_t>(got);
}

}  // namespace muxkit
