// Pipe: both ends of a pipe(2), owned; capacity queries and changes (F_GETPIPE_SZ / F_SETPIPE_SZ).
#pragma once

#include "muxkit/fd.hpp"

namespace muxkit {

struct Pipe {
    Fd read;
    Fd write;
};

// pipe2 with O_CLOEXEC (and O_NONBLOCK on both ends if asked); throws SystemError.
Pipe make_pipe(bool nonblocking = false);
int pipe_capacity(int fd);                // F_GETPIPE_SZ; throws
int set_pipe_capacity(int fd, int bytes);  // F_SETPIPE_SZ; returns the size set; throws (EPERM past pipe-max-size)

}  // namespace muxkit
