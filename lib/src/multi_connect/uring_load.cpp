// The completion driver of the load client: connects, sends and receives are submitted to an
// io_uring and reaped in batches. Echoes land in buffers the ring owns and are verified there;
// each connection sends from its own buffer, one send at a time, so its bytes stay in order.
#include <cerrno>

#include <poll.h>
#include <sys/socket.h>

#include "muxkit/clock.hpp"
#include "multi_connect/load_run.hpp"
#include "muxkit/socket.hpp"
#include "uring/ring.hpp"

namespace muxkit::detail {

namespace {

enum class Op : std::uint32_t { connect = 1, send, recv, signal };

constexpr int kGroup = 0;
constexpr unsigned kBufferSize = 16 * 1024, kBufferCount = 256;
constexpr std::size_t kSendCap = 64 * 1024;  // bytes per send, at most

class UringLoad final : public LoadRun {
public:
    using LoadRun::LoadRun;

private:
    // A connection's send buffer (it must stay put while the kernel sends from it) and its
    // operations in flight; the socket is closed when the last one ends.
    struct Ops {
        std::unique_ptr<char[]> out;
        bool sending = false, receiving = false, connecting_op = false;
        bool busy() const noexcept { return sending || receiving || connecting_op; }
    };

    Ops& ops(const LoadConn& c) { return ops_[c.index]; }
    std::uint64_t tag(Op op, const LoadConn& c) const { return uring_tag(op, c.index); }

    void setup() override {
        ring_ = std::make_unique<Ring>();
        // A datagram is received whole into one buffer: room for the longest, and a byte more
        // to see an echo longer than what was sent.
        const unsigned size = datagram() ? std::max<unsigned>(kBufferSize, static_cast<unsigned>((size_ + 1 + 4095) / 4096 * 4096)) : kBufferSize;
        bufs_ = std::make_unique<BufferRing>(*ring_, kBufferCount, size, kGroup);
        multishot_ = !uring_singleshot_forced();
        out_size_ = std::min(kSendCap, size_ * cfg_.pipeline);
        ops_.resize(conns_.size());
        arm_signal();
    }

    void arm_signal() {
        io_uring_sqe* s = ring_->sqe();
        io_uring_prep_poll_add(s, signals_.fd(), POLLIN);
        io_uring_sqe_set_data64(s, uring_tag(Op::signal, 0));
    }

    void wait_and_dispatch(std::optional<std::int64_t> deadline) override {
        bufs_->publish();
        if (!starved_.empty() && !bufs_->all_taken()) {
            std::vector<std::uint32_t> again;
            again.swap(starved_);
            for (auto i : again)
                if (conns_[i].live() && !ops_[i].receiving) arm_recv(conns_[i]);
        }
        ring_->submit_and_wait(deadline);
        const std::int64_t now = now_ns();
        ring_->reap([&](std::uint64_t data, int res, unsigned flags) { complete(data, res, flags, now); });
    }

    void complete(std::uint64_t data, int res, unsigned flags, std::int64_t now) {
        const Op op = uring_op<Op>(data);
        if (op == Op::signal) {
            on_signal();
            if (!finished_) arm_signal();
            return;
        }
        LoadConn& c = conns_[uring_who(data)];
        if (op == Op::connect) on_connect(c, res, now);
        else if (op == Op::send) on_send(c, res, now);
        else on_recv(c, res, flags, now);
        if (c.state == ConnState::done && !ops(c).busy() && c.fd) {  // its last operation ended
            c.fd.reset();
            released(c);
        }
    }

    // ---- connecting

