#include "support/proc_info.hpp"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include <dirent.h>
#include <unistd.h>

#include <fmt/format.h>

namespace muxkit::test {

std::uint64_t rss_bytes(pid_t pid) {
    std::ifstream in(fmt::format("/proc/{}/statm", pid));
    std::uint64_t size = 0, resident = 0;
    in >> size >> resident;
    return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

std::size_t open_fds(pid_t pid) {
    std::size_t n = 0;
    std::string dir = fmt::format("/proc/{}/fd", pid);
    if (DIR* d = ::opendir(dir.c_str())) {
        while (auto e = ::readdir(d))
            if (e->d_name[0] != '.') ++n;
        ::closedir(d);
    }
    return n;
}

std::vector<pid_t> children_of(pid_t parent, bool zombies_only) {
    std::vector<pid_t> out;
    DIR* d = ::opendir("/proc");
    if (!d) return out;
    while (auto e = ::readdir(d)) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        std::ifstream in(fmt::format("/proc/{}/stat", e->d_name));
        std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        auto close = content.rfind(')');
        if (close == std::string::npos) continue;
        char state;
        int ppid;
        if (std::sscanf(content.c_str() + close + 2, "%c %d", &state, &ppid) != 2) continue;
        if (ppid == parent && (!zombies_only || state == 'Z')) out.push_back(std::atoi(e->d_name));
    }
    ::closedir(d);
    return out;
}

double cpu_seconds(pid_t pid) {
    std::ifstream in(fmt::format("/proc/{}/stat", pid));
    std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto close = content.rfind(')');
    std::istringstream rest(content.substr(close + 2));
    std::string field;
    std::vector<std::string> fields;
    while (rest >> field) fields.push_back(field);
    // after ")": state is field 3; utime is field 14, stime 15 (1-based over the whole line)
    double ticks = std::stod(fields.at(11)) + std::stod(fields.at(12));
    return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

}  // namespace muxkit::test
