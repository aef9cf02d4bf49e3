// muxkit merge: the multi-connect summaries of many load hosts as one report. Counts are summed
// and histograms added, so every percentile is the one a single histogram of all samples gives.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <stdexcept>
#include <sstream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <muxkit/error.hpp>
#include <muxkit/fd.hpp>
#include <muxkit/units.hpp>

#include "cli.hpp"
#include "load_report.hpp"

namespace muxkit::cli {

namespace {

struct MergeOptions {
    std::vector<std::string> files;
    std::string max_failures = "0", max_p99, max_loss;
    bool percentiles = false, allow_interrupt = false;
    CommonOptions common;
};

struct Input {
    std::string file;
    Json summary;
    LoadStats stats;
    LoadMode mode = LoadMode::echo;
    bool datagram = false;  // a run against a udp: target
};

// A file that cannot be read is a runtime error (3); one that can but holds no multi-connect
// summary, is larger than any output of one, or is a device (/dev/zero never ends) is a usage
// error (2). A pipe is read, as far as the limit.
constexpr std::size_t kMaxInput = 64 << 20;  // a summary is a few KB; -v events and intervals of a long run, a few MB

std::string read_file(const std::string& path) {
    auto cannot_read = [&](int err) { return RuntimeError(fmt::format("cannot read '{}': {}", printable(path), std::strerror(err))); };
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    if (!fd) throw cannot_read(errno);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) throw cannot_read(errno);
    if (S_ISDIR(st.st_mode)) throw cannot_read(EISDIR);
    if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode))
        throw UsageError(fmt::format("'{}' is not a regular file or a pipe: give the output of multi-connect --json", printable(path)));
    set_nonblocking(fd.get(), false);  // a pipe is read as its writer writes
    std::string data;
    char buf[65536];
    for (;;) {
        const ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw cannot_read(errno);
        if (n == 0) break;
        if (data.size() + static_cast<std::size_t>(n) > kMaxInput)
            throw UsageError(fmt::format("'{}' is larger than {} MiB, more than any multi-connect --json output", printable(path),
                                         kMaxInput >> 20));
        data.append(buf, static_cast<std::size_t>(n));
    }
    return data;
}

// The last summary line of a --json output; the other lines (events, intervals) are skipped.
Json summary_of(const std::string& path, const std::string& text) {
    Json found;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        Json j = Json::parse(line, nullptr, false);
        if (j.is_object() && j.value("type", "") == "summary") found = std::move(j);
    }
    const std::string name = printable(path);
    if (found.is_null())
        throw UsageError(fmt::format("'{}' holds no summary: give the output of multi-connect --json (it is {})", name,
                                     text.empty() ? "empty" : "cut short, or something else"));
    if (found.value("command", "") != "multi-connect")
        throw UsageError(fmt::format("'{}' is a summary of {}, not of multi-connect", name, printable(found.value("command", "?"))));
    return found;
}

class Reader {
public:
    Reader(const std::string& file, const Json& summary) : file_(printable(file)), j_(summary) {}

    std::uint64_t count(std::initializer_list<const char*> path) const {
        const Json& v = at(path);
        if (v.is_null()) return 0;  // a key the mode cannot fill
        if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<std::int64_t>() >= 0)) throw bad(path, "not a count");
        return v.get<std::uint64_t>();
    }
    double number(std::initializer_list<const char*> path) const {
        const Json& v = at(path);
        if (!v.is_number()) throw bad(path, "not a number");
        return v.get<double>();
    }
    const Json& at(std::initializer_list<const char*> path) const {
        const Json* v = &j_;
        for (const char* key : path) {
            if (!v->is_object() || !v->contains(key)) throw bad(path, "missing");
            v = &(*v)[key];
        }
        return *v;
    }
    // The whole-run histogram of a tag, its exact max and mean restored from the latency block.
    Histogram histogram(const char* tag, const char* block) const {
        const Json& text = at({"histograms", tag});
        if (text.is_null()) {
            const Json& latency = at({block});
            if (latency.is_object() && latency.value("samples", std::uint64_t{0}) > 0)
                throw UsageError(fmt::format("'{}': histograms.{} is missing but {}.samples is {}", file_, tag, block,
                                             latency.value("samples", std::uint64_t{0})));
            return {};
        }
        if (!text.is_string()) throw bad({"histograms", tag}, "not a histogram");
        Histogram h;
        try {
            h = Histogram::decode(text.get<std::string>());
        } catch (const Histogram::DecodeError& e) {
            throw UsageError(fmt::format("'{}': histograms.{} cannot be merged: {}", file_, tag, e.what()));
        }
        const Json& latency = at({block});
        if (latency.is_object() && latency.value("samples", std::uint64_t{0}) != h.count())
            throw UsageError(fmt::format("'{}': histograms.{} holds {} values but {}.samples is {}", file_, tag, h.count(), block,
                                         latency.value("samples", std::uint64_t{0})));
        if (h.count() && latency["max"].is_number() && latency["mean"].is_number())
            h.set_exact(h.min(), static_cast<std::uint64_t>(latency["max"].get<double>() * 1000.0 + 0.5),
                        latency["mean"].get<double>() * 1000.0);
        return h;
    }

