// The readiness driver of the load client (select, poll, epoll): waits until sockets are ready,
// then reads and writes without blocking.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include <poll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include "multi_connect/load_run.hpp"
#include "muxkit/clock.hpp"
#include "muxkit/event_loop.hpp"
#include "muxkit/io.hpp"
#include "muxkit/socket.hpp"

namespace muxkit::detail {

namespace {

class ReadinessLoad final : public LoadRun {
public:
    using LoadRun::LoadRun;

private:
    void setup() override {
        loop_ = EventLoop::create(cfg_.model);
        loop_->add(signals_.fd(), kReadable);
        rbuf_.resize(kChunk);
        sbuf_.resize(kChunk);
    }

    void wait_and_dispatch(std::optional<std::int64_t> deadline) override {
        for (const Event& ev : loop_->wait(deadline)) dispatch(ev);
    }

    void open(LoadConn& c, std::int64_t now) override {
        Connecting r = datagram() ? connect_datagram(endpoint_, datagram_receive_room()) : connect_nonblocking(endpoint_);
        if (r.err) {
            fail(c, Phase::connect, r.err);
            return;
        }
        c.fd = std::move(r.fd);
        if (!loop_->can_watch(c.fd.get()))
            throw RuntimeError(fmt::format("descriptor {} is past select's FD_SETSIZE ({}); the poll and epoll models have no such limit",
                                           c.fd.get(), FD_SETSIZE));
        const auto fd = static_cast<std::size_t>(c.fd.get());
        if (fd >= by_fd_.size()) by_fd_.resize(fd + 1, UINT32_MAX);
        by_fd_[fd] = c.index;
        if (r.in_progress) {
            loop_->add(c.fd.get(), kWritable);
        } else {
            loop_->add(c.fd.get(), kReadable);
            established(c, now);
        }
    }

    void dispatch(const Event& ev) {
        if (ev.fd == signals_.fd()) {
            on_signal();
            return;
        }
        if (static_cast<std::size_t>(ev.fd) >= by_fd_.size() || by_fd_[ev.fd] == UINT32_MAX) return;
        LoadConn& c = conns_[by_fd_[ev.fd]];
        const std::int64_t now = now_ns();
        if (c.state == ConnState::connecting) {
            const int err = socket_error(c.fd.get());
            if (err && !reset_after_handshake(err)) {
                fail(c, Phase::connect, err);
                return;
            }
            if (connect_mode()) {  // most connections close at once: no change of interest for them
                established(c, now);
                if (c.state == ConnState::open) loop_->modify(c.fd.get(), kReadable);
            } else {
                loop_->modify(c.fd.get(), kReadable);
                established(c, now);
            }
            if (err && c.live()) fail(c, Phase::receive, err);
            return;
        }
        if (!c.live()) return;
        if (ev.events & (kReadable | kHangup | kError)) {
            if (!on_readable(c)) return;
        }
        if ((ev.events & kWritable) && c.state == ConnState::open) pump(c, now);
    }

    // Returns false when the connection was closed.
    bool on_readable(LoadConn& c) {
        if (datagram()) return on_datagrams(c);
        for (int i = 0; i < 4; ++i) {
            IoResult r = read_some(c.fd.get(), rbuf_.data(), rbuf_.size());
            if (r.n > 0) {
                if (!consume(c, rbuf_.data(), static_cast<std::size_t>(r.n), now_ns())) return false;
                if (static_cast<std::size_t>(r.n) < rbuf_.size()) break;
                continue;
            }
            if (r.n == 0) {
                peer_closed(c);
                return false;
            }
            if (r.would_block()) break;
            fail(c, Phase::receive, r.err);
            return false;
        }
        if (c.state == ConnState::open) pump(c, now_ns());  // what it sends starts now, not at the wake-up
        return c.live();
    }

    // MSG_TRUNC: the real length of an echo longer than the buffer. Each echo is timed when its own
    // receive returned: an echo of a datagram sent within this loop must not share its send time.
    bool on_datagrams(LoadConn& c) {
        for (int i = 0; i < 64 && c.live(); ++i) {
            const ssize_t n = ::recv(c.fd.get(), rbuf_.data(), rbuf_.size(), MSG_TRUNC | MSG_DONTWAIT);
            const int err = errno;
            if (n >= 0) {
                const auto real = static_cast<std::size_t>(n);
                datagram_arrived(c, rbuf_.data(), std::min(real, rbuf_.size()), real, now_ns());
            } else if (err == EAGAIN || err == EWOULDBLOCK) {
                break;
            } else if (err != EINTR) {
                datagram_error(c, Phase::receive, err);
            }
        }
        if (c.state == ConnState::open) pump(c, now_ns());
        return c.live();
    }

    void pump_datagrams(LoadConn& c, std::int64_t now) {
        for (std::size_t len; (len = next_datagram(c, now, sbuf_.data())) > 0;) {
            if (::send(c.fd.get(), sbuf_.data(), len, MSG_NOSIGNAL | MSG_DONTWAIT) >= 0) {
                datagram_sent(c);
                continue;
            }
            const int err = errno;
            if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) {
                set_want_write(c, true);
                return;
            }
            if (err == EINTR) continue;
            datagram_error(c, Phase::send, err);  // ECONNREFUSED: an earlier one's ICMP; this one goes again
            if (!c.live()) return;
        }
        set_want_write(c, false);
    }

    void pump(LoadConn& c, std::int64_t now) override {
        if (datagram()) {
            pump_datagrams(c, now);
            return;
        }
        for (;;) {
            const std::size_t len = next_bytes(c, now, sbuf_.data(), sbuf_.size());
            if (len == 0) break;
            IoResult w = send_some(c.fd.get(), sbuf_.data(), len);
            if (w.failed()) {
                if (w.would_block()) {
                    set_want_write(c, true);
                    return;
                }
                fail(c, Phase::send, w.err);
                return;
            }
            bytes_sent(c, static_cast<std::size_t>(w.n));
            if (static_cast<std::size_t>(w.n) < len) {  // the socket is full
                set_want_write(c, true);
                return;
            }
        }
        set_want_write(c, false);
    }

    // Waits for room in the socket, or stops waiting (no system call when nothing changes).
    void set_want_write(LoadConn& c, bool on) {
        if (loop_->watching(c.fd.get())) loop_->modify(c.fd.get(), on ? (kReadable | kWritable) : kReadable);
    }

    void half_close(LoadConn& c) override {
        set_want_write(c, false);
        if (!datagram()) ::shutdown(c.fd.get(), SHUT_WR);
    }

    void release(LoadConn& c) override {
        if (c.fd) {
            loop_->remove(c.fd.get());
            by_fd_[c.fd.get()] = UINT32_MAX;
            c.fd.reset();
        }
        released(c);
    }

    std::unique_ptr<EventLoop> loop_;
    std::vector<std::uint32_t> by_fd_;
    std::vector<char> rbuf_, sbuf_;
};

}  // namespace

std::unique_ptr<LoadRun> make_readiness_load(const LoadConfig& config, LoadObserver& observer, LoadSlice slice) {
    return std::make_unique<ReadinessLoad>(config, observer, slice);
}

}  // namespace muxkit::detail
