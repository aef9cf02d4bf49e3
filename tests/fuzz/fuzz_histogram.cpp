// Histogram: percentiles never decrease with p, stay within [min, max] and within the bucket's
// relative error of the exact value (below an hour); merging two halves equals recording everything in one.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include <muxkit/histogram.hpp>

#include "fuzz_target.hpp"

MUXKIT_FUZZ_TARGET(histogram) {
    std::vector<std::uint64_t> values;
    for (std::size_t i = 0; i + 8 <= input.size(); i += 8) {
        std::uint64_t v;
        std::memcpy(&v, input.data() + i, 8);
        values.push_back(v >> (v & 63));  // spread over every magnitude
    }
    muxkit::Histogram all, a, b;
    for (std::size_t i = 0; i < values.size(); ++i) {
        all.record(values[i]);
        (i % 2 ? a : b).record(values[i]);
    }
    a.merge(b);
    FUZZ_CHECK(a.count() == all.count() && a.min() == all.min() && a.max() == all.max());
    std::sort(values.begin(), values.end());
    std::uint64_t previous = 0;
    for (double p : {0.0, 1.0, 25.0, 50.0, 90.0, 99.0, 99.9, 100.0}) {
        std::uint64_t v = all.percentile(p);
        FUZZ_CHECK(v == a.percentile(p));
        FUZZ_CHECK(v >= previous);
        previous = v;
        if (values.empty()) continue;
        FUZZ_CHECK(v >= all.min() && v <= all.max());
        auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(values.size()) / 100.0 - 1e-9));
        double exact = static_cast<double>(values[std::clamp<std::size_t>(rank, 1, values.size()) - 1]);
        // Past an hour values count in the top bucket; below, within HdrHistogram's 3 digits.
        if (exact < static_cast<double>(muxkit::Histogram::kHighest))
            FUZZ_CHECK(std::abs(static_cast<double>(v) - exact) <= exact / 1000.0 + 1.0);
    }
}
