// The pipe scenarios as one table (name, in the default set, how to run it), and running one.
#include "muxkit/pipe_test.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "muxkit/error.hpp"
#include "muxkit/report.hpp"
#include "muxkit/units.hpp"
#include "pipe_test/common.hpp"

namespace muxkit {

namespace {

using Run = std::vector<ScenarioResult> (*)(const PipeTestConfig&);
template <ScenarioResult (*F)(const PipeTestConfig&)>
std::vector<ScenarioResult> one(const PipeTestConfig& cfg) {
    return {F(cfg)};
}

struct Scenario {
    const char* name;
    bool by_default;  // the measurements take longer and are asked for by name
    Run run;
};

constexpr Scenario kScenarios[] = {
    {"one-way", true, one<detail::one_way>},
    {"shared-duplex", true, one<detail::shared_duplex>},
    {"duplex", true, one<detail::duplex>},
    {"capacity", true, one<detail::capacity>},
    {"atomicity", true, one<detail::atomicity>},
    {"eof", true, one<detail::eof>},
    {"epipe", true, one<detail::epipe>},
    {"nonblock", true, one<detail::nonblock>},
    {"select", true, one<detail::select_scenario>},
    {"fifo", true, one<detail::fifo>},
    {"throughput", false, detail::throughput},
    {"latency", false, one<detail::latency>},
};

}  // namespace


std::string_view verdict_name(Verdict v) noexcept {
    switch (v) {
    case Verdict::pass: return "pass";
    case Verdict::fail: return "fail";
    case Verdict::info: return "info";
    }
    return "?";
}

const std::vector<std::string>& scenario_names() {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> v;
        for (const Scenario& s : kScenarios) v.emplace_back(s.name);
        return v;
    }();
    return names;
}

const std::vector<std::string>& default_scenarios() {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> v;
        for (const Scenario& s : kScenarios)
            if (s.by_default) v.emplace_back(s.name);
        return v;
    }();
    return names;
}

std::vector<std::string> parse_scenarios(const std::vector<std::string>& words) {
    std::vector<std::string> out;
    for (const auto& word : words) {
        for (auto item : split_list(word)) {
            std::string name(item);
            if (name.empty()) continue;
            if (name == "all") {
                out.insert(out.end(), scenario_names().begin(), scenario_names().end());
                continue;
            }
            if (std::find(scenario_names().begin(), scenario_names().end(), name) == scenario_names().end())
                throw UsageError(fmt::format("unknown scenario '{}' (known: {})", name, fmt::join(scenario_names(), ", ")));
            out.push_back(name);
        }
    }
    if (out.empty()) return default_scenarios();
    return out;
}

std::vector<ScenarioResult> run_scenario(const std::string& name, const PipeTestConfig& cfg) {
    try {
        for (const Scenario& s : kScenarios)
            if (name == s.name) return s.run(cfg);
    } catch (const std::exception& e) {
        ScenarioResult r{name, Verdict::fail};
        r.measured = {{"error", e.what()}};
        if (cfg.pipe_size) r.measured["pipe_max_size"] = environment_info()["pipe_max_size"];
        return {r};
    }
    throw UsageError(fmt::format("unknown scenario '{}'", name));
}

}  // namespace muxkit
