#include "muxkit/histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace muxkit {

// Values below 2^kSubBits have a bucket each; above, each power of two is split into kHalf
// buckets, so a bucket is at most 1/64 of its lowest value wide (error < 1/128 at its middle).
int Histogram::index_of(std::uint64_t v) noexcept {
    if (v < (1u << kSubBits)) return static_cast<int>(v);
    int shift = (63 - std::countl_zero(v)) - (kSubBits - 1);
    return shift * kHalf + static_cast<int>(v >> shift);
}

std::uint64_t Histogram::lowest_of(int index) noexcept {
    if (index < (1 << kSubBits)) return static_cast<std::uint64_t>(index);
    int shift = index / kHalf - 1;
    std::uint64_t sub = static_cast<std::uint64_t>(index - shift * kHalf);
    return sub << shift;
}

std::uint64_t Histogram::width_of(int index) noexcept {
    if (index < (1 << kSubBits)) return 1;
    return std::uint64_t{1} << (index / kHalf - 1);
}

void Histogram::record(std::uint64_t value) noexcept {
    ++counts_[index_of(value)];
    ++count_;
    sum_ += static_cast<double>(value);
    if (value < min_) min_ = value;
    if (value > max_) max_ = value;
}

void Histogram::merge(const Histogram& other) noexcept {
    for (int i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
    count_ += other.count_;
    sum_ += other.sum_;
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
}


std::uint64_t Histogram::percentile(double p) const noexcept {
    if (count_ == 0) return 0;
    p = std::clamp(p, 0.0, 100.0);
    auto rank = static_cast<std::uint64_t>(std::ceil(p / 100.0 * static_cast<double>(count_)));
    rank = std::clamp<std::uint64_t>(rank, 1, count_);
    std::uint64_t seen = 0;
    for (int i = 0; i < kBuckets; ++i) {
        seen += counts_[i];
        if (seen >= rank) {
            std::uint64_t mid = lowest_of(i) + (width_of(i) - 1) / 2;
            return std::clamp(mid, min(), max_);
        }
    }
    return max_;
}

}  // namespace muxkit
