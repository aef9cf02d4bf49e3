// The echo server's coordinator: opens the listeners and the store, runs one event loop per
// thread, prints stats lines, and merges the loops' counts at the end.
#include "muxkit/echo_server.hpp"

#include <algorithm>
#include <memory>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "echo_server/listeners.hpp"
#include "echo_server/server_loop.hpp"
#include "muxkit/clock.hpp"
#include "muxkit/event_loop.hpp"
#include "muxkit/signals.hpp"
#include "uring/ring.hpp"

namespace muxkit {

namespace {

using detail::Listener;
using detail::Shared;

// Sums the loops' counts; connections now, peak and finished come from the shared counters.
EchoServerStats merge(const std::vector<EchoServerStats>& parts, const Shared& shared, std::int64_t start) {
    EchoServerStats s;
    for (const auto& p : parts) s.merge(p);
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
        detail::LoopSockets fds;
        for (const auto& l : listeners)
            if (l.loop == i || l.loop == -1) (l.datagram ? fds.datagram : fds.listeners).push_back(l.fd.get());
        servers.push_back(config.model == Model::io_uring ? detail::make_uring_loop(shared, observer, std::move(fds))
                                                                 : detail::make_readiness_loop(shared, observer, std::move(fds)));
    }
    // Made before any loop runs: once the loops accept, the descriptors may all be taken.
    auto control = EventLoop::create(Model::poll);
    control->add(signals.fd(), kReadable);
    control->add(shared.wake_read.get(), kReadable);
    if (config.output_fd >= 0) control->add(config.output_fd, 0);  // errors and hangups only
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

    detail::RunSchedule schedule(config, start);
    while (!shared.stop) {
        for (const Event& ev : control->wait(schedule.next_deadline())) {
            if (ev.fd == config.output_fd && (ev.events & (kError | kHangup))) shared.request_stop();
            if (ev.fd != signals.fd()) continue;
            SignalFlags f = signals.drain();
            if (f.stats) observer.on_stats(current());
            if (f.child && store && !store->alive()) shared.fail(store->death());
            if (f.stop) shared.request_stop();
        }
        const std::int64_t now = now_ns();
        if (schedule.ended(now)) shared.request_stop();
        if (schedule.stats_due(now)) observer.on_stats(current());
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

void EchoServerStats::merge(const EchoServerStats& part) {
    accepted += part.accepted;
    refused_max_connections += part.refused_max_connections;
    refused_fd_setsize += part.refused_fd_setsize;
    refused_emfile += part.refused_emfile;
    refused_fork_failed += part.refused_fork_failed;
    idle_closed += part.idle_closed;
    bytes_in += part.bytes_in;
    bytes_out += part.bytes_out;
    bytes_unsent += part.bytes_unsent;
    store_bytes += part.store_bytes;
    store_records += part.store_records;
    datagrams.in += part.datagrams.in;
    datagrams.out += part.datagrams.out;
    datagrams.truncated += part.datagrams.truncated;
    datagrams.dropped += part.datagrams.dropped;
    datagrams.overflowed += part.datagrams.overflowed;
    peers += part.peers;  // each sender goes to one loop's socket (SO_REUSEPORT hashes its address)
    errors.merge(part.errors);
}

EchoServerStats run_echo_server(const EchoServerConfig& config, EchoServerObserver& observer) {
    const bool udp = std::any_of(config.addresses.begin(), config.addresses.end(), [](const Address& a) { return a.datagram(); });
    if (udp && config.model == Model::fork)
        throw UsageError("the fork model serves each connection in a process of its own, and UDP has no connections: "
                         "use select, poll, epoll, epoll-et or io_uring for a udp: address");
    if (udp && config.store) throw UsageError("the store keeps the bytes of connections; a udp: address has none");
    if (config.model == Model::fork) return detail::run_fork_server(config, observer);
    if (config.model == Model::io_uring) detail::check_uring_available();
    return run_multiplexed(config, observer);
}

}  // namespace muxkit
