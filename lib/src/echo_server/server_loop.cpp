#include "echo_server/server_loop.hpp"

#include <algorithm>
#include <cstring>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <poll.h>
#include <unistd.h>

#include <fmt/format.h>

#include "muxkit/clock.hpp"
#include "muxkit/io.hpp"
#include "muxkit/pipe.hpp"
#include "muxkit/socket.hpp"

namespace muxkit::detail {

namespace {
constexpr std::size_t kStoreHighWater = 1 << 20;  // stop reading clients past this much unstored data
constexpr std::size_t kStoreLowWater = 1 << 18;   // and start again below this
constexpr std::int64_t kPublishPeriod = 100'000'000;
}  // namespace

// ---------------------------------------------------------------- Shared

Shared::Shared(const EchoServerConfig& c) : config(c) {
    Pipe p = make_pipe(true);
    wake_read = std::move(p.read);
    wake_write = std::move(p.write);
}

void Shared::request_stop() {
    if (!stop.exchange(true)) {
        char b = 0;
        [[maybe_unused]] auto n = ::write(wake_write.get(), &b, 1);
    }
}

void Shared::fail(const std::string& why) {
    {
        std::lock_guard lock(mutex);
        if (fatal.empty()) fatal = why;
    }
    request_stop();
}

std::string Shared::fatal_reason() {
    std::lock_guard lock(mutex);
    return fatal;
}

bool Shared::admit() {
    std::uint64_t now = current.fetch_add(1) + 1;
    if (now > config.max_connections) {
        current.fetch_sub(1);
        return false;
    }
    std::uint64_t p = peak.load();
    while (now > p && !peak.compare_exchange_weak(p, now)) {
    }
    return true;
}

// ---------------------------------------------------------------- ServerLoop

ServerLoop::ServerLoop(Shared& shared, EchoServerObserver& observer, LoopSockets sockets)
    : config_(shared.config), observer_(observer), shared_(shared), listeners_(std::move(sockets.listeners)),
      datagram_sockets_(std::move(sockets.datagram)),
      store_(shared.store), encoder_(config_.store ? config_.store->format : StoreFormat::raw) {}

void ServerLoop::begin() {
    if (config_.idle_timeout) next_idle_scan_ns_ = now_ns() + idle_scan_period();
}

EchoServerStats ServerLoop::published() {
    std::lock_guard lock(published_mutex_);
    return published_;
}

std::int64_t ServerLoop::idle_scan_period() const {
    return std::clamp<std::int64_t>(config_.idle_timeout->count() / 4, 1'000'000, 250'000'000);
}

std::optional<std::int64_t> ServerLoop::next_deadline() const {
    std::optional<std::int64_t> d = next_publish_ns_;
    for (auto t : {next_idle_scan_ns_, listeners_paused_until_})
        if (t && *t < *d) d = t;
    return d;
}

void ServerLoop::tick(std::int64_t now) {
    if (next_idle_scan_ns_ && now >= *next_idle_scan_ns_) {
        close_idle(now);
        *next_idle_scan_ns_ = now + idle_scan_period();
    }
    if (listeners_paused_until_ && now >= *listeners_paused_until_) {
        listeners_paused_until_.reset();
        {
            // Under the accept lock too: taking a descriptor here while another loop refuses with
            // its spare would leave that loop without one, and its clients waiting.
            std::unique_lock lock(shared_.accept_mutex, std::defer_lock);
            if (shared_.several_loops) lock.lock();
            spare_.take_back();
        }
        start_accepting();
    }
    if (now >= next_publish_ns_) {
        count_overflows();
        std::lock_guard lock(published_mutex_);
        published_ = stats_;
        next_publish_ns_ = now + kPublishPeriod;
    }
}

bool ServerLoop::refuse_with_spare(int listen_fd) { return spare_.refuse_one(listen_fd, stats_.refused_emfile); }

void ServerLoop::pause_listeners() {
    if (listeners_paused_until_) return;
    listeners_paused_until_ = now_ns() + 100'000'000;
    stop_accepting();
}

Connection* ServerLoop::admit(Fd fd) {
    if (!shared_.admit()) {
        ++stats_.refused_max_connections;
        return nullptr;
    }
    set_nodelay(fd.get());
    std::unique_ptr<Connection> c = new_connection();
    c->id = ++shared_.next_id;
    c->last_active_ns = now_ns();
    if (observer_.wants_connection_events() || (config_.store && config_.store->format == StoreFormat::jsonl)) {
        c->peer = peer_name(fd.get());
    }
    const auto raw = static_cast<std::size_t>(fd.get());
    if (raw >= conns_.size()) conns_.resize(raw + 1);
    c->fd = std::move(fd);
    ++stats_.accepted;
    if (observer_.wants_connection_events()) {
        std::lock_guard lock(shared_.mutex);
        observer_.on_connection({ConnectionEvent::Kind::opened, c->id, c->peer, 0, 0, ""});
    }
    conns_[raw] = std::move(c);
    return conns_[raw].get();
}

void ServerLoop::received(Connection& c, const char* data, std::size_t len) {
    c.bytes_in += len;
    stats_.bytes_in += len;
    if (store_) store_received(c, data, len);
    if (config_.idle_timeout) c.last_active_ns = now_ns();
}

void ServerLoop::sent(Connection& c, std::size_t len) {
    c.bytes_out += len;
    stats_.bytes_out += len;
}

void ServerLoop::echoed_all(Connection& c) {
    if (config_.idle_timeout) c.last_active_ns = now_ns();
}

void ServerLoop::fail(Connection& c, int err) {
    stats_.errors.add(err);
    close_connection(c, errno_name(err));
}

void ServerLoop::close_connection(Connection& c, std::string_view reason) {
    if (c.closed) return;
    c.closed = true;
    --shared_.current;
    const std::uint64_t finished = ++shared_.finished;
    if (observer_.wants_connection_events()) {
        std::lock_guard lock(shared_.mutex);
        observer_.on_connection({ConnectionEvent::Kind::closed, c.id, c.peer, c.bytes_in, c.bytes_out, std::string(reason)});
    }
    retire(c);
    if (config_.max_clients && finished >= config_.max_clients) shared_.request_stop();
}

void ServerLoop::close_idle(std::int64_t now) {
    const std::int64_t limit = config_.idle_timeout->count();
    for (auto& c : conns_)
        if (c && !c->closed && now - c->last_active_ns >= limit) {
            ++stats_.idle_closed;
            close_connection(*c, "idle");
        }
}

// ---- UDP

bool PeerSet::insert(const sockaddr* from, socklen_t len) {
    Key k;
    if (from->sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
        auto in = reinterpret_cast<const sockaddr_in*>(from);
        k.lo = in->sin_addr.s_addr;
        k.port_family = static_cast<std::uint32_t>(in->sin_port) | (4u << 16);
    } else if (from->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
        auto in6 = reinterpret_cast<const sockaddr_in6*>(from);
        std::memcpy(&k.hi, in6->sin6_addr.s6_addr, 8);
        std::memcpy(&k.lo, in6->sin6_addr.s6_addr + 8, 8);
        k.port_family = static_cast<std::uint32_t>(in6->sin6_port) | (6u << 16);
    }
    return keys_.insert(k).second;
}

std::size_t ServerLoop::datagram_buffer_size() const noexcept {
    return std::clamp<std::size_t>(config_.buffer_size, 1, 64 * 1024);
}

bool ServerLoop::datagram_received(const sockaddr* from, socklen_t from_len, std::size_t len, bool truncated) {
    ++stats_.datagrams.in;
    if (peers_.insert(from, from_len)) {
        stats_.peers = peers_.size();
        if (observer_.wants_connection_events()) {
            std::lock_guard lock(shared_.mutex);
            observer_.on_connection({ConnectionEvent::Kind::peer, 0, "udp:" + Endpoint::from(from, from_len).to_string(), 0, 0, ""});
        }
    }
    if (truncated) {
        ++stats_.datagrams.truncated;
        ++stats_.datagrams.dropped;
        return false;
    }
    stats_.bytes_in += len;
    return true;
}

void ServerLoop::count_overflows() {
    stats_.datagrams.overflowed = 0;
    for (int fd : datagram_sockets_) stats_.datagrams.overflowed += socket_drops(fd);
}

void ServerLoop::datagram_sent(std::size_t len) {
    ++stats_.datagrams.out;
    stats_.bytes_out += len;
}

void ServerLoop::datagram_dropped(int err) {
    ++stats_.datagrams.dropped;
    if (err) stats_.errors.add(err);
}

// ---- the store pipe

void ServerLoop::store_received(Connection& c, const char* data, std::size_t len) {
    const int fd = store_->write_fd();
    const bool was_empty = store_queue_.empty();
    stats_.store_bytes += len;
    stats_.store_records += encoder_.encode({c.id, c.peer}, data, len, [&](const char* rec, std::size_t n) {
        if (store_queue_.empty()) {
            IoResult w = write_some(fd, rec, n);  // at most PIPE_BUF: all or nothing
            if (!w.failed()) return;
            if (!w.would_block()) {
                store_failed();
                return;
            }
        }
        store_queue_.push(rec, n);
    });
    if (was_empty && !store_queue_.empty()) watch_store(true);
}

void ServerLoop::on_store_ready(bool broken) {
    if (broken || store_queue_.flush(store_->write_fd()) != 0) {
        store_failed();  // the read end is gone: the writer died
        return;
    }
    watch_store(!store_queue_.empty());
    if (store_queue_.pending() < kStoreLowWater && !paused_.empty()) resume_paused();
}

bool ServerLoop::store_full() const noexcept { return store_ && store_queue_.pending() >= kStoreHighWater; }

void ServerLoop::pause(Connection& c) {
    if (c.paused) return;
    c.paused = true;
    paused_.push_back(c.fd.get());
    stop_reading(c);
}

void ServerLoop::resume_paused() {
    std::vector<int> fds;
    fds.swap(paused_);
    for (int fd : fds) {
        Connection* c = conns_[fd].get();
        if (!c || !c->paused || c->closed) continue;
        c->paused = false;
        start_reading(*c);
    }
}

// The writer is gone (EPIPE): stop every loop at once; the coordinator, which reaps the writer,
// reports why, and the loops close their clients.
void ServerLoop::store_failed() {
    if (store_failed_) return;
    store_failed_ = true;
    shared_.fail(fmt::format("the store writer (pid {}) stopped reading; {} is incomplete", store_->pid(), store_->path()));
}

void ServerLoop::drain_connections() {
    struct Draining {
        Connection* c;
        bool write_shut = false;
    };
    std::vector<Draining> open;
    for (auto& c : conns_)
        if (c && !c->closed) open.push_back({c.get()});
    const std::int64_t deadline = now_ns() + config_.drain_timeout.count();
    std::vector<pollfd> fds;
    std::vector<char> buf(std::max<std::size_t>(config_.buffer_size, 4096));
    auto finish = [&](Draining& d, std::string_view reason) {
        close_connection(*d.c, reason);
        d.c = nullptr;
    };
    while (!open.empty()) {
        fds.clear();
        for (auto& d : open) {
            Connection& c = *d.c;
            if (!d.write_shut && !c.has_pending()) {
                ::shutdown(c.fd.get(), SHUT_WR);  // FIN after the last echo byte
                d.write_shut = true;
            }
            fds.push_back({c.fd.get(), static_cast<short>(POLLIN | (c.has_pending() ? POLLOUT : 0)), 0});
        }
        const std::int64_t left = deadline - now_ns();
        if (left <= 0) break;
        if (::poll(fds.data(), fds.size(), static_cast<int>(std::min<std::int64_t>(left / 1'000'000 + 1, 100))) < 0 && errno != EINTR)
            break;
        for (std::size_t i = 0; i < open.size(); ++i) {
            Draining& d = open[i];
            Connection& c = *d.c;
            const short ev = fds[i].revents;
            if ((ev & (POLLOUT | POLLERR | POLLHUP)) && c.has_pending()) {
                IoResult w = send_some(c.fd.get(), c.pending.data() + c.pending_off, c.pending.size() - c.pending_off);
                if (w.n > 0) {
                    c.pending_off += static_cast<std::size_t>(w.n);
                    sent(c, static_cast<std::size_t>(w.n));
                } else if (w.failed() && !w.would_block()) {
                    stats_.bytes_unsent += c.pending.size() - c.pending_off;
                    c.pending_off = c.pending.size();
                    fail(c, w.err);
                    d.c = nullptr;
                    continue;
                }
            }
            if (ev & (POLLIN | POLLERR | POLLHUP)) {
                IoResult r = read_some(c.fd.get(), buf.data(), buf.size());
                if (r.n > 0) {  // after the stop: kept in the store and counted, never echoed
                    received(c, buf.data(), static_cast<std::size_t>(r.n));
                    stats_.bytes_unsent += static_cast<std::size_t>(r.n);
                } else if (r.n == 0 && !c.has_pending()) {
                    finish(d, "stop");
                    continue;
                } else if (r.failed() && !r.would_block()) {
                    stats_.bytes_unsent += c.pending.size() - c.pending_off;
                    fail(c, r.err);
                    d.c = nullptr;
                    continue;
                }
            }
            if (d.write_shut && unacknowledged_bytes(c.fd.get()) == 0) {
                // The client has every echo byte: draining what it still sends first keeps the
                // close clean where it can.
                IoResult r;
                while ((r = read_some(c.fd.get(), buf.data(), buf.size())).n > 0) {
                    received(c, buf.data(), static_cast<std::size_t>(r.n));
                    stats_.bytes_unsent += static_cast<std::size_t>(r.n);
                }
                finish(d, "stop");
            }
        }
        std::erase_if(open, [](const Draining& d) { return d.c == nullptr; });
    }
    // Out of time: what is still owed or unacknowledged never reaches the client. Reset, so the
    // count is exact (a plain close would go on sending some of it).
    for (auto& d : open) {
        Connection& c = *d.c;
        const std::uint64_t taken_back = std::min(unacknowledged_bytes(c.fd.get()), c.bytes_out);
        c.bytes_out -= taken_back;
        stats_.bytes_out -= taken_back;
        stats_.bytes_unsent += taken_back + (c.pending.size() - c.pending_off);
        const linger reset{1, 0};
        ::setsockopt(c.fd.get(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
        close_connection(c, "drain timeout");
    }
}

void ServerLoop::drain_store() {
    if (!store_ || failed()) return;
    int err;
    while ((err = store_queue_.flush(store_->write_fd())) == 0 && !store_queue_.empty()) {
        pollfd p{store_->write_fd(), POLLOUT, 0};
        ::poll(&p, 1, 100);
    }
    if (err) shared_.fail(fmt::format("cannot hand data to the store writer: {}", std::strerror(err)));
}

}  // namespace muxkit::detail
