#include "muxkit/echo_server.hpp"

#include <algorithm>
#include <cerrno>
#include <memory>
#include <mutex>
#include <thread>

#include <unistd.h>

#include <fmt/format.h>

#include "muxkit/clock.hpp"
#include "muxkit/event_loop.hpp"
#include "echo_server/listeners.hpp"
#include "echo_server/server_loop.hpp"
#include "uring/ring.hpp"
#include "muxkit/io.hpp"
#include "muxkit/signals.hpp"
#include "muxkit/socket.hpp"

namespace muxkit {

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

using detail::Connection;
using detail::Listener;
using detail::Shared;

enum class Role : std::uint8_t { none, connection, listener, wake, store };

// The readiness driver (select, poll, epoll, epoll-et): waits until a descriptor is ready, then
// reads and writes it without blocking.
class ReadinessLoop final : public detail::ServerLoop {
public:
    ReadinessLoop(Shared& shared, EchoServerObserver& observer, std::vector<int> listeners)
        : ServerLoop(shared, observer, std::move(listeners)), loop_(EventLoop::create(config_.model)),
          edge_(loop_->edge_triggered()), buffer_(std::max<std::size_t>(config_.buffer_size, 1)) {}

    EchoServerStats run() override {
        begin();
        if (store_) watch(store_->write_fd(), Role::store, 0);
        watch(shared_.wake_read.get(), Role::wake);
        for (int fd : listeners_) watch(fd, Role::listener);
        while (!stop_) {
            for (const Event& ev : loop_->wait(again_.empty() ? next_deadline() : std::optional<std::int64_t>(0))) dispatch(ev);
            read_again();
            tick(now_ns());
        }
        if (!failed()) drain_connections();
        for (auto& c : conns_)
            if (c) close_connection(*c, "store failed");
        drain_store();
        return stats_;
    }

private:
    void watch(int fd, Role role, std::uint32_t interest = kReadable) {
        if (static_cast<std::size_t>(fd) >= roles_.size()) roles_.resize(static_cast<std::size_t>(fd) + 1, Role::none);
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
        case Role::store: on_store_ready((ev.events & (kError | kHangup)) != 0); break;
        case Role::none: break;
        }
    }

    // ---- driver hooks

    void stop_reading(Connection& c) override {
        if (!edge_) loop_->modify(c.fd.get(), 0);
    }

    void start_reading(Connection& c) override {
        if (!edge_) loop_->modify(c.fd.get(), c.has_pending() ? kWritable : kReadable);
        else if (!c.has_pending()) read_and_echo(c);
    }

    void watch_store(bool writable) override { loop_->modify(store_->write_fd(), writable ? std::uint32_t{kWritable} : 0u); }

    void retire(Connection& c) override {
        const int fd = c.fd.get();
        loop_->remove(fd);
        roles_[fd] = Role::none;
        conns_[fd].reset();  // closes the descriptor
    }

    void stop_accepting() override {
        for (int fd : listeners_) loop_->remove(fd);
    }

    void start_accepting() override {
        for (int fd : listeners_) loop_->add(fd, kReadable);
    }

    // ---- accepting

