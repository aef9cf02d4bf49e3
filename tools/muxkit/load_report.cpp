// The summary of a load, shared by multi-connect and merge.
#include "load_report.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace muxkit::cli {

namespace {

Json us_or_null(const Histogram& h, double p) {
    if (h.count() == 0) return nullptr;
    return static_cast<double>(h.percentile(p)) / 1000.0;
}

const Histogram& checked_latency(const LoadStats& s, LoadMode mode) {
    return mode == LoadMode::connect ? s.connect_ns : s.rtt_ns;
}

}  // namespace

LoadMode parse_mode(const std::string& name) {
    for (LoadMode m : {LoadMode::echo, LoadMode::connect, LoadMode::request})
        if (load_mode_name(m) == name) return m;
    throw UsageError(fmt::format("invalid --mode '{}': use echo, connect or request", printable(name)));
}

double per_second(std::uint64_t n, double seconds) { return seconds > 0 ? static_cast<double>(n) / seconds : 0.0; }

Json latency_json(const Histogram& h, bool with_p999) {
    Json j = {{"p50", us_or_null(h, 50)}, {"p90", us_or_null(h, 90)}, {"p99", us_or_null(h, 99)}};
    if (with_p999) j["p999"] = us_or_null(h, 99.9);
    j["max"] = h.count() ? Json(static_cast<double>(h.max()) / 1000.0) : Json(nullptr);
    j["mean"] = h.count() ? Json(h.mean() / 1000.0) : Json(nullptr);
    j["samples"] = h.count();
    return j;
}

std::optional<double> rate_share(const LoadStats& s, LoadMode mode, std::optional<double> rate, std::optional<double> schedule_s) {
    const double over = schedule_s ? std::min(*schedule_s, s.duration_s) : s.duration_s;
    if (!rate || *rate <= 0 || over <= 0) return std::nullopt;
    const std::uint64_t done = mode == LoadMode::connect ? s.requested : s.sent;
    return per_second(done, over) / *rate;
}

Json check_json(const LoadStats& s, LoadMode mode, const LoadCheck& check) {
    std::vector<std::string> reasons;
    if (s.interrupted && !check.allow_interrupt) reasons.push_back("interrupted before the run was complete");
    if (s.established == 0) reasons.push_back("no connection established");
    // A run with nothing to fail must not pass by saying nothing: a peer that never answers, or a
    // --duration too short to send anything. (A run stopped by hand is judged on what failed.)
    else if (mode != LoadMode::connect && s.received == 0 && s.failures() == 0 && !s.interrupted)
        reasons.push_back(s.sent == 0 ? std::string("no message was sent") : fmt::format("no reply came back to {} messages sent", s.sent));
    if (s.failures() > check.max_failures)
        reasons.push_back(fmt::format("{} failures, more than --max-failures {}", s.failures(), check.max_failures));
    const double lost_percent = s.sent ? 100.0 * static_cast<double>(s.lost) / static_cast<double>(s.sent) : 0.0;
    if (check.max_loss_percent && lost_percent > *check.max_loss_percent)
        reasons.push_back(fmt::format("{} of {} datagrams lost ({:.3g}%), more than --max-loss {:g}%", s.lost, s.sent, lost_percent,
                                      *check.max_loss_percent));
    const std::optional<double> share = rate_share(s, mode, check.rate, check.schedule_s);
    if (share && *share < check.min_rate_share && !s.interrupted)
        reasons.push_back(fmt::format("reached {:.3g}/s of --rate {:.3g}/s ({:.0f}%), below --min-rate-share {:.0f}%",
                                      *share * *check.rate, *check.rate, *share * 100, check.min_rate_share * 100));
    if (s.negative_rtt)
        reasons.push_back(fmt::format("{} round trips timed below zero and left out of rtt_us (a timing fault in muxkit)", s.negative_rtt));
    const Histogram& h = checked_latency(s, mode);
    if (check.max_p99) {
        if (h.count() == 0) reasons.push_back("p99 not measured");
        else if (h.percentile(99) > static_cast<std::uint64_t>(check.max_p99->count()))
            reasons.push_back(fmt::format("p99 {} over --max-p99 {}", human_duration(static_cast<double>(h.percentile(99)) / 1e9),
                                          human_duration(static_cast<double>(check.max_p99->count()) / 1e9)));
    }
    Json j = {{"passed", reasons.empty()}, {"failures", s.failures()}, {"max_failures", check.max_failures}};
    if (check.max_loss_percent) {
        j["lost_percent"] = lost_percent;
        j["max_loss_percent"] = *check.max_loss_percent;
    }
    if (check.max_p99) {
        j["p99_us"] = h.count() ? Json(static_cast<double>(h.percentile(99)) / 1000.0) : Json(nullptr);
        j["max_p99_us"] = static_cast<double>(check.max_p99->count()) / 1000.0;
    }
    j["reasons"] = reasons;
    return j;
}

