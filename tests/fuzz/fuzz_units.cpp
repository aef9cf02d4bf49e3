// Sizes, durations, counts, rates and size lists: a value or a UsageError, never anything else.
#include <string>

#include <muxkit/error.hpp>
#include <muxkit/units.hpp>

#include "fuzz_target.hpp"

MUXKIT_FUZZ_TARGET(units) {
    try {
        std::uint64_t n = muxkit::parse_size(input);
        FUZZ_CHECK(muxkit::parse_size(std::to_string(n)) == n);
    } catch (const muxkit::UsageError&) {
    }
    try {
        auto d = muxkit::parse_duration(input);
        FUZZ_CHECK(d.count() >= 0);
    } catch (const muxkit::UsageError&) {
    }
    try {
        std::uint64_t c = muxkit::parse_count(input, "count", 1, 1000);
        FUZZ_CHECK(c >= 1 && c <= 1000);
    } catch (const muxkit::UsageError&) {
    }
    try {
        double r = muxkit::parse_rate(input, "rate");
        FUZZ_CHECK(r > 0);
    } catch (const muxkit::UsageError&) {
    }
    try {
        auto v = muxkit::parse_size_list(input);
        FUZZ_CHECK(!v.empty());
    } catch (const muxkit::UsageError&) {
    }
}
