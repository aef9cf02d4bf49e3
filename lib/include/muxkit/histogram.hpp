// Histogram: log-linear buckets (the HdrHistogram idea) with at most 1/128 relative error,
// exact min, max and mean, and no allocation per recorded value.
#pragma once

#include <array>
#include <cstdint>

namespace muxkit {

class Histogram {
public:
    void record(std::uint64_t value) noexcept;
    void merge(const Histogram& other) noexcept;

    std::uint64_t count() const noexcept { return count_; }
    std::uint64_t min() const noexcept { return count_ ? min_ : 0; }
    std::uint64_t max() const noexcept { return max_; }
    double mean() const noexcept { return count_ ? sum_ / static_cast<double>(count_) : 0.0; }
    // The value at nearest rank ceil(p/100 * count), within the bucket's relative error and never
    // outside [min, max]; 0 when empty.
    std::uint64_t percentile(double p) const noexcept;

    static constexpr int kSubBits = 7;  // 128 sub-buckets: relative error below 1/128

private:
    static constexpr int kHalf = 1 << (kSubBits - 1);
    static constexpr int kBuckets = (64 - kSubBits + 1) * kHalf + kHalf * 2;
    static int index_of(std::uint64_t v) noexcept;
    static std::uint64_t lowest_of(int index) noexcept;
    static std::uint64_t width_of(int index) noexcept;

    std::array<std::uint64_t, kBuckets> counts_{};
    std::uint64_t count_ = 0, min_ = UINT64_MAX, max_ = 0;
    double sum_ = 0;
};

}  // namespace muxkit
