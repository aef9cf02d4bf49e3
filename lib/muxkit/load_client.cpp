#include "muxkit/load_client.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <memory>

#include <poll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include "muxkit/clock.hpp"
#include "muxkit/io.hpp"
#include "muxkit/signals.hpp"
#include "muxkit/socket.hpp"

namespace muxkit {

void fill_pattern(std::uint32_t conn, std::uint64_t seq, std::size_t offset, char* dst, std::size_t len) noexcept {
    // 12-byte header (connection, sequence, little-endian) then bytes that depend on both and the
    // offset, so a reordered, truncated or altered echo never matches.
    unsigned char header[12];
    for (int i = 0; i < 4; ++i) header[i] = static_cast<unsigned char>(conn >> (8 * i));
    for (int i = 0; i < 8; ++i) header[4 + i] = static_cast<unsigned char>(seq >> (8 * i));
    const auto base = static_cast<unsigned>(seq * 7 + conn * 13);
    for (std::size_t k = 0; k < len; ++k) {
        std::size_t i = offset + k;
        dst[k] = static_cast<char>(i < 12 ? header[i] : static_cast<unsigned char>(base + i + (i >> 8) * 3));
    }
}

namespace {

constexpr std::size_t kChunk = 64 * 1024;

enum class State : std::uint8_t { waiting, connecting, open, done };

struct Conn {
    Fd fd;
    std::uint32_t index = 0;
    State state = State::waiting;
    bool want_write = false;
    bool recv_bad = false;
    std::int64_t connect_start = 0;
    std::int64_t last_progress = 0;
    std::uint64_t send_seq = 0;  // the message being (or next to be) sent
    std::size_t send_off = 0;    // bytes of it sent so far
    std::uint64_t recv_seq = 0;  // the message being received
    std::size_t recv_off = 0;
    std::unique_ptr<std::int64_t[]> started;  // send (or due) time, by seq % pipeline

    std::uint64_t in_flight() const noexcept { return send_seq - recv_seq + (send_off > 0 ? 1 : 0); }
};

class LoadRun {
public:
    LoadRun(const LoadConfig& config, LoadObserver& observer)
        : cfg_(config), observer_(observer), signals_(SignalPipe::install()),
          size_(config.payload.empty() ? config.size : config.payload.size()),
          limit_(config.duration ? UINT64_MAX : config.messages), conns_(config.connections) {}

    LoadStats run() {
        endpoint_ = resolve(cfg_.target, false).front();
        loop_ = EventLoop::create(cfg_.model);
        loop_->add(signals_.fd(), kReadable);
        rbuf_.resize(kChunk);
        sbuf_.resize(kChunk);
        ebuf_.resize(kChunk);
        for (std::uint32_t i = 0; i < conns_.size(); ++i) {
            conns_[i].index = i;
            conns_[i].started = std::make_unique<std::int64_t[]>(cfg_.pipeline);
        }
        total_.requested = conns_.size();

        start_ = now_ns();
        if (cfg_.duration) end_ = start_ + cfg_.duration->count();
        next_scan_ = start_ + scan_period();
        next_progress_ = start_ + 1'000'000'000;
        if (cfg_.interval) next_interval_ = start_ + cfg_.interval->count();
        start_due_connections(start_);

        while (!finished_) {
            auto events = loop_->wait(next_deadline());
            for (const Event& ev : events) dispatch(ev);
            const std::int64_t now = now_ns();
            start_due_connections(now);
            if (cfg_.rate) issue_due_messages(now);
            if (now >= next_scan_) {
                scan_timeouts(now);
                next_scan_ = now + scan_period();
            }
            if (next_interval_ && now >= *next_interval_) {
                interval_.duration_s = to_seconds(*cfg_.interval);
                observer_.on_interval(interval_, static_cast<double>(now - start_) / 1e9);
                interval_ = LoadStats();
                *next_interval_ += cfg_.interval->count();
            }
            if (now >= next_progress_) {
                observer_.on_progress(snapshot(now));
                next_progress_ = now + 1'000'000'000;
            }
            if (end_ && now >= *end_) break;
            if (started_ == conns_.size() && active_ == 0) break;
        }
        const std::int64_t stop = now_ns();
        for (auto& c : conns_) {
            if (c.state == State::open) total_.in_flight += c.in_flight();
            if (c.state == State::connecting) {
                // Still connecting when the run ended: neither established nor failed by the server.
                ++total_.failed;
                ++total_.failed_connect;
                total_.errors.add(ETIMEDOUT);
            }
            if (c.state == State::open || c.state == State::connecting) close(c);
        }
        return snapshot(stop);
    }

private:
    LoadStats snapshot(std::int64_t now) {
        total_.duration_s = static_cast<double>(now - start_) / 1e9;
        return total_;
    }

