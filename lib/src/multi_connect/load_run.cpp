// LoadRun, the logic of one thread's load, and the values of multi-connect's results.
#include "multi_connect/load_run.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include <poll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include "muxkit/clock.hpp"
#include "muxkit/event_loop.hpp"
#include "muxkit/io.hpp"
#include "multi_connect/load_run.hpp"
#include "uring/ring.hpp"
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
constexpr std::int64_t kMaxDrain = 2'000'000'000;
}  // namespace

std::string_view failure_kind_name(LoadFailure::Kind k) noexcept {
    switch (k) {
    case LoadFailure::Kind::connect: return "connect";
    case LoadFailure::Kind::send: return "send";
    case LoadFailure::Kind::receive: return "receive";
    case LoadFailure::Kind::closed: return "closed";
    case LoadFailure::Kind::timeout: return "timeout";
    case LoadFailure::Kind::mismatch: return "verify";
    }
    return "?";
}

void LoadStats::note_failure(const LoadFailure& f) {
    if (!first_failure) {
        first_failure = f;
        return;
    }
    if (f.kind != first_failure->kind || f.err != first_failure->err) failures_alike = false;
}

void LoadStats::merge(const LoadStats& part) {
    requested += part.requested;
    established += part.established;
    failed += part.failed;
    completed += part.completed;
    sent += part.sent;
    received += part.received;
    verify_failures += part.verify_failures;
    timeouts += part.timeouts;
    lost += part.lost;
    in_flight += part.in_flight;
    bytes_sent += part.bytes_sent;
    bytes_received += part.bytes_received;
    failed_connect += part.failed_connect;
    failed_send += part.failed_send;
    failed_receive += part.failed_receive;
    errors.merge(part.errors);
    unexpected_eof += part.unexpected_eof;
    connect_ns.merge(part.connect_ns);
    rtt_ns.merge(part.rtt_ns);
    duration_s = std::max(duration_s, part.duration_s);
    interrupted = interrupted || part.interrupted;
    if (part.first_failure) {
        if (!first_failure) first_failure = part.first_failure;
        else if (part.first_failure->kind != first_failure->kind || part.first_failure->err != first_failure->err)
            failures_alike = false;
    }
    failures_alike = failures_alike && part.failures_alike;
}

