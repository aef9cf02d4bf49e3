// The fork echo server: one process per connection, as in the classic multi-process server.
// Children report their counts through one pipe (one record per write, below PIPE_BUF: atomic).
#include <cerrno>
#include <csignal>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include <cstring>

#include <fcntl.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "muxkit/clock.hpp"
#include "muxkit/event_loop.hpp"
#include "echo_server/listeners.hpp"
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
    std::uint64_t bytes_unsent;
};
static_assert(sizeof(ChildReport) <= PIPE_BUF);

// Waits for the socket until deadline_ns (-1: none); false on stop, timeout (sets timed_out) or
// error.
bool wait_for(int fd, short events, std::int64_t deadline_ns, bool& timed_out, bool stop_counts = true) {
    for (;;) {
        if (stop_counts && SignalPipe::stop_requested()) return false;
        int timeout_ms = -1;
        if (deadline_ns >= 0) {
            const std::int64_t left = deadline_ns - now_ns();
            if (left <= 0) {
                timed_out = true;
                return false;
            }
            timeout_ms = static_cast<int>(left / 1'000'000) + 1;
        }
        pollfd p{fd, events, 0};
        int rc = ::poll(&p, 1, timeout_ms);
        if (rc > 0) return true;
        if (rc < 0 && errno != EINTR) return false;
    }
}

// One connection in its own process. store_fd: the store pipe (blocking), or -1. Each record goes
// in one write of at most PIPE_BUF bytes, so the records of all the connection processes never
// interleave.
class ChildConnection {
public:
    ChildConnection(int fd, std::uint64_t id, const EchoServerConfig& config, int store_fd)
        : fd_(fd), id_(id), config_(config), store_fd_(store_fd), encoder_(config.store ? config.store->format : StoreFormat::raw),
          buf_(std::max<std::size_t>(config.buffer_size, 1)) {
        rep_.pid = static_cast<std::int32_t>(::getpid());
        if (store_fd_ >= 0 && config.store->format == StoreFormat::jsonl) {
            try {
                peer_ = peer_endpoint(fd).to_string();
            } catch (const SystemError&) {
                peer_ = "unknown";
            }
        }
    }

    ChildReport serve() {
        if (echo() && SignalPipe::stop_requested()) drain();
        ::close(fd_);
        return rep_;
    }

private:
    std::int64_t idle_deadline() const { return config_.idle_timeout ? now_ns() + config_.idle_timeout->count() : -1; }

    // Reads and echoes until EOF, an error, the idle timeout or a stop; true on a stop, with
    // what was read and not yet echoed in buf_[off_, len_).
    bool echo() {
        bool idle = false;
        while (wait_for(fd_, POLLIN, idle_deadline(), idle)) {
            IoResult r = read_some(fd_, buf_.data(), buf_.size());
            if (r.n == 0) return false;
            if (r.failed()) {
                if (r.would_block()) continue;
                rep_.error = r.err;
                return false;
            }
            if (!take(static_cast<std::size_t>(r.n))) return false;
            off_ = 0;
            len_ = static_cast<std::size_t>(r.n);
            while (off_ < len_) {
                IoResult w = send_some(fd_, buf_.data() + off_, len_ - off_);
                if (w.failed()) {
                    if (w.would_block() && wait_for(fd_, POLLOUT, idle_deadline(), idle)) continue;
                    if (!w.would_block()) {
                        rep_.error = w.err;
                        return false;
                    }
                    rep_.idle_closed = idle ? 1 : 0;
                    return !idle;
                }
                off_ += static_cast<std::size_t>(w.n);
                rep_.bytes_out += w.n;
            }
        }
        rep_.idle_closed = idle ? 1 : 0;
        return !idle;
    }

    // Counts and stores n bytes read into buf_; false when the store writer is gone.
    bool take(std::size_t n) {
        rep_.bytes_in += n;
        if (store_fd_ < 0) return true;
        int err = 0;
        rep_.store_records += encoder_.encode({id_, peer_}, buf_.data(), n, [&](const char* rec, std::size_t k) {
            if (!err) err = write_all(store_fd_, rec, k);
        });
        if (err) {
            rep_.error = err;  // EPIPE: the writer is gone; the parent reports it
            return false;
        }
        rep_.store_bytes += n;
        return true;
    }

    // The graceful stop of the other models: the echo owed, then the write side shut down, then
    // what the client still sends (stored, counted unsent) until it has every byte or leaves.
    void drain() {
        const std::int64_t deadline = now_ns() + config_.drain_timeout.count();
        bool timed_out = false;
        while (off_ < len_) {
            IoResult w = send_some(fd_, buf_.data() + off_, len_ - off_);
            if (w.n > 0) {
                off_ += static_cast<std::size_t>(w.n);
                rep_.bytes_out += w.n;
            } else if (!w.would_block() || !wait_for(fd_, POLLOUT, deadline, timed_out, false)) {
                break;
            }
        }
        const std::uint64_t owed = len_ - off_;
        std::vector<char> scratch(buf_.size());
        if (owed == 0) {
            ::shutdown(fd_, SHUT_WR);
            for (;;) {
                int unacked = 0;
                if (::ioctl(fd_, SIOCOUTQ, &unacked) == 0 && unacked == 0) break;
                if (!wait_for(fd_, POLLIN, std::min(deadline, now_ns() + 10'000'000), timed_out, false)) {
                    if (now_ns() >= deadline) break;
                    timed_out = false;
                    continue;
                }
                IoResult r = read_some(fd_, scratch.data(), scratch.size());
                if (r.n <= 0 && !r.would_block()) break;
                if (r.n > 0) {
                    std::memcpy(buf_.data(), scratch.data(), static_cast<std::size_t>(r.n));
                    if (!take(static_cast<std::size_t>(r.n))) break;
                    rep_.bytes_unsent += static_cast<std::uint64_t>(r.n);
                }
            }
        }
        rep_.bytes_unsent += owed;
        int unacked = 0;
        if (::ioctl(fd_, SIOCOUTQ, &unacked) == 0 && unacked > 0) {
            // Out of time with echo unacknowledged: reset, so bytes.out is what the client got.
            const std::uint64_t back = std::min<std::uint64_t>(static_cast<std::uint64_t>(unacked), rep_.bytes_out);
            rep_.bytes_out -= back;
            rep_.bytes_unsent += back;
            const linger reset{1, 0};
            ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
        }
    }

    int fd_;
    std::uint64_t id_;
    const EchoServerConfig& config_;
    int store_fd_;
    StoreEncoder encoder_;
    std::string peer_;
    std::vector<char> buf_;
    std::size_t off_ = 0, len_ = 0;  // read, and echoed up to off_
    ChildReport rep_{};
};

[[noreturn]] void serve_child(int fd, std::uint64_t id, const EchoServerConfig& config, int report_fd, int store_fd) {
    ChildReport rep = ChildConnection(fd, id, config, store_fd).serve();
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
            stats.bytes_unsent += rep.bytes_unsent;
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
    const std::int64_t grace_end =
        now_ns() + config.drain_timeout.count() + (store && fatal.empty() ? 60'000'000'000 : 2'000'000'000);
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
