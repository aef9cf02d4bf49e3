// LoadClient: many concurrent connections from one thread that send messages, verify every echoed
// byte, and measure connect time and round trips; plus the interactive line-echo client.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "muxkit/address.hpp"
#include "muxkit/error.hpp"
#include "muxkit/histogram.hpp"
#include "muxkit/units.hpp"

namespace muxkit {

enum class ClientModel { select, poll, epoll, io_uring };

std::string_view client_model_name(ClientModel m) noexcept;
ClientModel parse_client_model(std::string_view text);  // throws UsageError

struct LoadConfig {
    Address target;
    ClientModel model = ClientModel::epoll;
    unsigned threads = 1;  // event loops, one per thread, each with its share of the connections
    std::uint64_t connections = 1;
    std::uint64_t messages = 1;       // per connection; ignored with duration
    std::optional<Duration> duration;  // run for this long instead of a message count
    std::size_t size = 64;             // message size (the payload's size when one is given)
    std::uint64_t pipeline = 1;        // messages in flight per connection
    std::optional<double> rate;        // total messages per second, open loop
    std::optional<double> connect_rate;
    Duration connect_timeout = std::chrono::seconds(5);
    Duration reply_timeout = std::chrono::seconds(5);
    std::optional<Duration> interval;
    std::string payload;  // empty: a pattern carrying connection and sequence numbers
    bool verify = true;
};

struct LoadStats {
    std::uint64_t requested = 0, established = 0, failed = 0, completed = 0;
    std::uint64_t sent = 0, received = 0, verify_failures = 0, timeouts = 0, lost = 0, in_flight = 0;
    std::uint64_t bytes_sent = 0, bytes_received = 0;
    // Failures by phase.
    std::uint64_t failed_connect = 0, failed_send = 0, failed_receive = 0;
    ErrorCounts errors;
    std::uint64_t unexpected_eof = 0;  // the server closed while messages were due
    Histogram connect_ns, rtt_ns;
    double duration_s = 0;

    // Everything that counts against --max-failures.
    std::uint64_t failures() const noexcept { return failed + verify_failures + timeouts; }
};

class LoadObserver {
public:
    virtual ~LoadObserver() = default;
    // Every config.interval: the counts and round trips of that interval alone.
    virtual void on_interval(const LoadStats& interval, double t_end_s) { (void)interval, (void)t_end_s; }
    // About once a second: the totals so far (for a progress line).
    virtual void on_progress(const LoadStats& total) { (void)total; }
};

// The default pattern: byte offset of message seq on connection conn (what the echo must carry).
void fill_pattern(std::uint32_t conn, std::uint64_t seq, std::size_t offset, char* dst, std::size_t len) noexcept;

// Throws UsageError for impossible settings (select past FD_SETSIZE), RuntimeError/SystemError
// when it cannot run (host does not resolve, descriptor limit too low).
LoadStats run_load(const LoadConfig& config, LoadObserver& observer);

struct InteractiveResult {
    std::uint64_t bytes_sent = 0, bytes_received = 0;
    bool complete = false;  // every byte sent came back before the server closed
};
// Sends what arrives on in_fd, writes the echo to out_fd; at EOF on in_fd half-closes and waits
// for the rest of the echo (at most reply_timeout of silence).
InteractiveResult run_interactive(const Address& target, int in_fd, int out_fd, Duration connect_timeout,
                                  Duration reply_timeout);

}  // namespace muxkit