    void on_listener(int lfd) {
        std::unique_lock lock(shared_.accept_mutex, std::defer_lock);
        if (shared_.several_loops) lock.lock();
        for (int i = 0; i < 256; ++i) {  // bounded so a flood of connects cannot starve the clients
            Accepted a = accept_connection(lfd);
            if (!a.err) {
                if (!loop_->can_watch(a.fd.get())) {
                    ++stats_.refused_fd_setsize;
                    continue;
                }
                if (Connection* c = admit(std::move(a.fd))) watch(c->fd.get(), Role::connection);
                continue;
            }
            switch (a.err) {
            case EAGAIN: return;
            case EMFILE:
            case ENFILE:
                if (refuse_with_spare(lfd)) continue;
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

    // ---- echoing

    void on_connection(Connection& c, std::uint32_t events) {
        if (events & kWritable) {
            if (c.has_pending() && !flush(c)) return;
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
        for (int reads = 0;; ++reads) {
            if (edge_ && reads == kReadsPerTurn) {
                // A client that always has more would keep the others waiting: come back to it
                // after the other ready descriptors had their turn.
                c.more_to_read = true;
                again_.push_back(c.fd.get());
                return true;
            }
            if (store_full() && !hung_up) {
                pause(c);  // backpressure: the disk is slower than the clients
                return true;
            }
            IoResult r = read_some(c.fd.get(), buffer_.data(), buffer_.size());
            if (r.n > 0) {
                received(c, buffer_.data(), static_cast<std::size_t>(r.n));
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
        std::size_t n = 0;
        if (w.failed()) {
            if (!w.would_block()) {
                fail(c, w.err);
                return false;
            }
        } else {
            n = static_cast<std::size_t>(w.n);
        }
        sent(c, n);
        if (n < len) {
            // Keep the rest and stop reading until it is gone: backpressure, bounded memory.
            c.pending.assign(data + n, data + len);
            c.pending_off = 0;
            if (!edge_) loop_->modify(c.fd.get(), kWritable);
        }
        return true;
    }

    bool flush(Connection& c) {
        while (c.has_pending()) {
            IoResult w = send_some(c.fd.get(), c.pending.data() + c.pending_off, c.pending.size() - c.pending_off);
            if (w.failed()) {
                if (w.would_block()) return true;
                fail(c, w.err);
                return false;
            }
            c.pending_off += static_cast<std::size_t>(w.n);
            sent(c, static_cast<std::size_t>(w.n));
        }
        c.pending.clear();
        c.pending_off = 0;
        echoed_all(c);
        if (!edge_) {
            loop_->modify(c.fd.get(), kReadable);
            return true;
        }
        if (c.more_to_read) return read_and_echo(c);
        return true;
    }

    // Edge-triggered: connections that stopped reading before EAGAIN to be fair to the others.
    void read_again() {
        if (again_.empty()) return;
        std::vector<int> fds;
        fds.swap(again_);
        for (int fd : fds)
            if (Connection* c = conns_[fd].get(); c && !c->closed && c->more_to_read && !c->has_pending() && !c->paused)
                read_and_echo(*c);
    }

    static constexpr int kReadsPerTurn = 16;
    std::unique_ptr<EventLoop> loop_;
    bool edge_;
    std::vector<int> again_;
    std::vector<char> buffer_;  // one read buffer shared by every connection of this loop
    std::vector<Role> roles_;   // by descriptor
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
        s.bytes_unsent += p.bytes_unsent;
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
    SignalPipe& signals = SignalPipe::get();
    Shared shared(config);
    std::unique_ptr<StoreWriter> store;
    if (config.store) {
        store = std::make_unique<StoreWriter>(*config.store);
        set_nonblocking(store->write_fd());
        shared.store = store.get();
    }
    const int loops = static_cast<int>(std::max<unsigned>(config.threads, 1));
    shared.several_loops = loops > 1;
    std::vector<Listener> listeners = detail::open_listeners(config, observer, loops);
    std::vector<std::unique_ptr<detail::ServerLoop>> servers;
    for (int i = 0; i < loops; ++i) {
        std::vector<int> fds;
        for (const auto& l : listeners)
            if (l.loop == i || l.loop == -1) fds.push_back(l.fd.get());
        servers.push_back(config.model == Model::io_uring ? detail::make_uring_loop(shared, observer, std::move(fds))
                                                                 : std::make_unique<ReadinessLoop>(shared, observer, std::move(fds)));
    }
    // Made before any loop runs: once the loops accept, the descriptors may all be taken.
    auto control = EventLoop::create(Model::poll);
    control->add(signals.fd(), kReadable);
    control->add(shared.wake_read.get(), kReadable);
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
    if (config.model == Model::fork) return detail::run_fork_server(config, observer);
    if (config.model == Model::io_uring) detail::check_uring_available();
    return run_multiplexed(config, observer);
}

}  // namespace muxkit
