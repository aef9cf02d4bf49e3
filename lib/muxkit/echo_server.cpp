#include "muxkit/echo_server.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>

#include "muxkit/clock.hpp"
#include "muxkit/echo_server_internal.hpp"
#include "muxkit/io.hpp"
#include "muxkit/signals.hpp"
#include "muxkit/socket.hpp"

namespace muxkit {

std::string_view server_model_name(ServerModel m) noexcept {
    switch (m) {
    case ServerModel::select: return "select";
    case ServerModel::poll: return "poll";
    case ServerModel::epoll: return "epoll";
    case ServerModel::epoll_et: return "epoll-et";
    case ServerModel::fork: return "fork";
    }
    return "?";
}

ServerModel parse_server_model(std::string_view text) {
    if (text == "fork") return ServerModel::fork;
    if (text == "select") return ServerModel::select;
    if (text == "poll") return ServerModel::poll;
    if (text == "epoll") return ServerModel::epoll;
    if (text == "epoll-et") return ServerModel::epoll_et;
    throw UsageError(fmt::format("invalid model '{}': expected select, poll, epoll, epoll-et or fork", text));
}

namespace detail {

std::vector<Listener> open_listeners(const EchoServerConfig& config, EchoServerObserver& observer) {
    std::vector<Listener> out;
    for (const auto& address : config.addresses) {
        Endpoint ep = resolve(address, true).front();
        Listener l;
        l.fd = listen_on(ep, config.backlog);
        l.endpoint = local_endpoint(l.fd.get());
        if (address.kind == Address::Kind::unix_path) {
            l.unix_path = address.path;
            l.endpoint = ep;
        }
        out.push_back(std::move(l));
    }
    for (const auto& l : out) observer.on_listening(l.endpoint.to_string(), config.model);
    return out;
}

void remove_unix_sockets(const std::vector<Listener>& listeners) noexcept {
    for (const auto& l : listeners)
        if (!l.unix_path.empty()) ::unlink(l.unix_path.c_str());
}

}  // namespace detail

namespace {

using detail::Listener;

struct Connection {
    Fd fd;
    std::uint64_t id = 0;
    std::uint64_t bytes_in = 0, bytes_out = 0;
    std::int64_t last_active_ns = 0;
    std::vector<char> pending;  // echo the socket did not take yet; never more than one read
    std::size_t pending_off = 0;
    bool more_to_read = false;  // edge-triggered: stopped reading before EAGAIN
    bool paused = false;        // not reading until the store pipe drains
    std::string peer;           // filled when connection events or jsonl store records need it

    bool has_pending() const noexcept { return pending_off < pending.size(); }
};

enum class Role : std::uint8_t { none, connection, listener, signal, store };

// Records waiting for room in the store pipe: written in order, each in one write (atomic).
class StoreQueue {
public:
    bool empty() const noexcept { return head_ == lens_.size(); }
    std::size_t pending() const noexcept { return pending_; }
    void push(const char* p, std::size_t n) {
        bytes_.insert(bytes_.end(), p, p + n);
        lens_.push_back(static_cast<std::uint32_t>(n));
        pending_ += n;
    }
    // Writes whole records until the pipe is full; returns 0, or the errno that stopped it.
    int flush(int fd) {
        int err = 0;
        while (!empty()) {
            IoResult w = write_some(fd, bytes_.data() + off_, lens_[head_]);
            if (w.failed()) {
                if (!w.would_block()) err = w.err;
                break;
            }
            off_ += lens_[head_];
            pending_ -= lens_[head_];
            ++head_;
        }
        if (empty()) {
            bytes_.clear();
            lens_.clear();
            head_ = off_ = 0;
        } else if (off_ > bytes_.size() / 2) {  // drop what was written, so memory stays bounded
            bytes_.erase(bytes_.begin(), bytes_.begin() + static_cast<std::ptrdiff_t>(off_));
            lens_.erase(lens_.begin(), lens_.begin() + static_cast<std::ptrdiff_t>(head_));
            head_ = off_ = 0;
        }
        return err;
    }

private:
    std::vector<char> bytes_;
    std::vector<std::uint32_t> lens_;
    std::size_t head_ = 0, off_ = 0, pending_ = 0;
};

constexpr std::size_t kStoreHighWater = 1 << 20;  // stop reading clients past this much unstored data
constexpr std::size_t kStoreLowWater = 1 << 18;   // and start again below this

class MultiplexServer {
public:
    MultiplexServer(const EchoServerConfig& config, EchoServerObserver& observer)
        : config_(config), observer_(observer), signals_(SignalPipe::install()),
          loop_(EventLoop::create(to_model(config.model))), edge_(loop_->edge_triggered()),
          buffer_(std::max<std::size_t>(config.buffer_size, 1)),
          encoder_(config.store ? config.store->format : StoreFormat::raw) {}

