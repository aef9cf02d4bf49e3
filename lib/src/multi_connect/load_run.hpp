// One thread of the load client: the logic of a load (when to connect, which bytes to send when,
// verification of every reply byte, round trips, timeouts, failure accounting), shared by the
// readiness driver (select, poll, epoll) and the completion driver (io_uring) (private to the
// library). Every mode is one state machine: echo is request with the reply equal to the request,
// and connect is a connection that sends nothing and is closed after its hold.
#pragma once

#include <cerrno>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include "muxkit/address.hpp"
#include "muxkit/fd.hpp"
#include "muxkit/multi_connect.hpp"
#include "muxkit/signals.hpp"

namespace muxkit::detail {

constexpr std::size_t kChunk = 64 * 1024;         // bytes per read or write call
constexpr std::uint64_t kMaxInFlight = 1u << 24;  // messages in flight in one run: 128 MiB of send times

enum class ConnState : std::uint8_t { waiting, connecting, open, draining, done };

// Where a connection failed, for failures_by_phase.
enum class Phase : std::uint8_t { connect, send, receive };

struct LoadConn {
    Fd fd;
    std::uint32_t index = 0;  // in this thread's connections
    ConnState state = ConnState::waiting;
    bool recv_bad = false;
    std::uint32_t attempt = 0;        // connects made on this slot (a hold set for an earlier one is stale)
    std::int64_t connect_start = 0;   // when the connect began (for --connect-timeout)
    std::int64_t connect_from = 0;    // what connect_us counts from: when it was due, with --rate
    std::int64_t last_progress = 0;
    std::uint64_t send_seq = 0;  // the message being (or next to be) sent
    std::size_t send_off = 0;    // bytes of it sent so far
    std::uint64_t recv_seq = 0;  // the message being received
    std::size_t recv_off = 0;
    std::unique_ptr<std::int64_t[]> started;  // send (or due) time, by seq % pipeline (UDP: % the ring)
    std::unique_ptr<std::int64_t[]> sent;     // with --rate: when each really went out
    // UDP: recv_seq is the oldest datagram neither back nor lost; the state of each since, by
    // seq % the ring.
    std::unique_ptr<std::uint8_t[]> datagrams;
    std::uint64_t outstanding = 0;  // UDP: sent, neither back nor lost
    std::uint64_t highest_back = 0;
    bool any_back = false;

    std::uint64_t in_flight() const noexcept {
        return datagrams ? outstanding : send_seq - recv_seq + (send_off > 0 ? 1 : 0);
    }
    bool live() const noexcept { return state == ConnState::open || state == ConnState::draining; }  // still receiving
};

// The connections [first, first + count) of the whole load, with this share of --rate and
// --connect-rate; interval and progress reports go to the observer given.
struct LoadSlice {
    std::uint64_t first = 0, count = 0;
    double share = 1.0;
};

class LoadRun {
public:
    LoadRun(const LoadConfig& config, LoadObserver& observer, LoadSlice slice);
    virtual ~LoadRun() = default;
    LoadStats run();

protected:
    // ---- what a driver provides
    virtual void setup() = 0;
    virtual void wait_and_dispatch(std::optional<std::int64_t> deadline) = 0;
    // Starts connecting c (begin_connect has done the accounting); calls established() when
    // connected, fail() when not.
    virtual void open(LoadConn& c, std::int64_t now) = 0;
    virtual void pump(LoadConn& c, std::int64_t now) = 0;  // sends what is due
    virtual void release(LoadConn& c) = 0;                // stops watching c and closes its socket
    // The run is over: shut down c's write side (at once, or once a send in flight ends) and
    // keep receiving what is still on its way.
    virtual void half_close(LoadConn& c) = 0;
    virtual void finish() {}                              // after the last connection is closed
    bool datagram() const noexcept { return datagram_; }
    // The outcome of a connect was this error, yet its handshake completed: the server accepted,
    // then reset it (a refused handshake is ECONNREFUSED). One answer whenever the reset landed:
    // connected, then reset.
    static bool reset_after_handshake(int err) noexcept { return err == ECONNRESET; }
    // UDP: room for every echo in flight on one socket (the kernel counts each with its overhead).
    std::size_t datagram_receive_room() const noexcept { return window_ * (size_ + 1024); }

    // ---- the shared logic
    bool connect_mode() const noexcept { return cfg_.mode == LoadMode::connect; }
    void established(LoadConn& c, std::int64_t now);
    // The driver closed c's socket: in connect mode the slot is free for the next connect.
    void released(LoadConn& c);
    // Verifies and counts reply bytes; false when that closed the connection.
    bool consume(LoadConn& c, const char* data, std::size_t n, std::int64_t now);
    // Writes the bytes due next on c into dst (at most cap, across message boundaries) and marks
    // the messages started; 0 when nothing is due.
    std::size_t next_bytes(LoadConn& c, std::int64_t now, char* dst, std::size_t cap);
    void bytes_sent(LoadConn& c, std::size_t n);  // the socket took n of them
    // c failed in phase (err 0: the server closed it, unless kind says otherwise); counted once,
    // then closed.
    void fail(LoadConn& c, Phase phase, int err, std::optional<LoadFailure::Kind> kind = std::nullopt);
    // The server closed c: a failure while echoes are due, the normal end while draining.
    void peer_closed(LoadConn& c);
    void ended_before_hold(LoadConn& c, int err);
    void close(LoadConn& c);
    bool stopping() const noexcept;
    void on_signal();

