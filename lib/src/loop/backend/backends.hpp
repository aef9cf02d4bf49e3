// The backends behind EventLoop (private to the library).
#pragma once

#include <cstdint>
#include <ctime>
#include <memory>

#include "muxkit/event_loop.hpp"

namespace muxkit::backend {

// A wait's timeout for ppoll/epoll_pwait2: nullptr (wait for ever) when timeout_ns < 0.
inline timespec* to_timespec(std::int64_t timeout_ns, timespec& ts) noexcept {
    if (timeout_ns < 0) return nullptr;
    ts.tv_sec = timeout_ns / 1'000'000'000;
    ts.tv_nsec = timeout_ns % 1'000'000'000;
    return &ts;
}

std::unique_ptr<EventLoop> make_select_loop();
std::unique_ptr<EventLoop> make_poll_loop();
std::unique_ptr<EventLoop> make_epoll_loop(bool edge_triggered);

}  // namespace muxkit::backend