private:
    UsageError bad(std::initializer_list<const char*> path, const char* what) const {
        std::string key;
        for (const char* k : path) key += (key.empty() ? "" : ".") + std::string(k);
        return UsageError(fmt::format("'{}' is not a summary muxkit can merge: {} is {}", file_, key, what));
    }
    std::string file_;
    const Json& j_;
};

Input read_input(const std::string& file) {
    Input in{file, summary_of(file, read_file(file)), {}, LoadMode::echo};
    const Reader r(file, in.summary);
    const Json& mode = r.at({"mode"});
    in.mode = parse_mode(mode.is_string() ? mode.get<std::string>() : "");
    if (r.at({"histograms", "unit"}) != "ns")
        throw UsageError(fmt::format("'{}': its histograms are not in nanoseconds", printable(file)));
    LoadStats& s = in.stats;
    s.requested = r.count({"connections", "requested"});
    s.established = r.count({"connections", "established"});
    s.failed = r.count({"connections", "failed"});
    s.completed = r.count({"connections", "completed"});
    if (in.mode != LoadMode::connect) {
        s.sent = r.count({"messages", "sent"});
        s.received = r.count({"messages", "received"});
        s.verify_failures = r.count({"messages", "verify_failures"});
        s.timeouts = r.count({"messages", "timeouts"});
        s.in_flight = r.count({"messages", "in_flight"});
        s.lost = r.count({"messages", "lost"});
        s.duplicates = r.count({"messages", "duplicates"});
        s.reordered = r.count({"messages", "reordered"});
        s.late = r.count({"messages", "late"});
    }
    const Json& target = r.at({"target"});
    in.datagram = target.is_string() && target.get<std::string>().starts_with("udp:");
    s.bytes_sent = r.count({"bytes", "sent"});
    s.bytes_received = r.count({"bytes", "received"});
    s.failed_connect = r.count({"failures_by_phase", "connect"});
    s.failed_send = r.count({"failures_by_phase", "send"});
    s.failed_receive = r.count({"failures_by_phase", "receive"});
    if (r.at({"failures_by_phase"}).contains("hold")) s.failed_hold = r.count({"failures_by_phase", "hold"});
    for (const auto& [name, n] : r.at({"errors"}).items()) {
        if (!n.is_number_unsigned()) continue;
        if (name == "unexpected_eof") s.unexpected_eof += n.get<std::uint64_t>();
        else if (name == "negative_rtt") s.negative_rtt += n.get<std::uint64_t>();
        else if (name == "early_reply") s.early_replies += n.get<std::uint64_t>();
        else if (const int err = errno_from_name(name)) s.errors.add(err, n.get<std::uint64_t>());
    }
    s.rtt_ns = r.histogram("rtt", "rtt_us");
    if (in.mode != LoadMode::connect && s.rtt_ns.count() != s.received - std::min(s.received, s.negative_rtt))
        throw UsageError(fmt::format("'{}': histograms.rtt holds {} round trips but messages.received is {}: merged percentiles "
                                     "would leave samples out",
                                     printable(file), s.rtt_ns.count(), s.received));
    s.connect_ns = r.histogram("connect", "connect_us");
    s.service_ns = r.histogram("service", "service_us");
    s.duration_s = r.number({"duration_s"});
    s.interrupted = r.at({"interrupted"}) == true;
    return in;
}

// One value when every input has it, else the list of the different ones.
Json common_value(const std::vector<Input>& inputs, const char* key) {
    std::vector<Json> seen;
    for (const Input& in : inputs) {
        const Json& v = in.summary.contains(key) ? in.summary[key] : Json(nullptr);
        if (std::find(seen.begin(), seen.end(), v) == seen.end()) seen.push_back(v);
    }
    return seen.size() == 1 ? seen.front() : Json(seen);
}

