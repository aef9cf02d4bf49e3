// The backends behind EventLoop (private to the library).
#pragma once

#include <memory>

#include "muxkit/event_loop.hpp"

namespace muxkit::backend {

std::unique_ptr<EventLoop> make_select_loop();
std::unique_ptr<EventLoop> make_poll_loop();
std::unique_ptr<EventLoop> make_epoll_loop(bool edge_triggered);

}  // namespace muxkit::backend
