#include "support/spawn.hpp"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <stdexcept>

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <muxkit/pipe.hpp>
#include <muxkit/report.hpp>

namespace muxkit::test {

Spawned spawn_process(const std::vector<std::string>& argv, const SpawnSetup& setup) {
    if (argv.empty()) throw std::runtime_error("spawn: no program");
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    Pipe p = make_pipe();
    Fd devnull = open_dev_null(true);
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("spawn: fork failed");
    if (pid == 0) {
        if (setup.stdin_fd >= 0) ::dup2(setup.stdin_fd, 0);
        ::dup2(p.write.get(), 1);
        if (setup.quiet_stderr) ::dup2(devnull.get(), 2);
        if (setup.nofile) {
            rlimit rl{setup.nofile, setup.nofile};
            ::setrlimit(RLIMIT_NOFILE, &rl);
        }
        if (setup.close_others) ::close_range(3, ~0U, 0);
        ::signal(SIGPIPE, SIG_DFL);
        ::execvp(args[0], args.data());
        ::_exit(127);
    }
    return {pid, std::move(p.read)};
}

std::vector<std::string> muxkit_command(std::vector<std::string> args) {
    args.insert(args.begin(), MUXKIT_BINARY);
    return args;
}

std::string listening_address(const std::string& json_line) {
    Json j = Json::parse(json_line, nullptr, false);
    if (!j.is_object() || j.value("type", "") != "listening" || !j.contains("address") || !j["address"].is_string()) return "";
    return j["address"].get<std::string>();
}

std::string read_line(int fd, int timeout_ms) {
    std::string line;
    char c;
    for (;;) {
        pollfd f{fd, POLLIN, 0};
        if (::poll(&f, 1, timeout_ms) <= 0) return line;
        if (::read(fd, &c, 1) != 1 || c == '\n') return line;
        line += c;
    }
}

std::string read_listening_address(int fd, int timeout_ms) {
    for (int i = 0; i < 64; ++i) {
        const std::string line = read_line(fd, timeout_ms);
        if (line.empty()) return "";
        if (std::string a = listening_address(line); !a.empty()) return a;
    }
    return "";
}

std::string temp_directory() {
    const char* t = std::getenv("TMPDIR");
    return t && *t ? t : "/tmp";
}

int stop_process(pid_t pid) {
    int status = 0;
    if (pid <= 0) return status;
    ::kill(pid, SIGTERM);
    for (int i = 0; i < 300; ++i) {
        if (::waitpid(pid, &status, WNOHANG) == pid) return status;
        ::usleep(10000);
    }
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return status;
}

}  // namespace muxkit::test
