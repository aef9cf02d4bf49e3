// The completion driver of the echo server: accepts, receives and sends are submitted to an
// io_uring and reaped in batches, so one system call serves many messages. Received data lands in
// buffers the ring owns (a provided-buffer ring); each is echoed from where it landed and given
// back to the ring once sent.
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
#include "muxkit/server_loop_internal.hpp"
#include "muxkit/uring_internal.hpp"

namespace muxkit::detail {

namespace {

enum class Op : std::uint32_t { accept = 1, listener_ready, recv, send, cancel, wake, store };

std::uint64_t tag(Op op, int fd) { return uring_tag(op, static_cast<std::uint32_t>(fd)); }

constexpr int kGroup = 0;

class UringLoop final : public ServerLoop {
public:
    UringLoop(Shared& shared, EchoServerObserver& observer, std::vector<int> listeners)
        : ServerLoop(shared, observer, std::move(listeners)) {
        std::size_t size = std::max<std::size_t>(config_.buffer_size, 64);
        buf_size_ = static_cast<unsigned>(std::min<std::size_t>(size, 1u << 20));
        // About 4 MiB of buffers, a power of two between 64 and 4096: the ring hands them out in
        // turn, so a single busy connection touches them all.
        buf_count_ = 64;
        while (buf_count_ < 4096 && static_cast<std::size_t>(buf_count_) * 2 * buf_size_ <= (4u << 20)) buf_count_ *= 2;
        // What one connection may hold before it stops receiving: 64 KiB, at least 4 buffers.
        max_held_ = std::max(4u, (64u << 10) / buf_size_);
        multishot_ = !uring_singleshot_forced();
        for (int fd : listeners_) accepting_.push_back({fd});
    }

    EchoServerStats run() override {
        setup();
        begin();
        arm_poll(shared_.wake_read.get(), POLLIN, Op::wake);
        for (auto& l : accepting_) arm_accept(l);
        while (!stop_) {
            wait(next_deadline());
            reap();
            tick(now_ns());
        }
        const char* reason = failed() ? "store failed" : "stop";
        for (auto& c : conns_)
            if (c && !c->closed) close_connection(*c, reason);
        // The operations of closed connections end at once (shut down); wait for them.
        for (int i = 0; i < 100 && live_ > 0; ++i) {
            wait(now_ns() + 10'000'000);
            reap();
        }
        drain_store();
        return stats_;
    }

private:
    char* buffer(int bid) const { return bufs_->buffer(bid); }

