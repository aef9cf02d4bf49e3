// EventLoop: readiness of many descriptors through one interface, with select, poll or epoll.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "muxkit/model.hpp"

namespace muxkit {

// Interest and event bits.
enum : std::uint32_t {
    kReadable = 1u << 0,
    kWritable = 1u << 1,
    kException = 1u << 2,  // urgent data (select's exceptfds, POLLPRI)
    kHangup = 1u << 3,     // reported, never requested
    kError = 1u << 4,      // reported, never requested
};

struct Event {
    int fd;
    std::uint32_t events;
};

/// The public methods keep the bookkeeping and reject misuse (a descriptor added twice, an
/// unknown one, one that select cannot watch); backends only add, modify, remove and wait.
/// Threads: one loop belongs to one thread; nothing in it is locked. Several threads each use
/// their own loop (echo-server and multi-connect --threads).
class EventLoop {
public:
    // A readiness model (select, poll, epoll, epoll-et); throws UsageError for any other.
    static std::unique_ptr<EventLoop> create(Model model);
    virtual ~EventLoop() = default;

    Model model() const noexcept { return model_; }
    bool edge_triggered() const noexcept { return model_ == Model::epoll_et; }
    // select cannot watch a descriptor at or past FD_SETSIZE; the others can watch any.
    bool can_watch(int fd) const noexcept;

    void add(int fd, std::uint32_t interest);     // throws on a duplicate or unwatchable fd
    void modify(int fd, std::uint32_t interest);  // throws on an unknown fd; no system call if unchanged
    void remove(int fd);                          // throws on an unknown fd
    bool watching(int fd) const noexcept;
    std::uint32_t interest(int fd) const noexcept;
    std::size_t size() const noexcept { return count_; }

    // Waits until something is ready or the deadline (monotonic ns; nullopt: no deadline)
    // passes; EINTR is retried with the time that is left. The span lives until the next wait.
    std::span<const Event> wait(std::optional<std::int64_t> deadline_ns);

protected:
    explicit EventLoop(Model model) : model_(model) {}
    virtual void backend_add(int fd, std::uint32_t interest) = 0;
    virtual void backend_modify(int fd, std::uint32_t interest) = 0;
    virtual void backend_remove(int fd) = 0;
    // Returns -1 with errno set on failure; timeout_ns < 0 waits forever.
    virtual int backend_wait(std::int64_t timeout_ns, std::vector<Event>& out) = 0;

private:
    Model model_;
    std::vector<std::uint32_t> interest_;  // by fd; 0 = not watched
    std::vector<Event> ready_;
    std::size_t count_ = 0;
};

}  // namespace muxkit
