// SignalPipe: stop, stats and child notices as readiness. Each sets a flag and writes a byte into a
// self-pipe that the event loops watch, so none is lost between two waits. The library installs no
// signal handler: a program forwards its signals with notify(), which is async-signal-safe, or
// asks for a stop with request_stop() from any thread.
#pragma once

namespace muxkit {

struct SignalFlags {
    bool stop = false;   // a stop was asked for (SIGINT or SIGTERM in the muxkit tool)
    bool stats = false;  // a stats line was asked for (SIGUSR1)
    bool child = false;  // a child process may have ended (SIGCHLD)
};

enum class Notice { stop, stats, child };

class SignalPipe {
public:
    // The process's one pipe, made on first use.
    static SignalPipe& get();
    int fd() const noexcept { return read_fd_; }
    // Empties the pipe and returns what arrived since the last call (stop stays set).
    SignalFlags drain() noexcept;
    static bool stop_requested() noexcept;
    // Async-signal-safe; before get() has made the pipe, only the flag is set.
    static void notify(Notice notice) noexcept;
    static void request_stop() noexcept { notify(Notice::stop); }
    // In a forked child: the pipe (shared with the parent) is closed and the flags cleared, so
    // notices in the child only set its own flags.
    static void reset_in_child() noexcept;

private:
    SignalPipe();
    int read_fd_ = -1;
};

}  // namespace muxkit