namespace detail {

LoadRun::LoadRun(const LoadConfig& config, LoadObserver& observer, LoadSlice slice)
    : cfg_(config), observer_(observer), signals_(SignalPipe::get()), slice_(slice),
      size_(config.payload.empty() ? config.size : config.payload.size()),
      limit_(config.duration ? UINT64_MAX : config.messages), window_(std::min(config.pipeline, limit_)),
      conns_(slice.count) {}

LoadStats LoadRun::run() {
    endpoint_ = resolve(cfg_.target, false).front();
    setup();
    ebuf_.resize(kChunk);
    for (std::uint32_t i = 0; i < conns_.size(); ++i) {
        conns_[i].index = i;
        conns_[i].started = std::make_unique<std::int64_t[]>(window_);
    }
    total_.requested = conns_.size();

    start_ = now_ns();
    if (cfg_.duration) end_ = start_ + cfg_.duration->count();
    next_scan_ = start_ + scan_period();
    next_progress_ = start_ + 1'000'000'000;
    if (cfg_.interval) next_interval_ = start_ + cfg_.interval->count();
    start_due_connections(start_);

    while (!finished_) {
        wait_and_dispatch(next_deadline());
        if (SignalPipe::stop_requested()) finished_ = true;  // another thread may have emptied the pipe
        if (finished_) break;
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
    // A stop signal before the last message or the end of --duration cuts the run short.
    total_.interrupted = finished_ && !(started_ == conns_.size() && active_ == 0) && !(end_ && now_ns() >= *end_);
    for (auto& c : conns_)
        if (c.state == ConnState::connecting) {
            // Still connecting when the run ended: neither established nor failed by the server.
            total_.errors.add(ETIMEDOUT);
            ++total_.failed;
            ++total_.failed_connect;
            close(c);
        }
    const std::int64_t stop = now_ns();
    drain();
    for (auto& c : conns_)
        if (c.live()) {
            total_.in_flight += c.in_flight();
            close(c);
        }
    finish();
    return snapshot(stop);
}

// The run is over: no new message is sent; each connection shuts down its write side and takes
// the echoes still on their way (for --reply-timeout, 2 s at the most, so a stop stays prompt),
// so the server sees a clean close and no reset, and what came back in time counts as received.
void LoadRun::drain() {
    draining_ = true;
    for (auto& c : conns_) {
        if (c.state != ConnState::open) continue;
        if (c.in_flight() == 0) {
            close(c);
            continue;
        }
        c.state = ConnState::draining;
        half_close(c);
    }
    const std::int64_t deadline = now_ns() + std::min<std::int64_t>(cfg_.reply_timeout.count(), kMaxDrain);
    while (active_ > 0 && now_ns() < deadline) wait_and_dispatch(deadline);
}

void LoadRun::on_signal() {
    if (signals_.drain().stop) finished_ = true;
}

LoadStats LoadRun::snapshot(std::int64_t now) {
    total_.duration_s = static_cast<double>(now - start_) / 1e9;
    return total_;
}

std::int64_t LoadRun::scan_period() const {
    auto shortest = std::min(cfg_.reply_timeout.count(), cfg_.connect_timeout.count());
    return std::clamp<std::int64_t>(shortest / 8, 1'000'000, 100'000'000);
}

std::optional<std::int64_t> LoadRun::next_deadline() const {
    std::int64_t d = std::min(next_scan_, next_progress_);
    if (end_) d = std::min(d, *end_);
    if (next_interval_) d = std::min(d, *next_interval_);
    if (cfg_.connect_rate && started_ < conns_.size()) d = std::min(d, connect_due(started_));
    if (cfg_.rate && issued_ < total_messages()) d = std::min(d, message_due(issued_));
    return d;
}

std::int64_t LoadRun::connect_due(std::uint64_t i) const {
    return start_ + static_cast<std::int64_t>(static_cast<double>(i) / (*cfg_.connect_rate * slice_.share) * 1e9);
}

// Message m (0-based across this thread's connections, round robin) is due at start + m / rate.
std::int64_t LoadRun::message_due(std::uint64_t m) const {
    return start_ + static_cast<std::int64_t>(static_cast<double>(m) / (*cfg_.rate * slice_.share) * 1e9);
}

std::uint64_t LoadRun::total_messages() const { return cfg_.duration ? UINT64_MAX : cfg_.messages * conns_.size(); }

// Messages of connection c that are due by now.
std::uint64_t LoadRun::due_for(const LoadConn& c) const {
    if (issued_ < c.index + 1) return 0;
    return (issued_ - 1 - c.index) / conns_.size() + 1;
}

void LoadRun::start_due_connections(std::int64_t now) {
    while (started_ < conns_.size() && (!cfg_.connect_rate || connect_due(started_) <= now)) {
        if (SignalPipe::stop_requested()) return;
        begin_connect(conns_[started_++], now);
    }
}

void LoadRun::issue_due_messages(std::int64_t now) {
    auto due = static_cast<std::uint64_t>(std::floor(static_cast<double>(now - start_) / 1e9 * *cfg_.rate * slice_.share)) + 1;
    due = std::min(due, total_messages());
    if (due <= issued_) return;
    std::uint64_t from = issued_;
    issued_ = due;
    if (due - from >= conns_.size()) {
        for (auto& c : conns_)
            if (c.state == ConnState::open) pump(c, now);
    } else {
        for (std::uint64_t m = from; m < due; ++m) {
            LoadConn& c = conns_[m % conns_.size()];
            if (c.state == ConnState::open) pump(c, now);
        }
    }
}

void LoadRun::begin_connect(LoadConn& c, std::int64_t now) {
    c.connect_start = now;
    c.state = ConnState::connecting;
    ++active_;
    open(c, now);
}

void LoadRun::established(LoadConn& c, std::int64_t now) {
    if (draining_) {  // the run ended while the connect was on its way
        close(c);
        return;
    }
    c.state = ConnState::open;
    ++total_.established;
    total_.connect_ns.record(static_cast<std::uint64_t>(now - c.connect_start));
    c.last_progress = now;
    pump(c, now);
}

bool LoadRun::consume(LoadConn& c, const char* data, std::size_t n, std::int64_t now) {
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
            mismatch(c, data, n);
            close(c);
            return false;
        }
        std::size_t k = std::min({n, want, expected_now});
        if (cfg_.verify && !c.recv_bad) {
            expected(c, c.recv_seq, c.recv_off, ebuf_.data(), k);
            if (std::memcmp(ebuf_.data(), data, k) != 0) {
                c.recv_bad = true;
                mismatch(c, data, k);
            }
        }
        c.recv_off += k;
        data += k;
        n -= k;
        if (c.recv_off == size_) {
            auto rtt = static_cast<std::uint64_t>(std::max<std::int64_t>(0, now - c.started[c.recv_seq % window_]));
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
            if (c.state == ConnState::draining && c.in_flight() == 0) {  // every echo is back
                close(c);
                return false;
            }
        }
    }
    return true;
}

// The first differing byte of the chunk got (which starts at c.recv_off of message c.recv_seq,
// compared with ebuf_), with excerpts from there.
void LoadRun::mismatch(const LoadConn& c, const char* got, std::size_t n) {
    if (total_.first_failure && !observer_.wants_failures()) {
        total_.note_failure(failure(LoadFailure::Kind::mismatch, c));
        return;
    }
    LoadFailure f = failure(LoadFailure::Kind::mismatch, c);
    const bool extra = c.recv_seq >= c.send_seq && c.send_off <= c.recv_off;  // nothing was due
    std::size_t i = 0;
    if (!extra)
        while (i < n && got[i] == ebuf_[i]) ++i;
    f.offset = c.recv_off + i;
    const std::size_t len = std::min(LoadFailure::kExcerpt, n - std::min(i, n));
    f.received.assign(got + i, len);
    if (!extra) {
        const std::size_t want = std::min(LoadFailure::kExcerpt, size_ - f.offset);
        f.expected.resize(want);
        expected(c, c.recv_seq, f.offset, f.expected.data(), want);
    }
    report(std::move(f));
}

