// Spawning muxkit (or a peer) without a shell and reading where it listens from its --json
// output: shared by the tests, the soak and the bench. No Boost here: the soak and the bench
// are programs, not test suites.
#pragma once

#include <string>
#include <vector>

#include <sys/resource.h>
#include <sys/types.h>

#include <muxkit/fd.hpp>

namespace muxkit::test {

struct SpawnSetup {
    bool quiet_stderr = false;  // stderr to /dev/null instead of inherited
    rlim_t nofile = 0;          // soft and hard RLIMIT_NOFILE in the child (0: inherited)
    bool close_others = false;  // close every descriptor past 2, so a limit is exact
    int stdin_fd = -1;          // the child's stdin (-1: inherited)
};

struct Spawned {
    pid_t pid = -1;
    Fd out;  // the child's stdout
};

// Runs argv (argv[0] a path, or a name looked up in PATH) with stdout on a pipe; throws
// std::runtime_error when it cannot start. SIGPIPE is default in the child.
Spawned spawn_process(const std::vector<std::string>& argv, const SpawnSetup& setup = {});
// The muxkit binary under test, followed by args.
std::vector<std::string> muxkit_command(std::vector<std::string> args);
// The address of a --json {"type":"listening"} line; empty for any other line.
std::string listening_address(const std::string& json_line);
// Reads lines from fd until a listening one; its address, or empty at EOF or after timeout_ms.
std::string read_listening_address(int fd, int timeout_ms = 10000);
// One line of fd (without the newline); empty at EOF or after timeout_ms.
std::string read_line(int fd, int timeout_ms = 10000);
// The directory for scratch files: $TMPDIR, else /tmp.
std::string temp_directory();
// Sends SIGTERM, waits up to 3 s, then SIGKILL; reaps it. Returns the wait status.
int stop_process(pid_t pid);

}  // namespace muxkit::test
