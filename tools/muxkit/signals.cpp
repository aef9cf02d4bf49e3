// The tool's signal policy: SIGINT and SIGTERM ask a run to stop, SIGUSR1 for a stats line,
// SIGCHLD wakes the fork server; a second SIGINT while a stop is pending exits at once.
#include <csignal>

#include <unistd.h>

#include <muxkit/signals.hpp>

#include "cli.hpp"

namespace muxkit::cli {

namespace {

volatile std::sig_atomic_t g_sigint = 0;

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

}  // namespace muxkit::cli
