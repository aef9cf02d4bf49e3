#define BOOST_TEST_MODULE histogram
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <random>

#include <muxkit/histogram.hpp>

using muxkit::Histogram;

namespace {
std::uint64_t exact_percentile(std::vector<std::uint64_t> v, double p) {
    std::sort(v.begin(), v.end());
    auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
    rank = std::clamp<std::size_t>(rank, 1, v.size());
    return v[rank - 1];
}
}  // namespace

BOOST_AUTO_TEST_CASE(empty_histogram_reports_zero) {
    Histogram h;
    BOOST_TEST(h.count() == 0u);
    BOOST_TEST(h.percentile(99) == 0u);
    BOOST_TEST(h.min() == 0u);
    BOOST_TEST(h.max() == 0u);
    BOOST_TEST(h.mean() == 0.0);
}

BOOST_AUTO_TEST_CASE(small_values_are_exact) {
    Histogram h;
    for (std::uint64_t v = 1; v <= 100; ++v) h.record(v);
    BOOST_TEST(h.percentile(50) == 50u);
    BOOST_TEST(h.percentile(99) == 99u);
    BOOST_TEST(h.percentile(100) == 100u);
    BOOST_TEST(h.min() == 1u);
    BOOST_TEST(h.max() == 100u);
    BOOST_TEST(h.mean() == 50.5);
}

BOOST_AUTO_TEST_CASE(percentiles_of_random_samples_within_relative_error) {
    std::mt19937_64 rng(42);
    for (int round = 0; round < 5; ++round) {
        std::lognormal_distribution<double> dist(10.0 + round, 1.5);
        std::vector<std::uint64_t> samples;
        Histogram h;
        for (int i = 0; i < 20000; ++i) {
            auto v = static_cast<std::uint64_t>(dist(rng));
            samples.push_back(v);
            h.record(v);
        }
        for (double p : {1.0, 50.0, 90.0, 99.0, 99.9, 100.0}) {
            double exact = static_cast<double>(exact_percentile(samples, p));
            double got = static_cast<double>(h.percentile(p));
            BOOST_TEST(std::abs(got - exact) <= exact / 128.0 + 1.0, "p" << p << " exact " << exact << " got " << got);
        }
        BOOST_TEST(h.max() == *std::max_element(samples.begin(), samples.end()));
        BOOST_TEST(h.min() == *std::min_element(samples.begin(), samples.end()));
    }
}

BOOST_AUTO_TEST_CASE(percentiles_never_decrease_and_stay_within_min_max) {
    std::mt19937_64 rng(7);
    Histogram h;
    for (int i = 0; i < 5000; ++i) h.record(rng() % 1'000'000'000);
    std::uint64_t prev = 0;
    for (double p = 0; p <= 100; p += 0.5) {
        auto v = h.percentile(p);
        BOOST_TEST(v >= prev);
        BOOST_TEST(v >= h.min());
        BOOST_TEST(v <= h.max());
        prev = v;
    }
}

BOOST_AUTO_TEST_CASE(merge_equals_recording_everything_in_one) {
    std::mt19937_64 rng(9);
    Histogram a, b, all;
    for (int i = 0; i < 3000; ++i) {
        std::uint64_t v = rng() % 10'000'000;
        (i % 2 ? a : b).record(v);
        all.record(v);
    }
    a.merge(b);
    BOOST_TEST(a.count() == all.count());
    BOOST_TEST(a.min() == all.min());
    BOOST_TEST(a.max() == all.max());
    for (double p : {50.0, 90.0, 99.0, 99.9}) BOOST_TEST(a.percentile(p) == all.percentile(p));
}

BOOST_AUTO_TEST_CASE(huge_values_do_not_overflow) {
    Histogram h;
    h.record(UINT64_MAX);
    h.record(0);
    BOOST_TEST(h.max() == UINT64_MAX);
    BOOST_TEST(h.percentile(100) <= UINT64_MAX);
    BOOST_TEST(h.percentile(100) >= UINT64_MAX - UINT64_MAX / 64);
}
