// muxkit multi-connect: options in, the library's load client, the report out.
#include <cstring>
#include <fstream>
#include <optional>
#include <vector>
#include <iterator>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <muxkit/clock.hpp>
#include <muxkit/fd.hpp>
#include <muxkit/hdr_log.hpp>
#include <muxkit/multi_connect.hpp>
#include <muxkit/units.hpp>

#include "cli.hpp"
#include "load_report.hpp"

namespace muxkit::cli {

namespace {

struct MultiConnectOptions {
    std::string address = "127.0.0.1:7007";
    std::string connections = "1", messages = "1", duration, size = "64", pipeline = "1";
    std::string rate, interval, connect_rate, connect_timeout = "5s", reply_timeout = "5s";
    std::string model = "epoll", payload, max_failures = "0", max_p99;
    std::string mode = "echo", expect, hold, hdr_log, max_loss = "0", min_rate_share;
    unsigned threads = 1;
    bool no_verify = false, interactive = false, allow_interrupt = false, percentiles = false, allow_early_close = false;
    CLI::Option *messages_opt = nullptr, *size_opt = nullptr, *payload_opt = nullptr, *pipeline_opt = nullptr;
    CLI::Option *expect_opt = nullptr, *hold_opt = nullptr, *connect_rate_opt = nullptr, *reply_timeout_opt = nullptr;
    CLI::Option *no_verify_opt = nullptr, *max_loss_opt = nullptr, *mode_opt = nullptr;
    FamilyOptions family;
    CommonOptions common;
};

Json failure_json(const LoadFailure& f) {
    Json j = {{"type", "failure"}, {"connection", f.connection}, {"phase", failure_kind_name(f.kind)}};
    if (f.err) j["error"] = errno_name(f.err);
    if (f.kind == LoadFailure::Kind::timeout || f.kind == LoadFailure::Kind::mismatch) j["message"] = f.message;
    if (f.kind == LoadFailure::Kind::timeout) j["messages"] = f.messages;
    if (f.kind == LoadFailure::Kind::early_reply) {
        j["message"] = f.message;
        j["request_bytes_written"] = f.offset;
    }
    if (f.kind == LoadFailure::Kind::mismatch) {
        j["offset"] = f.offset;
        j["expected_hex"] = hex(f.expected);
        j["received_hex"] = hex(f.received);
        j["expected_text"] = printable(f.expected);
        j["received_text"] = printable(f.received);
        if (f.unasked) {
            j["unasked"] = true;
            j["messages_not_sent"] = f.messages;
        }
    }
    return j;
}

std::string failure_text(const LoadFailure& f, const LoadConfig& config) {
    std::string line = fmt::format("failure connection={} phase={}", f.connection, failure_kind_name(f.kind));
    switch (f.kind) {
    case LoadFailure::Kind::connect:
    case LoadFailure::Kind::send:
    case LoadFailure::Kind::receive: line += fmt::format(" error={} ({})", errno_name(f.err), std::strerror(f.err)); break;
    case LoadFailure::Kind::closed: line += " the server closed the connection while replies were due"; break;
    case LoadFailure::Kind::timeout:
        line += fmt::format(" message={} no reply within {} ({} in flight)", f.message, format_duration(config.reply_timeout),
                            f.messages);
        break;
    case LoadFailure::Kind::mismatch:
        if (f.unasked) {
            line += fmt::format(" after {} replies the server sent bytes no request asked for: received='{}'; {} messages not sent",
                                f.message, printable(f.received), f.messages);
            break;
        }
        line += fmt::format(" message={} offset={} expected='{}' received='{}'", f.message, f.offset, printable(f.expected),
                            printable(f.received));
        break;
    case LoadFailure::Kind::hold:
        line += fmt::format(" the server {} the connection before its --hold {} ended", f.err ? "reset" : "closed",
                            format_duration(config.hold));
        break;
    case LoadFailure::Kind::early_reply:
        line += fmt::format(" message={} a reply came when {} of its {} request bytes were written", f.message, f.offset,
                            config.payload.size());
        break;
    }
    return line;
}

// Interval lines (when --interval was asked for), the --hdr-log lines of every interval, the
// progress line and, with -v, each failure.
class Reporter : public LoadObserver {
public:
    Reporter(Output& out, const LoadConfig& config, bool progress, bool print_intervals, HdrLogWriter* log)
        : out_(out), config_(config), progress_(progress), print_intervals_(print_intervals), log_(log) {}
    ~Reporter() override { clear_progress(); }
    void on_interval(const LoadStats& s, double t) override {
        if (log_) {
            const double start = std::max(0.0, t - s.duration_s);
            if (config_.mode != LoadMode::connect) log_->interval("rtt", start, s.duration_s, s.rtt_ns);
            log_->interval("connect", start, s.duration_s, s.connect_ns);
            if (config_.rate && config_.mode != LoadMode::connect) log_->interval("service", start, s.duration_s, s.service_ns);
        }
        if (!print_intervals_) return;
        clear_progress();
        if (config_.mode == LoadMode::connect) {
            const double rate = per_second(s.established, s.duration_s);
            Json j = {{"type", "interval"},
                      {"t_s", t},
                      {"connections", s.established},
                      {"connections_per_s", rate},
                      {"connect_us", latency_json(s.connect_ns, false)},
                      {"failed", s.failed}};
            out_.event(j, fmt::format("interval t={:.1f}s connections={} rate={:.0f}/s connect p50={:.1f}us p99={:.1f}us failed={}",
                                      t, s.established, rate, s.connect_ns.percentile(50) / 1000.0,
                                      s.connect_ns.percentile(99) / 1000.0, s.failed));
            return;
        }
        double rate = per_second(s.received, s.duration_s);
        Json j = {{"type", "interval"},
                  {"t_s", t},
                  {"messages", s.received},
                  {"messages_per_s", rate},
                  {"bytes_per_s", per_second(s.bytes_received, s.duration_s)},
                  {"rtt_us", latency_json(s.rtt_ns, false)},
                  {"verify_failures", s.verify_failures},
                  {"timeouts", s.timeouts}};
        if (config_.target.datagram()) j["lost"] = s.lost;
        out_.event(j, fmt::format("interval t={:.1f}s messages={} rate={:.0f}/s rtt p50={:.1f}us p99={:.1f}us", t,
                                  s.received, rate, s.rtt_ns.percentile(50) / 1000.0, s.rtt_ns.percentile(99) / 1000.0));
    }
    void on_progress(const LoadStats& s) override {
        if (!progress_) return;
        fmt::print(stderr, "\r[{:.0f}s] connections {}/{} messages {} failures {}   ", s.duration_s, s.established,
                   s.requested, s.received, s.failures());
        shown_ = true;
    }
    bool wants_failures() const override { return out_.verbosity() > 0; }
    void on_failure(const LoadFailure& f) override {
        clear_progress();
        out_.event(failure_json(f), failure_text(f, config_));
    }
    void clear_progress() {
        if (shown_) fmt::print(stderr, "\r\x1b[K");
        shown_ = false;
    }

private:
    Output& out_;
    const LoadConfig& config_;
    bool progress_, print_intervals_;
    HdrLogWriter* log_;
    bool shown_ = false;
};

// TEXT with C-style escapes, or @FILE as it is: a regular file of at most --size's 1 GiB limit
// (a FIFO, a device such as /dev/zero or a directory would block or never end, so they are refused).
std::string read_payload(const std::string& spec, std::string_view what) {
    if (!spec.starts_with("@")) return parse_escapes(spec, what);
    const std::string path = spec.substr(1);
    auto cannot_read = [&](int err) {
        return UsageError(fmt::format("cannot read {} file '{}': {}", what, printable(path), std::strerror(err)));
    };
    Fd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    if (!fd) throw cannot_read(errno);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) throw cannot_read(errno);
    if (!S_ISREG(st.st_mode))
        throw UsageError(fmt::format("{} file '{}' is {}: give a regular file", what, printable(path),
                                     S_ISDIR(st.st_mode) ? "a directory" : S_ISFIFO(st.st_mode) ? "a FIFO" : "not a regular file"));
    if (st.st_size > (1ll << 30)) throw UsageError(fmt::format("{} file '{}' is larger than 1G", what, printable(path)));
    std::string data(static_cast<std::size_t>(st.st_size), '\0');
    std::size_t got = 0;
    while (got < data.size()) {
        ssize_t n = ::read(fd.get(), data.data() + got, data.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw cannot_read(errno);
        if (n == 0) break;  // it shrank while we read
        got += static_cast<std::size_t>(n);
    }
    data.resize(got);
    return data;
}

// The textbook echo client: stdout carries exactly the echoed bytes, so it has no JSON; a failed
// connect or an incomplete echo fails the check (exit 1), as in load mode.
int run_interactive_command(const MultiConnectOptions& o, const LoadConfig& config) {
    if (o.common.json) throw UsageError("--interactive writes the echoed bytes to stdout and has no --json");
    forward_signals();
    InteractiveResult r = run_interactive(config.target, 0, 1, config.connect_timeout, config.reply_timeout);
    if (r.output_err) throw OutputError(r.output_err);
    if (r.connect_err) {
        if (o.common.verbosity() >= 0)
            fmt::print(stderr, "muxkit multi-connect: cannot connect to {}: {}\n", config.target.to_string(), std::strerror(r.connect_err));
        return kCheckFailed;
    }
    if (!r.complete && o.common.verbosity() >= 0)
        fmt::print(stderr, "muxkit multi-connect: {}: sent {} bytes, received {}\n",
                   r.bytes_received < r.bytes_sent ? "echo incomplete" : "not an echo", r.bytes_sent, r.bytes_received);
    else if (o.common.verbosity() > 0)
        fmt::print(stderr, "muxkit multi-connect: sent {} bytes, received {} bytes\n", r.bytes_sent, r.bytes_received);
    return r.complete ? kOk : kCheckFailed;
}

// One line that explains a run in which every failure was alike and nothing got through, or in
// which the local ports ran out.
std::optional<std::string> hint(const LoadStats& s, const LoadConfig& config) {
    if (const std::uint64_t n = s.errors.count(EADDRNOTAVAIL))
        return fmt::format("{} connects found no free local port (EADDRNOTAVAIL): each closed connection keeps its port in "
                           "TIME_WAIT for 60s; widen net.ipv4.ip_local_port_range, set net.ipv4.tcp_tw_reuse=1, "
                           "or lower --rate",
                           n);
    const std::string target = config.target.to_string();
    if (config.target.datagram() && s.received == 0 && s.sent > 0) {
        if (s.errors.count(ECONNREFUSED))
            return fmt::format("no datagram came back and {} answered port unreachable (ICMP): is anything listening there?", target);
        if (s.verify_failures == 0)
            return fmt::format("no datagram came back within {}: is {} a UDP echo server, and does a firewall let the datagrams through?",
                               format_duration(config.reply_timeout), target);
    }
    if (!s.first_failure || !s.failures_alike) return std::nullopt;
    const LoadFailure& f = *s.first_failure;
    const std::string question = config.mode == LoadMode::echo ? fmt::format("is {} an echo server?", target)
                                                               : fmt::format("does {} answer this request?", target);
    switch (f.kind) {
    case LoadFailure::Kind::connect:
        if (s.established > 0) return std::nullopt;
        return fmt::format("no connection established: connect to {}: {}{}", target, std::strerror(f.err),
                           f.err == ECONNREFUSED ? " (is anything listening there?)" : "");
    case LoadFailure::Kind::timeout:
        if (s.received > 0) return std::nullopt;
        return fmt::format("no reply within {}: {}", format_duration(config.reply_timeout), question);
    case LoadFailure::Kind::mismatch:
        if (f.unasked) {
            const std::string more = config.mode == LoadMode::request ? fmt::format("more than --expect's {} bytes", config.expect ? config.expect->size() : 0)
                                                                      : "bytes that were never sent";
            return fmt::format("{} sent {} after reply {}: received '{}'; that connection stopped there, {} of its messages unsent",
                               target, more, f.message, printable(f.received), f.messages);
        }
        if (s.verify_failures < s.received) return std::nullopt;
        return fmt::format("reply differs at byte {}: received '{}', expected '{}': {}", f.offset, printable(f.received),
                           printable(f.expected), question);
    case LoadFailure::Kind::closed:
        if (s.received > 0) return std::nullopt;
        return fmt::format("the server closed every connection before replying: {}", question);
    case LoadFailure::Kind::hold:
        return fmt::format("{} closed or reset every connection it had taken before its --hold {} ended (--allow-early-close "
                           "if it is meant to)",
                           target, format_duration(config.hold));
    case LoadFailure::Kind::early_reply:
        return fmt::format("{} replied when {} of the {} request bytes were written: it answered something else than the whole "
                           "request (an error or a size limit?)",
                           target, f.offset, config.payload.size());
    case LoadFailure::Kind::send:
    case LoadFailure::Kind::receive:
        if (s.received > 0) return std::nullopt;
        return fmt::format("every connection failed with {}", std::strerror(f.err));
    }
    return std::nullopt;
}

// The options that each mode takes beyond the shared ones; the rest are refused, never ignored.
void parse_mode_options(const MultiConnectOptions& o, LoadConfig& config) {
    config.mode = parse_mode(o.mode);
    const std::string mode = fmt::format("--mode {}", o.mode);
    if (config.mode != LoadMode::request && o.expect_opt->count())
        throw UsageError(fmt::format("--expect is for --mode request (in {} {})", mode,
                                     config.mode == LoadMode::echo ? "the reply is the payload" : "no byte is sent"));
    if (config.mode != LoadMode::connect && o.hold_opt->count()) throw UsageError("--hold is for --mode connect");
    if (o.allow_early_close && !o.hold_opt->count()) throw UsageError("--allow-early-close is for --mode connect with --hold");
    config.allow_early_close = o.allow_early_close;
    if (config.mode == LoadMode::connect) {
        for (auto [opt, name] : {std::pair{o.payload_opt, "--payload"}, {o.size_opt, "--size"}, {o.pipeline_opt, "--pipeline"},
                                 {o.no_verify_opt, "--no-verify"}, {o.reply_timeout_opt, "--reply-timeout"}})
            if (opt->count()) throw UsageError(fmt::format("{} has no use in --mode connect: no byte is sent", name));
        if (o.connect_rate_opt->count())
            throw UsageError("--connect-rate has no use in --mode connect: --rate paces its connects");
        if (o.hold_opt->count()) {
            config.hold = parse_duration(o.hold);
            if (config.hold.count() < 0) throw UsageError(fmt::format("invalid --hold '{}'", o.hold));
        }
        return;
    }
    if (o.payload_opt->count()) {
        config.payload = read_payload(o.payload, "--payload");
        if (config.payload.empty()) throw UsageError("the payload is empty");
        config.size = config.payload.size();
    }
    if (config.mode == LoadMode::request) {
        if (!o.payload_opt->count()) throw UsageError("--mode request needs --payload: the request to send");
        if (o.expect_opt->count()) {
            config.expect = read_payload(o.expect, "--expect");
            if (config.expect->empty()) throw UsageError("the expectation is empty");
        } else if (config.pipeline > 1) {
            throw UsageError("--pipeline needs --expect in --mode request: a reply of unknown length cannot be told from the next");
        }
    }
}

// A udp: target: datagrams of --size bytes that carry their sequence number, echoed.
void check_datagram_options(const MultiConnectOptions& o, const LoadConfig& config) {
    if (!config.target.datagram()) {
        if (o.max_loss_opt->count()) throw UsageError("--max-loss is for udp: targets (a TCP stream loses nothing without failing)");
        return;
    }
    if (o.mode_opt->count() && config.mode != LoadMode::echo)
        throw UsageError(fmt::format("--mode {} is for stream targets; a udp: target is sent datagrams to echo", o.mode));
    if (o.payload_opt->count()) throw UsageError("--payload is for stream targets: each datagram carries its own sequence number");
    if (config.size > 65507) throw UsageError(fmt::format("invalid --size '{}': a UDP datagram holds at most 65507 bytes", o.size));
}

Json settings_json(const LoadConfig& config) {
    const bool connect = config.mode == LoadMode::connect;
    auto unless_connect = [&](Json j) { return connect ? Json(nullptr) : j; };
    Json settings = {
        {"size", unless_connect(config.size)},
        {"pipeline", unless_connect(config.pipeline)},
        {connect ? "connects_per_connection" : "messages_per_connection", config.duration ? Json(nullptr) : Json(config.messages)},
        {"rate_per_s", config.rate ? Json(*config.rate) : Json(nullptr)},
        {"connect_rate_per_s", config.connect_rate ? Json(*config.connect_rate) : Json(nullptr)},
        {"verify", unless_connect(config.verify && (config.mode != LoadMode::request || config.expect.has_value()))},
        {"threads", config.threads}};
    if (config.mode == LoadMode::request) settings["expect_bytes"] = config.expect ? Json(config.expect->size()) : Json(nullptr);
    if (connect) settings["hold_s"] = to_seconds(config.hold);
    return settings;
}

int run_multi_connect_command(const MultiConnectOptions& o) {
    LoadConfig config;
    config.target = Address::parse(o.address);
    apply_family(o.family, config.target);
    config.model = parse_model(o.model, Feature::multi_connect);
    config.connections = parse_count(o.connections, "--connections", 1, 10'000'000);
    config.connect_timeout = parse_duration(o.connect_timeout);
    config.reply_timeout = parse_duration(o.reply_timeout);
    if (config.connect_timeout.count() <= 0 || config.reply_timeout.count() <= 0)
        throw UsageError("timeouts must be greater than 0");
    config.mode = parse_mode(o.mode);
    if (o.interactive) {
        if (config.mode != LoadMode::echo) throw UsageError(fmt::format("--interactive is an echo client: it has no --mode {}", o.mode));
        if (config.target.datagram()) throw UsageError("--interactive is a stream client; a udp: target is for load runs");
        return run_interactive_command(o, config);
    }
    check_threads(o.threads);
    config.threads = o.threads;

    if (!o.duration.empty() && o.messages_opt->count())
        throw UsageError("--messages and --duration conflict: give one");
    if (o.payload_opt->count() && o.size_opt->count()) throw UsageError("--payload and --size conflict: the payload sets the size");
    config.messages = parse_count(o.messages, "--messages", 1);
    if (!o.duration.empty()) {
        config.duration = parse_duration(o.duration);
        if (config.duration->count() <= 0) throw UsageError(fmt::format("invalid --duration '{}': must be greater than 0", o.duration));
    }
    config.size = parse_size(o.size);
    if (config.size == 0 || config.size > (1ull << 30))
        throw UsageError(fmt::format("invalid --size '{}': must be between 1 byte and 1G", o.size));
    config.pipeline = parse_count(o.pipeline, "--pipeline", 1, 1'000'000);
    if (!o.rate.empty()) config.rate = parse_rate(o.rate, "--rate");
    if (!o.connect_rate.empty()) config.connect_rate = parse_rate(o.connect_rate, "--connect-rate");
    if (!o.interval.empty()) {
        config.interval = parse_duration(o.interval);
        if (config.interval->count() <= 0) throw UsageError(fmt::format("invalid --interval '{}': must be greater than 0", o.interval));
    } else if (!o.hdr_log.empty()) {
        config.interval = std::chrono::seconds(1);  // the log's intervals; no interval lines are printed
    }
    parse_mode_options(o, config);
    check_datagram_options(o, config);
    config.verify = !o.no_verify;
    std::optional<double> max_loss;
    if (config.target.datagram()) {
        max_loss = parse_percent(o.max_loss, "--max-loss");
    }
    const std::uint64_t max_failures = parse_count(o.max_failures, "--max-failures");
    std::optional<Duration> max_p99;
    if (!o.max_p99.empty()) max_p99 = parse_duration(o.max_p99);

    const std::uint64_t needed = config.connections + 64;
    if (const std::uint64_t limit = raise_fd_limit(needed); limit < needed)
        throw RuntimeError(fmt::format("cannot open {} connections: the descriptor limit (ulimit -n) is {} and the hard limit "
                                       "does not allow more; raise it (ulimit -Hn) or use fewer connections",
                                       config.connections, limit));
    forward_signals();
    Output out("multi-connect", o.common);
    const double started = wall_seconds();
    std::optional<HdrLogWriter> log;
    if (!o.hdr_log.empty()) log.emplace(o.hdr_log, started);
    Reporter reporter(out, config, !o.common.json && o.common.verbosity() >= 0 && ::isatty(2), !o.interval.empty(),
                      log ? &*log : nullptr);
    LoadStats s = run_load(config, reporter);
    reporter.clear_progress();
    if (log) log->close();

    std::optional<double> schedule_s;
    if (config.duration) schedule_s = to_seconds(*config.duration);
    LoadCheck checks{max_failures, max_p99, o.allow_interrupt, max_loss, config.rate, schedule_s};
    if (!o.min_rate_share.empty()) {
        if (!config.rate) throw UsageError("--min-rate-share needs --rate: the rate it is a share of");
        checks.min_rate_share = parse_percent(o.min_rate_share, "--min-rate-share") / 100.0;
    }
    const Json check = check_json(s, config.mode, checks);
    const bool passed = check["passed"].get<bool>();
    Json summary = load_summary_json(
        s,
        {config.target.to_string(), model_name(config.model), settings_json(config), config.mode, config.target.datagram(), config.rate, schedule_s},
        check,
        o.common.json);
    if (o.percentiles && o.common.json) summary["percentiles"] = percentiles_json(s, config.mode);
    // Which run this was, so merge can tell the same run given twice from two runs.
    summary["host"] = host_name();
    summary["started_at"] = iso8601_utc(started);
    summary["muxkit_version"] = MUXKIT_VERSION;
    summary["run_id"] = random_run_id();
    out.summary(std::move(summary));
    if (o.percentiles && !o.common.json) write_stdout(percentiles_text(s, config.mode));
    if (!passed && o.common.verbosity() >= 0)
        if (auto h = hint(s, config)) fmt::print(stderr, "muxkit multi-connect: hint: {}\n", *h);
    return passed ? kOk : kCheckFailed;
}

}  // namespace

Subcommand setup_multi_connect(CLI::App& parent) {
    auto o = std::make_shared<MultiConnectOptions>();
    CLI::App* app = parent.add_subcommand("multi-connect", "many concurrent client connections: verify echoes, measure latency");
    app->add_option("address", o->address, "server: HOST:PORT, [IPV6]:PORT, PORT, unix:PATH or udp:HOST:PORT")->type_name("ADDRESS")->capture_default_str();
    app->add_option("-c,--connections", o->connections, "concurrent connections")->type_name("N")->capture_default_str();
    o->messages_opt = app->add_option("-n,--messages", o->messages, "messages per connection")->type_name("N")->capture_default_str();
    app->add_option("-d,--duration", o->duration, "run for DUR instead of a message count")->type_name("DUR");
    o->size_opt = app->add_option("-s,--size", o->size, "message size")->type_name("SIZE")->capture_default_str();
    o->pipeline_opt = app->add_option("--pipeline", o->pipeline, "messages in flight per connection (1: ping-pong)")->type_name("N")->capture_default_str();
    o->mode_opt = app->add_option("--mode", o->mode, "echo: every message comes back; request: --payload gets --expect; connect: connects only")
        ->type_name("MODE")
        ->check(CLI::IsMember({"echo", "connect", "request"}))
        ->capture_default_str();
    app->add_option("--rate", o->rate, "total messages (--mode connect: connects) per second, open loop (default: as fast as possible)")
        ->type_name("RATE");
    app->add_option("--interval", o->interval, "print an interval report every DUR")->type_name("DUR");
    o->connect_rate_opt = app->add_option("--connect-rate", o->connect_rate, "new connections per second (default: all at once)")->type_name("RATE");
    app->add_option("--connect-timeout", o->connect_timeout, "give up on a connect after DUR")->type_name("DUR")->capture_default_str();
    o->reply_timeout_opt = app->add_option("--reply-timeout", o->reply_timeout, "give up on a reply after DUR of silence")->type_name("DUR")->capture_default_str();
    add_model_option(*app, o->model, Feature::multi_connect);
    add_family_options(*app, o->family);
    app->add_option("--threads", o->threads, "event loops, one per thread, each with its share of the connections")
        ->type_name("N")
        ->capture_default_str();
    o->payload_opt = app->add_option("--payload", o->payload, "TEXT (with \\r \\n \\t \\xHH escapes) or @FILE to send (default: a verifiable pattern)")
                         ->type_name("PAYLOAD");
    o->expect_opt = app->add_option("--expect", o->expect, "--mode request: TEXT or @FILE each reply must be (default: any reply)")
                        ->type_name("REPLY");
    o->hold_opt = app->add_option("--hold", o->hold, "--mode connect: keep each connection open DUR before closing it")->type_name("DUR");
    o->no_verify_opt = app->add_flag("--no-verify", o->no_verify, "do not compare reply bytes");
    app->add_option("--max-failures", o->max_failures, "failed connections/messages tolerated before exit 1")->type_name("N")
        ->capture_default_str();
    o->max_loss_opt = app->add_option("--max-loss", o->max_loss, "udp: exit 1 if more than PERCENT of the datagrams sent got no echo")
                          ->type_name("PERCENT")
                          ->capture_default_str();
    app->add_option("--min-rate-share", o->min_rate_share,
                    "with --rate: exit 1 if the run reached less than PERCENT of the rate asked (default 90%)")
        ->type_name("PERCENT");
    app->add_option("--max-p99", o->max_p99, "exit 1 if the p99 round trip (--mode connect: connect) exceeds DUR")->type_name("DUR");
    app->add_option("--hdr-log", o->hdr_log, "write an HdrHistogram interval log (rtt, connect; nanoseconds) to FILE")
        ->type_name("FILE");
    app->add_flag("--percentiles", o->percentiles, "add the full percentile distribution (HdrHistogram .hgrm) to the report");
    app->add_flag("-i,--interactive", o->interactive, "send what arrives on stdin as it comes, write the echo to stdout");
    app->add_flag("--allow-early-close", o->allow_early_close,
                  "--mode connect: a connection the server closes or resets before its --hold ends is no failure");
    app->add_flag("--allow-interrupt", o->allow_interrupt,
                  "a run ended early by SIGINT or SIGTERM may still pass (by default it fails the check)");
    add_common_options(*app, o->common);
    return {app, [o] { return run_multi_connect_command(*o); }, &o->common};
}

}  // namespace muxkit::cli
