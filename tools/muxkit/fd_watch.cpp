// muxkit fd-watch: options in, run_watch, one line per readiness event out.
#include <fmt/format.h>

#include <muxkit/error.hpp>
#include <muxkit/units.hpp>
#include <muxkit/fd_watch.hpp>
#include <muxkit/process.hpp>

#include "cli.hpp"

namespace muxkit::cli {

namespace {

struct FdWatchOptions {
    std::vector<std::string> sources;
    std::string events = "r", timeout = "5s", count, duration, show = "size", model = "select";
    bool once = false;
    FamilyOptions family;
    ReadyNotice ready;
    CommonOptions common;
};

std::uint32_t parse_event_set(const std::string& text) {
    std::uint32_t set = 0;
    for (auto word : split_list(text)) {
        if (word == "r" || word == "read") set |= kReadable;
        else if (word == "w" || word == "write") set |= kWritable;
        else if (word == "x" || word == "exception") set |= kException;
        else throw UsageError(fmt::format("invalid --events '{}': expected r, w and x separated by commas", text));
    }
    return set;
}

Show parse_show(const std::string& text) {
    if (text == "none") return Show::none;
    if (text == "size") return Show::size;
    if (text == "text") return Show::text;
    if (text == "hex") return Show::hex;
    throw UsageError(fmt::format("invalid --show '{}': expected none, size, text or hex", text));
}

class Printer : public WatchObserver {
public:
    Printer(Output& out, Show show, ReadyNotice& ready) : out_(out), show_(show), ready_(ready) {}
    void on_listening(const std::string& source, const std::string& address) override {
        out_.event({{"type", "listening"}, {"source", source}, {"address", address}}, "listening on " + printable(address));
    }
    void on_ready(const std::vector<std::string>& addresses) override { ready_.announce(addresses); }
    void on_event(const WatchEvent& e) override {
        Json j = {{"type", "event"}, {"t_s", e.t}, {"fd", e.fd >= 0 ? Json(e.fd) : Json(nullptr)}};
        if (!e.source.empty()) j["source"] = e.source;
        if (!e.kind.empty()) j["kind"] = e.kind;
        j["event"] = e.event;
        j["bytes"] = e.bytes;
        if (!e.peer.empty()) j["peer"] = e.peer;
        if (e.event == "exited") {
            if (e.signal) j["signal"] = signal_name(e.signal);
            else j["exit_code"] = e.exit_code;
        } else if (!e.status.empty()) {
            j["status"] = e.status;
        }
        const bool carries_data = e.event == "readable" || e.event == "exception" || e.event == "datagram";
        if ((show_ == Show::text || show_ == Show::hex) && carries_data) j["data"] = e.data;
        std::string line;
        if (e.event == "timeout") line = fmt::format("{:10.6f}  timeout", e.t);
        else {
            // Source names hold peer addresses and socket paths a peer chose: escaped, like data.
            line = fmt::format("{:10.6f}  fd {:<3} {} ({})  {}", e.t, e.fd >= 0 ? std::to_string(e.fd) : "-",
                               printable(e.source), e.kind, e.event);
            if (carries_data) {
                if (show_ != Show::none) line += fmt::format("  {} bytes", e.bytes);
                if (show_ == Show::text) line += "  " + printable(e.data);
                if (show_ == Show::hex) line += "  " + e.data;
            }
            if (!e.peer.empty()) line += "  from " + printable(e.peer);
            if (!e.status.empty()) line += "  " + printable(e.status);
        }
        out_.event(j, line);
    }

private:
    Output& out_;
    Show show_;
    ReadyNotice& ready_;
};

int run_fd_watch_command(const FdWatchOptions& o) {
    WatchConfig cfg;
    for (const auto& s : o.sources) {
        SourceSpec spec = SourceSpec::parse(s);
        if (spec.type == SourceSpec::Type::listen || spec.type == SourceSpec::Type::connect || spec.type == SourceSpec::Type::udp)
            apply_family(o.family, spec.address);
        cfg.sources.push_back(std::move(spec));
    }
    if (cfg.sources.empty()) cfg.sources.push_back(SourceSpec::parse("stdin"));
    cfg.model = parse_model(o.model, Feature::fd_watch);
    cfg.events = parse_event_set(o.events);
    cfg.timeout = parse_duration(o.timeout);
    if (cfg.timeout.count() <= 0) throw UsageError(fmt::format("invalid --timeout '{}': must be greater than 0", o.timeout));
    if (!o.count.empty()) cfg.count = parse_count(o.count, "--count", 1);
    if (!o.duration.empty()) cfg.duration = parse_duration(o.duration);
    cfg.once = o.once;
    cfg.show = parse_show(o.show);

    Output out("fd-watch", o.common);
    ReadyNotice ready = o.ready;
    Printer printer(out, cfg.show, ready);
    forward_signals();
    WatchSummary s = run_watch(cfg, printer);
    ready.rethrow();
    Json by_source = Json::object();
    for (const auto& [name, counts] : s.by_source) {
        Json c = Json::object();
        for (const auto& [event, n] : counts) c[event] = n;
        by_source[name] = c;
    }
    out.summary({{"model", model_name(cfg.model)},
                 {"events", s.events},
                 {"timeouts", s.timeouts},
                 {"all_sources_ended", s.all_ended},
                 {"by_source", by_source},
                 {"duration_s", s.duration_s}});
    return s.timed_out_first ? kCheckFailed : kOk;
}

}  // namespace

Subcommand setup_fd_watch(CLI::App& parent) {
    auto o = std::make_shared<FdWatchOptions>();
    CLI::App* app = parent.add_subcommand("fd-watch", "watch file descriptors (select, poll or epoll) and report readiness events");
    app->add_option("source", o->sources,
                    "what to watch (default stdin): N, -, stdin, file:PATH, fifo:PATH, listen:ADDRESS, connect:ADDRESS, udp:ADDRESS, exec:COMMAND")->type_name("SOURCE");
    app->add_option("-e,--events", o->events, "sets to watch: r (read), w (write), x (exception), comma-separated")->type_name("SETS")
        ->capture_default_str();
    app->add_option("-t,--timeout", o->timeout, "timeout of each wait; each expiry is a timeout event")->type_name("DUR")->capture_default_str();
    app->add_option("--count", o->count, "stop after N events")->type_name("N");
    app->add_option("--duration", o->duration, "stop after DUR")->type_name("DUR");
    app->add_flag("--once", o->once, "stop at the first event; exit 1 if the timeout came first");
    app->add_option("--show", o->show, "what to print of data read: none, size, text or hex")->type_name("WHAT")
        ->check(CLI::IsMember({"none", "size", "text", "hex"}))
        ->capture_default_str();
    add_model_option(*app, o->model, Feature::fd_watch);
    add_family_options(*app, o->family);
    o->ready.add_option(*app);
    add_common_options(*app, o->common);
    return {app, [o] { return run_fd_watch_command(*o); }, &o->common};
}

}  // namespace muxkit::cli