Json load_summary_json(const LoadStats& s, const LoadHead& head, const Json& check, bool with_histograms) {
    const bool connect = head.mode == LoadMode::connect;
    const bool timed = s.service_ns.count() > 0;  // under --rate
    auto unless_connect = [&](Json j) { return connect ? Json(nullptr) : j; };
    auto udp_only = [&](std::uint64_t n) { return head.datagram ? Json(n) : Json(nullptr); };
    const std::optional<double> share = rate_share(s, head.mode, head.rate, head.schedule_s);
    Json errors = Json::object();
    errors["ECONNREFUSED"] = s.errors.count(ECONNREFUSED);
    for (const auto& [name, count] : s.errors.by_name()) errors[name] = count;
    if (s.unexpected_eof) errors["unexpected_eof"] = s.unexpected_eof;
    if (s.negative_rtt) errors["negative_rtt"] = s.negative_rtt;
    if (s.early_replies) errors["early_reply"] = s.early_replies;
    Json summary = {
        {"target", head.target},
        {"mode", load_mode_name(head.mode)},
        {"model", head.model},
        {"connections",
         {{"requested", s.requested}, {"established", s.established}, {"failed", s.failed}, {"completed", s.completed}}},
        {"messages", unless_connect({{"sent", s.sent},
                                     {"received", s.received},
                                     {"verify_failures", s.verify_failures},
                                     {"timeouts", s.timeouts},
                                     {"in_flight", s.in_flight},
                                     {"lost", s.lost},
                                     {"duplicates", udp_only(s.duplicates)},
                                     {"reordered", udp_only(s.reordered)},
                                     {"corrupted", udp_only(s.verify_failures)},
                                     {"late", udp_only(s.late)}})},
        {"bytes", {{"sent", s.bytes_sent}, {"received", s.bytes_received}}},
        {"failures_by_phase",
         {{"connect", s.failed_connect},
          {"send", unless_connect(s.failed_send)},
          {"receive", unless_connect(s.failed_receive)},
          {"verify", unless_connect(s.verify_failures)},
          {"timeout", unless_connect(s.timeouts)},
          {"hold", connect ? Json(s.failed_hold) : Json(nullptr)}}},
        {"connect_us", head.datagram ? Json(nullptr) : latency_json(s.connect_ns, connect)},
        {"rtt_us", unless_connect(latency_json(s.rtt_ns, true))},
        {"service_us", timed ? latency_json(s.service_ns, true) : Json(nullptr)},
        {"throughput",
         {{"messages_per_s", unless_connect(per_second(s.received, s.duration_s))},
          {"bytes_per_s", unless_connect(per_second(s.bytes_received, s.duration_s))},
          {"connections_per_s", per_second(s.established, s.duration_s)},
          {"rate_share", share ? Json(*share) : Json(nullptr)}}},
        {"duration_s", s.duration_s},
        {"interrupted", s.interrupted},
        {"errors", errors},
        {"settings", head.settings},
        {"check", check},
    };
    if (with_histograms)
        summary["histograms"] = {{"rtt", connect ? Json(nullptr) : Json(s.rtt_ns.encode())},
                                 {"connect", s.connect_ns.encode()},
                                 {"service", timed ? Json(s.service_ns.encode()) : Json(nullptr)},
                                 {"unit", "ns"}};
    return summary;
}

std::string percentiles_text(const LoadStats& s, LoadMode mode) {
    const bool connect = mode == LoadMode::connect;
    return fmt::format("{} percentile distribution (microseconds):\n{}", connect ? "connect_us" : "rtt_us",
                       checked_latency(s, mode).percentile_distribution(1000.0));
}

Json percentiles_json(const LoadStats& s, LoadMode mode) {
    Json rows = Json::array();
    for (const auto& row : checked_latency(s, mode).percentile_rows())
        rows.push_back({{"value_us", static_cast<double>(row.value) / 1000.0}, {"percentile", row.percentile}, {"total_count", row.total_count}});
    return rows;
}

}  // namespace muxkit::cli
