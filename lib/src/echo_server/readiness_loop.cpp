// The readiness driver of the echo server (select, poll, epoll, epoll-et): waits until a
// descriptor is ready, then reads and writes it without blocking.
#include <algorithm>
#include <cerrno>
#include <memory>

#include <sys/socket.h>

#include "echo_server/server_loop.hpp"
#include "muxkit/clock.hpp"
#include "muxkit/event_loop.hpp"
#include "muxkit/io.hpp"
#include "muxkit/socket.hpp"

namespace muxkit::detail {

namespace {

enum class Role : std::uint8_t { none, connection, listener, datagram, wake, store };

// The readiness driver (select, poll, epoll, epoll-et): waits until a descriptor is ready, then
// reads and writes it without blocking.
// Edge-triggered epoll stops reading a connection before EAGAIN (fairness) and must come back.
struct ReadinessConnection final : Connection {
    bool more_to_read = false;
};

class ReadinessLoop final : public ServerLoop {
public:
    ReadinessLoop(Shared& shared, EchoServerObserver& observer, LoopSockets sockets)
        : ServerLoop(shared, observer, std::move(sockets)), loop_(EventLoop::create(config_.model)),
          edge_(loop_->edge_triggered()), buffer_(std::max<std::size_t>(config_.buffer_size, 1)) {
        if (!datagram_sockets_.empty()) batch_ = std::make_unique<DatagramBatch>(datagram_buffer_size());
    }

    EchoServerStats run() override {
        begin();
        if (store_) watch(store_->write_fd(), Role::store, 0);
        watch(shared_.wake_read.get(), Role::wake);
        for (int fd : listeners_) watch(fd, Role::listener);
        for (int fd : datagram_sockets_) watch(fd, Role::datagram);
        while (!stop_) {
            for (const Event& ev : loop_->wait(again_.empty() ? next_deadline() : std::optional<std::int64_t>(0))) dispatch(ev);
            read_again();
            tick(now_ns());
        }
        if (!failed()) drain_connections();
        for (auto& c : conns_)
            if (c) close_connection(*c, "store failed");
        drain_store();
        count_overflows();
        return stats_;
    }

private:
    // Every connection of this loop is one it made (new_connection).
    static ReadinessConnection& as_readiness(Connection& c) { return static_cast<ReadinessConnection&>(c); }
    ReadinessConnection* conn(int fd) const { return static_cast<ReadinessConnection*>(conns_[static_cast<std::size_t>(fd)].get()); }

    void watch(int fd, Role role, std::uint32_t interest = kReadable) {
        if (static_cast<std::size_t>(fd) >= roles_.size()) roles_.resize(static_cast<std::size_t>(fd) + 1, Role::none);
        roles_[fd] = role;
        if (role == Role::connection && edge_) interest |= kWritable;  // registered once; never modified
        loop_->add(fd, interest);
    }

    void dispatch(const Event& ev) {
        if (static_cast<std::size_t>(ev.fd) >= roles_.size()) return;
        switch (roles_[ev.fd]) {
        case Role::wake: stop_ = true; break;
        case Role::listener: on_listener(ev.fd); break;
        case Role::datagram: echo_datagrams(ev.fd); break;
        case Role::connection: on_connection(*conn(ev.fd), ev.events); break;
        case Role::store: on_store_ready((ev.events & (kError | kHangup)) != 0); break;
        case Role::none: break;
        }
    }

    // ---- driver hooks

    std::unique_ptr<Connection> new_connection() override { return std::make_unique<ReadinessConnection>(); }

    void stop_reading(Connection& c) override {
        if (!edge_) loop_->modify(c.fd.get(), 0);
    }

    void start_reading(Connection& c) override {
        if (!edge_) loop_->modify(c.fd.get(), c.has_pending() ? kWritable : kReadable);
        else if (!c.has_pending()) read_and_echo(as_readiness(c));
    }

    void watch_store(bool writable) override { loop_->modify(store_->write_fd(), writable ? std::uint32_t{kWritable} : 0u); }

    void retire(Connection& c) override {
        const int fd = c.fd.get();
        loop_->remove(fd);
        roles_[fd] = Role::none;
        conns_[fd].reset();  // closes the descriptor
    }

    void stop_accepting() override {
        for (int fd : listeners_) loop_->remove(fd);
    }