    EchoServerStats run() {
        if (config_.store) {
            store_ = std::make_unique<StoreWriter>(*config_.store);
            set_nonblocking(store_->write_fd());
            watch(store_->write_fd(), Role::store, 0);
        }
        listeners_ = detail::open_listeners(config_, observer_);
        spare_ = Fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        watch(signals_.fd(), Role::signal);
        for (auto& l : listeners_) watch(l.fd.get(), Role::listener);

        start_ns_ = now_ns();
        std::optional<std::int64_t> end_ns;
        if (config_.duration) end_ns = start_ns_ + config_.duration->count();
        if (config_.stats_interval) next_stats_ns_ = start_ns_ + config_.stats_interval->count();
        if (config_.idle_timeout) next_idle_scan_ns_ = start_ns_ + idle_scan_period();

        while (!stop_) {
            auto events = loop_->wait(next_deadline(end_ns));
            for (const Event& ev : events) dispatch(ev);
            std::int64_t now = now_ns();
            if (end_ns && now >= *end_ns) stop_ = true;
            if (next_stats_ns_ && now >= *next_stats_ns_) {
                observer_.on_stats(snapshot());
                *next_stats_ns_ += config_.stats_interval->count();
            }
            if (next_idle_scan_ns_ && now >= *next_idle_scan_ns_) {
                close_idle(now);
                *next_idle_scan_ns_ = now + idle_scan_period();
            }
            if (listeners_paused_until_ && now >= *listeners_paused_until_) resume_listeners();
        }
        for (auto& c : conns_)
            if (c) {
                if (c->has_pending() && fatal_.empty()) flush(*c, /*final=*/true);
                if (c) close_connection(*c, fatal_.empty() ? "stop" : "store failed");
            }
        detail::remove_unix_sockets(listeners_);
        if (!fatal_.empty()) throw RuntimeError(fatal_);
        if (store_) {
            // Everything received reaches the file before the summary: flush, then let the writer fsync.
            set_nonblocking(store_->write_fd(), false);
            if (int err = store_queue_.flush(store_->write_fd()))
                throw RuntimeError(fmt::format("cannot hand data to the store writer: {}", std::strerror(err)));
            store_->finish();
        }
        return snapshot();
    }

private:
    static Model to_model(ServerModel m) {
        switch (m) {
        case ServerModel::select: return Model::select;
        case ServerModel::poll: return Model::poll;
        case ServerModel::epoll_et: return Model::epoll_et;
        default: return Model::epoll;
        }
    }

    std::int64_t idle_scan_period() const {
        return std::clamp<std::int64_t>(config_.idle_timeout->count() / 4, 1'000'000, 250'000'000);
    }

    std::optional<std::int64_t> next_deadline(std::optional<std::int64_t> end_ns) const {
        std::optional<std::int64_t> d = end_ns;
        for (auto t : {next_stats_ns_, next_idle_scan_ns_, listeners_paused_until_})
            if (t && (!d || *t < *d)) d = t;
        return d;
    }

    EchoServerStats snapshot() {
        stats_.duration_s = static_cast<double>(now_ns() - start_ns_) / 1e9;
        return stats_;
    }

    void watch(int fd, Role role, std::uint32_t interest = kReadable) {
        if (static_cast<std::size_t>(fd) >= roles_.size()) {
            roles_.resize(static_cast<std::size_t>(fd) + 1, Role::none);
            conns_.resize(roles_.size());
        }
        roles_[fd] = role;
        if (role == Role::connection && edge_) interest |= kWritable;  // registered once; never modified
        loop_->add(fd, interest);
    }

    void dispatch(const Event& ev) {
        if (static_cast<std::size_t>(ev.fd) >= roles_.size()) return;
        switch (roles_[ev.fd]) {
        case Role::signal: on_signal(); break;
        case Role::listener: on_listener(ev.fd); break;
        case Role::connection: on_connection(*conns_[ev.fd], ev.events); break;
        case Role::store: on_store_event(ev.events); break;
        case Role::none: break;
        }
    }

    void on_signal() {
        SignalFlags f = signals_.drain();
        if (f.stats) observer_.on_stats(snapshot());
        if (f.stop) stop_ = true;
        if (f.child && store_ && !store_->alive()) store_failed(store_->death());
    }

    // ---- the store pipe

