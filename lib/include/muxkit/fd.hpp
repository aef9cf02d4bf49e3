// Fd: the move-only owner of a file descriptor, and the only place that closes one (but for the
// signal pipe, whose ends signal handlers use as plain ints: signals.cpp closes those).
#pragma once

#include <cstdint>
#include <utility>

namespace muxkit {

class Fd {
public:
    Fd() noexcept = default;
    explicit Fd(int fd) noexcept : fd_(fd) {}
    Fd(Fd&& other) noexcept : fd_(other.release()) {}
    Fd& operator=(Fd&& other) noexcept {
        if (this != &other) reset(other.release());
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }

    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    int release() noexcept { return std::exchange(fd_, -1); }
    void reset(int fd = -1) noexcept;

private:
    int fd_ = -1;
};

void set_nonblocking(int fd, bool on = true);

// /dev/null, close-on-exec, opened with O_RDONLY or O_WRONLY; an empty Fd (errno set) on failure.
Fd open_dev_null(bool for_writing = false) noexcept;

// Raises the soft RLIMIT_NOFILE towards wanted (never past the hard limit); returns the soft limit now in force.
std::uint64_t raise_fd_limit(std::uint64_t wanted) noexcept;

}  // namespace muxkit
