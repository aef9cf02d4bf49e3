// Child processes: fork a function, wait for it with a deadline, and describe how it ended.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include <sys/types.h>

namespace muxkit {

struct ExitStatus {
    bool exited = false;   // exited normally with code
    int code = 0;
    int signal = 0;        // killed by this signal
    bool timed_out = false;  // killed by wait_child because its deadline passed
    std::string to_string() const;  // "exit 0", "killed by SIGPIPE", "timed out"
};

// Runs body in a forked child, which exits with body's return value (127 if it throws).
// The child never returns into the caller's code.
pid_t fork_child(const std::function<int()>& body);

// Waits for pid until deadline_ns (monotonic; nullopt: forever); past it, SIGKILL and reap.
ExitStatus wait_child(pid_t pid, std::optional<std::int64_t> deadline_ns = std::nullopt);
ExitStatus decode_status(int status);

// "SIGPIPE" for SIGPIPE.
std::string signal_name(int sig);

}  // namespace muxkit
