// run_watch: WatchRun watches the opened sources, dispatches each readiness event to what its
// source needs (read, accept, reopen, reap) and counts it for the summary.
#include "muxkit/fd_watch.hpp"

#include "fd_watch/sources.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstring>

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include "muxkit/clock.hpp"
#include "muxkit/error.hpp"
#include "muxkit/fd.hpp"
#include "muxkit/io.hpp"
#include "muxkit/pipe.hpp"
#include "muxkit/process.hpp"
#include "muxkit/signals.hpp"
#include "muxkit/socket.hpp"

namespace muxkit {

using namespace detail;

namespace {

const std::string kTimeoutKey = "(timeout)";

struct Source : OpenedSource {
    std::string kind;
    std::string summary_key;      // where its events are counted (accepted: one entry per listener)
    std::size_t exec = SIZE_MAX;  // index into execs_
    bool accepted = false;
    bool ended = false;
};

struct ExecChild {
    pid_t pid = -1;
    std::string name;
    int open_streams = 2;
    bool reaped = false;
};

std::string hex_of(const char* p, std::size_t n) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(n * 2);
    for (std::size_t i = 0; i < n; ++i) {
        out += digits[(static_cast<unsigned char>(p[i]) >> 4) & 0xf];
        out += digits[static_cast<unsigned char>(p[i]) & 0xf];
    }
    return out;
}

class WatchRun {
public:
    WatchRun(const WatchConfig& cfg, WatchObserver& observer)
        : cfg_(cfg), observer_(observer), signals_(SignalPipe::get()), loop_(EventLoop::create(cfg.model)) {}

