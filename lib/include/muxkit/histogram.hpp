// Histogram: HdrHistogram's layout at 3 significant digits (relative error below 1/1000) for
// values from 1 to kHighest (an hour in nanoseconds; larger values count in the top bucket), with
// exact count, min, max and mean, no allocation per recorded value, and HdrHistogram's V2
// compressed encoding, so its counts export exactly to HdrHistogram's tools and merge across
// hosts. The counts take 264 KiB, allocated on the first record (an empty one costs nothing).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace muxkit {

class Histogram {
public:
    static constexpr int kSignificantDigits = 3;
    static constexpr std::uint64_t kHighest = 3'600'000'000'000;  // 1 h in ns

    void record(std::uint64_t value) noexcept {
        if (counts_.empty()) allocate();
        ++counts_[index_of(value < kHighest ? value : kHighest)];
        ++count_;
        sum_ += static_cast<double>(value);
        if (value < min_) min_ = value;
        if (value > max_) max_ = value;
    }
    void merge(const Histogram& other);

    std::uint64_t count() const noexcept { return count_; }
    std::uint64_t min() const noexcept { return count_ ? min_ : 0; }
    std::uint64_t max() const noexcept { return max_; }
    double mean() const noexcept { return count_ ? sum_ / static_cast<double>(count_) : 0.0; }
    double stddev() const noexcept;  // from the buckets' middle values, as HdrHistogram computes it
    // HdrHistogram's value at a percentile: the highest value equivalent to the one at nearest rank
    // ceil(p/100 * count), kept within [min, max]; 0 when empty.
    std::uint64_t percentile(double p) const noexcept;

    // The V2 compressed encoding (big-endian header, ZigZag LEB128 counts with runs of zeros, zlib),
    // in base64, as HdrHistogram's encodeIntoCompressedByteBuffer writes it.
    std::string encode() const;
    // The reverse; throws DecodeError when the text is not such a histogram or was recorded with
    // another layout (precision, lowest value, range). Min, max and mean are then the buckets'
    // (within the precision) unless restored with set_exact().
    static Histogram decode(std::string_view base64);
    void set_exact(std::uint64_t min, std::uint64_t max, double mean) noexcept;

    // HdrHistogram's percentile iteration: rows at 0%, then closer and closer to 100% (ticks per
    // half distance), each at the highest value equivalent to the one that reaches it, then 100%.
    struct PercentileRow {
        std::uint64_t value;
        double percentile;  // 0 to 100
        std::uint64_t total_count;
    };
    std::vector<PercentileRow> percentile_rows(int ticks_per_half_distance = 5) const;
    // Those rows in HdrHistogram's .hgrm text (Value, Percentile, TotalCount, 1/(1-Percentile),
    // then Mean, Max and Total count), values divided by unit_ratio.
    std::string percentile_distribution(double unit_ratio, int ticks_per_half_distance = 5) const;

    class DecodeError : public std::runtime_error {
    public:
        using std::runtime_error::runtime_error;
    };

    static constexpr int kSubBucketHalfMagnitude = 10;                 // 2048 sub-buckets: 2 x 10^3 values exact
    static constexpr int kSubBucketHalf = 1 << kSubBucketHalfMagnitude;
    static constexpr int kSubBucketCount = 2 * kSubBucketHalf;
    static constexpr int kBucketCount = 32;                            // enough for kHighest
    static constexpr std::size_t kCounts = (kBucketCount + 1) * kSubBucketHalf;

    static int index_of(std::uint64_t value) noexcept {
        const int bucket = 53 - __builtin_clzll(value | (kSubBucketCount - 1));  // 64 - magnitude - 1
        return ((bucket + 1) << kSubBucketHalfMagnitude) + static_cast<int>(value >> bucket) - kSubBucketHalf;
    }
    static std::uint64_t lowest_of(std::size_t index) noexcept;
    static std::uint64_t highest_of(std::size_t index) noexcept;

private:
    void allocate();

    std::vector<std::uint64_t> counts_;  // empty until the first value
    std::uint64_t count_ = 0, min_ = UINT64_MAX, max_ = 0;
    double sum_ = 0;
};

}  // namespace muxkit
