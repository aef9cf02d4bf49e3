// The monotonic clock every deadline and measurement uses (never the wall clock).
#pragma once

#include <cstdint>
#include <ctime>

namespace muxkit {

// Nanoseconds on CLOCK_MONOTONIC; a vDSO call, no system call.
inline std::int64_t now_ns() noexcept {
    timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Seconds since the Unix epoch, for records that name a moment (store records).
inline double wall_seconds() noexcept {
    timespec ts;
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

}  // namespace muxkit