    void start_accepting() override {
        for (int fd : listeners_) loop_->add(fd, kReadable);
    }

    // ---- accepting

    void on_listener(int lfd) {
        std::unique_lock lock(shared_.accept_mutex, std::defer_lock);
        if (shared_.several_loops) lock.lock();
        for (int i = 0; i < 256; ++i) {  // bounded so a flood of connects cannot starve the clients
            Accepted a = accept_connection(lfd);
            if (!a.err) {
                if (!loop_->can_watch(a.fd.get())) {
                    ++stats_.refused_fd_setsize;
                    continue;
                }
                if (Connection* c = admit(std::move(a.fd))) watch(c->fd.get(), Role::connection);
                continue;
            }
            switch (a.err) {
            case EAGAIN: return;
            case EMFILE:
            case ENFILE:
                if (refuse_with_spare(lfd)) continue;
                pause_listeners();
                return;
            case ECONNABORTED:
            case EPROTO:
            case EPERM: stats_.errors.add(a.err); continue;
            default:
                stats_.errors.add(a.err);
                pause_listeners();  // ENOBUFS, ENOMEM: back off instead of spinning
                return;
            }
        }
    }

    // ---- echoing

    void on_connection(ReadinessConnection& c, std::uint32_t events) {
        if (events & kWritable) {
            if (c.has_pending() && !flush(c)) return;
        }
        if (events & (kReadable | kHangup | kError)) {
            if (c.has_pending()) c.more_to_read = true;  // edge-triggered: come back after the flush
            else read_and_echo(c, (events & (kHangup | kError)) != 0);
        }
    }

    // Reads and echoes; level-triggered reads once per wake-up (fair), edge-triggered until EAGAIN.
    // Returns false when the connection was closed.
    // A connection that hung up is read even past the store's high-water mark (poll would
    // report the hangup again and again otherwise); what it can still send is bounded.
    bool read_and_echo(ReadinessConnection& c, bool hung_up = false) {
        for (int reads = 0;; ++reads) {
            if (edge_ && reads == kReadsPerTurn) {
                // A client that always has more would keep the others waiting: come back to it
                // after the other ready descriptors had their turn.
                c.more_to_read = true;
                again_.push_back(c.fd.get());
                return true;
            }
            if (store_full() && !hung_up) {
                pause(c);  // backpressure: the disk is slower than the clients
                return true;
            }
            IoResult r = read_some(c.fd.get(), buffer_.data(), buffer_.size());
            if (r.n > 0) {
                received(c, buffer_.data(), static_cast<std::size_t>(r.n));
                if (!echo(c, buffer_.data(), static_cast<std::size_t>(r.n))) return false;
                if (c.has_pending()) {
                    c.more_to_read = true;
                    return true;
                }
                if (!edge_) return true;
                continue;
            }
            if (r.n == 0) {  // the client half-closed and everything it sent is echoed
                close_connection(c, "eof");
                return false;
            }
            if (r.would_block()) {
                c.more_to_read = false;
                return true;
            }
            fail(c, r.err);
            return false;
        }
    }

    bool echo(ReadinessConnection& c, const char* data, std::size_t len) {
        IoResult w = send_some(c.fd.get(), data, len);
        std::size_t n = 0;
        if (w.failed()) {
            if (!w.would_block()) {
                fail(c, w.err);
                return false;
            }
        } else {
            n = static_cast<std::size_t>(w.n);
        }
        sent(c, n);
        if (n < len) {
            // Keep the rest and stop reading until it is gone: backpressure, bounded memory.
            c.pending.assign(data + n, data + len);
            c.pending_off = 0;
            if (!edge_) loop_->modify(c.fd.get(), kWritable);
        }
        return true;
    }

    bool flush(ReadinessConnection& c) {
        while (c.has_pending()) {
            IoResult w = send_some(c.fd.get(), c.pending.data() + c.pending_off, c.pending.size() - c.pending_off);
            if (w.failed()) {
                if (w.would_block()) return true;
                fail(c, w.err);
                return false;
            }
            c.pending_off += static_cast<std::size_t>(w.n);
            sent(c, static_cast<std::size_t>(w.n));
        }
        c.pending.clear();
        c.pending_off = 0;
        echoed_all(c);
        if (!edge_) {
            loop_->modify(c.fd.get(), kReadable);
            return true;
        }
        if (c.more_to_read) return read_and_echo(c);
        return true;
    }

