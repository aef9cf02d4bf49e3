#include "muxkit/fd.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "muxkit/error.hpp"

namespace muxkit {

void Fd::reset(int fd) noexcept {
    if (fd_ >= 0) ::close(fd_);  // never retried on EINTR: Linux has already freed the descriptor
    fd_ = fd;
}

Fd open_dev_null(bool for_writing) noexcept {
    return Fd(::open("/dev/null", (for_writing ? O_WRONLY : O_RDONLY) | O_CLOEXEC));
}

void set_nonblocking(int fd, bool on) {
    int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0) throw_errno("fcntl F_GETFL");
    int wanted = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
    if (wanted != flags && ::fcntl(fd, F_SETFL, wanted) < 0) throw_errno("fcntl F_SETFL");
}

std::uint64_t raise_fd_limit(std::uint64_t wanted) noexcept {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < wanted) {
        rlim_t target = (rl.rlim_max == RLIM_INFINITY || rl.rlim_max > wanted) ? wanted : rl.rlim_max;
        rlimit raised{target, rl.rlim_max};
        if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) rl.rlim_cur = target;
    }
    return rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : rl.rlim_cur;
}

}  // namespace muxkit
