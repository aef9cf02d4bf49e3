// The fork echo server: one process per connection, as in the classic multi-process server.
// Children report their counts through one pipe (one record per write, below PIPE_BUF: atomic).
#include <cerrno>
#include <csignal>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "muxkit/clock.hpp"
#include "muxkit/echo_server_internal.hpp"
#include "muxkit/io.hpp"
#include "muxkit/signals.hpp"
#include "muxkit/socket.hpp"
#include "muxkit/store.hpp"

namespace muxkit::detail {

namespace {

struct ChildReport {
    std::int32_t pid;
    std::int32_t error;  // errno that ended the connection, or 0
    std::uint64_t bytes_in;
    std::uint64_t bytes_out;
    std::uint64_t store_bytes;
    std::uint64_t store_records;
    std::uint32_t idle_closed;
    std::uint32_t reserved;
};
static_assert(sizeof(ChildReport) <= PIPE_BUF);

// Waits for the socket; false on stop, idle timeout (sets idle) or error.
bool wait_for(int fd, short events, int timeout_ms, bool& idle) {
    for (;;) {
        if (SignalPipe::stop_requested()) return false;
        pollfd p{fd, events, 0};
        int rc = ::poll(&p, 1, timeout_ms);
        if (rc > 0) return true;
        if (rc == 0) {
            idle = true;
            return false;
        }
        if (errno != EINTR) return false;
    }
}

// store_fd: the store pipe (blocking), or -1. Each record goes in one write of at most PIPE_BUF
// bytes, so the records of all the connection processes never interleave.
[[noreturn]] void serve_child(int fd, std::uint64_t id, const EchoServerConfig& config, int report_fd, int store_fd) {
    ChildReport rep{static_cast<std::int32_t>(::getpid()), 0, 0, 0, 0, 0, 0, 0};
    StoreEncoder encoder(config.store ? config.store->format : StoreFormat::raw);
    std::string peer;
    if (store_fd >= 0 && config.store->format == StoreFormat::jsonl) {
        try {
            peer = peer_endpoint(fd).to_string();
        } catch (const SystemError&) {
            peer = "unknown";
        }
    }
    const int timeout_ms = config.idle_timeout ? static_cast<int>(std::max<std::int64_t>(1, config.idle_timeout->count() / 1'000'000)) : -1;
    std::vector<char> buf(std::max<std::size_t>(config.buffer_size, 1));
    bool idle = false;
    while (wait_for(fd, POLLIN, timeout_ms, idle)) {
        IoResult r = read_some(fd, buf.data(), buf.size());
        if (r.n == 0) break;
        if (r.failed()) {
            if (r.would_block()) continue;
            rep.error = r.err;
            break;
        }
        rep.bytes_in += r.n;
        if (store_fd >= 0) {
            int err = 0;
            rep.store_records += encoder.encode({id, peer}, buf.data(), static_cast<std::size_t>(r.n),
                                                [&](const char* rec, std::size_t n) {
                                                    if (!err) err = write_all(store_fd, rec, n);
                                                });
            if (err) {
                rep.error = err;  // EPIPE: the writer is gone; the parent reports it
                break;
            }
            rep.store_bytes += r.n;
        }
        std::size_t off = 0;
        while (off < static_cast<std::size_t>(r.n)) {
            IoResult w = send_some(fd, buf.data() + off, r.n - off);
            if (w.failed()) {
                if (w.would_block() && wait_for(fd, POLLOUT, timeout_ms, idle)) continue;
                if (!w.would_block()) rep.error = w.err;
                goto done;
            }
            off += w.n;
            rep.bytes_out += w.n;
        }
    }
done:
    rep.idle_closed = idle ? 1 : 0;
    ::close(fd);
    write_all(report_fd, &rep, sizeof rep);
    ::_exit(0);
}

}  // namespace

EchoServerStats run_fork_server(const EchoServerConfig& config, EchoServerObserver& observer) {
    SignalPipe& signals = SignalPipe::install();
    std::unique_ptr<StoreWriter> store;
    if (config.store) store = std::make_unique<StoreWriter>(*config.store);
    std::vector<Listener> listeners = open_listeners(config, observer);
    int pfd[2];
    if (::pipe2(pfd, O_CLOEXEC) != 0) throw_errno("cannot create the report pipe");
    Fd report_read(pfd[0]), report_write(pfd[1]);
    set_nonblocking(report_read.get());

    auto loop = EventLoop::create(Model::poll);
    loop->add(signals.fd(), kReadable);
    loop->add(report_read.get(), kReadable);
    for (auto& l : listeners) loop->add(l.fd.get(), kReadable);

    EchoServerStats stats;
    std::unordered_set<pid_t> live;  // connection processes still running
    // With -v: what each process's connection events name, until its report is read (which may
    // come after it was reaped).
    struct Served {
        std::uint64_t id;
        std::string peer;
    };
    std::unordered_map<pid_t, Served> served;
    SpareFd spare;
    std::optional<std::int64_t> listeners_paused_until;
    const bool events = observer.wants_connection_events();
    std::uint64_t next_id = 0;
    const std::int64_t start = now_ns();
    std::optional<std::int64_t> end;
    if (config.duration) end = start + config.duration->count();
    std::optional<std::int64_t> next_stats;
    if (config.stats_interval) next_stats = start + config.stats_interval->count();
    bool stop = false;
    std::string fatal;

    auto snapshot = [&] {
        stats.current = live.size();
        stats.duration_s = static_cast<double>(now_ns() - start) / 1e9;
        return stats;
    };
    auto read_reports = [&] {
        ChildReport rep;
        for (;;) {
            ssize_t n = read_full(report_read.get(), &rep, sizeof rep);
            if (n != static_cast<ssize_t>(sizeof rep)) return;  // EAGAIN or EOF; records are whole
            stats.bytes_in += rep.bytes_in;
            stats.bytes_out += rep.bytes_out;
            stats.idle_closed += rep.idle_closed;
            stats.store_bytes += rep.store_bytes;
            stats.store_records += rep.store_records;
            if (rep.error) stats.errors.add(rep.error);
            if (events) {
                auto it = served.find(rep.pid);
                if (it == served.end()) continue;
                std::string reason = rep.error ? errno_name(rep.error) : rep.idle_closed ? "idle" : "eof";
                observer.on_connection({ConnectionEvent::Kind::closed, it->second.id, it->second.peer, rep.bytes_in,
                                        rep.bytes_out, reason});
                served.erase(it);
            }
        }
    };
    // Out of descriptors with no spare to refuse with: stop accepting for 100 ms instead of spinning.
    auto pause_listeners = [&] {
        if (listeners_paused_until) return;
        listeners_paused_until = now_ns() + 100'000'000;
        for (auto& l : listeners) loop->remove(l.fd.get());
    };
    auto reap = [&](int options) {
        int status;
        for (;;) {
            pid_t pid = ::waitpid(-1, &status, options);
            if (pid > 0) {
                if (live.erase(pid)) ++stats.finished;
                if (store && pid == store->pid()) {
                    store->note_exit(status);
                    fatal = store->death();
                    stop = true;
                }
                continue;
            }
            if (pid < 0 && errno == EINTR) continue;
            break;  // 0: none has ended yet; ECHILD: none left
        }
        if (config.max_clients && stats.finished >= config.max_clients) stop = true;
    };
    auto accept_all = [&](int lfd) {
        for (int i = 0; i < 64; ++i) {
            Accepted a = accept_connection(lfd);
            if (a.err == EAGAIN) return;
            if (a.err == EMFILE || a.err == ENFILE) {
                if (spare.refuse_one(lfd, stats.refused_emfile)) continue;
                pause_listeners();
                return;
            }
            if (a.err) {
                stats.errors.add(a.err);
                if (a.err != ECONNABORTED && a.err != EPROTO && a.err != EPERM) pause_listeners();  // ENOBUFS, ENOMEM
                return;
            }
            if (live.size() >= config.max_connections) {
                ++stats.refused_max_connections;
                continue;
            }
            set_nodelay(a.fd.get());
            std::string peer;
            if (events) {
                try {
                    peer = peer_endpoint(a.fd.get()).to_string();
                } catch (const SystemError&) {
                    peer = "unknown";
                }
            }
            pid_t pid = ::fork();
            if (pid < 0) {
                stats.errors.add(errno);
                ++stats.refused_fork_failed;
                continue;
            }
            if (pid == 0) {
                SignalPipe::reset_in_child();
                for (auto& l : listeners) ::close(l.fd.get());
                ::close(report_read.get());
                serve_child(a.fd.get(), next_id + 1, config, report_write.get(), store ? store->write_fd() : -1);
            }
            ++next_id;
            if (events) observer.on_connection({ConnectionEvent::Kind::opened, next_id, peer, 0, 0, ""});
            live.insert(pid);
            if (events) served.emplace(pid, Served{next_id, std::move(peer)});
            ++stats.accepted;
            stats.peak = std::max<std::uint64_t>(stats.peak, live.size());
        }
    };

    while (!stop) {
        std::optional<std::int64_t> deadline = end;
        if (next_stats && (!deadline || *next_stats < *deadline)) deadline = next_stats;
        if (listeners_paused_until && (!deadline || *listeners_paused_until < *deadline)) deadline = listeners_paused_until;
        for (const Event& ev : loop->wait(deadline)) {
            if (ev.fd == signals.fd()) {
                SignalFlags f = signals.drain();
                if (f.child) reap(WNOHANG);
                if (f.stats) observer.on_stats(snapshot());
                if (f.stop) stop = true;
            } else if (ev.fd == report_read.get()) {
                read_reports();
            } else if (!stop) {
                accept_all(ev.fd);
            }
        }
        std::int64_t now = now_ns();
        if (listeners_paused_until && now >= *listeners_paused_until) {
            listeners_paused_until.reset();
            spare.take_back();
            for (auto& l : listeners) loop->add(l.fd.get(), kReadable);
        }
        if (end && now >= *end) stop = true;
        if (next_stats && now >= *next_stats) {
            observer.on_stats(snapshot());
            *next_stats += config.stats_interval->count();
        }
    }

    // Stop: end every child and let it report. With a store, a child may wait for the writer to
    // make room, so it gets longer before it is killed (which would lose what it holds).
    for (pid_t pid : live) ::kill(pid, SIGTERM);
    const std::int64_t grace_end = now_ns() + (store && fatal.empty() ? 60'000'000'000 : 2'000'000'000);
    while (!live.empty() && now_ns() < grace_end) {
        read_reports();
        reap(WNOHANG);
        if (!live.empty()) ::usleep(2000);
    }
    for (pid_t pid : live) {
        ::kill(pid, SIGKILL);
        int status;
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
    }
    live.clear();
    report_write.reset();
    set_nonblocking(report_read.get(), false);
    read_reports();  // every child is gone and the write end closed: reads until EOF
    remove_unix_sockets(listeners);
    if (!fatal.empty()) throw RuntimeError(fatal);
    if (store) store->finish();  // every byte received is in the file, fsynced
    return snapshot();
}

}  // namespace muxkit::detail
