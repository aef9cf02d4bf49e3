// poll(2) backend: a dense pollfd array with an fd -> slot index.
#include <poll.h>

#include "loop/backend/backends.hpp"

namespace muxkit::backend {

namespace {

short to_poll(std::uint32_t interest) {
    short ev = 0;
    if (interest & kReadable) ev |= POLLIN;
    if (interest & kWritable) ev |= POLLOUT;
    if (interest & kException) ev |= POLLPRI;
    return ev;
}

class PollLoop final : public EventLoop {
public:
    PollLoop() : EventLoop(Model::poll) {}

private:
    void backend_add(int fd, std::uint32_t interest) override {
        if (static_cast<std::size_t>(fd) >= slot_.size()) slot_.resize(static_cast<std::size_t>(fd) + 1, -1);
        slot_[fd] = static_cast<int>(pfds_.size());
        pfds_.push_back({fd, to_poll(interest), 0});
    }
    void backend_modify(int fd, std::uint32_t interest) override { pfds_[slot_[fd]].events = to_poll(interest); }
    void backend_remove(int fd) override {
        int s = slot_[fd];
        pfds_[s] = pfds_.back();
        slot_[pfds_[s].fd] = s;
        pfds_.pop_back();
        slot_[fd] = -1;
    }
    int backend_wait(std::int64_t timeout_ns, std::vector<Event>& out) override {
        timespec ts{};
        int n = ::ppoll(pfds_.data(), pfds_.size(), to_timespec(timeout_ns, ts), nullptr);
        if (n <= 0) return n;
        for (const auto& p : pfds_) {
            if (!p.revents) continue;
            std::uint32_t ev = 0;
            if (p.revents & POLLIN) ev |= kReadable;
            if (p.revents & POLLOUT) ev |= kWritable;
            if (p.revents & POLLPRI) ev |= kException;
            if (p.revents & POLLHUP) ev |= kHangup;
            if (p.revents & (POLLERR | POLLNVAL)) ev |= kError;
            out.push_back({p.fd, ev});
        }
        return n;
    }

    std::vector<pollfd> pfds_;
    std::vector<int> slot_;
};

}  // namespace

std::unique_ptr<EventLoop> make_poll_loop() { return std::make_unique<PollLoop>(); }

}  // namespace muxkit::backend
