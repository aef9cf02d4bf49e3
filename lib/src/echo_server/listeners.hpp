// Pieces shared by the multiplexed and the fork echo servers (private to the library).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "muxkit/echo_server.hpp"
#include "muxkit/fd.hpp"

namespace muxkit::detail {

struct Listener {
    Fd fd;
    Endpoint endpoint;
    std::string unix_path;  // removed when the server stops
    int loop = -1;          // the event loop that accepts on it; -1: every loop
    bool datagram = false;  // a bound UDP socket: echoed, not accepted on
};

// Binds every configured address (the first result of each name) and tells the observer. With
// several loops, a TCP address is bound once per loop with SO_REUSEPORT (the kernel spreads the
// connections); a Unix socket, which cannot be, is shared by every loop. A UDP address is a
// datagram socket per loop the same way.
std::vector<Listener> open_listeners(const EchoServerConfig& config, EchoServerObserver& observer, int loops = 1);
void remove_unix_sockets(const std::vector<Listener>& listeners) noexcept;

// The run's end (duration) and its stats lines (stats_interval), on the coordinator's clock.
class RunSchedule {
public:
    RunSchedule(const EchoServerConfig& config, std::int64_t start_ns);
    std::optional<std::int64_t> next_deadline() const;  // the sooner of the two; nullopt: neither
    bool ended(std::int64_t now) const { return end_ && now >= *end_; }
    // True when a stats line is due at now; the next one is then an interval later.
    bool stats_due(std::int64_t now);

private:
    std::optional<std::int64_t> end_, next_stats_;
    std::int64_t interval_ = 0;
};

EchoServerStats run_fork_server(const EchoServerConfig& config, EchoServerObserver& observer);

}  // namespace muxkit::detail
