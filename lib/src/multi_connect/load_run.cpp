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
#include <stdexcept>
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

void fill_datagram(std::uint32_t conn, std::uint64_t seq, char* dst, std::size_t len) noexcept {
    unsigned char header[12];
    for (int i = 0; i < 8; ++i) header[i] = static_cast<unsigned char>(seq >> (8 * i));
    for (int i = 0; i < 4; ++i) header[8 + i] = static_cast<unsigned char>(conn >> (8 * i));
    const std::size_t head = std::min<std::size_t>(len, 12);
    std::memcpy(dst, header, head);
    if (len > head) fill_pattern(conn, seq, head, dst + head, len - head);
}

namespace {
constexpr std::int64_t kMaxDrain = 2'000'000'000;
constexpr std::uint8_t kUnsent = 0, kOutstanding = 1, kBack = 2, kLost = 3;  // a UDP datagram's state
}  // namespace

std::string_view load_mode_name(LoadMode mode) noexcept {
    switch (mode) {
    case LoadMode::echo: return "echo";
    case LoadMode::connect: return "connect";
    case LoadMode::request: return "request";
    }
    return "?";
}

std::string_view failure_kind_name(LoadFailure::Kind k) noexcept {
    switch (k) {
    case LoadFailure::Kind::connect: return "connect";
    case LoadFailure::Kind::send: return "send";
    case LoadFailure::Kind::receive: return "receive";
    case LoadFailure::Kind::closed: return "closed";
    case LoadFailure::Kind::timeout: return "timeout";
    case LoadFailure::Kind::mismatch: return "verify";
    case LoadFailure::Kind::early_reply: return "early_reply";
    case LoadFailure::Kind::hold: return "hold";
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

namespace {
void add_counted(std::uint64_t& to, std::uint64_t n) {
    if (__builtin_add_overflow(to, n, &to)) throw std::overflow_error("a count passed 2^64 - 1");
}
}  // namespace

void LoadStats::merge(const LoadStats& part) {
    add_counted(requested, part.requested);
    add_counted(established, part.established);
    add_counted(failed, part.failed);
    add_counted(completed, part.completed);
    add_counted(sent, part.sent);
    add_counted(received, part.received);
    add_counted(verify_failures, part.verify_failures);
    add_counted(timeouts, part.timeouts);
    add_counted(lost, part.lost);
    add_counted(duplicates, part.duplicates);
    add_counted(reordered, part.reordered);
    add_counted(late, part.late);
    add_counted(in_flight, part.in_flight);
    add_counted(bytes_sent, part.bytes_sent);
    add_counted(bytes_received, part.bytes_received);
    add_counted(failed_connect, part.failed_connect);
    add_counted(failed_send, part.failed_send);
    add_counted(failed_receive, part.failed_receive);
    add_counted(failed_hold, part.failed_hold);
    errors.merge(part.errors);
    add_counted(unexpected_eof, part.unexpected_eof);
    add_counted(negative_rtt, part.negative_rtt);
    add_counted(early_replies, part.early_replies);
    connect_ns.merge(part.connect_ns);
    rtt_ns.merge(part.rtt_ns);
    service_ns.merge(part.service_ns);
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
      size_(config.mode == LoadMode::connect ? 0 : config.payload.empty() ? config.size : config.payload.size()),
      reply_size_(config.mode == LoadMode::request ? (config.expect ? config.expect->size() : 0) : size_),
      mirrored_(config.mode == LoadMode::echo),
      limit_(config.mode == LoadMode::connect ? 0 : config.duration ? UINT64_MAX : config.messages),
      window_(config.mode == LoadMode::connect ? 1 : std::min(config.pipeline, limit_)), datagram_(config.target.datagram()),
      conns_(slice.count) {
    if (datagram_) ring_ = datagram_ring(window_, size_);
}

LoadStats LoadRun::run() {
    endpoint_ = resolve(cfg_.target, false).front();
    setup();
    ebuf_.resize(kChunk);
    const std::uint64_t slots = datagram_ ? ring_ : window_;
    for (std::uint32_t i = 0; i < conns_.size(); ++i) {
        conns_[i].index = i;
        conns_[i].started = std::make_unique<std::int64_t[]>(slots);
        if (cfg_.rate && !connect_mode()) conns_[i].sent = std::make_unique<std::int64_t[]>(slots);
        if (datagram_) conns_[i].datagrams = std::make_unique<std::uint8_t[]>(slots);
    }
    // Connects to make: one per slot, or in connect mode -n per slot (each slot connects again
    // once its last connection closed).
    attempts_ = !connect_mode() ? conns_.size() : cfg_.duration ? UINT64_MAX : cfg_.messages * conns_.size();
    free_.resize(conns_.size());
    for (std::uint32_t i = 0; i < conns_.size(); ++i) free_[i] = static_cast<std::uint32_t>(conns_.size() - 1 - i);
    if (!connect_mode()) total_.requested = conns_.size();

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
        if (!holds_.empty()) end_holds(now);
        if (cfg_.rate && !connect_mode()) issue_due_messages(now);
        if (now >= next_scan_) {
            scan_timeouts(now);
            next_scan_ = now + scan_period();
        }
        if (next_interval_ && now >= *next_interval_) {
            interval_.duration_s = to_seconds(*cfg_.interval);
            observer_.on_interval(interval_, static_cast<double>(*next_interval_ - start_) / 1e9);  // its scheduled end
            interval_ = LoadStats();
            *next_interval_ += cfg_.interval->count();
        }
        if (now >= next_progress_) {
            observer_.on_progress(snapshot(now));
            next_progress_ = now + 1'000'000'000;
        }
        if (end_ && now >= *end_) break;
        if (all_started() && active_ == 0) break;
    }
    // A stop signal before the last message or the end of --duration cuts the run short.
    total_.interrupted = finished_ && !(all_started() && active_ == 0) && !(end_ && now_ns() >= *end_);
    // A connect storm always has connects on their way: they get the drain's time to land.
    if (!connect_mode()) fail_connecting();
    const std::int64_t stop = now_ns();
    drain();
    fail_connecting();
    if (datagram_) scan_timeouts(now_ns());  // what the drain waited a whole --reply-timeout for is lost
    const std::int64_t end = now_ns();
    for (auto& c : conns_)
        if (c.live()) {
            unanswered_at_end(c, end);
            close(c);
        }
    finish();
    const bool quiet = interval_.received == 0 && interval_.bytes_received == 0 && interval_.established == 0 &&
                       interval_.failed == 0 && interval_.timeouts == 0 && interval_.verify_failures == 0;
    if (next_interval_ && !quiet) {  // the last interval, however short, so the intervals add up to the run
        const std::int64_t now = now_ns(), from = *next_interval_ - cfg_.interval->count();
        interval_.duration_s = static_cast<double>(now - from) / 1e9;
        observer_.on_interval(interval_, static_cast<double>(now - start_) / 1e9);
    }
    return snapshot(stop);
}

// Connects still on their way when the run ended: neither established nor refused by the server.
void LoadRun::fail_connecting() {
    for (auto& c : conns_)
        if (c.state == ConnState::connecting) {
            total_.errors.add(ETIMEDOUT);
            ++total_.failed;
    ++interval_.failed;
            ++total_.failed_connect;
            close(c);
        }
}

// Messages still unanswered when the run ends: those that waited --reply-timeout or longer are
// timeouts (a server that never answers fails however short the run), the rest in flight. UDP's
// were sorted into lost and outstanding by the last scan.
void LoadRun::unanswered_at_end(LoadConn& c, std::int64_t now) {
    if (datagram_) {
        total_.in_flight += c.in_flight();
        return;
    }
    std::uint64_t timed_out = 0;
    for (std::uint64_t seq = c.recv_seq, n = c.in_flight(); seq < c.recv_seq + n; ++seq)
        if (now - c.started[seq % window_] >= cfg_.reply_timeout.count()) ++timed_out;
    total_.in_flight += c.in_flight() - timed_out;
    if (timed_out == 0) return;
    total_.timeouts += timed_out;
    interval_.timeouts += timed_out;
    LoadFailure f = failure(LoadFailure::Kind::timeout, c);
    f.messages = timed_out;
    report(std::move(f));
}

// The run is over: no new message is sent; each connection shuts down its write side and takes
// the replies still on their way (for --reply-timeout, 2 s at the most, so a stop stays prompt),
// so the server sees a clean close and no reset, and what came back in time counts as received.
// In connect mode, held connections close and connects on their way may still land.
void LoadRun::drain() {
    draining_ = true;
    holds_.clear();
    for (auto& c : conns_) {
        if (c.state != ConnState::open) continue;
        if (c.in_flight() == 0) {
            close(c);
            continue;
        }
        c.state = ConnState::draining;
        half_close(c);
    }
    const Duration wait = connect_mode() ? cfg_.connect_timeout : cfg_.reply_timeout;
    const std::int64_t deadline = now_ns() + std::min<std::int64_t>(wait.count(), kMaxDrain);
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
    if (!all_started() && !free_.empty()) d = std::min(d, connect_pace() ? connect_due(started_) : 0);
    if (!holds_.empty()) d = std::min(d, holds_.front().until);
    if (cfg_.rate && !connect_mode() && issued_ < total_messages()) d = std::min(d, message_due(issued_));
    return d;
}

// New connections per second: --rate in connect mode, --connect-rate in the others.
const std::optional<double>& LoadRun::connect_pace() const noexcept {
    return connect_mode() ? cfg_.rate : cfg_.connect_rate;
}

std::int64_t LoadRun::connect_due(std::uint64_t i) const {
    return start_ + static_cast<std::int64_t>(static_cast<double>(i) / (*connect_pace() * slice_.share) * 1e9);
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

// Starts the connects that are due, on free slots. At most one per slot per call, so connects
// that fail at once (EADDRNOTAVAIL) cannot keep the loop from its signals and deadlines.
void LoadRun::start_due_connections(std::int64_t now) {
    for (std::size_t n = 0; n < conns_.size() && !all_started() && !free_.empty(); ++n) {
        const std::int64_t due = connect_pace() ? connect_due(started_) : now;
        if (due > now || SignalPipe::stop_requested() || (end_ && now >= *end_)) return;
        LoadConn& c = conns_[free_.back()];
        free_.pop_back();
        ++started_;
        // With --rate, a connect counts from when it was due, so a slow accept path cannot hide.
        begin_connect(c, now, connect_mode() && connect_pace() ? due : now);
    }
}

void LoadRun::end_holds(std::int64_t now) {
    while (!holds_.empty() && holds_.front().until <= now) {
        const Hold h = holds_.front();
        holds_.pop_front();
        LoadConn& c = conns_[h.index];
        if (c.attempt != h.attempt || c.state != ConnState::open) continue;  // it ended before its hold
        ++total_.completed;
        close(c);
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

void LoadRun::begin_connect(LoadConn& c, std::int64_t now, std::int64_t from) {
    c.connect_start = now;
    c.connect_from = from;
    ++c.attempt;
    c.send_seq = c.recv_seq = 0;
    c.send_off = c.recv_off = 0;
    c.recv_bad = false;
    c.state = ConnState::connecting;
    ++active_;
    if (connect_mode()) ++total_.requested;
    open(c, now);
}

void LoadRun::established(LoadConn& c, std::int64_t now) {
    if (draining_ && !connect_mode()) {  // the run ended while the connect was on its way
        close(c);
        return;
    }
    c.state = ConnState::open;
    ++total_.established;
    ++interval_.established;
    c.last_progress = now;
    if (datagram_) {  // a local step, nothing to time
        c.outstanding = c.highest_back = 0;
        c.any_back = false;
        std::fill_n(c.datagrams.get(), ring_, kUnsent);
        pump(c, now);
        return;
    }
    const auto took = static_cast<std::uint64_t>(std::max<std::int64_t>(0, now - c.connect_from));
    total_.connect_ns.record(took);
    interval_.connect_ns.record(took);
    if (connect_mode()) {
        if (cfg_.hold.count() > 0 && !draining_) {
            holds_.push_back({now + cfg_.hold.count(), c.index, c.attempt});
            return;
        }
        ++total_.completed;
        close(c);
        return;
    }
    pump(c, now);
}

void LoadRun::released(LoadConn& c) {
    if (connect_mode()) free_.push_back(c.index);
}

bool LoadRun::consume(LoadConn& c, const char* data, std::size_t n, std::int64_t now) {
    total_.bytes_received += n;
    interval_.bytes_received += n;
    c.last_progress = now;
    if (connect_mode()) return true;  // a banner (sshd, SMTP): read so the close stays clean, not checked
    while (n > 0) {
        if (!mirrored_ && c.recv_seq == c.send_seq && c.send_off > 0) {
            // A reply to a request not yet written whole answers something else (an error, a
            // limit): the message fails, and the connection, out of step, ends.
            ++total_.early_replies;
            fail(c, Phase::receive, 0, LoadFailure::Kind::early_reply);
            return false;
        }
        // A reply is due once its request went out whole; an echoed byte once that byte went.
        const bool due = c.recv_seq < c.send_seq || (c.recv_seq == c.send_seq && c.send_off > 0);
        if (reply_size_ == 0) {  // no expectation: whatever arrives first is the reply
            return due ? complete_reply(c, now) : true;  // bytes no request waits for: counted only
        }
        const std::size_t want = reply_size_ - c.recv_off;
        const std::size_t allowed = !due                                    ? 0
                                    : !mirrored_ || c.recv_seq < c.send_seq ? want
                                                                            : c.send_off - std::min(c.send_off, c.recv_off);
        if (allowed == 0) {
            ++total_.verify_failures;  // the server sent bytes nobody asked for
            ++interval_.verify_failures;
            mismatch(c, data, n, n, true);
            close(c);
            return false;
        }
        const std::size_t k = std::min({n, want, allowed});
        if (cfg_.verify && !c.recv_bad) {
            reply_bytes(c, c.recv_seq, c.recv_off, ebuf_.data(), k);
            if (std::memcmp(ebuf_.data(), data, k) != 0) {
                c.recv_bad = true;
                mismatch(c, data, k, mirrored_ ? k : n, false);
                if (!mirrored_) {
                    // A reply that is not the one expected has no known end: the connection is out
                    // of step, so it ends here, the reply a verify failure, the rest in flight lost.
                    ++total_.received;
                    ++interval_.received;
                    ++total_.verify_failures;
                    ++interval_.verify_failures;
                    total_.lost += c.in_flight() - 1;
                    close(c);
                    return false;
                }
            }
        }
        c.recv_off += k;
        data += k;
        n -= k;
        if (c.recv_off == reply_size_ && !complete_reply(c, now)) return false;
    }
    return true;
}

// A reply came back: its round trip from when its message was due (or sent), its service time
// from when it really went out (under --rate), one more received.
void LoadRun::record_round_trip(const LoadConn& c, std::size_t slot, std::int64_t now) {
    ++total_.received;
    ++interval_.received;
    // A reply timed before its request is a timing fault of ours: counted and reported, never
    // recorded as a round trip of 0.
    if (now < c.started[slot] || (cfg_.rate && now < c.sent[slot])) {
        ++total_.negative_rtt;
        ++interval_.negative_rtt;
        return;
    }
    const auto rtt = static_cast<std::uint64_t>(now - c.started[slot]);
    total_.rtt_ns.record(rtt);
    interval_.rtt_ns.record(rtt);
    if (cfg_.rate) {
        const auto service = static_cast<std::uint64_t>(now - c.sent[slot]);
        total_.service_ns.record(service);
        interval_.service_ns.record(service);
    }
}

// The reply to message c.recv_seq is complete; false when that closed the connection.
bool LoadRun::complete_reply(LoadConn& c, std::int64_t now) {
    record_round_trip(c, c.recv_seq % window_, now);
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
    if (c.state == ConnState::draining && c.in_flight() == 0) {  // every reply is back
        close(c);
        return false;
    }
    return true;
}

// The first differing byte of the n bytes of got that were compared with ebuf_ (they start at
// c.recv_off of reply c.recv_seq), with excerpts from there (of the shown bytes that arrived);
// unasked: no reply was due at all.
void LoadRun::mismatch(const LoadConn& c, const char* got, std::size_t n, std::size_t shown, bool unasked) {
    if (total_.first_failure && !observer_.wants_failures()) {
        total_.note_failure(failure(LoadFailure::Kind::mismatch, c));
        return;
    }
    LoadFailure f = failure(LoadFailure::Kind::mismatch, c);
    f.unasked = unasked;
    if (unasked) f.messages = limit_ == UINT64_MAX ? 0 : limit_ - c.send_seq;
    std::size_t i = 0;
    if (!unasked)
        while (i < n && got[i] == ebuf_[i]) ++i;
    f.offset = c.recv_off + i;
    const std::size_t len = std::min(LoadFailure::kExcerpt, shown - std::min(i, shown));
    f.received.assign(got + i, len);
    if (!unasked) {
        const std::size_t want = std::min(LoadFailure::kExcerpt, reply_size_ - f.offset);
        f.expected.resize(want);
        reply_bytes(c, c.recv_seq, f.offset, f.expected.data(), want);
    }
    report(std::move(f));
}

void LoadRun::request_bytes(const LoadConn& c, std::uint64_t seq, std::size_t off, char* dst, std::size_t len) const {
    if (cfg_.payload.empty()) fill_pattern(static_cast<std::uint32_t>(slice_.first + c.index), seq, off, dst, len);
    else std::memcpy(dst, cfg_.payload.data() + off, len);
}

void LoadRun::reply_datagram(const LoadConn& c, std::uint64_t seq) {
    fill_datagram(static_cast<std::uint32_t>(slice_.first + c.index), seq, ebuf_.data(), size_);
}

void LoadRun::reply_bytes(const LoadConn& c, std::uint64_t seq, std::size_t off, char* dst, std::size_t len) const {
    if (cfg_.mode == LoadMode::request) std::memcpy(dst, cfg_.expect->data() + off, len);
    else request_bytes(c, seq, off, dst, len);
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
            // With --rate a round trip counts from when the message was due, not when it left
            // (the service time, from when it left, is kept beside it).
            c.started[seq % window_] = cfg_.rate ? message_due(seq * conns_.size() + c.index) : now;
            if (cfg_.rate) c.sent[seq % window_] = now;
        }
        std::size_t k = std::min(size_ - off, cap - len);
        request_bytes(c, seq, off, dst + len, k);
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
        if (datagram_ && c.live()) {
            scan_datagrams(c, now);
            continue;
        }
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

// ---- UDP

std::uint64_t datagram_ring(std::uint64_t window, std::size_t size) {
    // A lost datagram holds the ring's start for a whole --reply-timeout: room for the ones
    // after it, so a few losses do not stall the sending.
    std::uint64_t ring = 256;
    while (ring < 2 * window) ring *= 2;
    // Shorter than 8 bytes, a datagram carries its sequence number modulo 256^size: the ring
    // must stay within half of that for each echo to name one datagram.
    if (size < 8) ring = std::min<std::uint64_t>(ring, std::uint64_t{1} << (8 * size - 1));
    return ring;
}

std::size_t LoadRun::next_datagram(LoadConn& c, std::int64_t now, char* dst) {
    if (draining_ || stopping() || c.state != ConnState::open) return 0;
    const std::uint64_t seq = c.send_seq;
    if (seq >= limit_ || c.outstanding >= window_ || seq - c.recv_seq >= ring_) return 0;
    if (cfg_.rate && seq >= due_for(c)) return 0;
    const std::size_t slot = seq % ring_;
    c.started[slot] = cfg_.rate ? message_due(seq * conns_.size() + c.index) : now;
    if (cfg_.rate) c.sent[slot] = now;
    fill_datagram(static_cast<std::uint32_t>(slice_.first + c.index), seq, dst, size_);
    return size_;
}

void LoadRun::datagram_sent(LoadConn& c) {
    c.datagrams[c.send_seq % ring_] = kOutstanding;
    ++c.send_seq;
    ++c.outstanding;
    ++total_.sent;
    ++interval_.sent;
    total_.bytes_sent += size_;
    interval_.bytes_sent += size_;
}

// The sequence number an echo names: whole from 8 bytes on, else the latest sent that ends in
// those bytes (the ring keeps every datagram in question within reach).
std::optional<std::uint64_t> LoadRun::datagram_seq(const LoadConn& c, const char* data, std::size_t got) const {
    const std::size_t k = std::min<std::size_t>(size_, 8);
    if (got < k || c.send_seq == 0) return std::nullopt;
    std::uint64_t low = 0;
    for (std::size_t i = 0; i < k; ++i) low |= static_cast<std::uint64_t>(static_cast<unsigned char>(data[i])) << (8 * i);
    if (k == 8) return low;
    const std::uint64_t mask = (std::uint64_t{1} << (8 * k)) - 1, last = c.send_seq - 1;
    return last - ((last - low) & mask);
}

void LoadRun::datagram_arrived(LoadConn& c, const char* data, std::size_t got, std::size_t real, std::int64_t now) {
    total_.bytes_received += real;
    interval_.bytes_received += real;
    const std::optional<std::uint64_t> seq = datagram_seq(c, data, got);
    if (!seq || *seq >= c.send_seq) {  // too short to name a datagram, or one never sent
        ++total_.verify_failures;
        ++interval_.verify_failures;
        datagram_mismatch(c, seq.value_or(0), data, got);
        return;
    }
    if (c.send_seq - *seq > ring_) {  // older than anything tracked: its datagram was lost or is back
        ++total_.late;
        ++interval_.late;
        return;
    }
    const std::size_t slot = *seq % ring_;
    std::uint8_t& state = c.datagrams[slot];
    if (state == kBack) {
        ++total_.duplicates;
        ++interval_.duplicates;
        return;
    }
    if (state == kLost) {
        ++total_.late;
        ++interval_.late;
        return;
    }
    state = kBack;
    --c.outstanding;
    record_round_trip(c, slot, now);
    if (c.any_back && *seq < c.highest_back) {
        ++total_.reordered;
        ++interval_.reordered;
    }
    if (!c.any_back || *seq > c.highest_back) c.highest_back = *seq;
    c.any_back = true;
    if (cfg_.verify) {
        reply_datagram(c, *seq);
        if (real != size_ || got != size_ || std::memcmp(ebuf_.data(), data, size_) != 0) {
            ++total_.verify_failures;
            ++interval_.verify_failures;
            datagram_mismatch(c, *seq, data, got);
        }
    }
    c.last_progress = now;
    while (c.recv_seq < c.send_seq && c.datagrams[c.recv_seq % ring_] != kOutstanding) ++c.recv_seq;
    if (!datagram_done(c)) pump(c, now);
}

void LoadRun::datagram_mismatch(const LoadConn& c, std::uint64_t seq, const char* got, std::size_t n) {
    LoadFailure f = failure(LoadFailure::Kind::mismatch, c);
    f.message = seq;
    if (observer_.wants_failures() || !total_.first_failure) {
        std::string expected(size_, '\0');
        fill_datagram(static_cast<std::uint32_t>(slice_.first + c.index), seq, expected.data(), size_);
        std::size_t i = 0;
        while (i < n && i < size_ && got[i] == expected[i]) ++i;
        f.offset = i;  // where it differs; at the end of the shorter one when only the length does
        f.received.assign(got + std::min(i, n), std::min(LoadFailure::kExcerpt, n - std::min(i, n)));
        f.expected = expected.substr(std::min(i, size_), LoadFailure::kExcerpt);
    }
    report(std::move(f));
}

// Every datagram of c is back or lost: it is complete (or, at the end of the run, done).
bool LoadRun::datagram_done(LoadConn& c) {
    if (c.outstanding > 0 || !c.live()) return !c.live();
    if (c.send_seq >= limit_) {
        ++total_.completed;
        close(c);
        return true;
    }
    if (c.state == ConnState::draining) {
        close(c);
        return true;
    }
    return false;
}

// Datagrams with no echo within --reply-timeout are lost; the connection goes on.
void LoadRun::scan_datagrams(LoadConn& c, std::int64_t now) {
    bool opened = false;
    while (c.recv_seq < c.send_seq) {
        const std::size_t slot = c.recv_seq % ring_;
        if (c.datagrams[slot] == kOutstanding) {
            if (now - c.started[slot] < cfg_.reply_timeout.count()) break;
            c.datagrams[slot] = kLost;
            --c.outstanding;
            ++total_.lost;
            ++interval_.lost;
            opened = true;
        }
        ++c.recv_seq;
    }
    if (!datagram_done(c) && opened) pump(c, now);
}

void LoadRun::datagram_error(LoadConn& c, Phase phase, int err) {
    if (err == ECONNREFUSED) {  // nobody listens there (yet): the datagram is lost, the socket stays
        total_.errors.add(err);
        return;
    }
    fail(c, phase, err);
}

void LoadRun::fail(LoadConn& c, Phase phase, int err, std::optional<LoadFailure::Kind> kind) {
    if (c.state == ConnState::done) return;
    if (err) total_.errors.add(err);
    if (connect_mode() && phase != Phase::connect) {  // after its connect succeeded: counted, failing its --hold
        ended_before_hold(c, err);
        return;
    }
    switch (phase) {
    case Phase::connect: ++total_.failed_connect; break;
    case Phase::send: ++total_.failed_send; break;
    case Phase::receive: ++total_.failed_receive; break;
    }
    ++total_.failed;
    ++interval_.failed;
    const bool open = c.live();
    total_.lost += open ? c.in_flight() : 0;
    LoadFailure f = failure(kind                    ? *kind
                            : phase == Phase::connect ? LoadFailure::Kind::connect
                            : phase == Phase::send  ? LoadFailure::Kind::send
                            : err                   ? LoadFailure::Kind::receive
                                                    : LoadFailure::Kind::closed,
                            c);
    f.err = err;
    if (f.kind == LoadFailure::Kind::early_reply) f.offset = c.send_off;
    report(std::move(f));
    close(c);
}

void LoadRun::peer_closed(LoadConn& c) {
    if (c.state == ConnState::draining) {  // the server echoed what it had and closed
        unanswered_at_end(c, now_ns());
        c.send_seq = c.recv_seq;
        c.send_off = 0;
        close(c);
        return;
    }
    ++total_.unexpected_eof;
    if (connect_mode()) {  // closed by the server before its hold ended
        ended_before_hold(c, 0);
        return;
    }
    fail(c, Phase::receive, 0);
}

// Connect mode: the peer closed or reset c while it was held open. A failure of the hold (unless
// --allow-early-close); a connection without --hold was complete once connected.
void LoadRun::ended_before_hold(LoadConn& c, int err) {
    if (cfg_.hold.count() > 0 && !cfg_.allow_early_close && !draining_) {
        ++total_.failed_hold;
        ++total_.failed;
        ++interval_.failed;
        LoadFailure f = failure(LoadFailure::Kind::hold, c);
        f.err = err;
        report(std::move(f));
    }
    close(c);
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
