// The tool's signal policy: SIGINT and SIGTERM ask a run to stop, SIGUSR1 for a stats line,
// SIGCHLD wakes the fork server; a second SIGINT while a stop is pending exits at once. A stdout
// whose reader went away stops a run that may never write again.
#include <cerrno>
#include <csignal>

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <muxkit/signals.hpp>

#include "cli.hpp"

namespace muxkit::cli {

namespace {

volatile std::sig_atomic_t g_sigint = 0;

// Whether the reader of stdout went away: poll with no events asked for reports only the write
// side's error or hangup (async-signal-safe).
void stop_if_stdout_closed() {
    pollfd out{1, 0, 0};
    if (::poll(&out, 1, 0) == 1 && (out.revents & (POLLERR | POLLHUP))) {
        note_stdout_closed();
        SignalPipe::notify(Notice::stop);
    }
}

void on_signal(int sig) {
    switch (sig) {
    case SIGINT:
        if (g_sigint) ::_exit(130);  // the second Ctrl-C: the user insists
        g_sigint = 1;
        SignalPipe::notify(Notice::stop);
        break;
    case SIGTERM: SignalPipe::notify(Notice::stop); break;
    case SIGUSR1: SignalPipe::notify(Notice::stats); break;
    case SIGCHLD: SignalPipe::notify(Notice::child); break;
    case SIGIO: {
        const int saved = errno;
        stop_if_stdout_closed();
        errno = saved;
        break;
    }
    }
}

}  // namespace

void forward_signals() {
    SignalPipe::get();  // the pipe exists before the first signal can arrive
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: blocking calls in the fork server's children return EINTR on a stop
    for (int sig : {SIGINT, SIGTERM, SIGUSR1, SIGCHLD}) ::sigaction(sig, &sa, nullptr);
}

void stop_when_stdout_closes() {
    struct stat st {};
    if (::fstat(1, &st) != 0 || !(S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) return;
    // The kernel sends SIGIO to the owner of an O_ASYNC pipe when its last reader closes (and to
    // a socket's owner on its hangup); no thread, which would count against RLIMIT_NPROC.
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGIO, &sa, nullptr);
    if (::fcntl(1, F_SETOWN, ::getpid()) != 0) return;
    const int flags = ::fcntl(1, F_GETFL);
    if (flags < 0 || ::fcntl(1, F_SETFL, flags | O_ASYNC) != 0) return;
    stop_if_stdout_closed();  // it may have gone before O_ASYNC was set
}

}  // namespace muxkit::cli
