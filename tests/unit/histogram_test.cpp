#define BOOST_TEST_MODULE histogram
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <random>

#include <muxkit/histogram.hpp>

using muxkit::Histogram;

namespace {
// Nearest rank ceil(p/100 * n), with 99.9% of 20000 the 19980th value (not the 19981st that
// floating point rounding would give).
std::uint64_t exact_percentile(std::vector<std::uint64_t> v, double p) {
    std::sort(v.begin(), v.end());
    auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(v.size()) / 100.0 - 1e-9));
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
            BOOST_TEST(std::abs(got - exact) <= exact / 1000.0 + 1.0, "p" << p << " exact " << exact << " got " << got);
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

BOOST_AUTO_TEST_CASE(values_past_an_hour_count_in_the_top_bucket) {
    Histogram h;
    h.record(UINT64_MAX);
    h.record(0);
    BOOST_TEST(h.count() == 2u);
    BOOST_TEST(h.max() == UINT64_MAX);  // exact
    BOOST_TEST(h.percentile(100) >= Histogram::kHighest - Histogram::kHighest / 1000);
    BOOST_TEST(h.percentile(100) <= Histogram::kHighest + Histogram::kHighest / 1000);
}

// HdrHistogram's layout at 3 significant digits: every value below 2048 has a bucket of its own,
// and a bucket is never wider than 1/1024 of its lowest value.
BOOST_AUTO_TEST_CASE(layout_is_hdrhistograms_at_three_digits) {
    for (std::uint64_t v : {0ull, 1ull, 2047ull}) BOOST_TEST(Histogram::lowest_of(Histogram::index_of(v)) == v);
    BOOST_TEST(Histogram::index_of(2048) == 2048);
    BOOST_TEST(Histogram::index_of(2049) == 2048);  // two values a bucket from 2048 on
    BOOST_TEST(Histogram::index_of(4096) == 3072);
    BOOST_TEST(static_cast<std::size_t>(Histogram::index_of(Histogram::kHighest)) < Histogram::kCounts);
    for (std::uint64_t v = 1; v < Histogram::kHighest; v = v * 3 + 1) {
        const auto i = static_cast<std::size_t>(Histogram::index_of(v));
        BOOST_TEST(Histogram::lowest_of(i) <= v);
        BOOST_TEST(Histogram::highest_of(i) >= v);
        BOOST_TEST(static_cast<double>(Histogram::highest_of(i) - Histogram::lowest_of(i)) <= static_cast<double>(v) / 1024.0);
    }
}

BOOST_AUTO_TEST_CASE(encoding_round_trips_every_count) {
    std::mt19937_64 rng(11);
    std::lognormal_distribution<double> dist(11.0, 2.0);
    Histogram h;
    for (int i = 0; i < 50000; ++i) h.record(static_cast<std::uint64_t>(dist(rng)));
    const std::string text = h.encode();
    BOOST_TEST(text.starts_with("HISTF"));  // the cookie 0x1c849314, as every HdrHistogram log shows it
    Histogram back = Histogram::decode(text);
    BOOST_TEST(back.count() == h.count());
    for (double p : {0.0, 10.0, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0}) {
        // The same buckets: equal wherever the exact min and max do not clamp the answer.
        const double a = static_cast<double>(h.percentile(p)), b = static_cast<double>(back.percentile(p));
        BOOST_TEST(std::abs(a - b) <= a / 1000.0 + 1.0, "p" << p);
    }
    back.set_exact(h.min(), h.max(), h.mean());
    for (double p : {1.0, 50.0, 99.0, 99.9, 100.0}) BOOST_TEST(back.percentile(p) == h.percentile(p));
    BOOST_TEST(back.encode() == text);
    // An empty histogram too.
    Histogram empty;
    BOOST_TEST(Histogram::decode(empty.encode()).count() == 0u);
}

BOOST_AUTO_TEST_CASE(decoding_refuses_what_is_not_a_histogram_of_this_layout) {
    Histogram h;
    h.record(1234);
    const std::string good = h.encode();
    for (const std::string& bad : {std::string(), std::string("HISTF"), std::string("!!!!"), good.substr(0, good.size() - 8),
                                   std::string("aGVsbG8gd29ybGQh")})
        BOOST_CHECK_THROW(Histogram::decode(bad), Histogram::DecodeError);
}

BOOST_AUTO_TEST_CASE(percentile_distribution_is_hgrm_text) {
    Histogram h;
    for (std::uint64_t v = 1; v <= 1000; ++v) h.record(v);  // below 2048: every value exact
    const std::string text = h.percentile_distribution(1.0);
    BOOST_TEST(text.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)\n\n"));
    BOOST_TEST(text.find("     500.000 0.500000000000        500           2.00\n") != std::string::npos, text);
    BOOST_TEST(text.find("    1000.000 1.000000000000       1000\n") != std::string::npos, text);
    BOOST_TEST(text.find("#[Max     =     1000.000, Total count    =         1000]") != std::string::npos, text);
    BOOST_TEST(text.find("#[Buckets =           32, SubBuckets     =         2048]") != std::string::npos, text);
}