    std::int64_t scan_period() const {
        auto shortest = std::min(cfg_.reply_timeout.count(), cfg_.connect_timeout.count());
        return std::clamp<std::int64_t>(shortest / 8, 1'000'000, 100'000'000);
    }

    std::optional<std::int64_t> next_deadline() const {
        std::int64_t d = std::min(next_scan_, next_progress_);
        if (end_) d = std::min(d, *end_);
        if (next_interval_) d = std::min(d, *next_interval_);
        if (cfg_.connect_rate && started_ < conns_.size()) d = std::min(d, connect_due(started_));
        if (cfg_.rate && issued_ < total_messages()) d = std::min(d, message_due(issued_));
        return d;
    }

    std::int64_t connect_due(std::uint64_t i) const {
        return start_ + static_cast<std::int64_t>(static_cast<double>(i) / *cfg_.connect_rate * 1e9);
    }
    // Global message m (0-based across connections, round robin) is due at start + m / rate.
    std::int64_t message_due(std::uint64_t m) const {
        return start_ + static_cast<std::int64_t>(static_cast<double>(m) / *cfg_.rate * 1e9);
    }
    std::uint64_t total_messages() const {
        return cfg_.duration ? UINT64_MAX : cfg_.messages * conns_.size();
    }
    // Messages of connection i that are due by now.
    std::uint64_t due_for(const Conn& c) const {
        if (issued_ < c.index + 1) return 0;
        return (issued_ - 1 - c.index) / conns_.size() + 1;
    }

    void start_due_connections(std::int64_t now) {
        while (started_ < conns_.size() && (!cfg_.connect_rate || connect_due(started_) <= now)) {
            if (SignalPipe::stop_requested()) return;
            begin_connect(conns_[started_++], now);
        }
    }

    void issue_due_messages(std::int64_t now) {
        auto due = static_cast<std::uint64_t>(std::floor(static_cast<double>(now - start_) / 1e9 * *cfg_.rate)) + 1;
        due = std::min(due, total_messages());
        if (due <= issued_) return;
        std::uint64_t from = issued_;
        issued_ = due;
        if (due - from >= conns_.size()) {
            for (auto& c : conns_)
                if (c.state == State::open) try_send(c, now);
        } else {
            for (std::uint64_t m = from; m < due; ++m) {
                Conn& c = conns_[m % conns_.size()];
                if (c.state == State::open) try_send(c, now);
            }
        }
    }

    void begin_connect(Conn& c, std::int64_t now) {
        c.connect_start = now;
        ++active_;
        Connecting r = connect_nonblocking(endpoint_);
        if (r.err) {
            c.state = State::done;
            --active_;
            ++total_.failed;
            ++total_.failed_connect;
            total_.errors.add(r.err);
            return;
        }
        c.fd = std::move(r.fd);
        if (!loop_->can_watch(c.fd.get()))
            throw RuntimeError(fmt::format("descriptor {} is past select's FD_SETSIZE ({}); use -m poll or -m epoll",
                                           c.fd.get(), FD_SETSIZE));
        const auto fd = static_cast<std::size_t>(c.fd.get());
        if (fd >= by_fd_.size()) by_fd_.resize(fd + 1, UINT32_MAX);
        by_fd_[fd] = c.index;
        if (r.in_progress) {
            c.state = State::connecting;
            loop_->add(c.fd.get(), kWritable);
        } else {
            loop_->add(c.fd.get(), kReadable);
            established(c, now);
        }
    }

