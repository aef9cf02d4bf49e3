#include "uring/ring.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <sys/mman.h>

#include <fmt/format.h>

#include "muxkit/clock.hpp"
#include "muxkit/error.hpp"

namespace muxkit::detail {

namespace {

constexpr unsigned kEntries = 4096;

int setup_ring(io_uring& ring) {
    io_uring_params p{};
    p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SINGLE_ISSUER |
              IORING_SETUP_DEFER_TASKRUN;
    p.cq_entries = kEntries * 4;
    int rc = io_uring_queue_init_params(kEntries, &ring, &p);
    if (rc == -EINVAL) {  // a kernel older than 6.1 does not know every flag
        p = {};
        p.flags = IORING_SETUP_CQSIZE;
        p.cq_entries = kEntries * 4;
        rc = io_uring_queue_init_params(kEntries, &ring, &p);
    }
    return rc;
}

[[noreturn]] void unavailable(const char* step, int err) {
    throw RuntimeError(fmt::format("the io_uring model is not available here: {} failed: {} ({}); it needs Linux 5.19 or later "
                                   "with io_uring enabled (sysctl kernel.io_uring_disabled=0, no seccomp filter); the epoll model works everywhere",
                                   step, std::strerror(err), errno_name(err)));
}

}  // namespace

Ring::Ring() {
    if (int rc = setup_ring(ring_); rc < 0) unavailable("io_uring_setup", -rc);
}

Ring::~Ring() { io_uring_queue_exit(&ring_); }

io_uring_sqe* Ring::sqe() {
    io_uring_sqe* s = io_uring_get_sqe(&ring_);
    if (!s) {  // the submission queue is full: hand it to the kernel and go on
        io_uring_submit(&ring_);
        s = io_uring_get_sqe(&ring_);
    }
    return s;
}

void Ring::submit_and_wait(std::optional<std::int64_t> deadline_ns) {
    io_uring_cqe* cqe = nullptr;
    __kernel_timespec ts{};
    if (deadline_ns) {
        const std::int64_t left = std::max<std::int64_t>(0, *deadline_ns - now_ns());
        ts.tv_sec = left / 1'000'000'000;
        ts.tv_nsec = left % 1'000'000'000;
    }
    int rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, deadline_ns ? &ts : nullptr, nullptr);
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) throw SystemError(-rc, "io_uring_enter");
}

void Ring::cancel_all() {
    io_uring_sqe* s = sqe();
    io_uring_prep_cancel64(s, 0, IORING_ASYNC_CANCEL_ANY);
    io_uring_sqe_set_data64(s, 0);
    bool cancel_done = false;
    for (int i = 0; i < 10 && !cancel_done; ++i) {
        submit_and_wait(now_ns() + 10'000'000);
        reap([&](std::uint64_t data, int, unsigned) { cancel_done = cancel_done || data == 0; });
    }
    submit_and_wait(now_ns());  // and what the cancelled operations completed with
    reap([](std::uint64_t, int, unsigned) {});
}

BufferRing::BufferRing(Ring& ring, unsigned count, unsigned size, int group) : count_(count), size_(size), group_(group) {
    const std::size_t ring_bytes = static_cast<std::size_t>(count_) * sizeof(io_uring_buf);
    void* mem = ::mmap(nullptr, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED) throw SystemError(errno, "cannot map the io_uring buffer ring");
    ring_ = static_cast<io_uring_buf_ring*>(mem);
    // Touched only when used: a page is only resident once the kernel received into it.
    void* bufs = ::mmap(nullptr, static_cast<std::size_t>(count_) * size_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (bufs == MAP_FAILED) {
        int err = errno;
        ::munmap(ring_, ring_bytes);
        throw SystemError(err, "cannot map the io_uring buffers");
    }
    base_ = static_cast<char*>(bufs);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uint64_t>(mem);
    reg.ring_entries = count_;
    reg.bgid = static_cast<std::uint16_t>(group_);
    if (int rc = io_uring_register_buf_ring(ring.get(), &reg, 0); rc < 0) {
        ::munmap(ring_, ring_bytes);
        ::munmap(base_, static_cast<std::size_t>(count_) * size_);
        unavailable("registering a provided-buffer ring", -rc);
    }
    io_uring_buf_ring_init(ring_);
    in_use_ = count_;
    for (unsigned i = 0; i < count_; ++i) give_back(static_cast<int>(i));
    publish();
}

// The ring is unregistered when the io_uring itself goes (it is destroyed after this).
BufferRing::~BufferRing() {
    ::munmap(ring_, static_cast<std::size_t>(count_) * sizeof(io_uring_buf));
    ::munmap(base_, static_cast<std::size_t>(count_) * size_);
}

void BufferRing::give_back(int bid) noexcept {
    --in_use_;
    io_uring_buf_ring_add(ring_, buffer(bid), size_, static_cast<unsigned short>(bid), io_uring_buf_ring_mask(count_), returned_++);
}

void BufferRing::publish() noexcept {
    if (!returned_) return;
    io_uring_buf_ring_advance(ring_, returned_);
    returned_ = 0;
}

// A ring of two entries: enough to learn whether io_uring_setup is allowed, at little cost.
void check_uring_available() {
    io_uring probe{};
    if (int rc = io_uring_queue_init(2, &probe, 0); rc < 0) unavailable("io_uring_setup", -rc);
    io_uring_queue_exit(&probe);
}

bool uring_singleshot_forced() {
    const char* v = std::getenv("MUXKIT_URING_SINGLESHOT");
    return v && *v && std::strcmp(v, "0") != 0;
}

}  // namespace muxkit::detail