void LoadRun::expected(const LoadConn& c, std::uint64_t seq, std::size_t off, char* dst, std::size_t len) const {
    if (cfg_.payload.empty()) fill_pattern(static_cast<std::uint32_t>(slice_.first + c.index), seq, off, dst, len);
    else std::memcpy(dst, cfg_.payload.data() + off, len);
}

std::size_t LoadRun::next_bytes(LoadConn& c, std::int64_t now, char* dst, std::size_t cap) {
    if (draining_) return 0;  // the write side is shut down, even mid-message
    std::size_t len = 0, off = c.send_off;
    std::uint64_t seq = c.send_seq;
    while (len < cap) {
        if (off == 0) {
            if (stopping() || seq >= limit_ || seq - c.recv_seq >= window_) break;
            if (cfg_.rate && seq >= due_for(c)) break;
            if (seq == c.send_seq && c.in_flight() == 0) c.last_progress = now;
            // With --rate a round trip counts from when the message was due, not when it left.
            c.started[seq % window_] = cfg_.rate ? message_due(seq * conns_.size() + c.index) : now;
        }
        std::size_t k = std::min(size_ - off, cap - len);
        expected(c, seq, off, dst + len, k);
        len += k;
        off += k;
        if (off == size_) {
            off = 0;
            ++seq;
        }
    }
    return len;
}

void LoadRun::bytes_sent(LoadConn& c, std::size_t n) {
    total_.bytes_sent += n;
    interval_.bytes_sent += n;
    while (n > 0) {
        std::size_t k = std::min(n, size_ - c.send_off);
        c.send_off += k;
        n -= k;
        if (c.send_off == size_) {
            c.send_off = 0;
            ++c.send_seq;
            ++total_.sent;
            ++interval_.sent;
        }
    }
}

bool LoadRun::stopping() const noexcept { return finished_ || draining_ || (end_ && now_ns() >= *end_); }

void LoadRun::scan_timeouts(std::int64_t now) {
    for (auto& c : conns_) {
        if (c.state == ConnState::connecting && now - c.connect_start >= cfg_.connect_timeout.count()) {
            fail(c, Phase::connect, ETIMEDOUT);
        } else if (c.state == ConnState::open && c.in_flight() > 0 && now - c.last_progress >= cfg_.reply_timeout.count()) {
            // Each message in flight is one timeout; the connection closed for it is not a
            // failure of its own.
            const std::uint64_t n = c.in_flight();
            total_.timeouts += n;
            interval_.timeouts += n;
            LoadFailure f = failure(LoadFailure::Kind::timeout, c);
            f.messages = n;
            report(std::move(f));
            c.send_seq = c.recv_seq;
            c.send_off = 0;
            close(c);
        }
    }
}

void LoadRun::fail(LoadConn& c, Phase phase, int err) {
    if (c.state == ConnState::done) return;
    if (err) total_.errors.add(err);
    switch (phase) {
    case Phase::connect: ++total_.failed_connect; break;
    case Phase::send: ++total_.failed_send; break;
    case Phase::receive: ++total_.failed_receive; break;
    }
    ++total_.failed;
    const bool open = c.live();
    total_.lost += open ? c.in_flight() : 0;
    LoadFailure f = failure(phase == Phase::connect ? LoadFailure::Kind::connect
                            : phase == Phase::send  ? LoadFailure::Kind::send
                            : err                   ? LoadFailure::Kind::receive
                                                    : LoadFailure::Kind::closed,
                            c);
    f.err = err;
    report(std::move(f));
    close(c);
}

void LoadRun::peer_closed(LoadConn& c) {
    if (c.state == ConnState::draining) {  // the server echoed what it had and closed
        total_.in_flight += c.in_flight();
        c.send_seq = c.recv_seq;
        c.send_off = 0;
        close(c);
        return;
    }
    ++total_.unexpected_eof;
    fail(c, Phase::receive, 0);
}

LoadFailure LoadRun::failure(LoadFailure::Kind kind, const LoadConn& c) const {
    LoadFailure f;
    f.kind = kind;
    f.connection = slice_.first + c.index;
    f.message = c.recv_seq;
    return f;
}

void LoadRun::report(LoadFailure f) {
    total_.note_failure(f);
    if (observer_.wants_failures()) observer_.on_failure(f);
}

void LoadRun::close(LoadConn& c) {
    if (c.state == ConnState::done) return;
    --active_;
    c.state = ConnState::done;
    release(c);
}

}  // namespace detail

}  // namespace muxkit