    ~WatchRun() {
        for (const auto& s : sources_)
            if (!s.unix_path.empty()) ::unlink(s.unix_path.c_str());
        for (auto& e : execs_)
            if (!e.reaped) {
                ::kill(e.pid, SIGTERM);
                wait_child(e.pid, now_ns() + 2'000'000'000);
            }
    }

    WatchSummary run() {
        std::vector<std::string> bound;
        for (const auto& spec : cfg_.sources) {
            open_source(spec);
            const Source& s = sources_.back();
            if (s.role != Role::listener && s.role != Role::datagram) continue;
            bound.push_back(s.name.substr(s.role == Role::listener ? std::string_view("listen:").size() : 0));  // udp: stays
            observer_.on_listening(s.name, bound.back());
        }
        observer_.on_ready(bound);
        loop_->add(signals_.fd(), kReadable);
        start_ = now_ns();
        std::optional<std::int64_t> end;
        if (cfg_.duration) end = start_ + cfg_.duration->count();
        // The timeout runs from the last event, not from the last wake-up (an exec source wakes
        // the loop every 20 ms to reap its child).
        std::int64_t timeout_at = start_ + cfg_.timeout.count();
        while (!done_) {
            if (active_sources() == 0 && pending_execs() == 0) {
                summary_.all_ended = true;
                break;
            }
            std::int64_t deadline = timeout_at;
            if (end) deadline = std::min(deadline, *end);
            if (pending_execs()) deadline = std::min(deadline, now_ns() + 20'000'000);
            auto events = loop_->wait(deadline);
            bool any = false;
            for (const Event& ev : events) {
                if (done_) break;
                if (ev.fd == signals_.fd()) {
                    if (signals_.drain().stop) done_ = true;
                    continue;
                }
                any = true;
                handle(ev);
            }
            reap_execs();
            const std::int64_t now = now_ns();
            if (end && now >= *end) break;
            if (any) {
                timeout_at = now + cfg_.timeout.count();
            } else if (!done_ && now >= timeout_at) {
                WatchEvent e;
                e.event = "timeout";
                emit(e);
                if (cfg_.once) summary_.timed_out_first = true;
                timeout_at = now + cfg_.timeout.count();
            }
        }
        summary_.duration_s = static_cast<double>(now_ns() - start_) / 1e9;
        return summary_;
    }

private:
    std::size_t active_sources() const {
        return sources_.size() - ended_;
    }
    std::size_t pending_execs() const {
        return static_cast<std::size_t>(std::count_if(execs_.begin(), execs_.end(), [](const ExecChild& e) { return !e.reaped; }));
    }

    void check_watchable(int fd, const std::string& name) {
        if (!loop_->can_watch(fd))
            throw UsageError(fmt::format("cannot watch {} (descriptor {}) with select: at or past FD_SETSIZE ({}); the poll and epoll models have no such limit",
                                         name, fd, FD_SETSIZE));
        struct stat st;
        if (::fstat(fd, &st) != 0) throw SystemError(errno, fmt::format("cannot watch {} (descriptor {})", name, fd));
        if (S_ISREG(st.st_mode) && (cfg_.model == Model::epoll || cfg_.model == Model::epoll_et))
            throw UsageError(fmt::format("epoll cannot watch a regular file ({}); the select and poll models can", name));
    }

    std::size_t add_source(Source s, std::uint32_t interest) {
        check_watchable(s.fd, s.name);
        s.kind = describe_fd(s.fd);
        if (s.summary_key.empty()) s.summary_key = s.name;
        loop_->add(s.fd, interest);
        if (static_cast<std::size_t>(s.fd) >= by_fd_.size()) by_fd_.resize(static_cast<std::size_t>(s.fd) + 1, SIZE_MAX);
        std::size_t index = sources_.size();
        if (s.accepted && !free_slots_.empty()) {  // accepted connections come and go: reuse their slots
            index = free_slots_.back();
            free_slots_.pop_back();
            sources_[index] = std::move(s);
            --ended_;
        } else {
            sources_.push_back(std::move(s));
        }
        by_fd_[sources_[index].fd] = index;
        return index;
    }

    void open_source(const SourceSpec& spec) {
        if (spec.type == SourceSpec::Type::exec) return open_exec(spec);
        Source s;
        static_cast<OpenedSource&>(s) = detail::open_source(spec);
        const std::uint32_t interest = s.role == Role::stream ? cfg_.events : std::uint32_t{kReadable};
        add_source(std::move(s), interest);
    }

    void open_exec(const SourceSpec& spec) {
        StartedExec started = start_exec(spec);
        execs_.push_back({started.pid, spec.text, 2, false});
        for (Fd* stream : {&started.out, &started.err}) {
            Source s;
            s.name = spec.text + (stream == &started.out ? "[stdout]" : "[stderr]");
            s.owned = std::move(*stream);
            s.fd = s.owned.get();
            s.role = Role::exec_out;
            s.exec = execs_.size() - 1;
            add_source(std::move(s), kReadable);
        }
    }

    void handle(const Event& ev) {
        if (static_cast<std::size_t>(ev.fd) >= by_fd_.size() || by_fd_[ev.fd] == SIZE_MAX) return;
        const std::size_t index = by_fd_[ev.fd];
        if (sources_[index].ended) return;
        if (sources_[index].role == Role::listener) {
            accept_all(index);
            return;
        }
        if (sources_[index].role == Role::datagram) {
            receive_datagrams(index);
            return;
        }
        if (ev.events & kException) on_exception(index);
        if (done_ || sources_[index].ended) return;
        if (ev.events & (kReadable | kHangup | kError)) {
            if (loop_->interest(ev.fd) & kReadable) on_readable(index);
            else on_hangup(index);
        }
        if (done_ || sources_[index].ended) return;
        if (ev.events & kWritable) on_writable(index);
    }

    WatchEvent event_for(const Source& s, std::string_view what) {
        WatchEvent e;
        e.fd = s.fd;
        e.source = s.name;
        e.summary_key = s.summary_key;
        e.kind = s.kind;
        e.event = std::string(what);
        return e;
    }

    void on_readable(std::size_t index) {
        Source& s = sources_[index];
        std::uint64_t total = 0;
        std::string shown;
        bool eof = false;
        int error = 0;
        // Drain what is there now (FIONREAD), never blocking: inherited descriptors stay blocking,
        // since their open file description is shared with the shell.
        for (int round = 0; round < 64; ++round) {
            int avail = 0;
            if (::ioctl(s.fd, FIONREAD, &avail) != 0) avail = -1;
            // A FIFO (ours, non-blocking) is read once more: EOF at once if its writer has gone, which
            // poll may never say for a writer that came and went before the FIFO was reopened.
            if (avail == 0 && total > 0 && s.role != Role::fifo) break;
            std::size_t want = avail > 0 ? std::min<std::size_t>(static_cast<std::size_t>(avail), sizeof buf_) : sizeof buf_;
            IoResult r = read_some(s.fd, buf_, want);
            if (r.n > 0) {
                total += r.n;
                if (cfg_.show == Show::text) shown.append(buf_, static_cast<std::size_t>(r.n));
                else if (cfg_.show == Show::hex) shown += hex_of(buf_, static_cast<std::size_t>(r.n));
                if (avail < 0) break;  // unknown amount: one read per wake-up
                continue;
            }
            if (r.n == 0) eof = true;
            else if (!r.would_block()) error = r.err;
            break;
        }
        if (total > 0) {
            WatchEvent e = event_for(s, "readable");
            e.bytes = total;
            e.data = std::move(shown);
            if (!emit(e)) return;
        }
        if (error) {
            WatchEvent e = event_for(s, "error");
            e.error = error;
            e.status = errno_name(error);
            emit(e);
            end_source(index);
        } else if (eof) {
            emit(event_for(s, "eof"));
            if (s.role == Role::fifo) reopen_fifo(index);
            else end_source(index);
        }
    }

    // A write side whose far end is gone: select says writable, poll says POLLERR or POLLHUP.
    bool far_end_gone(int fd) {
        pollfd p{fd, 0, 0};
        return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLERR | POLLHUP));
    }

