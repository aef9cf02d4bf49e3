// run_echo_server: echoes every byte back to every client, multiplexed (select, poll, epoll,
// epoll-et, io_uring) or with one process per connection (fork).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "muxkit/address.hpp"
#include "muxkit/error.hpp"
#include "muxkit/model.hpp"
#include "muxkit/store.hpp"
#include "muxkit/units.hpp"

namespace muxkit {

struct EchoServerConfig {
    std::vector<Address> addresses;
    Model model = Model::epoll;  // any that Feature::echo_server takes
    std::size_t buffer_size = 16 * 1024;  // bytes per read; also the per-connection backlog cap
    std::uint64_t max_connections = 65536;
    std::optional<Duration> idle_timeout;
    std::optional<Duration> duration;
    std::optional<Duration> stats_interval;
    std::uint64_t max_clients = 0;  // 0: no limit
    int backlog = 4096;
    unsigned threads = 1;  // event loops, one per thread (multiplexed models only)
    std::optional<StoreConfig> store;  // keep every received byte in a file, through a writer process
    // At a graceful stop, how long each connection gets to take the echo it is owed.
    Duration drain_timeout = std::chrono::seconds(2);
    // The run ends, as at a stop, once this descriptor reports an error or a hangup: the caller's
    // output, whose reader may go away between two lines. -1: none.
    int output_fd = -1;
};

struct EchoServerStats {
    std::uint64_t accepted = 0;  // connections served
    std::uint64_t refused_max_connections = 0, refused_fd_setsize = 0, refused_emfile = 0, refused_fork_failed = 0;
    std::uint64_t current = 0, peak = 0;
    std::uint64_t finished = 0;  // served connections that have ended
    std::uint64_t idle_closed = 0;
    std::uint64_t bytes_in = 0, bytes_out = 0;
    // Received but never echoed: owed when the drain timeout ran out (or the echo was still
    // unacknowledged then and so reset), or read during the drain. in = out + unsent.
    std::uint64_t bytes_unsent = 0;
    ErrorCounts errors;
    std::uint64_t store_bytes = 0, store_records = 0;
    // UDP: datagrams in = out + dropped; a truncated one (larger than --buffer-size) is dropped,
    // never echoed short, and its bytes are not counted. overflowed: dropped by the kernel, its
    // receive queue full, before the server could read them. peers: distinct source addresses.
    struct Datagrams {
        std::uint64_t in = 0, out = 0, truncated = 0, dropped = 0, overflowed = 0;
    } datagrams;
    std::uint64_t peers = 0;
    double duration_s = 0;

    std::uint64_t refused() const noexcept {
        return refused_max_connections + refused_fd_setsize + refused_emfile + refused_fork_failed;
    }
    // Adds another loop's counts; current, peak, finished and duration_s are the caller's to set.
    void merge(const EchoServerStats& part);
};

struct ConnectionEvent {
    enum class Kind { opened, closed, peer } kind;  // peer: the first datagram from a UDP sender
    std::uint64_t id;
    std::string peer;
    std::uint64_t bytes_in = 0, bytes_out = 0;
    std::string reason;  // closed: "eof", "idle", "stop", or an errno name
};

/// How the server tells its caller what happens; the default does nothing.
/// Threads: on_listening on the thread that called run_echo_server, before any connection;
/// on_stats on that thread too (the coordinator); on_connection on the event loop's thread that
/// served the connection: with --threads, from several threads, one at a time (under a lock).
/// The fork model calls everything from the calling thread.
class EchoServerObserver {
public:
    virtual ~EchoServerObserver() = default;
    virtual void on_listening(const std::string& address, Model model) { (void)address, (void)model; }
    // Once every address is bound, before any connection: each as its listening line names it.
    virtual void on_ready(const std::vector<std::string>& addresses) { (void)addresses; }
    virtual void on_stats(const EchoServerStats& stats) { (void)stats; }
    /// Asked once, before the loops start; connection events cost a getpeername per connection
    /// (and, for UDP, one event per new sender).
    virtual bool wants_connection_events() const { return false; }
    virtual void on_connection(const ConnectionEvent& event) { (void)event; }
};

// Runs until SIGINT/SIGTERM, the duration, or max_clients; returns the final counts.
// Throws SystemError/RuntimeError when it cannot start (cannot listen, ...) and RuntimeError
// when the store writer dies (after closing every client): data is never lost silently.
EchoServerStats run_echo_server(const EchoServerConfig& config, EchoServerObserver& observer);

}  // namespace muxkit
