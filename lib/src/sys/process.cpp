#include "muxkit/process.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>

#include <sys/wait.h>
#include <unistd.h>

#include "muxkit/clock.hpp"
#include "muxkit/error.hpp"

namespace muxkit {

std::string signal_name(int sig) {
    if (const char* abbrev = sigabbrev_np(sig)) return std::string("SIG") + abbrev;
    return "signal " + std::to_string(sig);
}

std::string ExitStatus::to_string() const {
    if (timed_out) return "timed out";
    if (exited) return "exit " + std::to_string(code);
    if (signal) return "killed by " + signal_name(signal);
    return "unknown";
}

ExitStatus decode_status(int status) {
    ExitStatus s;
    if (WIFEXITED(status)) {
        s.exited = true;
        s.code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        s.signal = WTERMSIG(status);
    }
    return s;
}

pid_t fork_child(const std::function<int()>& body) {
    pid_t pid = ::fork();
    if (pid < 0) throw_errno("fork");
    if (pid == 0) {
        int code = 127;
        try {
            code = body();
        } catch (...) {
        }
        ::_exit(code);
    }
    return pid;
}

ExitStatus wait_child(pid_t pid, std::optional<std::int64_t> deadline_ns) {
    int status = 0;
    for (;;) {
        pid_t r = ::waitpid(pid, &status, deadline_ns ? WNOHANG : 0);
        if (r == pid) return decode_status(status);
        if (r < 0 && errno != EINTR) throw_errno("waitpid");
        if (r == 0 && now_ns() >= *deadline_ns) {
            ::kill(pid, SIGKILL);
            while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
            ExitStatus s = decode_status(status);
            s.timed_out = true;
            return s;
        }
        if (r == 0) ::usleep(1000);
    }
}

}  // namespace muxkit
