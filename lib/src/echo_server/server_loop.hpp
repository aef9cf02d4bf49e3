// One event loop of the multiplexed echo server: the connection state, limits, accounting and the
// store pipe, shared by the readiness drivers (select, poll, epoll) and the completion driver
// (io_uring). A driver only decides how bytes are read and written (private to the library).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <sys/socket.h>

#include "muxkit/echo_server.hpp"
#include "muxkit/fd.hpp"
#include "muxkit/socket.hpp"
#include "muxkit/store.hpp"
#include "store/store_queue.hpp"

namespace muxkit::detail {

// What every driver keeps of a connection; a driver derives its own with the fields only it uses.
struct Connection {
    virtual ~Connection() = default;
    Fd fd;
    std::uint64_t id = 0;
    std::uint64_t bytes_in = 0, bytes_out = 0;
    std::int64_t last_active_ns = 0;
    std::string peer;     // filled when connection events or jsonl store records need it
    bool paused = false;  // not reading until the store pipe drains
    bool closed = false;  // counted as closed; the driver may still be waiting for its operations

    // Echo the socket did not take yet (bounded: at most one read's worth), and at a graceful
    // stop all that the connection is owed.
    std::vector<char> pending;
    std::size_t pending_off = 0;
    bool has_pending() const noexcept { return pending_off < pending.size(); }
};

// What the event loops share with each other and with the coordinator thread.
struct Shared {
    explicit Shared(const EchoServerConfig& c);
    const EchoServerConfig& config;
    Fd wake_read, wake_write;  // readable once the run must end; never drained, so every loop sees it
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> current{0}, peak{0}, finished{0}, next_id{0};
    StoreWriter* store = nullptr;
    std::mutex mutex;  // guards fatal and the observer's connection events
    // With several loops, held around every accept and every retaking of a spare descriptor:
    // between giving up its spare and accepting with it, a loop must not lose that descriptor
    // to another loop.
    std::mutex accept_mutex;
    bool several_loops = false;
    std::string fatal;

    void request_stop();
    void fail(const std::string& why);
    std::string fatal_reason();
    // Admits one more connection under --max-connections (shared by all loops); false: refuse it.
    bool admit();
};

// The sockets one loop serves (owned by the coordinator).
struct LoopSockets {
    std::vector<int> listeners;  // TCP and Unix: accepted on
    std::vector<int> datagram;   // UDP: each datagram echoed to its sender
};

// Distinct UDP senders (address and port), compared exactly.
class PeerSet {
public:
    bool insert(const sockaddr* from, socklen_t len);  // true: a sender not seen before
    std::size_t size() const noexcept { return keys_.size(); }

private:
    struct Key {
        std::uint64_t hi = 0, lo = 0;
        std::uint32_t port_family = 0;
        bool operator==(const Key&) const = default;
    };
    struct Hash {
        std::size_t operator()(const Key& k) const noexcept {
            return std::hash<std::uint64_t>()(k.hi * 0x9E3779B97F4A7C15ull ^ k.lo) ^ (k.port_family * 0x85EBCA6Bu);
        }
    };
    std::unordered_set<Key, Hash> keys_;
};

class ServerLoop {
public:
    ServerLoop(Shared& shared, EchoServerObserver& observer, LoopSockets sockets);
    virtual ~ServerLoop() = default;

    // Runs until the shared stop; returns this loop's counts.
    virtual EchoServerStats run() = 0;
    // The counts as of the last publish (at most 100 ms old), for stats lines from the coordinator.
    EchoServerStats published();

protected:
    // ---- what a driver provides
    virtual std::unique_ptr<Connection> new_connection() = 0;  // the driver's own Connection type
    virtual void stop_reading(Connection& c) = 0;   // store backpressure
    virtual void start_reading(Connection& c) = 0;  // the store drained
    virtual void watch_store(bool writable) = 0;    // wait for room in the store pipe, or stop waiting
    // The connection is closed and counted: stop watching it and free it (conns_[fd].reset()),
    // now or once the operations the driver has in flight for it are done.
    virtual void retire(Connection& c) = 0;
    virtual void stop_accepting() = 0;   // for a while: out of descriptors or memory
    virtual void start_accepting() = 0;  // again