    void store_received(Connection& c, const char* data, std::size_t len) {
        const int fd = store_->write_fd();
        stats_.store_bytes += len;
        stats_.store_records += encoder_.encode({c.id, c.peer}, data, len, [&](const char* rec, std::size_t n) {
            if (store_queue_.empty()) {
                IoResult w = write_some(fd, rec, n);  // at most PIPE_BUF: all or nothing
                if (!w.failed()) return;
                if (!w.would_block()) {
                    store_failed("");
                    return;
                }
            }
            store_queue_.push(rec, n);
        });
        if (!store_queue_.empty()) loop_->modify(fd, kWritable);
    }

    void on_store_event(std::uint32_t events) {
        if ((events & (kError | kHangup)) || store_queue_.flush(store_->write_fd()) != 0) {
            store_failed("");  // the read end is gone: the writer died
            return;
        }
        if (store_queue_.empty()) loop_->modify(store_->write_fd(), 0);
        if (store_queue_.pending() < kStoreLowWater && !paused_.empty()) resume_paused();
    }

    bool store_full() const noexcept { return store_ && store_queue_.pending() >= kStoreHighWater; }

    void pause(Connection& c) {
        if (c.paused) return;
        c.paused = true;
        paused_.push_back(c.fd.get());
        if (!edge_) loop_->modify(c.fd.get(), 0);
    }

    void resume_paused() {
        std::vector<int> fds;
        fds.swap(paused_);
        for (int fd : fds) {
            Connection* c = conns_[fd].get();
            if (!c || !c->paused) continue;
            c->paused = false;
            if (!edge_) loop_->modify(fd, c->has_pending() ? kWritable : kReadable);
            else if (!c->has_pending()) read_and_echo(*c);
        }
    }

    // The writer is gone: stop at once; run() closes the clients and reports the error.
    void store_failed(const std::string& why) {
        if (!fatal_.empty()) return;
        std::string death = why;
        for (int i = 0; i < 50 && death.empty(); ++i) {  // EPIPE comes first; the exit status a moment later
            if (!store_->alive()) death = store_->death();
            else ::usleep(1000);
        }
        fatal_ = death.empty() ? fmt::format("the store writer (pid {}) stopped reading; {} is incomplete", store_->pid(),
                                             store_->path())
                               : death;
        stop_ = true;
    }