    // ---- UDP: one message is one datagram, matched to its echo by sequence number
    // Writes the next datagram due on c into dst (cap >= its size); 0 when none is due.
    std::size_t next_datagram(LoadConn& c, std::int64_t now, char* dst);
    void datagram_sent(LoadConn& c);  // the socket took it
    // An echo arrived: got bytes of it in data, real its real length (longer: it was cut to fit).
    void datagram_arrived(LoadConn& c, const char* data, std::size_t got, std::size_t real, std::int64_t now);
    // A send or receive error on c's socket: ECONNREFUSED (an ICMP port unreachable) is counted,
    // anything else fails the connection.
    void datagram_error(LoadConn& c, Phase phase, int err);

    const LoadConfig& cfg_;
    LoadObserver& observer_;
    SignalPipe& signals_;
    const LoadSlice slice_;
    const std::size_t size_;      // bytes of each request
    const std::size_t reply_size_;  // bytes of each reply (0: whatever arrives first)
    const bool mirrored_;         // echo: a reply byte is due only once the same request byte was sent
    const std::uint64_t limit_;   // messages per connection
    const std::uint64_t window_;  // messages in flight per connection, at most
    const bool datagram_;         // a udp: target
    std::uint64_t ring_ = 1;      // UDP: datagrams tracked per connection (a power of two)
    std::vector<LoadConn> conns_;
    Endpoint endpoint_;
    LoadStats total_, interval_;
    bool finished_ = false;

private:
    std::int64_t scan_period() const;
    std::optional<std::int64_t> next_deadline() const;
    std::int64_t connect_due(std::uint64_t i) const;
    const std::optional<double>& connect_pace() const noexcept;
    std::int64_t message_due(std::uint64_t m) const;
    std::uint64_t total_messages() const;
    std::uint64_t due_for(const LoadConn& c) const;
    void start_due_connections(std::int64_t now);
    bool all_started() const noexcept { return started_ == attempts_; }
    void begin_connect(LoadConn& c, std::int64_t now, std::int64_t from);
    void end_holds(std::int64_t now);
    void fail_connecting();
    void issue_due_messages(std::int64_t now);
    void scan_timeouts(std::int64_t now);
    void drain();
    void unanswered_at_end(LoadConn& c, std::int64_t now);
    LoadFailure failure(LoadFailure::Kind kind, const LoadConn& c) const;
    void report(LoadFailure f);
    void mismatch(const LoadConn& c, const char* got, std::size_t n, std::size_t shown, bool unasked);
    bool complete_reply(LoadConn& c, std::int64_t now);
    void record_round_trip(const LoadConn& c, std::size_t slot, std::int64_t now);
    void request_bytes(const LoadConn& c, std::uint64_t seq, std::size_t off, char* dst, std::size_t len) const;
    void reply_bytes(const LoadConn& c, std::uint64_t seq, std::size_t off, char* dst, std::size_t len) const;
    LoadStats snapshot(std::int64_t now);
    void scan_datagrams(LoadConn& c, std::int64_t now);
    std::optional<std::uint64_t> datagram_seq(const LoadConn& c, const char* data, std::size_t got) const;
    void datagram_mismatch(const LoadConn& c, std::uint64_t seq, const char* got, std::size_t n);
    bool datagram_done(LoadConn& c);
    void reply_datagram(const LoadConn& c, std::uint64_t seq);  // into ebuf_

    std::vector<char> ebuf_;
    std::int64_t start_ = 0, next_scan_ = 0, next_progress_ = 0;
    std::optional<std::int64_t> end_, next_interval_;
    std::uint64_t started_ = 0, active_ = 0, issued_ = 0;
    std::uint64_t attempts_ = 0;       // connects to make: one per slot, or -n per slot in connect mode
    std::vector<std::uint32_t> free_;  // slots with no connection, the next one to use last
    struct Hold {
        std::int64_t until;
        std::uint32_t index, attempt;
    };
    std::deque<Hold> holds_;  // connect mode: in the order they end (every hold is as long)
    bool draining_ = false;
};

// UDP: datagrams tracked per connection for this many in flight of this size.
std::uint64_t datagram_ring(std::uint64_t window, std::size_t size);

std::unique_ptr<LoadRun> make_readiness_load(const LoadConfig& config, LoadObserver& observer, LoadSlice slice);
std::unique_ptr<LoadRun> make_uring_load(const LoadConfig& config, LoadObserver& observer, LoadSlice slice);

}  // namespace muxkit::detail