    // ---- the shared state machine
    // Counts and registers an accepted connection; nullptr when a limit refused (and closed) it.
    Connection* admit(Fd fd);
    void received(Connection& c, const char* data, std::size_t len);  // counts and stores
    void sent(Connection& c, std::size_t len);
    void echoed_all(Connection& c);  // nothing left to echo: the connection is active again
    void close_connection(Connection& c, std::string_view reason);
    void fail(Connection& c, int err);
    bool store_full() const noexcept;
    void pause(Connection& c);
    void on_store_ready(bool broken);
    // Housekeeping after each wait: idle timeout, paused listeners, publishing counts.
    void tick(std::int64_t now);
    std::optional<std::int64_t> next_deadline() const;
    void begin();
    // At a graceful stop, once the driver has no operation in flight and c.pending holds all
    // that each connection is owed: sends it, shuts down the write side, takes what the client
    // still sends (stored, counted unsent) until its EOF or until it has acknowledged
    // everything, then closes. What the drain timeout leaves is counted unsent and reset.
    void drain_connections();
    // At the end of the run: every received byte reaches the store pipe.
    void drain_store();
    bool failed() { return store_failed_ || !shared_.fatal_reason().empty(); }
    // Refuses one pending connection when out of descriptors, with the spare one; false: pause.
    bool refuse_with_spare(int listen_fd);
    // Stops accepting for 100 ms (tick() starts again) instead of spinning on a failing accept.
    void pause_listeners();

    // ---- UDP
    // A datagram of len bytes arrived from `from`; truncated: it was longer than the buffer (len is
    // its real length). Counts it (and a new sender); true when it is to be echoed.
    bool datagram_received(const sockaddr* from, socklen_t from_len, std::size_t len, bool truncated);
    void datagram_sent(std::size_t len);
    void datagram_dropped(int err);  // not echoed: the socket was full (EAGAIN) or the send failed
    void count_overflows();          // what the kernel dropped on our sockets, as of now
    // Bytes of each datagram buffer: a datagram longer than --buffer-size is truncated (and
    // dropped); none is longer than 64 KiB.
    std::size_t datagram_buffer_size() const noexcept;

    const EchoServerConfig& config_;
    EchoServerObserver& observer_;
    Shared& shared_;
    std::vector<int> listeners_;  // owned by the coordinator
    std::vector<int> datagram_sockets_;  // owned by the coordinator
    StoreWriter* store_;          // owned by the coordinator; its pipe is shared by every loop
    std::vector<std::unique_ptr<Connection>> conns_;  // by descriptor
    EchoServerStats stats_;
    std::optional<std::int64_t> listeners_paused_until_;
    // Given up to accept-and-close on EMFILE. Made with the loop, before any loop accepts: one
    // that started first could otherwise take every descriptor.
    SpareFd spare_;
    bool stop_ = false;

private:
    void store_received(Connection& c, const char* data, std::size_t len);
    void store_failed();
    void resume_paused();
    void close_idle(std::int64_t now);
    std::int64_t idle_scan_period() const;

    StoreEncoder encoder_;
    StoreQueue store_queue_;
    bool store_failed_ = false;
    std::vector<int> paused_;  // connections waiting for the store to drain
    std::mutex published_mutex_;
    EchoServerStats published_;
    std::int64_t next_publish_ns_ = 0;
    std::optional<std::int64_t> next_idle_scan_ns_;
    PeerSet peers_;
};

// The drivers: select, poll, epoll and epoll-et (readiness_loop.cpp), io_uring (uring_loop.cpp,
// whose run() throws RuntimeError with the reason when io_uring is unavailable).
std::unique_ptr<ServerLoop> make_readiness_loop(Shared& shared, EchoServerObserver& observer, LoopSockets sockets);
std::unique_ptr<ServerLoop> make_uring_loop(Shared& shared, EchoServerObserver& observer, LoopSockets sockets);

}  // namespace muxkit::detail
