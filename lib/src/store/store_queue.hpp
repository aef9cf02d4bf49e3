// StoreQueue: store records that found the pipe full, kept for the multiplexed echo server until
// there is room (private to the library).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace muxkit::detail {

// Records waiting for room in the store pipe: written in order, each in one write (atomic).
class StoreQueue {
public:
    bool empty() const noexcept { return head_ == lens_.size(); }
    std::size_t pending() const noexcept { return pending_; }
    void push(const char* p, std::size_t n);
    // Writes whole records until the pipe is full; returns 0, or the errno that stopped it.
    int flush(int fd);

private:
    std::vector<char> bytes_;
    std::vector<std::uint32_t> lens_;
    std::size_t head_ = 0, off_ = 0, pending_ = 0;
};

}  // namespace muxkit::detail
