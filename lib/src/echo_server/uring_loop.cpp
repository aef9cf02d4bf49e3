// The completion driver of the echo server: accepts, receives and sends are submitted to an
// io_uring and reaped in batches, so one system call serves many messages. Received data lands in
// buffers the ring owns (a provided-buffer ring); each is echoed from where it landed and given
// back to the ring once sent.
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include <liburing.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include "muxkit/clock.hpp"
#include "muxkit/io.hpp"
#include "echo_server/server_loop.hpp"
#include "uring/ring.hpp"

namespace muxkit::detail {

namespace {

enum class Op : std::uint32_t { accept = 1, listener_ready, recv, send, writable, wake, store, cancel, dgram_recv, dgram_send };

std::uint64_t tag(Op op, int fd) { return uring_tag(op, static_cast<std::uint32_t>(fd)); }

constexpr int kGroup = 0;

// One send at a time keeps the echo in order: it sends straight from the ring's buffer send_bid
// when nothing is pending, else from pending.
struct UringConnection final : Connection {
    std::vector<char> incoming;  // arrived while a send from pending was in flight
    int send_bid = -1;
    std::uint32_t send_len = 0, send_off = 0;
    bool receiving = false, sending = false, awaiting_room = false, eof = false, starved = false;
};

// A UDP socket: one multishot receive (one waiter on the socket, a completion per datagram)
// into the loop's ring of datagram buffers; each datagram is echoed from the buffer it landed
// in, which goes back to the ring once the send is done.
struct DatagramSocket {
    int fd = -1;
    msghdr layout{};  // what each buffer holds before the payload: the sender's address
    bool receiving = false, starved = false;
};

// A send in flight from datagram buffer bid (msghdr and iovec must outlive the submission).
struct DatagramSend {
    msghdr msg{};
    iovec iov{};
};

constexpr int kDatagramGroup = 1;

class UringLoop final : public ServerLoop {
public:
    UringLoop(Shared& shared, EchoServerObserver& observer, LoopSockets sockets)
        : ServerLoop(shared, observer, std::move(sockets)) {
        std::size_t size = std::max<std::size_t>(config_.buffer_size, 64);
        buf_size_ = static_cast<unsigned>(std::min<std::size_t>(size, 1u << 20));
        // About 4 MiB of buffers, a power of two between 64 and 4096: the ring hands them out in
        // turn, so a single busy connection touches them all.
        buf_count_ = 64;
        while (buf_count_ < 4096 && static_cast<std::size_t>(buf_count_) * 2 * buf_size_ <= (4u << 20)) buf_count_ *= 2;
        // Echo a connection may owe before it stops receiving: one read, as in the readiness models.
        backlog_cap_ = std::max<std::size_t>(config_.buffer_size, 4096);
        multishot_accept_ = !uring_singleshot_forced();
        for (int fd : listeners_) accepting_.push_back({fd});
        for (int fd : datagram_sockets_) {
            DatagramSocket& d = datagram_.emplace_back();
            d.fd = fd;
            d.layout.msg_namelen = sizeof(sockaddr_storage);
        }
    }

    EchoServerStats run() override {
        setup();
        begin();
        arm_poll(shared_.wake_read.get(), POLLIN, Op::wake);
        for (auto& l : accepting_) arm_accept(l);
        for (std::uint32_t d = 0; d < datagram_.size(); ++d) arm_dgram_recv(d);
        while (!stop_) {
            wait(next_deadline());
            reap();
            tick(now_ns());
        }
        if (!failed()) {
            quiesce();
            drain_connections();
        }
        for (auto& c : conns_)
            if (c && !c->closed) close_connection(*c, "store failed");
        // The operations of closed connections end at once (shut down); wait for them.
        auto any_left = [&] { return std::any_of(conns_.begin(), conns_.end(), [](const auto& c) { return c != nullptr; }); };
        for (int i = 0; i < 100 && any_left(); ++i) {
            wait(now_ns() + 10'000'000);
            reap();
        }
        // Whatever is left (a poll on the store pipe, the accepts) ends here, on this thread: the
        // writer only sees the end of its pipe once no operation holds the write end. The ring
        // itself goes with this object, after every loop has ended.
        ring_->cancel_all();
        drain_store();
        count_overflows();
        return stats_;
    }

private:
    // Every connection of this loop is one it made (new_connection).
    static UringConnection& as_uring(Connection& c) { return static_cast<UringConnection&>(c); }
    static UringConnection* as_uring(const std::unique_ptr<Connection>& c) { return static_cast<UringConnection*>(c.get()); }
    UringConnection* conn(int fd) const { return as_uring(conns_[static_cast<std::size_t>(fd)]); }

