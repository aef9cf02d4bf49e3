// run_load: many concurrent connections per thread that connect, send requests, verify every
// reply byte, and measure connect times and round trips; run_interactive: the line-echo client.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "muxkit/address.hpp"
#include "muxkit/error.hpp"
#include "muxkit/histogram.hpp"
#include "muxkit/model.hpp"
#include "muxkit/units.hpp"

namespace muxkit {

// What each connection does. echo: every message must come back byte for byte. request: each
// message is the payload and its reply is the expectation (or, with none, whatever arrives first).
// connect: connect, hold, close, connect again; no byte is sent.
enum class LoadMode : std::uint8_t { echo, connect, request };

std::string_view load_mode_name(LoadMode mode) noexcept;

struct LoadConfig {
    Address target;
    LoadMode mode = LoadMode::echo;
    Model model = Model::epoll;  // any that Feature::multi_connect takes
    unsigned threads = 1;  // event loops, one per thread, each with its share of the connections
    std::uint64_t connections = 1;
    std::uint64_t messages = 1;       // per connection (connect mode: connects per slot); ignored with duration
    std::optional<Duration> duration;  // run for this long instead of a message count
    std::size_t size = 64;             // message size (the payload's size when one is given)
    std::uint64_t pipeline = 1;        // messages in flight per connection
    std::optional<double> rate;        // total messages (connect mode: connects) per second, open loop
    std::optional<double> connect_rate;
    Duration connect_timeout = std::chrono::seconds(5);
    Duration reply_timeout = std::chrono::seconds(5);
    std::optional<Duration> interval;
    std::string payload;  // empty: a pattern carrying connection and sequence numbers (echo mode)
    std::optional<std::string> expect;  // request mode: the reply to each request (none: the first bytes)
    Duration hold{0};                   // connect mode: how long each connection stays open
    bool allow_early_close = false;     // connect mode: a peer closing a held connection early is no failure
    bool verify = true;
};

// One failed connection or message: what -v reports, and the sample a hint is made from.
struct LoadFailure {
    enum class Kind : std::uint8_t {
        connect,   // the connect was refused, failed or timed out (err)
        send,      // a send failed (err)
        receive,   // a receive failed, e.g. reset (err)
        closed,    // the server closed while replies were due
        timeout,   // no reply within --reply-timeout
        mismatch,  // the reply differs from the one expected (offset, excerpts)
        early_reply,  // request mode: a reply came while the request was still being written (offset: bytes written)
        hold,         // connect mode: the server closed or reset the connection before its --hold ended (err)
    };
    static constexpr std::size_t kExcerpt = 16;  // bytes of expected and received kept from offset

    Kind kind = Kind::connect;
    std::uint64_t connection = 0;  // index in the whole load
    std::uint64_t message = 0;     // sequence number on that connection (timeout, mismatch)
    std::uint64_t messages = 1;    // timeout: messages in flight that timed out together
    int err = 0;
    std::size_t offset = 0;  // mismatch: first byte of the message that differs
    // mismatch: bytes came when no reply was due (more than --expect, or an echo of bytes never
    // sent); message is the reply they followed, messages those the connection then never sent.
    bool unasked = false;
    std::string expected, received;
};

std::string_view failure_kind_name(LoadFailure::Kind k) noexcept;

struct LoadStats {
    // requested: connections (connect mode: connects attempted); completed: connections that did
    // all their messages (connect mode: that stayed open their --hold).
    std::uint64_t requested = 0, established = 0, failed = 0, completed = 0;
    std::uint64_t sent = 0, received = 0, verify_failures = 0, timeouts = 0, lost = 0, in_flight = 0;
    // UDP (a udp: target): lost is datagrams with no echo within --reply-timeout; duplicates are
    // echoes of one already back; reordered came after a later one; late came after their
    // datagram was counted lost. verify_failures are the corrupted ones.
    std::uint64_t duplicates = 0, reordered = 0, late = 0;
    std::uint64_t bytes_sent = 0, bytes_received = 0;
    // Connections that failed, by phase (a reply timeout is counted in timeouts, not here).
    // hold: connect mode, connections the peer closed or reset before their --hold ended.
    std::uint64_t failed_connect = 0, failed_send = 0, failed_receive = 0, failed_hold = 0;
    ErrorCounts errors;
    std::uint64_t unexpected_eof = 0;  // the server closed while replies were due
    std::uint64_t early_replies = 0;   // request mode: replies before their request was written (connections failed)
    std::uint64_t negative_rtt = 0;    // replies timed before their request: a timing fault, never recorded
    // rtt_ns: request to complete reply, from when it was due under --rate; service_ns: from
    // when it was really sent (recorded under --rate only).
    Histogram connect_ns, rtt_ns, service_ns;
    double duration_s = 0;
    bool interrupted = false;  // a stop signal ended the run before its -n or --duration was done
    // The first failure, and whether every later one was of the same kind and errno.
    std::optional<LoadFailure> first_failure;
    bool failures_alike = true;

    // Everything that counts against --max-failures; each failure counts once.
    std::uint64_t failures() const noexcept {  // saturates, so no sum of failures wraps to a pass
        std::uint64_t n = 0;
        if (__builtin_add_overflow(failed, verify_failures, &n) || __builtin_add_overflow(n, timeouts, &n)) return UINT64_MAX;
        return n;
    }
    void note_failure(const LoadFailure& f);
    // Sums counts and histograms, keeps the longest duration; throws std::overflow_error when a
    // count would pass 2^64 - 1.
    void merge(const LoadStats& part);
};

/// Threads: every call comes from the thread of the load loop that saw it; with several threads,
/// from several threads, one at a time (run_load serialises them), never concurrently.
class LoadObserver {
public:
    virtual ~LoadObserver() = default;
    // Every config.interval: the counts and round trips of that interval alone.
    virtual void on_interval(const LoadStats& interval, double t_end_s) { (void)interval, (void)t_end_s; }
    // About once a second: the totals so far (for a progress line).
    virtual void on_progress(const LoadStats& total) { (void)total; }
    // Each failure as it happens, when wants_failures() (excerpts are only made then).
    virtual bool wants_failures() const { return false; }
    virtual void on_failure(const LoadFailure& failure) { (void)failure; }
};

// The default pattern: byte offset of message seq on connection conn (what the echo must carry).
void fill_pattern(std::uint32_t conn, std::uint64_t seq, std::size_t offset, char* dst, std::size_t len) noexcept;
// A UDP datagram of len bytes: the sequence number first (little-endian, its low bytes in a
// datagram shorter than 8), then the connection, then the pattern.
void fill_datagram(std::uint32_t conn, std::uint64_t seq, char* dst, std::size_t len) noexcept;

// Throws UsageError for impossible settings (select past FD_SETSIZE), RuntimeError/SystemError
// when it cannot run (host does not resolve, descriptor limit too low).
LoadStats run_load(const LoadConfig& config, LoadObserver& observer);

struct InteractiveResult {
    std::uint64_t bytes_sent = 0, bytes_received = 0;
    bool complete = false;  // every byte sent came back before the server closed
    int connect_err = 0;    // the connect failed (nothing was sent)
    int output_err = 0;     // writing the echo to out_fd failed (EPIPE: its reader went away)
};
// Sends what arrives on in_fd, writes the echo to out_fd; at EOF on in_fd half-closes and waits
// for the rest of the echo (at most reply_timeout of silence). A failed connect is a result
// (connect_err), like a failed connection of run_load.
InteractiveResult run_interactive(const Address& target, int in_fd, int out_fd, Duration connect_timeout,
                                  Duration reply_timeout);

}  // namespace muxkit
