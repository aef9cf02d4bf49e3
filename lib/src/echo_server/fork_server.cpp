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
#include <sys/socket.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "muxkit/clock.hpp"
#include "muxkit/event_loop.hpp"
#include "echo_server/listeners.hpp"
#include "muxkit/io.hpp"
#include "muxkit/pipe.hpp"
#include "muxkit/process.hpp"
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
    ChildConnection(Fd fd, std::uint64_t id, const EchoServerConfig& config, int store_fd)
        : socket_(std::move(fd)), fd_(socket_.get()), id_(id), config_(config), store_fd_(store_fd),
          encoder_(config.store ? config.store->format : StoreFormat::raw), buf_(std::max<std::size_t>(config.buffer_size, 1)) {
        rep_.pid = static_cast<std::int32_t>(::getpid());
        if (store_fd_ >= 0 && config.store->format == StoreFormat::jsonl) peer_ = peer_name(fd_);
    }

    ChildReport serve() {
        if (echo() && SignalPipe::stop_requested()) drain();
        socket_.reset();
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
                if (unacknowledged_bytes(fd_) == 0) break;
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
        if (const std::uint64_t unacked = unacknowledged_bytes(fd_); unacked > 0) {
            // Out of time with echo unacknowledged: reset, so bytes.out is what the client got.
            const std::uint64_t back = std::min(unacked, rep_.bytes_out);
            rep_.bytes_out -= back;
            rep_.bytes_unsent += back;
            const linger reset{1, 0};
            ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
        }
    }

    Fd socket_;
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

// Accepts each connection and forks a process for it; reaps them, gathers their reports and ends
// them at a stop. SIGCHLD notices reap at once; without them, every wake-up and a 100 ms tick do.
class ForkServer {
public:
    ForkServer(const EchoServerConfig& config, EchoServerObserver& observer)
        : config_(config), observer_(observer), signals_(SignalPipe::get()),
          store_(config.store ? std::make_unique<StoreWriter>(*config.store) : nullptr),
          listeners_(open_listeners(config, observer)), reports_(make_pipe()), loop_(EventLoop::create(Model::poll)),
          events_(observer.wants_connection_events()), start_(now_ns()), schedule_(config, start_) {
        set_nonblocking(reports_.read.get());
        loop_->add(signals_.fd(), kReadable);
        loop_->add(reports_.read.get(), kReadable);
        for (auto& l : listeners_) loop_->add(l.fd.get(), kReadable);
        if (config.output_fd >= 0) loop_->add(config.output_fd, 0);  // errors and hangups only
    }

    EchoServerStats run() {
        while (!stop_) {
            for (const Event& ev : loop_->wait(next_deadline())) {
                if (ev.fd == signals_.fd()) on_signal();
                else if (ev.fd == reports_.read.get()) read_reports();
                else if (ev.fd == config_.output_fd) stop_ = stop_ || (ev.events & (kError | kHangup));
                else if (!stop_) accept_all(ev.fd);
            }
            if (!live_.empty()) reap(WNOHANG);
            tick(now_ns());
        }
        end_children();
        remove_unix_sockets(listeners_);
        if (!fatal_.empty()) throw RuntimeError(fatal_);
        if (store_) store_->finish();  // every byte received is in the file, fsynced
        return snapshot();
    }

private:
    // With -v: what a process's connection events name, until its report is read (which may come
    // after it was reaped).
    struct Served {
        std::uint64_t id;
        std::string peer;
    };

    std::optional<std::int64_t> next_deadline() const {
        std::optional<std::int64_t> d = schedule_.next_deadline();
        auto sooner = [&d](std::optional<std::int64_t> t) {
            if (t && (!d || *t < *d)) d = t;
        };
        sooner(listeners_paused_until_);
        if (!live_.empty()) sooner(now_ns() + 100'000'000);
        return d;
    }

    void on_signal() {
        SignalFlags f = signals_.drain();
        if (f.child) reap(WNOHANG);
        if (f.stats) observer_.on_stats(snapshot());
        if (f.stop) stop_ = true;
    }

    void tick(std::int64_t now) {
        if (listeners_paused_until_ && now >= *listeners_paused_until_) {
            listeners_paused_until_.reset();
            spare_.take_back();
            for (auto& l : listeners_) loop_->add(l.fd.get(), kReadable);
        }
        if (schedule_.ended(now)) stop_ = true;
        if (schedule_.stats_due(now)) observer_.on_stats(snapshot());
    }

    EchoServerStats snapshot() {
        stats_.current = live_.size();
        stats_.duration_s = static_cast<double>(now_ns() - start_) / 1e9;
        return stats_;
    }

    void read_reports() {
        ChildReport rep;
        for (;;) {
            ssize_t n = read_full(reports_.read.get(), &rep, sizeof rep);
            if (n != static_cast<ssize_t>(sizeof rep)) return;  // EAGAIN or EOF; records are whole
            stats_.bytes_in += rep.bytes_in;
            stats_.bytes_out += rep.bytes_out;
            stats_.bytes_unsent += rep.bytes_unsent;
            stats_.idle_closed += rep.idle_closed;
            stats_.store_bytes += rep.store_bytes;
            stats_.store_records += rep.store_records;
            if (rep.error) stats_.errors.add(rep.error);
            if (!events_) continue;
            auto it = served_.find(rep.pid);
            if (it == served_.end()) continue;
            std::string reason = rep.error ? errno_name(rep.error) : rep.idle_closed ? "idle" : "eof";
            observer_.on_connection({ConnectionEvent::Kind::closed, it->second.id, it->second.peer, rep.bytes_in,
                                     rep.bytes_out, reason});
            served_.erase(it);
        }
    }