    char* buffer(int bid) const { return bufs_->buffer(bid); }

    // At a graceful stop: no new receive, accept or wait for room; the receives in flight are
    // cancelled (one that raced with data completes with it, which is echoed or kept owed), the
    // sends in flight end. Then every connection's pending holds all it is owed, for
    // drain_connections().
    void quiesce() {
        draining_ = true;
        auto cancel = [&](std::uint64_t what) {
            io_uring_sqe* s = sqe();
            io_uring_prep_cancel64(s, what, 0);
            io_uring_sqe_set_data64(s, tag(Op::cancel, 0));
        };
        for (auto& l : accepting_)
            if (l.armed) cancel(tag(Op::accept, l.fd));
        for (auto& owned : conns_) {
            UringConnection* c = as_uring(owned);
            if (!c || c->closed) continue;
            if (c->receiving) cancel(tag(Op::recv, c->fd.get()));
            if (c->awaiting_room) cancel(tag(Op::writable, c->fd.get()));
        }
        auto busy_left = [&] {
            return std::any_of(conns_.begin(), conns_.end(), [](const auto& c) { return c && !c->closed && busy(*as_uring(c)); });
        };
        for (int i = 0; i < 100 && busy_left(); ++i) {
            wait(now_ns() + 10'000'000);
            reap();
        }
        for (auto& c : conns_)
            if (c && !c->closed) merge_backlog(*as_uring(c));
    }

    // On the loop's own thread: the ring allows a single issuer.
    void setup() {
        ring_ = std::make_unique<Ring>();
        bufs_ = std::make_unique<BufferRing>(*ring_, buf_count_, buf_size_, kGroup);
        if (!datagram_.empty()) {
            // Room for the recvmsg header, the sender's address and the longest datagram taken.
            const auto size = static_cast<unsigned>(sizeof(io_uring_recvmsg_out) + sizeof(sockaddr_storage) + datagram_buffer_size());
            dgram_bufs_ = std::make_unique<BufferRing>(*ring_, kDatagramBuffers, size, kDatagramGroup);
            dgram_sends_.resize(kDatagramBuffers);
        }
    }

    // ---- submitting

    io_uring_sqe* sqe() { return ring_->sqe(); }

    void arm_poll(int fd, unsigned mask, Op op) {
        io_uring_sqe* s = sqe();
        io_uring_prep_poll_add(s, fd, mask);
        io_uring_sqe_set_data64(s, tag(op, fd));
    }

    struct Accepting {
        int fd;
        bool armed = false;
        bool polling = false;  // out of descriptors: waiting for a connection to refuse
    };

