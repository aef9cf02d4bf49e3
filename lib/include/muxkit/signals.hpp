// Signals as readiness: SIGINT, SIGTERM, SIGUSR1 and SIGCHLD set flags and write a byte into a
// self-pipe that event loops watch, so no signal is lost between two waits.
#pragma once

namespace muxkit {

struct SignalFlags {
    bool stop = false;   // SIGINT or SIGTERM
    bool stats = false;  // SIGUSR1
    bool child = false;  // SIGCHLD
};

class SignalPipe {
public:
    // Installs the handlers once per process (SIGPIPE is ignored too) and returns the pipe.
    // A second SIGINT while a stop is pending exits at once (status 130).
    static SignalPipe& install();
    int fd() const noexcept { return read_fd_; }
    // Empties the pipe and returns (and clears) what arrived since the last call.
    SignalFlags drain() noexcept;
    static bool stop_requested() noexcept;
    // In a forked child: handlers only set flags (no pipe shared with the parent), SIGCHLD default.
    static void reset_in_child() noexcept;

private:
    SignalPipe();
    int read_fd_ = -1;
};

}  // namespace muxkit
