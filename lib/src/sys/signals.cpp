#include "muxkit/signals.hpp"

#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <unistd.h>

#include "muxkit/error.hpp"

namespace muxkit {

namespace {

volatile std::sig_atomic_t g_stop = 0, g_stats = 0, g_child = 0;
volatile int g_write_fd = -1;

}  // namespace

SignalPipe::SignalPipe() {
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) throw_errno("cannot create the signal pipe");
    read_fd_ = fds[0];
    g_write_fd = fds[1];
}

SignalPipe& SignalPipe::get() {
    static SignalPipe instance;
    return instance;
}

void SignalPipe::notify(Notice notice) noexcept {
    const int saved = errno;
    switch (notice) {
    case Notice::stop: g_stop = 1; break;
    case Notice::stats: g_stats = 1; break;
    case Notice::child: g_child = 1; break;
    }
    if (const int fd = g_write_fd; fd >= 0) {
        char b = 0;
        [[maybe_unused]] auto r = ::write(fd, &b, 1);  // a full pipe already wakes the loop
    }
    errno = saved;
}

SignalFlags SignalPipe::drain() noexcept {
    char buf[256];
    while (::read(read_fd_, buf, sizeof buf) > 0) {
    }
    SignalFlags f;
    f.stop = g_stop;
    if (g_stats) { f.stats = true; g_stats = 0; }
    if (g_child) { f.child = true; g_child = 0; }
    return f;
}

bool SignalPipe::stop_requested() noexcept { return g_stop != 0; }

void SignalPipe::reset_in_child() noexcept {
    SignalPipe& self = get();
    // The pipe is the parent's: the child only lets go of its copies of the two descriptors.
    if (self.read_fd_ >= 0) ::close(self.read_fd_);
    self.read_fd_ = -1;
    if (const int fd = g_write_fd; fd >= 0) ::close(fd);
    g_write_fd = -1;
    g_stop = 0;
    g_stats = 0;
    g_child = 0;
}

}  // namespace muxkit
