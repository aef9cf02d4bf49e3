// What the pipe scenarios share: the stream they send, pipes sized as asked, aligned buffers
// and the deadline of their children (private to the library).
#pragma once

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <memory>

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <fmt/format.h>

#include "muxkit/clock.hpp"
#include "muxkit/error.hpp"
#include "muxkit/event_loop.hpp"
#include "muxkit/histogram.hpp"
#include "muxkit/io.hpp"
#include "muxkit/pipe.hpp"
#include "muxkit/process.hpp"

#include "muxkit/pipe_test.hpp"

namespace muxkit::detail {

constexpr std::int64_t kChildDeadlineNs = 20'000'000'000;  // no scenario's child may take longer

inline std::int64_t child_deadline() { return now_ns() + kChildDeadlineNs; }

// The byte at offset o of the stream every correctness scenario sends: any loss, reordering or
// duplication shows up as a mismatch.
inline char stream_byte(std::uint64_t o) { return static_cast<char>((o * 131 + (o >> 12)) & 0xff); }

inline void fill_stream(std::uint64_t offset, char* dst, std::size_t len) {
    for (std::size_t i = 0; i < len; ++i) dst[i] = stream_byte(offset + i);
}

inline Pipe scenario_pipe(const PipeTestConfig& cfg, bool nonblocking = false) {
    Pipe p = make_pipe(nonblocking);
    if (cfg.pipe_size) set_pipe_capacity(p.write.get(), static_cast<int>(*cfg.pipe_size));
    return p;
}

inline std::size_t message_size(std::uint64_t i) { return static_cast<std::size_t>(1 + (i * 37) % 8000); }

// Page-aligned buffers: the copy into and out of a pipe is fastest from page boundaries.
struct AlignedBuffer {
    explicit AlignedBuffer(std::size_t n) : size(n) {
        void* p = nullptr;
        if (::posix_memalign(&p, 4096, std::max<std::size_t>(n, 1)) != 0) throw std::bad_alloc();
        data.reset(static_cast<char*>(p));
        std::memset(data.get(), 'x', n);
    }
    struct Free {
        void operator()(char* p) const { std::free(p); }
    };
    std::unique_ptr<char, Free> data;
    std::size_t size;
};

inline bool readable_within(int fd, int timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    int rc;
    do rc = ::poll(&p, 1, timeout_ms);
    while (rc < 0 && errno == EINTR);
    return rc > 0;
}

// The scenarios, by file: correctness.cpp, performance.cpp.
ScenarioResult one_way(const PipeTestConfig& cfg);
ScenarioResult duplex(const PipeTestConfig& cfg);
ScenarioResult shared_duplex(const PipeTestConfig& cfg);
ScenarioResult capacity(const PipeTestConfig& cfg);
ScenarioResult atomicity(const PipeTestConfig& cfg);
ScenarioResult eof(const PipeTestConfig& cfg);
ScenarioResult epipe(const PipeTestConfig& cfg);
ScenarioResult nonblock(const PipeTestConfig& cfg);
ScenarioResult select_scenario(const PipeTestConfig& cfg);
ScenarioResult fifo(const PipeTestConfig& cfg);
std::vector<ScenarioResult> throughput(const PipeTestConfig& cfg);
ScenarioResult latency(const PipeTestConfig& cfg);

}  // namespace muxkit::detail