    // Edge-triggered: connections that stopped reading before EAGAIN to be fair to the others.
    void read_again() {
        if (again_.empty()) return;
        std::vector<int> fds;
        fds.swap(again_);
        for (int fd : fds) {
            if (roles_[fd] == Role::datagram) echo_datagrams(fd);
            else if (ReadinessConnection* c = conn(fd); c && !c->closed && c->more_to_read && !c->has_pending() && !c->paused)
                read_and_echo(*c);
        }
    }

    // ---- UDP: a batch of datagrams in with one recvmmsg, their echoes out with one sendmmsg

    struct DatagramBatch {
        static constexpr unsigned kSize = 32;
        explicit DatagramBatch(std::size_t slot) : slot_size(slot), data(slot * kSize) {
            for (unsigned i = 0; i < kSize; ++i) iov[i] = {data.data() + i * slot, slot};
        }
        std::size_t slot_size;
        std::vector<char> data;
        iovec iov[kSize];
        sockaddr_storage from[kSize];
        mmsghdr in[kSize], out[kSize];
    };

    // Reads batches until the socket is empty, a few per wake-up (edge-triggered: comes back).
    void echo_datagrams(int fd) {
        DatagramBatch& b = *batch_;
        for (int turn = 0; turn < kReadsPerTurn / 4; ++turn) {
            for (unsigned i = 0; i < DatagramBatch::kSize; ++i) {
                b.iov[i].iov_len = b.slot_size;
                b.in[i] = {};
                b.in[i].msg_hdr.msg_name = &b.from[i];
                b.in[i].msg_hdr.msg_namelen = sizeof b.from[i];
                b.in[i].msg_hdr.msg_iov = &b.iov[i];
                b.in[i].msg_hdr.msg_iovlen = 1;
            }
            const int n = ::recvmmsg(fd, b.in, DatagramBatch::kSize, MSG_DONTWAIT | MSG_TRUNC, nullptr);
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno != EAGAIN) stats_.errors.add(errno);  // not a connection's: the socket stays
                return;
            }
            unsigned echoes = 0;
            for (int i = 0; i < n; ++i) {
                msghdr& h = b.in[i].msg_hdr;
                const bool truncated = (h.msg_flags & MSG_TRUNC) != 0;
                if (!datagram_received(static_cast<sockaddr*>(h.msg_name), h.msg_namelen, b.in[i].msg_len, truncated)) continue;
                b.iov[i].iov_len = b.in[i].msg_len;  // the echo is exactly what came: never larger
                b.out[echoes++].msg_hdr = {h.msg_name, h.msg_namelen, &b.iov[i], 1, nullptr, 0, 0};
            }
            send_echoes(fd, echoes);
            if (static_cast<unsigned>(n) < DatagramBatch::kSize) return;
        }
        if (edge_) again_.push_back(fd);
    }

    void send_echoes(int fd, unsigned count) {
        DatagramBatch& b = *batch_;
        for (unsigned i = 0; i < count;) {
            const int k = ::sendmmsg(fd, b.out + i, count - i, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (k > 0) {
                for (int j = 0; j < k; ++j) datagram_sent(b.out[i + j].msg_hdr.msg_iov->iov_len);
                i += static_cast<unsigned>(k);
                continue;
            }
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {  // the socket's buffer is full: the rest are dropped, as a router would
                for (; i < count; ++i) datagram_dropped(0);
                return;
            }
            datagram_dropped(errno);  // this one (unreachable network, ...); the others still go
            ++i;
        }
    }

    static constexpr int kReadsPerTurn = 16;
    std::unique_ptr<EventLoop> loop_;
    bool edge_;
    std::vector<int> again_;
    std::vector<char> buffer_;  // one read buffer shared by every connection of this loop
    std::vector<Role> roles_;   // by descriptor
    std::unique_ptr<DatagramBatch> batch_;  // with UDP sockets only
};

}  // namespace

std::unique_ptr<ServerLoop> make_readiness_loop(Shared& shared, EchoServerObserver& observer, LoopSockets sockets) {
    return std::make_unique<ReadinessLoop>(shared, observer, std::move(sockets));
}

}  // namespace muxkit::detail
