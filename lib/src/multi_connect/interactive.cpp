// run_interactive: the line-echo client of multi-connect -i.
#include "muxkit/multi_connect.hpp"

#include <cerrno>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "muxkit/clock.hpp"
#include "muxkit/io.hpp"
#include "muxkit/signals.hpp"
#include "muxkit/socket.hpp"

namespace muxkit {

namespace {
constexpr std::size_t kChunk = 64 * 1024;
}  // namespace

InteractiveResult run_interactive(const Address& target, int in_fd, int out_fd, Duration connect_timeout,
                                  Duration reply_timeout) {
    InteractiveResult result;
    SignalPipe& signals = SignalPipe::get();
    Endpoint ep = resolve(target, false).front();
    Connected c = connect_within(ep, connect_timeout);
    result.connect_err = c.err;
    if (c.err) return result;
    const int sock = c.fd.get();
    std::vector<char> pending;  // stdin bytes the socket has not taken yet
    std::size_t pending_off = 0;
    bool in_open = true, half_closed = false;
    char buf[kChunk];
    std::int64_t last_activity = now_ns();
    while (!SignalPipe::stop_requested()) {
        if (!in_open && pending_off == pending.size() && !half_closed) {
            ::shutdown(sock, SHUT_WR);
            half_closed = true;
        }
        pollfd p[3] = {{signals.fd(), POLLIN, 0}, {sock, POLLIN, 0}, {-1, POLLIN, 0}};
        if (pending_off < pending.size()) p[1].events |= POLLOUT;
        else if (in_open) p[2].fd = in_fd;
        int timeout_ms = -1;
        if (half_closed) {
            std::int64_t left = last_activity + reply_timeout.count() - now_ns();
            if (left <= 0) break;  // the server kept the rest: not complete
            timeout_ms = static_cast<int>(left / 1'000'000) + 1;
        }
        int rc = ::poll(p, 3, timeout_ms);
        if (rc < 0) {
            if (errno == EINTR) continue;
            throw_errno("poll");
        }
        if (p[0].revents) signals.drain();
        if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            IoResult r = read_some(sock, buf, sizeof buf);
            if (r.n == 0) break;
            if (r.failed() && !r.would_block()) throw SystemError(r.err, "receive from " + ep.to_string());
            if (r.n > 0) {
                result.bytes_received += r.n;
                last_activity = now_ns();
                if (int err = write_all(out_fd, buf, static_cast<std::size_t>(r.n))) {
                    result.output_err = err;
                    break;
                }
            }
        }
        if ((p[1].revents & POLLOUT) && pending_off < pending.size()) {
            IoResult w = send_some(sock, pending.data() + pending_off, pending.size() - pending_off);
            if (w.failed() && !w.would_block()) throw SystemError(w.err, "send to " + ep.to_string());
            if (w.n > 0) {
                pending_off += static_cast<std::size_t>(w.n);
                result.bytes_sent += w.n;
            }
        }
        if (p[2].fd >= 0 && (p[2].revents & (POLLIN | POLLHUP | POLLERR))) {
            IoResult r = read_some(in_fd, buf, sizeof buf);
            if (r.n <= 0) in_open = false;
            else {
                pending.assign(buf, buf + r.n);
                pending_off = 0;
                last_activity = now_ns();
            }
        }
    }
    result.complete = !in_open && half_closed && result.bytes_received == result.bytes_sent;
    return result;
}

}  // namespace muxkit