    void established(Conn& c, std::int64_t now) {
        c.state = State::open;
        ++total_.established;
        total_.connect_ns.record(static_cast<std::uint64_t>(now - c.connect_start));
        c.last_progress = now;
        try_send(c, now);
    }

    void dispatch(const Event& ev) {
        if (ev.fd == signals_.fd()) {
            if (signals_.drain().stop) finished_ = true;
            return;
        }
        if (static_cast<std::size_t>(ev.fd) >= by_fd_.size() || by_fd_[ev.fd] == UINT32_MAX) return;
        Conn& c = conns_[by_fd_[ev.fd]];
        const std::int64_t now = now_ns();
        if (c.state == State::connecting) {
            int err = socket_error(c.fd.get());
            if (err) {
                fail(c, err, total_.failed_connect);
                return;
            }
            loop_->modify(c.fd.get(), kReadable);
            established(c, now);
            return;
        }
        if (c.state != State::open) return;
        if (ev.events & (kReadable | kHangup | kError)) {
            if (!on_readable(c, now)) return;
        }
        if ((ev.events & kWritable) && c.state == State::open) try_send(c, now);
    }

    // Returns false when the connection was closed.
    bool on_readable(Conn& c, std::int64_t now) {
        for (int i = 0; i < 4; ++i) {
            IoResult r = read_some(c.fd.get(), rbuf_.data(), rbuf_.size());
            if (r.n > 0) {
                if (!consume(c, rbuf_.data(), static_cast<std::size_t>(r.n), now)) return false;
                if (static_cast<std::size_t>(r.n) < rbuf_.size()) break;
                continue;
            }
            if (r.n == 0) {
                ++total_.unexpected_eof;
                fail(c, 0, total_.failed_receive);
                return false;
            }
            if (r.would_block()) break;
            fail(c, r.err, total_.failed_receive);
            return false;
        }
        try_send(c, now);
        return c.state == State::open;
    }

    bool consume(Conn& c, const char* data, std::size_t n, std::int64_t now) {
        total_.bytes_received += n;
        interval_.bytes_received += n;
        c.last_progress = now;
        while (n > 0) {
            std::size_t want = size_ - c.recv_off;
            // Bytes of a message are only expected once they were sent.
            std::size_t expected_now = c.recv_seq < c.send_seq ? want : (c.send_off > c.recv_off ? c.send_off - c.recv_off : 0);
            if (expected_now == 0) {
                ++total_.verify_failures;  // the server sent bytes nobody asked for
                ++interval_.verify_failures;
                close(c);
                return false;
            }
            std::size_t k = std::min({n, want, expected_now});
            if (cfg_.verify && !c.recv_bad) {
                expected(c.index, c.recv_seq, c.recv_off, ebuf_.data(), k);
                if (std::memcmp(ebuf_.data(), data, k) != 0) c.recv_bad = true;
            }
            c.recv_off += k;
            data += k;
            n -= k;
            if (c.recv_off == size_) {
                auto rtt = static_cast<std::uint64_t>(std::max<std::int64_t>(0, now - c.started[c.recv_seq % cfg_.pipeline]));
                total_.rtt_ns.record(rtt);
                interval_.rtt_ns.record(rtt);
                ++total_.received;
                ++interval_.received;
                if (c.recv_bad) {
                    ++total_.verify_failures;
                    ++interval_.verify_failures;
                    c.recv_bad = false;
                }
                ++c.recv_seq;
                c.recv_off = 0;
                if (c.recv_seq >= limit_) {
                    ++total_.completed;
                    close(c);
                    return false;
                }
            }
        }
        return true;
    }

    void expected(std::uint32_t conn, std::uint64_t seq, std::size_t off, char* dst, std::size_t len) const {
        if (cfg_.payload.empty()) fill_pattern(conn, seq, off, dst, len);
        else std::memcpy(dst, cfg_.payload.data() + off, len);
    }