    // Out of descriptors with no spare to refuse with: stop accepting for 100 ms instead of spinning.
    void pause_listeners() {
        if (listeners_paused_until_) return;
        listeners_paused_until_ = now_ns() + 100'000'000;
        for (auto& l : listeners_) loop_->remove(l.fd.get());
    }

    void reap(int options) {
        int status;
        for (;;) {
            pid_t pid = ::waitpid(-1, &status, options);
            if (pid > 0) {
                if (live_.erase(pid)) ++stats_.finished;
                if (store_ && pid == store_->pid()) {
                    store_->note_exit(status);
                    fatal_ = store_->death();
                    stop_ = true;
                }
                continue;
            }
            if (pid < 0 && errno == EINTR) continue;
            break;  // 0: none has ended yet; ECHILD: none left
        }
        if (config_.max_clients && stats_.finished >= config_.max_clients) stop_ = true;
    }

    void accept_all(int lfd) {
        for (int i = 0; i < 64; ++i) {
            Accepted a = accept_connection(lfd);
            if (a.err == EAGAIN) return;
            if (a.err == EMFILE || a.err == ENFILE) {
                if (spare_.refuse_one(lfd, stats_.refused_emfile)) continue;
                pause_listeners();
                return;
            }
            if (a.err) {
                stats_.errors.add(a.err);
                if (a.err != ECONNABORTED && a.err != EPROTO && a.err != EPERM) pause_listeners();  // ENOBUFS, ENOMEM
                return;
            }
            if (live_.size() >= config_.max_connections) {
                ++stats_.refused_max_connections;
                continue;
            }
            set_nodelay(a.fd.get());
            std::string peer = events_ ? peer_name(a.fd.get()) : std::string();
            pid_t pid = fork_connection(std::move(a.fd));
            if (pid < 0) continue;
            ++next_id_;
            if (events_) observer_.on_connection({ConnectionEvent::Kind::opened, next_id_, peer, 0, 0, ""});
            live_.insert(pid);
            if (events_) served_.emplace(pid, Served{next_id_, std::move(peer)});
            ++stats_.accepted;
            stats_.peak = std::max<std::uint64_t>(stats_.peak, live_.size());
        }
    }

    // The connection's process; -1 (counted) when the fork failed.
    pid_t fork_connection(Fd fd) {
        try {
            return fork_child([&] {
                SignalPipe::reset_in_child();
                for (auto& l : listeners_) l.fd.reset();
                reports_.read.reset();
                ChildReport rep =
                    ChildConnection(std::move(fd), next_id_ + 1, config_, store_ ? store_->write_fd() : -1).serve();
                write_all(reports_.write.get(), &rep, sizeof rep);
                return 0;
            });
        } catch (const SystemError& e) {
            stats_.errors.add(e.code().value());
            ++stats_.refused_fork_failed;
            return -1;
        }
    }

    // Stop: end every child and let it report. With a store, a child may wait for the writer to
    // make room, so it gets longer before it is killed (which would lose what it holds).
    void end_children() {
        for (pid_t pid : live_) ::kill(pid, SIGTERM);
        const std::int64_t grace_end =
            now_ns() + config_.drain_timeout.count() + (store_ && fatal_.empty() ? 60'000'000'000 : 2'000'000'000);
        while (!live_.empty() && now_ns() < grace_end) {
            read_reports();
            reap(WNOHANG);
            if (!live_.empty()) ::usleep(2000);
        }
        for (pid_t pid : live_) {
            ::kill(pid, SIGKILL);
            int status;
            while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
        }
        live_.clear();
        reports_.write.reset();
        set_nonblocking(reports_.read.get(), false);
        read_reports();  // every child is gone and the write end closed: reads until EOF
    }

    const EchoServerConfig& config_;
    EchoServerObserver& observer_;
    SignalPipe& signals_;
    std::unique_ptr<StoreWriter> store_;
    std::vector<Listener> listeners_;
    Pipe reports_;  // children's ChildReport records, one write each
    std::unique_ptr<EventLoop> loop_;
    const bool events_;
    EchoServerStats stats_;
    std::unordered_set<pid_t> live_;  // connection processes still running
    std::unordered_map<pid_t, Served> served_;
    SpareFd spare_;
    std::optional<std::int64_t> listeners_paused_until_;
    std::uint64_t next_id_ = 0;
    const std::int64_t start_;
    RunSchedule schedule_;
    bool stop_ = false;
    std::string fatal_;
};

}  // namespace

EchoServerStats run_fork_server(const EchoServerConfig& config, EchoServerObserver& observer) {
    return ForkServer(config, observer).run();
}

}  // namespace muxkit::detail