int run_merge_command(const MergeOptions& o) {
    LoadCheck check;
    check.max_failures = parse_count(o.max_failures, "--max-failures");
    if (!o.max_p99.empty()) check.max_p99 = parse_duration(o.max_p99);
    check.allow_interrupt = o.allow_interrupt;
    if (!o.max_loss.empty()) check.max_loss_percent = parse_percent(o.max_loss, "--max-loss");

    std::vector<Input> inputs;
    for (const std::string& file : o.files) inputs.push_back(read_input(file));
    for (const Input& in : inputs)
        if (in.mode != inputs.front().mode)
            throw UsageError(fmt::format("'{}' ran --mode {} but '{}' --mode {}: merge runs of one mode", printable(in.file),
                                         load_mode_name(in.mode), printable(inputs.front().file),
                                         load_mode_name(inputs.front().mode)));
    for (const Input& in : inputs)
        if (in.datagram != inputs.front().datagram)
            throw UsageError(fmt::format("'{}' ran against {} and '{}' against {}: merge UDP runs with UDP runs", printable(in.file),
                                         in.datagram ? "UDP" : "a stream", printable(inputs.front().file),
                                         inputs.front().datagram ? "UDP" : "a stream"));
    for (std::size_t i = 0; i < inputs.size(); ++i)
        for (std::size_t j = 0; j < i; ++j) {
            const Json& id = inputs[i].summary.contains("run_id") ? inputs[i].summary["run_id"] : Json(nullptr);
            if (id.is_string() && inputs[j].summary.value("run_id", Json()) == id)
                throw UsageError(fmt::format("'{}' and '{}' are the same run (run_id {}): give each run once", printable(inputs[j].file),
                                             printable(inputs[i].file), printable(id.get<std::string>())));
        }
    const bool datagram = inputs.front().datagram;
    if (datagram && !check.max_loss_percent) check.max_loss_percent = 0.0;
    if (!datagram && check.max_loss_percent) throw UsageError("--max-loss is for runs against udp: targets");
    LoadStats total;
    Json listed = Json::array();
    for (const Input& in : inputs) {
        try {
            total.merge(in.stats);
        } catch (const std::overflow_error&) {
            throw UsageError(fmt::format("'{}': its counts added to those before it pass 2^64 - 1: is it a real summary?",
                                         printable(in.file)));
        }
        listed.push_back({{"file", in.file},
                          {"target", in.summary["target"]},
                          {"established", in.stats.established},
                          {"messages", in.mode == LoadMode::connect ? Json(nullptr) : Json(in.stats.received)}});
    }
    const LoadMode mode = inputs.front().mode;
    Output out("merge", o.common);
    if (const Json targets = common_value(inputs, "target"); targets.is_array())
        out.warning(fmt::format("the inputs ran against different targets ({}): their figures are merged as one service's",
                                printable(targets.dump())));
    const Json checked = check_json(total, mode, check);
    Json summary = load_summary_json(
        total, {common_value(inputs, "target"), common_value(inputs, "model"), common_value(inputs, "settings"), mode, datagram, std::nullopt, std::nullopt}, checked,
        o.common.json);
    summary["hosts"] = inputs.size();
    summary["inputs"] = listed;
    if (o.percentiles && o.common.json) summary["percentiles"] = percentiles_json(total, mode);
    out.summary(std::move(summary));
    if (o.percentiles && !o.common.json) write_stdout(percentiles_text(total, mode));
    return checked["passed"].get<bool>() ? kOk : kCheckFailed;
}

}  // namespace

Subcommand setup_merge(CLI::App& parent) {
    auto o = std::make_shared<MergeOptions>();
    CLI::App* app = parent.add_subcommand("merge", "combine multi-connect summaries from many load hosts: exact percentiles");
    app->add_option("file", o->files, "multi-connect --json outputs (the summary line of each is read)")
        ->type_name("FILE")
        ->required();
    app->add_option("--max-failures", o->max_failures, "failed connections/messages tolerated in all, before exit 1")
        ->type_name("N")
        ->capture_default_str();
    app->add_option("--max-p99", o->max_p99, "exit 1 if the merged p99 round trip (--mode connect: connect) exceeds DUR")->type_name("DUR");
    app->add_option("--max-loss", o->max_loss, "udp runs: exit 1 if more than PERCENT of all datagrams sent got no echo (default 0)")
        ->type_name("PERCENT");
    app->add_flag("--percentiles", o->percentiles, "add the full percentile distribution (HdrHistogram .hgrm) to the report");
    app->add_flag("--allow-interrupt", o->allow_interrupt, "an input whose run was interrupted may still pass");
    add_common_options(*app, o->common);
    return {app, [o] { return run_merge_command(*o); }, &o->common};
}

}  // namespace muxkit::cli