    void on_listener(int lfd) {
        for (int i = 0; i < 256; ++i) {  // bounded so a flood of connects cannot starve the clients
            Accepted a = accept_connection(lfd);
            if (!a.err) {
                admit(std::move(a.fd));
                continue;
            }
            switch (a.err) {
            case EAGAIN: return;
            case EMFILE:
            case ENFILE:
                // Out of descriptors: give up the spare one to accept and close the pending
                // connection, so the listener stops being readable (no spinning loop).
                if (spare_) {
                    spare_.reset();
                    Accepted b = accept_connection(lfd);
                    const bool refused = static_cast<bool>(b.fd);
                    if (refused) ++stats_.refused_emfile;
                    b.fd.reset();
                    spare_ = Fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
                    if (refused && spare_) continue;
                    if (b.err == EAGAIN) return;
                }
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

    void pause_listeners() {
        if (listeners_paused_until_) return;
        for (auto& l : listeners_) loop_->remove(l.fd.get());
        listeners_paused_until_ = now_ns() + 100'000'000;
    }

    void resume_listeners() {
        listeners_paused_until_.reset();
        for (auto& l : listeners_) loop_->add(l.fd.get(), kReadable);
        if (!spare_) spare_ = Fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    }

    void admit(Fd fd) {
        if (!loop_->can_watch(fd.get())) {
            ++stats_.refused_fd_setsize;
            return;
        }
        if (stats_.current >= config_.max_connections) {
            ++stats_.refused_max_connections;
            return;
        }
        set_nodelay(fd.get());
        auto c = std::make_unique<Connection>();
        c->id = ++next_id_;
        c->last_active_ns = now_ns();
        if (observer_.wants_connection_events() || (config_.store && config_.store->format == StoreFormat::jsonl)) {
            try {
                c->peer = peer_endpoint(fd.get()).to_string();
            } catch (const SystemError&) {
                c->peer = "unknown";
            }
        }
        int raw = fd.get();
        c->fd = std::move(fd);
        watch(raw, Role::connection);
        ++stats_.accepted;
        stats_.peak = std::max(stats_.peak, ++stats_.current);
        if (observer_.wants_connection_events())
            observer_.on_connection({ConnectionEvent::Kind::opened, c->id, c->peer, 0, 0, ""});
        conns_[raw] = std::move(c);
    }

    void on_connection(Connection& c, std::uint32_t events) {
        if (events & kWritable) {
            if (c.has_pending() && !flush(c, false)) return;
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
    bool read_and_echo(Connection& c, bool hung_up = false) {
        for (;;) {
            if (store_full() && !hung_up) {
                pause(c);  // backpressure: the disk is slower than the clients
                return true;
            }
            IoResult r = read_some(c.fd.get(), buffer_.data(), buffer_.size());
            if (r.n > 0) {
                c.bytes_in += r.n;
                stats_.bytes_in += r.n;
                if (store_) store_received(c, buffer_.data(), static_cast<std::size_t>(r.n));
                if (config_.idle_timeout) c.last_active_ns = now_ns();
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

    bool echo(Connection& c, const char* data, std::size_t len) {
        IoResult w = send_some(c.fd.get(), data, len);
        std::size_t sent = 0;
        if (w.failed()) {
            if (!w.would_block()) {
                fail(c, w.err);
                return false;
            }
        } else {
            sent = static_cast<std::size_t>(w.n);
        }
        c.bytes_out += sent;
        stats_.bytes_out += sent;
        if (sent < len) {
            // Keep the rest and stop reading until it is gone: backpressure, bounded memory.
            c.pending.assign(data + sent, data + len);
            c.pending_off = 0;
            if (!edge_) loop_->modify(c.fd.get(), kWritable);
        }
        return true;
    }

    bool flush(Connection& c, bool final) {
        while (c.has_pending()) {
            IoResult w = send_some(c.fd.get(), c.pending.data() + c.pending_off, c.pending.size() - c.pending_off);
            if (w.failed()) {
                if (w.would_block()) return true;
                fail(c, w.err);
                return false;
            }
            c.pending_off += static_cast<std::size_t>(w.n);
            c.bytes_out += w.n;
            stats_.bytes_out += w.n;
        }
        c.pending.clear();
        c.pending_off = 0;
        if (config_.idle_timeout) c.last_active_ns = now_ns();
        if (final) return true;
        if (!edge_) {
            loop_->modify(c.fd.get(), kReadable);
            return true;
        }
        if (c.more_to_read) return read_and_echo(c);
        return true;
    }

    void fail(Connection& c, int err) {
        stats_.errors.add(err);
        close_connection(c, errno_name(err));
    }

    void close_connection(Connection& c, std::string_view reason) {
        int fd = c.fd.get();
        loop_->remove(fd);
        roles_[fd] = Role::none;
        --stats_.current;
        ++stats_.finished;
        if (observer_.wants_connection_events())
            observer_.on_connection({ConnectionEvent::Kind::closed, c.id, c.peer, c.bytes_in, c.bytes_out,
                                     std::string(reason)});
        conns_[fd].reset();  // closes the descriptor
        if (config_.max_clients && stats_.finished >= config_.max_clients) stop_ = true;
    }

    void close_idle(std::int64_t now) {
        const std::int64_t limit = config_.idle_timeout->count();
        for (auto& c : conns_)
            if (c && now - c->last_active_ns >= limit) {
                ++stats_.idle_closed;
                close_connection(*c, "idle");
            }
    }

    const EchoServerConfig& config_;
    EchoServerObserver& observer_;
    SignalPipe& signals_;
    std::unique_ptr<EventLoop> loop_;
    bool edge_;
    std::vector<char> buffer_;  // one read buffer shared by every connection
    StoreEncoder encoder_;
    std::unique_ptr<StoreWriter> store_;
    StoreQueue store_queue_;
    std::vector<int> paused_;  // connections waiting for the store to drain
    std::string fatal_;
    std::vector<Listener> listeners_;
    std::vector<Role> roles_;                          // by descriptor
    std::vector<std::unique_ptr<Connection>> conns_;  // by descriptor
    Fd spare_;                                         // given up to accept-and-close on EMFILE
    EchoServerStats stats_;
    std::uint64_t next_id_ = 0;
    std::int64_t start_ns_ = 0;
    std::optional<std::int64_t> next_stats_ns_, next_idle_scan_ns_, listeners_paused_until_;
    bool stop_ = false;
};

}  // namespace

EchoServerStats run_echo_server(const EchoServerConfig& config, EchoServerObserver& observer) {
    if (config.model != ServerModel::select) raise_fd_limit(config.max_connections + 64);
    if (config.model == ServerModel::fork) return detail::run_fork_server(config, observer);
    MultiplexServer server(config, observer);
    return server.run();
}

}  // namespace muxkit
