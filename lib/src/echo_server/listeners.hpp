// Pieces shared by the multiplexed and the fork echo servers (private to the library).
#pragma once

#include <vector>

#include "muxkit/echo_server.hpp"
#include "muxkit/fd.hpp"

namespace muxkit::detail {

struct Listener {
    Fd fd;
    Endpoint endpoint;
    std::string unix_path;  // removed when the server stops
    int loop = -1;          // the event loop that accepts on it; -1: every loop
};

// Binds every configured address (the first result of each name) and tells the observer. With
// several loops, a TCP address is bound once per loop with SO_REUSEPORT (the kernel spreads the
// connections); a Unix socket, which cannot be, is shared by every loop.
std::vector<Listener> open_listeners(const EchoServerConfig& config, EchoServerObserver& observer, int loops = 1);
void remove_unix_sockets(const std::vector<Listener>& listeners) noexcept;

EchoServerStats run_fork_server(const EchoServerConfig& config, EchoServerObserver& observer);

}  // namespace muxkit::detail
