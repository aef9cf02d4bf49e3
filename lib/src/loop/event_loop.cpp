#include "muxkit/event_loop.hpp"

#include <cerrno>
#include <sys/select.h>

#include <fmt/format.h>

#include "loop/backend/backends.hpp"
#include "muxkit/clock.hpp"
#include "muxkit/error.hpp"

namespace muxkit {

namespace {
constexpr std::uint32_t kWatchedBit = 1u << 31;  // marks a watched fd whose interest may be 0
}

std::unique_ptr<EventLoop> EventLoop::create(Model model) {
    switch (model) {
    case Model::select: return backend::make_select_loop();
    case Model::poll: return backend::make_poll_loop();
    case Model::epoll: return backend::make_epoll_loop(false);
    case Model::epoll_et: return backend::make_epoll_loop(true);
    case Model::io_uring:
    case Model::fork: break;
    }
    throw UsageError(fmt::format("the {} model has no readiness event loop", model_name(model)));
}

bool EventLoop::can_watch(int fd) const noexcept {
    return fd >= 0 && (model_ != Model::select || fd < FD_SETSIZE);
}

bool EventLoop::watching(int fd) const noexcept {
    return fd >= 0 && static_cast<std::size_t>(fd) < interest_.size() && (interest_[fd] & kWatchedBit);
}

std::uint32_t EventLoop::interest(int fd) const noexcept {
    return watching(fd) ? (interest_[fd] & ~kWatchedBit) : 0;
}

void EventLoop::add(int fd, std::uint32_t interest) {
    if (fd < 0) throw RuntimeError(fmt::format("cannot watch descriptor {}: invalid", fd));
    if (!can_watch(fd))
        throw RuntimeError(fmt::format("cannot watch descriptor {} with select: at or past FD_SETSIZE ({})", fd,
                                       FD_SETSIZE));
    if (watching(fd)) throw RuntimeError(fmt::format("descriptor {} is already watched", fd));
    interest &= kReadable | kWritable | kException;
    backend_add(fd, interest);
    if (static_cast<std::size_t>(fd) >= interest_.size()) interest_.resize(static_cast<std::size_t>(fd) + 1, 0);
    interest_[fd] = interest | kWatchedBit;
    ++count_;
}

void EventLoop::modify(int fd, std::uint32_t interest) {
    if (!watching(fd)) throw RuntimeError(fmt::format("descriptor {} is not watched", fd));
    interest &= kReadable | kWritable | kException;
    if ((interest_[fd] & ~kWatchedBit) == interest) return;
    backend_modify(fd, interest);
    interest_[fd] = interest | kWatchedBit;
}

void EventLoop::remove(int fd) {
    if (!watching(fd)) throw RuntimeError(fmt::format("descriptor {} is not watched", fd));
    backend_remove(fd);
    interest_[fd] = 0;
    --count_;
}

std::span<const Event> EventLoop::wait(std::optional<std::int64_t> deadline_ns) {
    for (;;) {
        std::int64_t timeout = -1;
        if (deadline_ns) timeout = std::max<std::int64_t>(0, *deadline_ns - now_ns());
        ready_.clear();
        int rc = backend_wait(timeout, ready_);
        if (rc >= 0) return {ready_.data(), ready_.size()};
        if (errno != EINTR) throw_errno(fmt::format("{} wait", model_name(model_)));
    }
}

}  // namespace muxkit
