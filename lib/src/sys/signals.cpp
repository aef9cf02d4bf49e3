#include "muxkit/signals.hpp"

#include <atomic>
#include <csignal>
#include <fcntl.h>
#include <unistd.h>

#include "muxkit/error.hpp"

namespace muxkit {

namespace {

volatile std::sig_atomic_t g_stop = 0, g_stats = 0, g_child = 0, g_sigint = 0;
int g_write_fd = -1;

void on_signal(int sig) {
    int saved = errno;
    switch (sig) {
    case SIGINT:
        if (g_sigint) ::_exit(130);  // the second Ctrl-C: the user insists
        g_sigint = 1;
        g_stop = 1;
        break;
    case SIGTERM: g_stop = 1; break;
    case SIGUSR1: g_stats = 1; break;
    case SIGCHLD: g_child = 1; break;
    }
    if (g_write_fd >= 0) {
        char b = 0;
        [[maybe_unused]] auto r = ::write(g_write_fd, &b, 1);  // a full pipe already wakes the loop
    }
    errno = saved;
}

void handle(int sig, void (*fn)(int)) {
    struct sigaction sa {};
    sa.sa_handler = fn;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: blocking calls in children return EINTR on a stop
    ::sigaction(sig, &sa, nullptr);
}

}  // namespace

SignalPipe::SignalPipe() {
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) throw_errno("cannot create the signal pipe");
    read_fd_ = fds[0];
    g_write_fd = fds[1];
    handle(SIGINT, on_signal);
    handle(SIGTERM, on_signal);
    handle(SIGUSR1, on_signal);
    handle(SIGCHLD, on_signal);
    handle(SIGPIPE, SIG_IGN);
}

SignalPipe& SignalPipe::install() {
    static SignalPipe instance;
    return instance;
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
    SignalPipe& self = install();
    if (self.read_fd_ >= 0) ::close(self.read_fd_);
    self.read_fd_ = -1;
    if (g_write_fd >= 0) ::close(g_write_fd);
    g_write_fd = -1;
    g_stop = 0;
    g_stats = 0;
    g_child = 0;
    handle(SIGCHLD, SIG_DFL);
}

}  // namespace muxkit
