// What multi-connect and merge report alike: a load's counts (LoadStats) in the multi-connect
// summary shape, its check against --max-failures and --max-p99, and the percentile
// distribution.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <muxkit/multi_connect.hpp>
#include <muxkit/report.hpp>

#include "cli.hpp"

namespace muxkit::cli {

LoadMode parse_mode(const std::string& name);  // throws UsageError
double per_second(std::uint64_t n, double seconds);
// p50, p90, p99 (p999), max, mean in microseconds and samples; null values when empty.
Json latency_json(const Histogram& h, bool with_p999);

struct LoadCheck {
    std::uint64_t max_failures = 0;
    std::optional<Duration> max_p99;
    bool allow_interrupt = false;
    std::optional<double> max_loss_percent;  // UDP: lost datagrams tolerated, as a share of those sent
    std::optional<double> rate;              // --rate asked (one run's, not a merge's)
    std::optional<double> schedule_s;        // --duration: the time the rate was asked for
    double min_rate_share = 0.9;             // --min-rate-share: of --rate, what the run must reach
};
// With --rate: what the run reached of it (messages sent, or connects made, per second over the
// run, divided by the rate asked); none without a rate.
// Over --duration when given (a loop's wake-up past the end, or a thread started late, is not time
// the rate was asked for), else over the run.
std::optional<double> rate_share(const LoadStats& s, LoadMode mode, std::optional<double> rate, std::optional<double> schedule_s);
// The check object (passed, failures, p99 against --max-p99, every reason it failed).
Json check_json(const LoadStats& s, LoadMode mode, const LoadCheck& check);

// Target, mode and model name what ran; settings are the caller's.
struct LoadHead {
    Json target, model, settings;
    LoadMode mode = LoadMode::echo;
    bool datagram = false;       // a udp: target
    std::optional<double> rate;  // --rate asked, for throughput.rate_share (one run's, not a merge's)
    std::optional<double> schedule_s;  // --duration
};
// The summary in the multi-connect shape; keys the mode cannot fill are null. With histograms
// (the JSON output, which merge reads), each whole-run histogram encoded.
Json load_summary_json(const LoadStats& s, const LoadHead& head, const Json& check, bool with_histograms);

// --percentiles: the .hgrm distribution (microseconds) of what --max-p99 checks in this mode.
std::string percentiles_text(const LoadStats& s, LoadMode mode);
Json percentiles_json(const LoadStats& s, LoadMode mode);

}  // namespace muxkit::cli