    void on_hangup(std::size_t index) {
        emit(event_for(sources_[index], "hangup"));
        end_source(index);
    }

    void on_writable(std::size_t index) {
        if (far_end_gone(sources_[index].fd)) {
            on_hangup(index);
            return;
        }
        emit(event_for(sources_[index], "writable"));
    }

    void on_exception(std::size_t index) {
        Source& s = sources_[index];
        WatchEvent e = event_for(s, "exception");
        char c;
        ssize_t n = ::recv(s.fd, &c, 1, MSG_OOB | MSG_DONTWAIT);  // consume urgent data so it is reported once
        if (n == 1) {
            e.bytes = 1;
            if (cfg_.show == Show::text) e.data.assign(1, c);
            else if (cfg_.show == Show::hex) e.data = hex_of(&c, 1);
        }
        emit(e);
    }

    // One event per datagram: its size and its sender.
    void receive_datagrams(std::size_t index) {
        for (int i = 0; i < 64 && !done_; ++i) {
            Source& s = sources_[index];
            sockaddr_storage from{};
            socklen_t len = sizeof from;
            const ssize_t n = ::recvfrom(s.fd, buf_, sizeof buf_, MSG_DONTWAIT | MSG_TRUNC, reinterpret_cast<sockaddr*>(&from), &len);
            if (n < 0) {
                const int err = errno;
                if (err == EINTR) continue;
                if (err == EAGAIN) return;
                WatchEvent e = event_for(s, "error");  // the socket stays: the next datagram may come
                e.error = err;
                e.status = errno_name(err);
                emit(e);
                return;
            }
            WatchEvent e = event_for(s, "datagram");
            e.bytes = static_cast<std::uint64_t>(n);
            e.peer = "udp:" + Endpoint::from(reinterpret_cast<sockaddr*>(&from), len).to_string();
            const std::size_t got = std::min(static_cast<std::size_t>(n), sizeof buf_);
            if (cfg_.show == Show::text) e.data.assign(buf_, got);
            else if (cfg_.show == Show::hex) e.data = hex_of(buf_, got);
            if (!emit(e)) return;
        }
    }

