#include "muxkit/pipe.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <string>

#include "muxkit/error.hpp"

namespace muxkit {

Pipe make_pipe(bool nonblocking) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | (nonblocking ? O_NONBLOCK : 0)) != 0) throw_errno("cannot create a pipe");
    return {Fd(fds[0]), Fd(fds[1])};
}

int pipe_capacity(int fd) {
    int n = ::fcntl(fd, F_GETPIPE_SZ);
    if (n < 0) throw_errno("F_GETPIPE_SZ");
    return n;
}

int set_pipe_capacity(int fd, int bytes) {
    int n = ::fcntl(fd, F_SETPIPE_SZ, bytes);
    if (n < 0) throw_errno("F_SETPIPE_SZ " + std::to_string(bytes));
    return n;
}

}  // namespace muxkit
