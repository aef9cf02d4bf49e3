// What /proc says about a process: its children, descriptors, memory and CPU time (for the
// tests and the soak run, which check that a server gives back what it took).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include <sys/types.h>

namespace muxkit::test {

std::vector<pid_t> children_of(pid_t parent, bool zombies_only = false);
std::size_t open_fds(pid_t pid);
std::uint64_t rss_bytes(pid_t pid);
double cpu_seconds(pid_t pid);  // user + system

}  // namespace muxkit::test
