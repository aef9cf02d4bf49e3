// epoll(7) backend, level- or edge-triggered.
#include <algorithm>
#include <cerrno>
#include <climits>

#include <sys/epoll.h>
#include <unistd.h>

#include "loop/backend/backends.hpp"
#include "muxkit/error.hpp"
#include "muxkit/fd.hpp"

namespace muxkit::backend {

namespace {

class EpollLoop final : public EventLoop {
public:
    explicit EpollLoop(bool edge) : EventLoop(edge ? Model::epoll_et : Model::epoll), edge_(edge) {
        epfd_ = Fd(::epoll_create1(EPOLL_CLOEXEC));
        if (!epfd_) throw_errno("epoll_create1");
        events_.resize(1024);
    }

private:
    std::uint32_t to_epoll(std::uint32_t interest) const {
        std::uint32_t ev = 0;
        if (interest & kReadable) ev |= EPOLLIN | EPOLLRDHUP;
        if (interest & kWritable) ev |= EPOLLOUT;
        if (interest & kException) ev |= EPOLLPRI;
        if (edge_) ev |= EPOLLET;
        return ev;
    }
    void ctl(int op, int fd, std::uint32_t interest) {
        epoll_event ev{};
        ev.events = to_epoll(interest);
        ev.data.fd = fd;
        if (::epoll_ctl(epfd_.get(), op, fd, &ev) != 0) throw_errno("epoll_ctl");
    }
    void backend_add(int fd, std::uint32_t interest) override { ctl(EPOLL_CTL_ADD, fd, interest); }
    void backend_modify(int fd, std::uint32_t interest) override { ctl(EPOLL_CTL_MOD, fd, interest); }
    void backend_remove(int fd) override {
        epoll_event ev{};
        // ENOENT/EBADF: the descriptor was closed already, which removed it from the set.
        if (::epoll_ctl(epfd_.get(), EPOLL_CTL_DEL, fd, &ev) != 0 && errno != ENOENT && errno != EBADF)
            throw_errno("epoll_ctl del");
    }
    int backend_wait(std::int64_t timeout_ns, std::vector<Event>& out) override {
        int n = -1;
        if (have_pwait2_) {
            timespec ts{};
            n = ::epoll_pwait2(epfd_.get(), events_.data(), static_cast<int>(events_.size()), to_timespec(timeout_ns, ts), nullptr);
            if (n < 0 && errno == ENOSYS) have_pwait2_ = false;  // kernel before 5.11, seccomp, valgrind
        }
        if (!have_pwait2_) {
            // Milliseconds, rounded up so a wait never ends before its deadline.
            int ms = timeout_ns < 0 ? -1 : static_cast<int>(std::min<std::int64_t>((timeout_ns + 999'999) / 1'000'000, INT32_MAX));
            n = ::epoll_wait(epfd_.get(), events_.data(), static_cast<int>(events_.size()), ms);
        }
        if (n <= 0) return n;
        for (int i = 0; i < n; ++i) {
            std::uint32_t e = events_[i].events, ev = 0;
            if (e & (EPOLLIN | EPOLLRDHUP)) ev |= kReadable;
            if (e & EPOLLOUT) ev |= kWritable;
            if (e & EPOLLPRI) ev |= kException;
            if (e & EPOLLHUP) ev |= kHangup;
            if (e & EPOLLERR) ev |= kError;
            out.push_back({events_[i].data.fd, ev});
        }
        return n;
    }

    bool edge_;
    bool have_pwait2_ = true;  // nanosecond timeouts where the kernel has epoll_pwait2
    Fd epfd_;
    std::vector<epoll_event> events_;
};

}  // namespace

std::unique_ptr<EventLoop> make_epoll_loop(bool edge_triggered) { return std::make_unique<EpollLoop>(edge_triggered); }

}  // namespace muxkit::backend
