#include "muxkit/echo_server.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>
#include <memory>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>

#include "muxkit/clock.hpp"
#include "muxkit/echo_server_internal.hpp"
#include "muxkit/io.hpp"
#include "muxkit/pipe.hpp"
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

std::vector<Listener> open_listeners(const EchoServerConfig& config, EchoServerObserver& observer, int loops) {
    std::vector<Listener> out;
    std::vector<std::string> names;
    for (const auto& address : config.addresses) {
        Endpoint ep = resolve(address, true).front();
        const bool shared = loops == 1 || address.kind == Address::Kind::unix_path;
        Listener first;
        first.fd = listen_on(ep, config.backlog, !shared);
        first.endpoint = local_endpoint(first.fd.get());  // the real port when 0 was asked
        if (address.kind == Address::Kind::unix_path) {
            first.unix_path = address.path;
            first.endpoint = ep;
        }
        first.loop = shared ? -1 : 0;
        names.push_back(first.endpoint.to_string());
        const Endpoint bound = first.endpoint;
        out.push_back(std::move(first));
        for (int i = 1; !shared && i < loops; ++i) {
            Listener more;
            more.fd = listen_on(bound, config.backlog, true);
            more.endpoint = bound;
            more.loop = i;
            out.push_back(std::move(more));
        }
    }
    for (const auto& name : names) observer.on_listening(name, config.model);
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

enum class Role : std::uint8_t { none, connection, listener, wake, store };

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

// What the event loops share with each other and with the coordinator thread.
struct Shared {
    explicit Shared(const EchoServerConfig& c) : config(c) {
        Pipe p = make_pipe(true);
        wake_read = std::move(p.read);
        wake_write = std::move(p.write);
    }
    const EchoServerConfig& config;
    Fd wake_read, wake_write;  // readable once the run must end; never drained, so every loop sees it
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> current{0}, peak{0}, finished{0}, next_id{0};
    StoreWriter* store = nullptr;
    std::mutex mutex;  // guards fatal and the observer's connection events
    std::string fatal;

    void request_stop() {
        if (!stop.exchange(true)) {
            char b = 0;
            [[maybe_unused]] auto n = ::write(wake_write.get(), &b, 1);
        }
    }
    void fail(const std::string& why) {
        {
            std::lock_guard lock(mutex);
            if (fatal.empty()) fatal = why;
        }
        request_stop();
    }
    // Admits one more connection under --max-connections (shared by all loops); false: refuse it.
    bool admit() {
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
};

// One event loop: accepts on its listeners and serves its connections. The coordinator handles
// signals, the duration and stats lines, and merges the loops' counts.
class MultiplexServer {
public:
    MultiplexServer(Shared& shared, EchoServerObserver& observer, std::vector<int> listeners)
        : config_(shared.config), observer_(observer), shared_(shared), listeners_(std::move(listeners)),
          loop_(EventLoop::create(to_model(config_.model))), edge_(loop_->edge_triggered()),
          buffer_(std::max<std::size_t>(config_.buffer_size, 1)),
          encoder_(config_.store ? config_.store->format : StoreFormat::raw), store_(shared.store) {}

    // Runs until the shared stop; returns this loop's counts.
    EchoServerStats run() {
        if (store_) watch(store_->write_fd(), Role::store, 0);
        spare_ = Fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        watch(shared_.wake_read.get(), Role::wake);
        for (int fd : listeners_) watch(fd, Role::listener);
        if (config_.idle_timeout) next_idle_scan_ns_ = now_ns() + idle_scan_period();

        while (!stop_) {
            auto events = loop_->wait(next_deadline());
            for (const Event& ev : events) dispatch(ev);
            std::int64_t now = now_ns();
            if (next_idle_scan_ns_ && now >= *next_idle_scan_ns_) {
                close_idle(now);
                *next_idle_scan_ns_ = now + idle_scan_period();
            }
            if (listeners_paused_until_ && now >= *listeners_paused_until_) resume_listeners();
            if (now >= next_publish_ns_) publish(now);
        }
        const bool failed = store_failed_ || !shared_fatal().empty();
        for (auto& c : conns_)
            if (c) {
                if (c->has_pending() && !failed) flush(*c, /*final=*/true);
                if (c) close_connection(*c, failed ? "store failed" : "stop");
            }
        // Everything received reaches the store pipe before this loop ends.
        if (store_ && !failed) {
            int err;
            while ((err = store_queue_.flush(store_->write_fd())) == 0 && !store_queue_.empty()) {
                pollfd p{store_->write_fd(), POLLOUT, 0};
                ::poll(&p, 1, 100);
            }
            if (err) shared_.fail(fmt::format("cannot hand data to the store writer: {}", std::strerror(err)));
        }
        return stats_;
    }

    // The counts as of the last publish (at most 100 ms old), for stats lines from the coordinator.
    EchoServerStats published() {
        std::lock_guard lock(published_mutex_);
        return published_;
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

    std::optional<std::int64_t> next_deadline() const {
        std::optional<std::int64_t> d = next_publish_ns_;
        for (auto t : {next_idle_scan_ns_, listeners_paused_until_})
            if (t && *t < *d) d = t;
        return d;
    }

    void publish(std::int64_t now) {
        std::lock_guard lock(published_mutex_);
        published_ = stats_;
        next_publish_ns_ = now + 100'000'000;
    }

    std::string shared_fatal() {
        std::lock_guard lock(shared_.mutex);
        return shared_.fatal;
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
        case Role::wake: stop_ = true; break;
        case Role::listener: on_listener(ev.fd); break;
        case Role::connection: on_connection(*conns_[ev.fd], ev.events); break;
        case Role::store: on_store_event(ev.events); break;
        case Role::none: break;
        }
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

    // The writer is gone (EPIPE): stop every loop at once; the coordinator, which reaps the
    // writer, reports why, and the loops close their clients.
    void store_failed(const std::string&) {
        if (store_failed_) return;
        store_failed_ = true;
        shared_.fail(fmt::format("the store writer (pid {}) stopped reading; {} is incomplete", store_->pid(), store_->path()));
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
        for (int fd : listeners_) loop_->remove(fd);
        listeners_paused_until_ = now_ns() + 100'000'000;
    }

    void resume_listeners() {
        listeners_paused_until_.reset();
        for (int fd : listeners_) loop_->add(fd, kReadable);
        if (!spare_) spare_ = Fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    }

    void admit(Fd fd) {
        if (!loop_->can_watch(fd.get())) {
            ++stats_.refused_fd_setsize;
            return;
        }
        if (!shared_.admit()) {
            ++stats_.refused_max_connections;
            return;
        }
        set_nodelay(fd.get());
        auto c = std::make_unique<Connection>();
        c->id = ++shared_.next_id;
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
        if (observer_.wants_connection_events()) {
            std::lock_guard lock(shared_.mutex);
            observer_.on_connection({ConnectionEvent::Kind::opened, c->id, c->peer, 0, 0, ""});
        }
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
        --shared_.current;
        const std::uint64_t finished = ++shared_.finished;
        if (observer_.wants_connection_events()) {
            std::lock_guard lock(shared_.mutex);
            observer_.on_connection({ConnectionEvent::Kind::closed, c.id, c.peer, c.bytes_in, c.bytes_out,
                                     std::string(reason)});
        }
        conns_[fd].reset();  // closes the descriptor
        if (config_.max_clients && finished >= config_.max_clients) shared_.request_stop();
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
    Shared& shared_;
    std::vector<int> listeners_;  // owned by the coordinator
    std::unique_ptr<EventLoop> loop_;
    bool edge_;
    std::vector<char> buffer_;  // one read buffer shared by every connection of this loop
    StoreEncoder encoder_;
    StoreWriter* store_;  // owned by the coordinator; its pipe is shared by every loop
    StoreQueue store_queue_;
    bool store_failed_ = false;
    std::vector<int> paused_;  // connections waiting for the store to drain
    std::vector<Role> roles_;                          // by descriptor
    std::vector<std::unique_ptr<Connection>> conns_;  // by descriptor
    Fd spare_;                                         // given up to accept-and-close on EMFILE
    EchoServerStats stats_;
    std::mutex published_mutex_;
    EchoServerStats published_;
    std::int64_t next_publish_ns_ = 0;
    std::optional<std::int64_t> next_idle_scan_ns_, listeners_paused_until_;
    bool stop_ = false;
};

// Sums the loops' counts; connections now, peak and finished come from the shared counters.
EchoServerStats merge(const std::vector<EchoServerStats>& parts, const Shared& shared, std::int64_t start) {
    EchoServerStats s;
    for (const auto& p : parts) {
        s.accepted += p.accepted;
        s.refused_max_connections += p.refused_max_connections;
        s.refused_fd_setsize += p.refused_fd_setsize;
        s.refused_emfile += p.refused_emfile;
        s.refused_fork_failed += p.refused_fork_failed;
        s.idle_closed += p.idle_closed;
        s.bytes_in += p.bytes_in;
        s.bytes_out += p.bytes_out;
        s.store_bytes += p.store_bytes;
        s.store_records += p.store_records;
        s.errors.merge(p.errors);
    }
    s.current = shared.current.load();
    s.peak = shared.peak.load();
    s.finished = shared.finished.load();
    s.duration_s = static_cast<double>(now_ns() - start) / 1e9;
    return s;
}

// The coordinator: starts the store writer and the listeners, runs one event loop per thread,
// handles signals, the duration and stats lines, then stops the loops and merges their counts.
EchoServerStats run_multiplexed(const EchoServerConfig& config, EchoServerObserver& observer) {
    SignalPipe& signals = SignalPipe::install();
    Shared shared(config);
    std::unique_ptr<StoreWriter> store;
    if (config.store) {
        store = std::make_unique<StoreWriter>(*config.store);
        set_nonblocking(store->write_fd());
        shared.store = store.get();
    }
    const int loops = static_cast<int>(std::max<unsigned>(config.threads, 1));
    std::vector<Listener> listeners = detail::open_listeners(config, observer, loops);
    std::vector<std::unique_ptr<MultiplexServer>> servers;
    for (int i = 0; i < loops; ++i) {
        std::vector<int> fds;
        for (const auto& l : listeners)
            if (l.loop == i || l.loop == -1) fds.push_back(l.fd.get());
        servers.push_back(std::make_unique<MultiplexServer>(shared, observer, std::move(fds)));
    }
    const std::int64_t start = now_ns();
    std::vector<EchoServerStats> finals(servers.size());
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < servers.size(); ++i)
        threads.emplace_back([&, i] {
            try {
                finals[i] = servers[i]->run();
            } catch (const std::exception& e) {
                shared.fail(e.what());
            }
        });
    auto current = [&] {
        std::vector<EchoServerStats> parts;
        for (auto& s : servers) parts.push_back(s->published());
        return merge(parts, shared, start);
    };

    auto control = EventLoop::create(Model::poll);
    control->add(signals.fd(), kReadable);
    control->add(shared.wake_read.get(), kReadable);
    std::optional<std::int64_t> end, next_stats;
    if (config.duration) end = start + config.duration->count();
    if (config.stats_interval) next_stats = start + config.stats_interval->count();
    while (!shared.stop) {
        std::optional<std::int64_t> deadline = end;
        if (next_stats && (!deadline || *next_stats < *deadline)) deadline = next_stats;
        for (const Event& ev : control->wait(deadline)) {
            if (ev.fd != signals.fd()) continue;
            SignalFlags f = signals.drain();
            if (f.stats) observer.on_stats(current());
            if (f.child && store && !store->alive()) shared.fail(store->death());
            if (f.stop) shared.request_stop();
        }
        const std::int64_t now = now_ns();
        if (end && now >= *end) shared.request_stop();
        if (next_stats && now >= *next_stats) {
            observer.on_stats(current());
            *next_stats += config.stats_interval->count();
        }
    }
    for (auto& t : threads) t.join();
    detail::remove_unix_sockets(listeners);
    if (store && !shared.fatal.empty()) {
        // The loops saw EPIPE; the writer's exit status says why.
        for (int i = 0; i < 100 && store->alive(); ++i) ::usleep(1000);
        if (!store->alive()) shared.fatal = store->death();
    }
    if (!shared.fatal.empty()) throw RuntimeError(shared.fatal);
    if (store) store->finish();  // every byte received is in the file, fsynced
    return merge(finals, shared, start);
}

}  // namespace

EchoServerStats run_echo_server(const EchoServerConfig& config, EchoServerObserver& observer) {
    if (config.model != ServerModel::select) raise_fd_limit(config.max_connections + 64);
    if (config.model == ServerModel::fork) return detail::run_fork_server(config, observer);
    return run_multiplexed(config, observer);
}

}  // namespace muxkit