    void arm_accept(Accepting& l) {
        if (l.armed || l.polling || listeners_paused_until_ || stop_) return;
        io_uring_sqe* s = sqe();
        if (multishot_accept_) io_uring_prep_multishot_accept(s, l.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        else io_uring_prep_accept(s, l.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        io_uring_sqe_set_data64(s, tag(Op::accept, l.fd));
        l.armed = true;
    }

    bool may_receive(const UringConnection& c) const {
        return !draining_ && !c.closed && !c.eof && !c.paused && !c.starved && !c.receiving && owed(c) < backlog_cap_;
    }

    static std::size_t owed(const UringConnection& c) {
        return c.pending.size() - c.pending_off + c.incoming.size() + (c.send_len - c.send_off);
    }

    // Between sends: drop what was sent, then take what arrived meanwhile (a send in flight reads
    // from pending, which therefore never changes under it).
    static void merge_backlog(UringConnection& c) {
        c.pending.erase(c.pending.begin(), c.pending.begin() + static_cast<std::ptrdiff_t>(c.pending_off));
        c.pending_off = 0;
        c.pending.insert(c.pending.end(), c.incoming.begin(), c.incoming.end());
        c.incoming.clear();
    }
    static bool busy(const UringConnection& c) { return c.receiving || c.sending || c.awaiting_room; }

    // One receive at a time per connection, renewed once its data is handled: a multishot receive
    // would go on filling memory until a cancel lands (a client that never reads its echo got
    // 1.2 MB through one in a single batch), and one receive per turn keeps the service fair.
    void arm_recv(UringConnection& c) {
        io_uring_sqe* s = sqe();
        const int fd = c.fd.get();
        io_uring_prep_recv(s, fd, nullptr, buf_size_, 0);
        s->flags |= IOSQE_BUFFER_SELECT;
        s->buf_group = kGroup;
        io_uring_sqe_set_data64(s, tag(Op::recv, fd));
        c.receiving = true;
    }

    // MSG_DONTWAIT: a full socket answers EAGAIN at once instead of keeping a ring buffer.
    void submit_send(UringConnection& c, const char* data, std::size_t len) {
        io_uring_sqe* s = sqe();
        io_uring_prep_send(s, c.fd.get(), data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        io_uring_sqe_set_data64(s, tag(Op::send, c.fd.get()));
        c.sending = true;
    }

    void send_backlog(UringConnection& c) { submit_send(c, c.pending.data() + c.pending_off, c.pending.size() - c.pending_off); }

    void await_room(UringConnection& c) {
        arm_poll(c.fd.get(), POLLOUT, Op::writable);
        c.awaiting_room = true;
    }

    void give_back(int bid) { bufs_->give_back(bid); }

    // Makes the buffers given back visible to the kernel, then lets starved connections receive.
    void publish_buffers() {
        bufs_->publish();
        if (starved_.empty() || bufs_->all_taken()) return;
        std::vector<int> fds;
        fds.swap(starved_);
        for (int fd : fds)
            if (UringConnection* c = conn(fd); c && c->starved) {
                c->starved = false;
                if (may_receive(*c)) arm_recv(*c);
            }
    }

    void wait(std::optional<std::int64_t> deadline) {
        publish_buffers();
        if (dgram_bufs_) dgram_bufs_->publish();
        ring_->submit_and_wait(deadline);
    }

    // ---- UDP

    void arm_dgram_recv(std::uint32_t d) {
        DatagramSocket& sock = datagram_[d];
        if (sock.receiving || stop_) return;
        io_uring_sqe* s = sqe();
        io_uring_prep_recvmsg_multishot(s, sock.fd, &sock.layout, 0);
        s->flags |= IOSQE_BUFFER_SELECT;
        s->buf_group = kDatagramGroup;
        io_uring_sqe_set_data64(s, uring_tag(Op::dgram_recv, d));
        sock.receiving = true;
    }

    void on_dgram_recv(std::uint32_t d, int res, unsigned flags) {
        DatagramSocket& sock = datagram_[d];
        if (!(flags & IORING_CQE_F_MORE)) sock.receiving = false;
        if (res >= 0 && (flags & IORING_CQE_F_BUFFER)) {
            const int bid = BufferRing::id_of(flags);
            dgram_bufs_->taken();
            if (!echo_datagram(sock, d, bid, res)) dgram_bufs_->give_back(bid);
        } else if (res == -ENOBUFS) {
            sock.starved = true;  // every buffer is in a send: received again once one comes back
            return;
        } else if (res == -EINVAL) {  // no multishot recvmsg before Linux 6.0
            shared_.fail("the io_uring model serves UDP with a multishot receive, which needs Linux 6.0 or later; "
                         "the epoll model works everywhere");
            return;
        } else if (res < 0 && res != -ECANCELED) {
            stats_.errors.add(-res);  // not a connection's: the socket stays
        }
        if (!sock.receiving) arm_dgram_recv(d);
    }

    // False when the datagram is not echoed (the buffer can go back at once).
    bool echo_datagram(DatagramSocket& sock, std::uint32_t d, int bid, int res) {
        auto* out = io_uring_recvmsg_validate(dgram_bufs_->buffer(bid), res, &sock.layout);
        if (!out) return false;
        // MSG_TRUNC: it did not fit; payloadlen is its real length.
        const bool truncated = (out->flags & MSG_TRUNC) != 0;
        auto* from = static_cast<sockaddr*>(io_uring_recvmsg_name(out));
        const std::size_t len = truncated ? out->payloadlen : io_uring_recvmsg_payload_length(out, res, &sock.layout);
        if (!datagram_received(from, std::min<socklen_t>(out->namelen, sizeof(sockaddr_storage)), len, truncated)) return false;
        DatagramSend& send = dgram_sends_[static_cast<std::size_t>(bid)];
        send.iov = {io_uring_recvmsg_payload(out, &sock.layout), len};  // exactly what came: never larger
        send.msg = {from, out->namelen, &send.iov, 1, nullptr, 0, 0};
        io_uring_sqe* s = sqe();
        io_uring_prep_sendmsg(s, sock.fd, &send.msg, MSG_DONTWAIT | MSG_NOSIGNAL);
        io_uring_sqe_set_data64(s, uring_tag(Op::dgram_send, d << 16 | static_cast<std::uint32_t>(bid)));
        return true;
    }

    void on_dgram_send(std::uint32_t who, int res) {
        const std::uint32_t d = who >> 16;
        const int bid = static_cast<int>(who & 0xffff);
        if (res >= 0) datagram_sent(dgram_sends_[static_cast<std::size_t>(bid)].iov.iov_len);
        else datagram_dropped(res == -EAGAIN ? 0 : -res);  // EAGAIN: the socket's buffer is full
        dgram_bufs_->give_back(bid);
        if (datagram_[d].starved) {
            datagram_[d].starved = false;
            arm_dgram_recv(d);
        }
    }

    // ---- completions

    void reap() {
        ring_->reap([this](std::uint64_t data, int res, unsigned flags) { complete(data, res, flags); });
    }

    void complete(std::uint64_t data, int res, unsigned flags) {
        const int fd = static_cast<int>(uring_who(data));
        switch (uring_op<Op>(data)) {
        case Op::wake: stop_ = true; return;
        case Op::store:
            store_polling_ = false;
            on_store_ready(res < 0 || (res & (POLLERR | POLLHUP)));
            return;
        case Op::accept: on_accept(listener(fd), res, flags); return;
        case Op::listener_ready:
            listener(fd).polling = false;
            arm_accept(listener(fd));
            return;
        case Op::recv: on_recv(*conn(fd), res, flags); break;
        case Op::send: on_send(*conn(fd), res); break;
        case Op::writable: on_room(*conn(fd)); break;
        case Op::cancel: return;
        case Op::dgram_recv: on_dgram_recv(uring_who(data), res, flags); return;
        case Op::dgram_send: on_dgram_send(uring_who(data), res); return;
        }
        UringConnection* c = conn(fd);  // gone when that completion closed and freed it
        if (!c) return;
        if (c->closed) release_if_done(*c);
        else if (may_receive(*c)) arm_recv(*c);
    }

    Accepting& listener(int fd) {
        for (auto& a : accepting_)
            if (a.fd == fd) return a;
        throw std::logic_error("io_uring completion for an unknown listener");
    }

    void on_accept(Accepting& l, int res, unsigned flags) {
        if (!(flags & IORING_CQE_F_MORE)) l.armed = false;
        if (res >= 0) {
            if (Connection* c = admit(Fd(res)); c && !draining_) arm_recv(as_uring(*c));
        } else if (res == -EINVAL && multishot_accept_) {
            multishot_accept_ = false;  // no multishot accept on this kernel: one operation per accept
        } else if (res == -EMFILE || res == -ENFILE) {
            // An io_uring accept fails at once at the limit, pending connection or not: refuse
            // the pending one, if any, then wait until another one is there.
            std::unique_lock lock(shared_.accept_mutex, std::defer_lock);
            if (shared_.several_loops) lock.lock();
            if (!refuse_with_spare(l.fd)) pause_listeners();
            else if (!l.armed) {
                arm_poll(l.fd, POLLIN, Op::listener_ready);
                l.polling = true;
            }
        } else if (res == -ECONNABORTED || res == -EPROTO || res == -EPERM) {
            stats_.errors.add(-res);
        } else if (res != -ECANCELED) {
            stats_.errors.add(-res);
            pause_listeners();  // ENOBUFS, ENOMEM: back off instead of spinning
        }
        arm_accept(l);
    }

    void on_recv(UringConnection& c, int res, unsigned flags) {
        c.receiving = false;
        if (res > 0) {
            const int bid = BufferRing::id_of(flags);
            bufs_->taken();
            if (c.closed) {
                give_back(bid);
                return;
            }
            const char* data = buffer(bid);
            received(c, data, static_cast<std::size_t>(res));
            if (owed(c) == 0) {
                // The fast path: echo from the ring's buffer, given back once the send returns.
                c.send_bid = bid;
                c.send_len = static_cast<std::uint32_t>(res);
                c.send_off = 0;
                submit_send(c, data, c.send_len);
            } else {
                // A send is under way: queue behind it, in order, and free the ring's buffer.
                c.incoming.insert(c.incoming.end(), data, data + res);
                give_back(bid);
            }
            if (store_full()) pause(c);  // backpressure: the disk is slower than the clients
            return;  // renewed by complete() while the connection owes less than one read
        }
        if (c.closed) return;
        if (res == 0) {  // the client half-closed: close once everything it sent is echoed
            c.eof = true;
            if (owed(c) == 0) close_connection(c, "eof");
        } else if (res == -ENOBUFS) {
            if (!c.starved) starved_.push_back(c.fd.get());  // every buffer is in use: wait for one
            c.starved = true;
        } else if (res != -ECANCELED) {
            fail(c, -res);
        }
    }

    void on_send(UringConnection& c, int res) {
        c.sending = false;
        if (res == -EAGAIN) res = 0;  // the socket is full
        const std::size_t n = res > 0 ? static_cast<std::size_t>(res) : 0;
        if (c.send_bid >= 0) {
            c.send_off += static_cast<std::uint32_t>(n);
            if (!c.closed && res >= 0 && c.send_off < c.send_len) {
                // Keep the rest on the heap, ahead of what arrived meanwhile: the buffer goes back.
                const char* rest = buffer(c.send_bid) + c.send_off;
                c.pending.insert(c.pending.begin() + static_cast<std::ptrdiff_t>(c.pending_off), rest, rest + (c.send_len - c.send_off));
            }
            give_back(c.send_bid);
            c.send_bid = -1;
            c.send_len = c.send_off = 0;
        } else {
            c.pending_off += n;
        }
        if (c.closed) return;
        if (res < 0) {
            fail(c, -res);
            return;
        }
        sent(c, n);
        merge_backlog(c);
        if (c.has_pending()) {
            if (draining_) return;  // drain_connections() sends the rest
            if (n == 0) await_room(c);
            else send_backlog(c);
            return;
        }
        echoed_all(c);
        if (c.eof) close_connection(c, "eof");
    }

    void on_room(UringConnection& c) {
        c.awaiting_room = false;
        if (c.closed || draining_) return;
        merge_backlog(c);
        if (c.has_pending()) send_backlog(c);  // an error shows in the send
    }

    void release_if_done(UringConnection& c) {
        if (busy(c)) return;
        conns_[c.fd.get()].reset();  // closes the descriptor
    }

    // ---- driver hooks

    std::unique_ptr<Connection> new_connection() override { return std::make_unique<UringConnection>(); }

    void stop_reading(Connection&) override {}  // the receive in flight is simply not renewed

    void start_reading(Connection& base) override {
        UringConnection& c = as_uring(base);
        if (may_receive(c)) arm_recv(c);
    }

    void watch_store(bool writable) override {
        if (writable && !store_polling_) {
            arm_poll(store_->write_fd(), POLLOUT, Op::store);
            store_polling_ = true;
        }
    }

    // Operations still in flight end at once once the socket is shut down; their completions
    // then free the connection.
    void retire(Connection& base) override {
        UringConnection& c = as_uring(base);
        if (busy(c)) ::shutdown(c.fd.get(), SHUT_RDWR);
        release_if_done(c);
    }

    void stop_accepting() override {}  // the accepts that ended are not renewed until then

    void start_accepting() override {
        for (auto& l : accepting_) arm_accept(l);
    }

    std::unique_ptr<BufferRing> bufs_;  // declared first: the ring goes first, so nothing lands in unmapped buffers
    std::unique_ptr<BufferRing> dgram_bufs_;  // likewise
    std::unique_ptr<Ring> ring_;
    static constexpr unsigned kDatagramBuffers = 64;
    std::vector<DatagramSocket> datagram_;
    std::vector<DatagramSend> dgram_sends_;  // by datagram buffer
    unsigned buf_size_ = 0, buf_count_ = 0;
    std::size_t backlog_cap_ = 0;
    std::vector<int> starved_;           // connections waiting for a free buffer
    std::vector<Accepting> accepting_;
    bool multishot_accept_ = true;
    bool draining_ = false;  // a graceful stop: quiesce() and drain_connections()
    bool store_polling_ = false;
};

}  // namespace

std::unique_ptr<ServerLoop> make_uring_loop(Shared& shared, EchoServerObserver& observer, LoopSockets sockets) {
    return std::make_unique<UringLoop>(shared, observer, std::move(sockets));
}

}  // namespace muxkit::detail
