// muxkit pipe-test: options in, the library's pipe experiments, one row per scenario out.
#include <fmt/color.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <muxkit/error.hpp>
#include <muxkit/pipe.hpp>
#include <muxkit/pipe_test.hpp>
#include <muxkit/units.hpp>

#include "cli.hpp"

namespace muxkit::cli {

namespace {

struct PipeTestOptions {
    std::vector<std::string> scenarios;
    std::string sizes = "4K,64K,1M", bytes = "256M", duration, iterations, pipe_size;
    bool splice = false;
    CLI::Option *bytes_opt = nullptr, *duration_opt = nullptr;
    CommonOptions common;
};

std::string measured_text(const Json& m) {
    std::string out;
    for (auto it = m.begin(); it != m.end(); ++it) {
        if (!out.empty()) out += ' ';
        std::string value = format_scalar(it.value());
        if (value.find(' ') != std::string::npos) value = "\"" + value + "\"";
        out += it.key() + "=" + value;
    }
    return out;
}

int run_pipe_test_command(const PipeTestOptions& o) {
    PipeTestConfig cfg;
    std::vector<std::string> scenarios = parse_scenarios(o.scenarios);
    cfg.sizes = parse_size_list(o.sizes);
    for (auto s : cfg.sizes)
        if (s == 0 || s > (256u << 20)) throw UsageError(fmt::format("invalid --sizes '{}': each size must be 1 byte to 256M", o.sizes));
    if (o.bytes_opt->count() && o.duration_opt->count()) throw UsageError("--bytes and --duration conflict: give one");
    cfg.bytes = parse_size(o.bytes);
    if (cfg.bytes == 0) throw UsageError("invalid --bytes '0': must be more than 0");
    if (!o.duration.empty()) {
        cfg.duration = parse_duration(o.duration);
        if (cfg.duration->count() <= 0) throw UsageError(fmt::format("invalid --duration '{}': must be more than 0", o.duration));
    }
    if (!o.iterations.empty()) cfg.iterations = parse_count(o.iterations, "--iterations", 1, 100'000'000);
    if (!o.pipe_size.empty()) {
        cfg.pipe_size = parse_size(o.pipe_size);
        if (*cfg.pipe_size == 0 || *cfg.pipe_size > (1u << 30))
            throw UsageError(fmt::format("invalid --pipe-size '{}': must be 1 byte to 1G", o.pipe_size));
        // A size the kernel refuses (EPERM past pipe-max-size) is a runtime error, not a failed scenario.
        Pipe probe = make_pipe();
        try {
            set_pipe_capacity(probe.write.get(), static_cast<int>(*cfg.pipe_size));
        } catch (const SystemError& e) {
            throw RuntimeError(fmt::format("cannot set the pipe size to {}: {} (pipe-max-size is {})", o.pipe_size,
                                           e.code().message(), environment_info()["pipe_max_size"].dump()));
        }
    }
    cfg.splice = o.splice;

    Output out("pipe-test", o.common);
    std::uint64_t passed = 0, failed = 0, info = 0;
    Json failed_names = Json::array();
    for (const auto& name : scenarios) {
        for (const ScenarioResult& row : run_scenario(name, cfg)) {
            auto verdict = verdict_name(row.verdict);
            (row.verdict == Verdict::pass ? passed : row.verdict == Verdict::fail ? failed : info)++;
            if (row.verdict == Verdict::fail) failed_names.push_back(row.name);
            std::string shown(verdict);
            if (out.color()) {
                const auto colour = row.verdict == Verdict::pass   ? fmt::terminal_color::green
                                    : row.verdict == Verdict::fail ? fmt::terminal_color::red
                                                                   : fmt::terminal_color::cyan;
                shown = fmt::format(fmt::fg(colour), "{}", verdict);
            }
            out.event({{"type", "scenario"}, {"name", row.name}, {"verdict", verdict}, {"measured", row.measured}},
                      fmt::format("{:<14} {:<4}  {}", row.name, shown, measured_text(row.measured)));
        }
    }
    RunVerdict verdict{failed == 0, {}};
    if (failed) verdict.reasons.push_back(fmt::format("{} failed: {}", failed == 1 ? "a scenario" : fmt::format("{} scenarios", failed),
                                                      fmt::join(failed_names, ", ")));
    out.summary({{"scenarios", {{"passed", passed}, {"failed", failed}, {"info", info}}}, {"failed", failed_names}}, verdict);
    return failed ? kCheckFailed : kOk;
}

}  // namespace

Subcommand setup_pipe_test(CLI::App& parent) {
    auto o = std::make_shared<PipeTestOptions>();
    CLI::App* app = parent.add_subcommand("pipe-test", "exercise and measure pipes: direction, capacity, atomicity, speed");
    std::string names;
    for (const auto& n : scenario_names()) names += (names.empty() ? "" : ", ") + n;
    app->add_option("scenario", o->scenarios,
                    "scenarios to run (default: every one but throughput and latency): " + names)->type_name("SCENARIO");
    app->add_option("--sizes", o->sizes, "throughput block sizes, comma-separated")->type_name("LIST")->capture_default_str();
    o->bytes_opt = app->add_option("--bytes", o->bytes, "bytes moved per throughput size")->type_name("SIZE")->capture_default_str();
    o->duration_opt = app->add_option("--duration", o->duration, "time per throughput size instead of --bytes")->type_name("DUR");
    app->add_option("--iterations", o->iterations, "latency round trips, shared-duplex trials, messages per scenario")->type_name("N");
    app->add_option("--pipe-size", o->pipe_size, "set each pipe's size first (F_SETPIPE_SZ)")->type_name("SIZE");
    app->add_flag("--splice", o->splice, "throughput with vmsplice and splice as well");
    add_common_options(*app, o->common);
    return {app, [o] { return run_pipe_test_command(*o); }, &o->common};
}

}  // namespace muxkit::cli
