// Pipe scenarios (pipe-test): experiments with real processes and pipes that show what a pipe guarantees and
// measure how fast it is. Each scenario returns one row: name, verdict and what it measured.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "muxkit/report.hpp"
#include "muxkit/units.hpp"

namespace muxkit {

enum class Verdict { pass, fail, info };
std::string_view verdict_name(Verdict v) noexcept;

struct PipeTestConfig {
    std::vector<std::uint64_t> sizes = {4096, 65536, 1048576};  // throughput block sizes
    std::uint64_t bytes = 256ull * 1024 * 1024;                 // throughput work per size
    std::optional<Duration> duration;                            // instead of bytes
    std::uint64_t iterations = 0;                                // 0: each scenario's default
    std::optional<std::uint64_t> pipe_size;                      // F_SETPIPE_SZ on every pipe first
    bool splice = false;
};

struct ScenarioResult {
    std::string name;
    Verdict verdict = Verdict::info;
    Json measured = Json::object();
};

// Every scenario name, in order; the default set is all but throughput and latency.
const std::vector<std::string>& scenario_names();
const std::vector<std::string>& default_scenarios();
// Parses "one-way,eof" or several words; throws UsageError naming an unknown scenario.
std::vector<std::string> parse_scenarios(const std::vector<std::string>& words);

// Runs one scenario; throughput gives one row per block size and method.
std::vector<ScenarioResult> run_scenario(const std::string& name, const PipeTestConfig& config);

}  // namespace muxkit