    // On the loop's own thread: the ring allows a single issuer.
    void setup() {
        ring_ = std::make_unique<Ring>();
        bufs_ = std::make_unique<BufferRing>(*ring_, buf_count_, buf_size_, kGroup);
        next_.assign(buf_count_, -1);
        len_.assign(buf_count_, 0);
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
        if (multishot_) io_uring_prep_multishot_accept(s, l.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        else io_uring_prep_accept(s, l.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        io_uring_sqe_set_data64(s, tag(Op::accept, l.fd));
        l.armed = true;
    }

    bool may_receive(const Connection& c) const {
        return !c.closed && !c.eof && !c.paused && !c.receiving && !c.cancelling && held(c) < max_held_;
    }

    unsigned held(const Connection& c) const {
        unsigned n = 0;
        for (int b = c.send_head; b >= 0 && n < max_held_; b = next_[b]) ++n;
        return n;
    }

    void arm_recv(Connection& c) {
        io_uring_sqe* s = sqe();
        const int fd = c.fd.get();
        if (multishot_) io_uring_prep_recv_multishot(s, fd, nullptr, 0, 0);
        else io_uring_prep_recv(s, fd, nullptr, buf_size_, 0);
        s->flags |= IOSQE_BUFFER_SELECT;
        s->buf_group = kGroup;
        io_uring_sqe_set_data64(s, tag(Op::recv, fd));
        c.receiving = true;
        c.starved = false;
        ++live_ops_;
    }

    // A multishot receive goes on until cancelled; a single-shot one is simply not renewed.
    void stop_receiving(Connection& c) {
        if (!c.receiving || !multishot_ || c.cancelling) return;
        io_uring_sqe* s = sqe();
        io_uring_prep_cancel64(s, tag(Op::recv, c.fd.get()), 0);
        io_uring_sqe_set_data64(s, tag(Op::cancel, c.fd.get()));
        c.cancelling = true;
        ++live_ops_;
    }

    void send_head(Connection& c) {
        const int b = c.send_head;
        io_uring_sqe* s = sqe();
        io_uring_prep_send(s, c.fd.get(), buffer(b) + c.send_off, len_[b] - c.send_off, MSG_NOSIGNAL);
        io_uring_sqe_set_data64(s, tag(Op::send, c.fd.get()));
        c.sending = true;
        ++live_ops_;
    }

    void give_back(int bid) { bufs_->give_back(bid); }

    // Makes the buffers given back visible to the kernel, then lets starved connections receive.
    void publish_buffers() {
        if (!bufs_->publish() || starved_.empty()) return;
        std::vector<int> fds;
        fds.swap(starved_);
        for (int fd : fds)
            if (Connection* c = conns_[fd].get(); c && c->starved && may_receive(*c)) arm_recv(*c);
    }

    void wait(std::optional<std::int64_t> deadline) {
        publish_buffers();
        ring_->submit_and_wait(deadline);
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
        case Op::recv: on_recv(*conns_[fd], res, flags); break;
        case Op::send: on_send(*conns_[fd], res); break;
        case Op::cancel:
            --live_ops_;
            conns_[fd]->cancelling = false;
            break;
        }
        Connection* c = conns_[fd].get();  // gone when that completion closed and freed it
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
            if (Connection* c = accept_client(Fd(res))) arm_recv(*c);
        } else if (res == -EINVAL && multishot_) {
            multishot_ = false;  // no multishot on this kernel: one operation per accept and receive
        } else if (res == -EMFILE || res == -ENFILE) {
            // An io_uring accept fails at once at the limit, pending connection or not: refuse
            // the pending one, if any, then wait until another one is there.
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

    void on_recv(Connection& c, int res, unsigned flags) {
        if (!(flags & IORING_CQE_F_MORE)) {
            c.receiving = false;
            --live_ops_;
        }
        if (res > 0) {
            const int bid = BufferRing::id_of(flags);
            if (c.closed) {
                give_back(bid);
                return;
            }
            received(c, buffer(bid), static_cast<std::size_t>(res));
            queue_send(c, bid, static_cast<unsigned>(res));
            if (store_full()) pause(c);  // backpressure: the disk is slower than the clients
            else if (held(c) >= max_held_) stop_receiving(c);  // the client does not read its echo
            return;
        }
        if (c.closed) return;
        if (res == 0) {  // the client half-closed: close once everything it sent is echoed
            c.eof = true;
            if (!c.sending) close_connection(c, "eof");
        } else if (res == -ENOBUFS) {
            if (!c.starved) starved_.push_back(c.fd.get());  // every buffer is in use: wait for one
            c.starved = true;
        } else if (res == -EINVAL && multishot_) {
            multishot_ = false;
        } else if (res != -ECANCELED) {
            fail(c, -res);
        }
    }

    void queue_send(Connection& c, int bid, unsigned len) {
        len_[bid] = len;
        next_[bid] = -1;
        if (c.send_tail >= 0) next_[c.send_tail] = bid;
        else c.send_head = bid;
        c.send_tail = bid;
        if (!c.sending) send_head(c);  // one send at a time keeps the echo in order
    }

    void on_send(Connection& c, int res) {
        c.sending = false;
        --live_ops_;
        if (c.closed) return;
        if (res < 0) {
            fail(c, -res);
            return;
        }
        sent(c, static_cast<std::size_t>(res));
        c.send_off += static_cast<unsigned>(res);
        const int b = c.send_head;
        if (c.send_off == len_[b]) {
            c.send_head = next_[b];
            if (c.send_head < 0) c.send_tail = -1;
            c.send_off = 0;
            give_back(b);
        }
        if (c.send_head >= 0) {
            send_head(c);
            return;
        }
        echoed_all(c);
        if (c.eof) close_connection(c, "eof");
    }

    void release_if_done(Connection& c) {
        if (c.receiving || c.sending || c.cancelling) return;
        for (int b = c.send_head; b >= 0; b = next_[b]) give_back(b);
        c.send_head = c.send_tail = -1;
        const int fd = c.fd.get();
        --live_;
        conns_[fd].reset();  // closes the descriptor
    }

    // ---- driver hooks

    Connection* accept_client(Fd fd) {
        Connection* c = admit(std::move(fd));
        if (c) ++live_;
        return c;
    }

    void stop_reading(Connection& c) override { stop_receiving(c); }

    void start_reading(Connection& c) override {
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
    void retire(Connection& c) override {
        if (c.receiving || c.sending || c.cancelling) ::shutdown(c.fd.get(), SHUT_RDWR);
        release_if_done(c);
    }

    void pause_listeners() override {
        if (!listeners_paused_until_) listeners_paused_until_ = now_ns() + 100'000'000;
    }

    void resume_listeners() override {
        for (auto& l : accepting_) arm_accept(l);
    }

    std::unique_ptr<BufferRing> bufs_;  // declared first: the ring goes first, so nothing lands in unmapped buffers
    std::unique_ptr<Ring> ring_;
    unsigned buf_size_ = 0, buf_count_ = 0, max_held_ = 4;
    std::vector<int> next_;              // by buffer id: the next buffer of the same connection's echo
    std::vector<unsigned> len_;          // by buffer id: bytes received into it
    std::vector<int> starved_;           // connections waiting for a free buffer
    std::vector<Accepting> accepting_;
    bool multishot_ = true;
    bool store_polling_ = false;
    std::size_t live_ = 0;      // connections not yet freed
    std::size_t live_ops_ = 0;  // receives, sends and cancels in flight
};

}  // namespace

std::unique_ptr<ServerLoop> make_uring_loop(Shared& shared, EchoServerObserver& observer, std::vector<int> listeners) {
    return std::make_unique<UringLoop>(shared, observer, std::move(listeners));
}

}  // namespace muxkit::detail