    void try_send(Conn& c, std::int64_t now) {
        for (;;) {
            if (c.send_off == 0) {
                if (stopping() || c.send_seq >= limit_ || c.send_seq - c.recv_seq >= cfg_.pipeline) break;
                if (cfg_.rate && c.send_seq >= due_for(c)) break;
                if (c.in_flight() == 0) c.last_progress = now;
                // With --rate a round trip counts from when the message was due, not when it left.
                c.started[c.send_seq % cfg_.pipeline] =
                    cfg_.rate ? message_due(c.send_seq * conns_.size() + c.index) : now;
            }
            std::size_t len = std::min(size_ - c.send_off, sbuf_.size());
            expected(c.index, c.send_seq, c.send_off, sbuf_.data(), len);
            IoResult w = send_some(c.fd.get(), sbuf_.data(), len);
            if (w.failed()) {
                if (w.would_block()) {
                    set_want_write(c, true);
                    return;
                }
                fail(c, w.err, total_.failed_send);
                return;
            }
            c.send_off += static_cast<std::size_t>(w.n);
            total_.bytes_sent += w.n;
            interval_.bytes_sent += w.n;
            if (c.send_off == size_) {
                c.send_off = 0;
                ++c.send_seq;
                ++total_.sent;
                ++interval_.sent;
            }
        }
        set_want_write(c, false);
    }

    bool stopping() const noexcept { return finished_ || (end_ && now_ns() >= *end_); }

    void set_want_write(Conn& c, bool on) {
        if (c.want_write == on) return;
        c.want_write = on;
        loop_->modify(c.fd.get(), on ? (kReadable | kWritable) : kReadable);
    }

    void scan_timeouts(std::int64_t now) {
        for (auto& c : conns_) {
            if (c.state == State::connecting && now - c.connect_start >= cfg_.connect_timeout.count()) {
                fail(c, ETIMEDOUT, total_.failed_connect);
            } else if (c.state == State::open && c.in_flight() > 0 && now - c.last_progress >= cfg_.reply_timeout.count()) {
                total_.timeouts += c.in_flight();
                interval_.timeouts += c.in_flight();
                c.send_seq = c.recv_seq;  // those messages are counted as timeouts, not lost
                c.send_off = 0;
                fail(c, 0, total_.failed_receive, /*count_phase=*/false);
            }
        }
    }

    void fail(Conn& c, int err, std::uint64_t& phase, bool count_phase = true) {
        if (err) total_.errors.add(err);
        if (count_phase) ++phase;
        ++total_.failed;
        total_.lost += c.state == State::open ? c.in_flight() : 0;
        close(c);
    }

    void close(Conn& c) {
        if (c.fd) {
            loop_->remove(c.fd.get());
            by_fd_[c.fd.get()] = UINT32_MAX;
            c.fd.reset();
        }
        if (c.state != State::done) --active_;
        c.state = State::done;
    }