    void accept_all(std::size_t index) {
        for (int i = 0; i < 64 && !done_; ++i) {
            Accepted a = accept_connection(sources_[index].fd);
            if (a.err == EAGAIN) return;
            if (a.err) {
                WatchEvent e = event_for(sources_[index], "error");
                e.error = a.err;
                e.status = errno_name(a.err);
                emit(e);
                return;
            }
            WatchEvent e = event_for(sources_[index], "accepted");
            e.peer = peer_name(a.fd.get());
            if (!loop_->can_watch(a.fd.get())) {
                e.event = "error";
                e.status = fmt::format("descriptor {} is past FD_SETSIZE: connection closed", a.fd.get());
                emit(e);
                continue;
            }
            e.fd = a.fd.get();
            Source s;
            s.name = "accepted:" + e.peer;
            s.summary_key = "accepted:" + sources_[index].name;  // one entry per listener, not per peer
            s.accepted = true;
            s.fd = a.fd.get();
            s.owned = std::move(a.fd);
            add_source(std::move(s), cfg_.events);
            if (!emit(e)) return;
        }
    }

    void reopen_fifo(std::size_t index) {
        Source& s = sources_[index];
        // Reading a FIFO whose writers have gone returns EOF at once, for ever: reopen it so the
        // source is quiet until the next writer comes.
        // The new reader opens before the old one closes: closing the last reader would discard
        // what a writer that came in between already wrote.
        Fd reopened = open_fifo(s.fifo_path);
        loop_->remove(s.fd);
        by_fd_[s.fd] = SIZE_MAX;
        s.owned = std::move(reopened);
        s.fd = s.owned.get();
        loop_->add(s.fd, kReadable);
        if (static_cast<std::size_t>(s.fd) >= by_fd_.size()) by_fd_.resize(static_cast<std::size_t>(s.fd) + 1, SIZE_MAX);
        by_fd_[s.fd] = index;
    }

    void end_source(std::size_t index) {
        Source& s = sources_[index];
        if (s.ended) return;
        s.ended = true;
        ++ended_;
        loop_->remove(s.fd);
        by_fd_[s.fd] = SIZE_MAX;
        s.owned.reset();
        if (s.exec != SIZE_MAX) --execs_[s.exec].open_streams;
        if (s.accepted) free_slots_.push_back(index);
    }

    void reap_execs() {
        for (auto& e : execs_) {
            if (e.reaped || e.open_streams > 0 || done_) continue;
            int status;
            if (::waitpid(e.pid, &status, WNOHANG) != e.pid) continue;
            e.reaped = true;
            WatchEvent ev;
            ev.source = e.name;
            ev.kind = "process";
            ev.event = "exited";
            const ExitStatus st = decode_status(status);
            ev.status = st.to_string();
            ev.exit_code = st.code;
            ev.signal = st.signal;
            emit(ev);
        }
    }

    // Reports one event; false once the run is over (--count or --once reached).
    bool emit(WatchEvent e) {
        e.t = static_cast<double>(now_ns() - start_) / 1e9;
        observer_.on_event(e);
        ++summary_.events;
        if (e.event == "timeout") ++summary_.timeouts;
        const std::string& key = e.event == "timeout" ? kTimeoutKey : e.summary_key.empty() ? e.source : e.summary_key;
        auto it = std::find_if(summary_.by_source.begin(), summary_.by_source.end(), [&](auto& p) { return p.first == key; });
        if (it == summary_.by_source.end()) {
            summary_.by_source.push_back({key, {}});
            it = summary_.by_source.end() - 1;
        }
        ++it->second[e.event];
        if (cfg_.once || (cfg_.count && summary_.events >= cfg_.count)) done_ = true;
        return !done_;
    }

    const WatchConfig& cfg_;
    WatchObserver& observer_;
    SignalPipe& signals_;
    std::unique_ptr<EventLoop> loop_;
    std::vector<Source> sources_;
    std::vector<std::size_t> free_slots_;  // ended accepted connections
    std::size_t ended_ = 0;
    std::vector<std::size_t> by_fd_;
    std::vector<ExecChild> execs_;
    WatchSummary summary_;
    std::int64_t start_ = 0;
    bool done_ = false;
    char buf_[65536];
};

}  // namespace

WatchSummary run_watch(const WatchConfig& config, WatchObserver& observer) {
    if (config.sources.empty()) throw UsageError("no source to watch");
    WatchRun run(config, observer);
    return run.run();
}

}  // namespace muxkit
