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
};

// Binds every configured address (the first result of each name) and tells the observer.
std::vector<Listener> open_listeners(const EchoServerConfig& config, EchoServerObserver& observer);
void remove_unix_sockets(const std::vector<Listener>& listeners) noexcept;

EchoServerStats run_fork_server(const EchoServerConfig& config, EchoServerObserver& observer);

}  // namespace muxkit::detail