    const LoadConfig& cfg_;
    LoadObserver& observer_;
    SignalPipe& signals_;
    const std::size_t size_;
    const std::uint64_t limit_;  // messages per connection
    std::vector<Conn> conns_;
    std::vector<std::uint32_t> by_fd_;
    std::unique_ptr<EventLoop> loop_;
    Endpoint endpoint_;
    std::vector<char> rbuf_, sbuf_, ebuf_;
    LoadStats total_, interval_;
    std::int64_t start_ = 0, next_scan_ = 0, next_progress_ = 0;
    std::optional<std::int64_t> end_, next_interval_;
    std::uint64_t started_ = 0, active_ = 0, issued_ = 0;
    bool finished_ = false;
};

}  // namespace

LoadStats run_load(const LoadConfig& config, LoadObserver& observer) {
    if (config.connections == 0) throw UsageError("invalid --connections '0': must be at least 1");
    if (config.pipeline == 0) throw UsageError("invalid --pipeline '0': must be at least 1");
    if (config.model == Model::epoll_et) throw UsageError("multi-connect supports -m select, poll or epoll");
    if (config.payload.empty() && config.size == 0) throw UsageError("invalid --size '0': must be at least 1 byte");
    if (config.model == Model::select && config.connections + 16 > FD_SETSIZE)
        throw UsageError(fmt::format("-c {} needs more descriptors than select can watch (FD_SETSIZE is {}); use -m poll or -m epoll",
                                     config.connections, FD_SETSIZE));
    const std::uint64_t needed = config.connections + 64;
    const std::uint64_t limit = raise_fd_limit(needed);
    if (limit < needed)
        throw RuntimeError(fmt::format("cannot open {} connections: the descriptor limit (ulimit -n) is {} and the hard limit "
                                       "does not allow more; raise it (ulimit -Hn) or use fewer connections",
                                       config.connections, limit));
    LoadRun run(config, observer);
    return run.run();
}

InteractiveResult run_interactive(const Address& target, int in_fd, int out_fd, Duration connect_timeout,
                                  Duration reply_timeout) {
    InteractiveResult result;
    SignalPipe& signals = SignalPipe::install();
    Endpoint ep = resolve(target, false).front();
    Connecting c = connect_nonblocking(ep);
    if (c.err) throw SystemError(c.err, "cannot connect to " + ep.to_string());
    int sock = c.fd.get();
    if (c.in_progress) {
        pollfd p{sock, POLLOUT, 0};
        int rc;
        do rc = ::poll(&p, 1, static_cast<int>(connect_timeout.count() / 1'000'000));
        while (rc < 0 && errno == EINTR && !SignalPipe::stop_requested());
        if (rc == 0) throw SystemError(ETIMEDOUT, "cannot connect to " + ep.to_string());
        if (int err = socket_error(sock)) throw SystemError(err, "cannot connect to " + ep.to_string());
    }
    std::vector<char> pending;  // stdin bytes the socket has not taken yet
    std::size_t pending_off = 0;
    bool in_open = true, half_closed = false;
    char buf[kChunk];
    std::int64_t last_activity = now_ns();
    while (!SignalPipe::stop_requested()) {
        if (!in_open && pending_off == pending.size() && !half_closed) {
            ::shutdown(sock, SHUT_WR);
            half_closed = true;
        }
        pollfd p[3] = {{signals.fd(), POLLIN, 0}, {sock, POLLIN, 0}, {-1, POLLIN, 0}};
        if (pending_off < pending.size()) p[1].events |= POLLOUT;
        else if (in_open) p[2].fd = in_fd;
        int timeout_ms = -1;
        if (half_closed) {
            std::int64_t left = last_activity + reply_timeout.count() - now_ns();
            if (left <= 0) break;  // the server kept the rest: not complete
            timeout_ms = static_cast<int>(left / 1'000'000) + 1;
        }
        int rc = ::poll(p, 3, timeout_ms);
        if (rc < 0) {
            if (errno == EINTR) continue;
            throw_errno("poll");
        }
        if (p[0].revents) signals.drain();
        if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            IoResult r = read_some(sock, buf, sizeof buf);
            if (r.n == 0) break;
            if (r.failed() && !r.would_block()) throw SystemError(r.err, "receive from " + ep.to_string());
            if (r.n > 0) {
                result.bytes_received += r.n;
                last_activity = now_ns();
                if (int err = write_all(out_fd, buf, static_cast<std::size_t>(r.n))) throw SystemError(err, "write to stdout");
            }
        }
        if ((p[1].revents & POLLOUT) && pending_off < pending.size()) {
            IoResult w = send_some(sock, pending.data() + pending_off, pending.size() - pending_off);
            if (w.failed() && !w.would_block()) throw SystemError(w.err, "send to " + ep.to_string());
            if (w.n > 0) {
                pending_off += static_cast<std::size_t>(w.n);
                result.bytes_sent += w.n;
            }
        }
        if (p[2].fd >= 0 && (p[2].revents & (POLLIN | POLLHUP | POLLERR))) {
            IoResult r = read_some(in_fd, buf, sizeof buf);
            if (r.n <= 0) in_open = false;
            else {
                pending.assign(buf, buf + r.n);
                pending_off = 0;
                last_activity = now_ns();
            }
        }
    }
    result.complete = !in_open && half_closed && result.bytes_received == result.bytes_sent;
    return result;
}

}  // namespace muxkit
