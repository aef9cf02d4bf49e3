// io_uring pieces shared by the echo server's and the load client's completion drivers: setting
// up a ring, and a ring of provided buffers that the kernel receives into (private to the library).
#pragma once

#include <cstdint>
#include <optional>

#include <liburing.h>

namespace muxkit::detail {

// What a completion's user_data carries: the operation and a descriptor or connection index.
template <class Op>
std::uint64_t uring_tag(Op op, std::uint32_t who) {
    return (static_cast<std::uint64_t>(op) << 32) | who;
}
template <class Op>
Op uring_op(std::uint64_t data) {
    return static_cast<Op>(data >> 32);
}
inline std::uint32_t uring_who(std::uint64_t data) { return static_cast<std::uint32_t>(data); }

// A ring for one thread (single issuer, task work deferred to our own waits where the kernel
// allows). Throws RuntimeError naming why io_uring is unavailable.
class Ring {
public:
    Ring();
    ~Ring();
    Ring(const Ring&) = delete;
    Ring& operator=(const Ring&) = delete;
    io_uring* get() noexcept { return &ring_; }
    io_uring_sqe* sqe();  // submits what is queued when the queue is full
    // Submits and waits for at least one completion or the deadline (monotonic ns).
    void submit_and_wait(std::optional<std::int64_t> deadline_ns);
    // Cancels every operation and waits (at most about 100 ms) for them to end, dropping their
    // completions: what they hold (descriptors, say a pipe's write end) is released on this
    // thread, before the ring goes.
    void cancel_all();
    // Calls f(user_data, res, flags) for every completion there is.
    template <class F>
    void reap(F&& f) {
        unsigned head, n = 0;
        io_uring_cqe* cqe;
        io_uring_for_each_cqe(&ring_, head, cqe) {
            f(cqe->user_data, cqe->res, cqe->flags);
            ++n;
        }
        io_uring_cq_advance(&ring_, n);
    }

private:
    io_uring ring_{};
};

// COUNT buffers of SIZE bytes (COUNT a power of two) that receives with IOSQE_BUFFER_SELECT take
// from; each is given back once its data is used.
class BufferRing {
public:
    BufferRing(Ring& ring, unsigned count, unsigned size, int group);
    ~BufferRing();
    BufferRing(const BufferRing&) = delete;
    BufferRing& operator=(const BufferRing&) = delete;
    char* buffer(int bid) const noexcept { return base_ + static_cast<std::size_t>(bid) * size_; }
    unsigned size() const noexcept { return size_; }
    unsigned count() const noexcept { return count_; }
    int group() const noexcept { return group_; }
    static int id_of(unsigned cqe_flags) noexcept { return static_cast<int>(cqe_flags >> IORING_CQE_BUFFER_SHIFT); }
    void taken() noexcept { ++in_use_; }  // a completion carried one of them
    void give_back(int bid) noexcept;     // visible to the kernel after publish()
    void publish() noexcept;
    // Every buffer is held by us: a receive that found none has to wait for a give_back.
    bool all_taken() const noexcept { return in_use_ >= count_; }

private:
    io_uring_buf_ring* ring_ = nullptr;
    char* base_ = nullptr;
    unsigned count_, size_;
    int group_;
    int returned_ = 0;
    unsigned in_use_ = 0;
};

// Throws RuntimeError when io_uring cannot be used here (old kernel, disabled, seccomp).
void check_uring_available();
// Forces single operations where multishot ones would be used, as on kernels without them (tests).
bool uring_singleshot_forced();

}  // namespace muxkit::detail