    void open(LoadConn& c, std::int64_t now) override {
        if (datagram()) {  // connecting a datagram socket is a local step
            Connecting r = connect_datagram(endpoint_, datagram_receive_room());
            if (r.err) {
                fail(c, Phase::connect, r.err);
                return;
            }
            c.fd = std::move(r.fd);
            if (!ops(c).out) ops(c).out = std::make_unique<char[]>(out_size_);
            established(c, now);
            if (c.live() && !ops(c).receiving) arm_recv(c);
            return;
        }
        Fd fd(::socket(endpoint_.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (!fd) {
            fail(c, Phase::connect, errno);
            return;
        }
        set_nodelay(fd.get());
        c.fd = std::move(fd);
        io_uring_sqe* s = ring_->sqe();
        io_uring_prep_connect(s, c.fd.get(), endpoint_.sa(), endpoint_.length);
        io_uring_sqe_set_data64(s, tag(Op::connect, c));
        ops(c).connecting_op = true;
    }

    void on_connect(LoadConn& c, int res, std::int64_t now) {
        ops(c).connecting_op = false;
        if (c.state != ConnState::connecting) return;
        if (res < 0 && !reset_after_handshake(-res)) {
            fail(c, Phase::connect, -res);
            return;
        }
        if (!connect_mode() && !ops(c).out) ops(c).out = std::make_unique<char[]>(out_size_);
        established(c, now);
        if (res < 0 && c.live()) {
            fail(c, Phase::receive, -res);
            return;
        }
        if (c.live() && !ops(c).receiving) arm_recv(c);  // in connect mode, for a banner during --hold
    }

    // ---- sending: one send in flight per connection; MSG_WAITALL makes it all or an error

    void pump(LoadConn& c, std::int64_t now) override {
        if (ops(c).sending || c.state != ConnState::open) return;
        if (datagram()) {
            const std::size_t len = next_datagram(c, now, ops(c).out.get());
            if (len == 0) return;
            io_uring_sqe* s = ring_->sqe();
            io_uring_prep_send(s, c.fd.get(), ops(c).out.get(), len, MSG_NOSIGNAL);
            io_uring_sqe_set_data64(s, tag(Op::send, c));
            ops(c).sending = true;
            datagram_sent(c);  // now: its echo may be reaped before the send's completion
            return;
        }
        const std::size_t len = next_bytes(c, now, ops(c).out.get(), out_size_);
        if (len == 0) return;
        io_uring_sqe* s = ring_->sqe();
        io_uring_prep_send(s, c.fd.get(), ops(c).out.get(), len, MSG_NOSIGNAL | MSG_WAITALL);
        io_uring_sqe_set_data64(s, tag(Op::send, c));
        ops(c).sending = true;
        // Counted as sent now: the echo of these bytes may be reaped before the send's completion.
        bytes_sent(c, len);
    }

    void on_send(LoadConn& c, int res, std::int64_t now) {
        ops(c).sending = false;
        if (!c.live()) return;
        if (res < 0 && datagram()) {
            datagram_error(c, Phase::send, -res);  // ECONNREFUSED: counted; that datagram will be lost
            if (c.state == ConnState::open) pump(c, now);
            return;
        }
        if (res < 0) {
            fail(c, Phase::send, -res);
            return;
        }
        if (c.state == ConnState::draining) ::shutdown(c.fd.get(), SHUT_WR);  // the send it waited for is done
        else pump(c, now);
    }

    void half_close(LoadConn& c) override {
        if (!ops(c).sending && !datagram()) ::shutdown(c.fd.get(), SHUT_WR);
    }

    // ---- receiving into the ring's buffers

    void arm_recv(LoadConn& c) {
        io_uring_sqe* s = ring_->sqe();
        if (multishot_) io_uring_prep_recv_multishot(s, c.fd.get(), nullptr, 0, 0);
        else io_uring_prep_recv(s, c.fd.get(), nullptr, bufs_->size(), 0);
        s->flags |= IOSQE_BUFFER_SELECT;
        s->buf_group = static_cast<std::uint16_t>(bufs_->group());
        io_uring_sqe_set_data64(s, tag(Op::recv, c));
        ops(c).receiving = true;
    }

    void on_recv(LoadConn& c, int res, unsigned flags, std::int64_t now) {
        if (!(flags & IORING_CQE_F_MORE)) ops(c).receiving = false;
        if (datagram()) {
            on_datagram(c, res, flags, now);
            if (c.live() && !ops(c).receiving && !(res == -ENOBUFS)) arm_recv(c);
            return;
        }
        if (res > 0) {
            const int bid = BufferRing::id_of(flags);
            bufs_->taken();
            const bool open = c.live() && consume(c, bufs_->buffer(bid), static_cast<std::size_t>(res), now);
            bufs_->give_back(bid);
            if (open && c.state == ConnState::open) pump(c, now);  // the echo made room in the pipeline
        } else if (c.live()) {
            if (res == 0) {
                peer_closed(c);
            } else if (res == -ENOBUFS) {
                starved_.push_back(c.index);  // every buffer is in use: wait for one
                return;
            } else if (res == -EINVAL && multishot_) {
                multishot_ = false;  // no multishot on this kernel
            } else {
                fail(c, Phase::receive, -res);
            }
        }
        if (c.live() && !ops(c).receiving) arm_recv(c);
    }

    // A datagram per completion (an empty one too: UDP has no end of stream).
    void on_datagram(LoadConn& c, int res, unsigned flags, std::int64_t now) {
        if (res >= 0 && (flags & IORING_CQE_F_BUFFER)) {
            const int bid = BufferRing::id_of(flags);
            bufs_->taken();
            const auto n = static_cast<std::size_t>(res);
            if (c.live()) datagram_arrived(c, bufs_->buffer(bid), n, n, now);
            bufs_->give_back(bid);
            return;
        }
        if (res >= 0 || !c.live()) return;
        if (res == -ENOBUFS) starved_.push_back(c.index);  // every buffer is in use: wait for one
        else if (res == -EINVAL && multishot_) multishot_ = false;  // no multishot on this kernel
        else if (res != -ECANCELED) datagram_error(c, Phase::receive, -res);
    }

    // Operations still in flight end at once once the socket is shut down; the last completion
    // closes it.
    void release(LoadConn& c) override {
        if (c.fd && ops(c).busy()) {
            ::shutdown(c.fd.get(), SHUT_RDWR);
            return;
        }
        c.fd.reset();
        released(c);
    }

    void finish() override {
        auto busy = [&] {
            for (const auto& c : conns_)
                if (ops(c).busy()) return true;
            return false;
        };
        for (int i = 0; i < 100 && busy(); ++i) wait_and_dispatch(now_ns() + 10'000'000);
        // On this thread, which the ring's deferred work belongs to. The ring itself goes with this
        // object, once every thread has ended: its memory is not mapped again under a running one.
        ring_->cancel_all();
    }

    std::unique_ptr<BufferRing> bufs_;  // declared first: the ring goes first, so nothing lands in unmapped buffers
    std::unique_ptr<Ring> ring_;
    std::vector<Ops> ops_;                // by connection index
    std::vector<std::uint32_t> starved_;  // connections waiting for a free buffer
    std::size_t out_size_ = 0;
    bool multishot_ = true;
};

}  // namespace

std::unique_ptr<LoadRun> make_uring_load(const LoadConfig& config, LoadObserver& observer, LoadSlice slice) {
    return std::make_unique<UringLoad>(config, observer, slice);
}

}  // namespace muxkit::detail
