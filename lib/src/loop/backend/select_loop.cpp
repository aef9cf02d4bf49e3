// select(2) backend: three fd_sets and the list of watched descriptors.
#include <algorithm>
#include <sys/select.h>

#include "loop/backend/backends.hpp"

namespace muxkit::backend {

namespace {

class SelectLoop final : public EventLoop {
public:
    SelectLoop() : EventLoop(Model::select) {
        FD_ZERO(&read_);
        FD_ZERO(&write_);
        FD_ZERO(&except_);
    }

private:
    void backend_add(int fd, std::uint32_t interest) override {
        fds_.push_back(fd);
        set(fd, interest);
    }
    void backend_modify(int fd, std::uint32_t interest) override { set(fd, interest); }
    void backend_remove(int fd) override {
        set(fd, 0);
        auto it = std::find(fds_.begin(), fds_.end(), fd);
        *it = fds_.back();
        fds_.pop_back();
    }
    int backend_wait(std::int64_t timeout_ns, std::vector<Event>& out) override {
        int max_fd = -1;
        for (int fd : fds_) max_fd = std::max(max_fd, fd);
        fd_set r = read_, w = write_, x = except_;
        timeval tv{};
        timeval* ptv = nullptr;
        if (timeout_ns >= 0) {
            // Round up so a wait never ends before its deadline (no busy loop near it).
            std::int64_t us = (timeout_ns + 999) / 1000;
            tv.tv_sec = us / 1'000'000;
            tv.tv_usec = us % 1'000'000;
            ptv = &tv;
        }
        int n = ::select(max_fd + 1, &r, &w, &x, ptv);
        if (n <= 0) return n;
        for (int fd : fds_) {
            std::uint32_t ev = 0;
            if (FD_ISSET(fd, &r)) ev |= kReadable;
            if (FD_ISSET(fd, &w)) ev |= kWritable;
            if (FD_ISSET(fd, &x)) ev |= kException;
            if (ev) out.push_back({fd, ev});
        }
        return n;
    }

    void set(int fd, std::uint32_t interest) {
        if (interest & kReadable) FD_SET(fd, &read_); else FD_CLR(fd, &read_);
        if (interest & kWritable) FD_SET(fd, &write_); else FD_CLR(fd, &write_);
        if (interest & kException) FD_SET(fd, &except_); else FD_CLR(fd, &except_);
    }

    fd_set read_, write_, except_;
    std::vector<int> fds_;
};

}  // namespace

std::unique_ptr<EventLoop> make_select_loop() { return std::make_unique<SelectLoop>(); }

}  // namespace muxkit::backend
