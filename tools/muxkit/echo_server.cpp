// muxkit echo-server: options in, the library's EchoServer, the report out.
#include <sys/stat.h>

#include <fmt/format.h>

#include <muxkit/echo_server.hpp>
#include <muxkit/units.hpp>

#include "cli.hpp"

namespace muxkit::cli {

namespace {

bool is_loopback_host(const std::string& host) {
    return host == "localhost" || host == "::1" || host.starts_with("127.");
}

struct EchoServerOptions {
    std::vector<std::string> addresses;
    std::string model = "epoll";
    std::string buffer_size = "16K";
    std::string max_connections = "65536";
    std::string idle_timeout, duration, stats_interval, drain_timeout = "2s";
    std::string max_clients = "0";
    CLI::Option* store_opt = nullptr;
    int backlog = 4096;
    unsigned threads = 1;
    std::string store, store_format = "raw";
    CLI::Option* store_format_opt = nullptr;
    FamilyOptions family;
    ReadyNotice ready;
    CommonOptions common;
};

Json stats_json(const EchoServerStats& s) {
    Json errors = Json::object();
    errors["ECONNRESET"] = s.errors.count(ECONNRESET);
    for (const auto& [name, count] : s.errors.by_name()) errors[name] = count;
    return {
        {"connections",
         {{"accepted", s.accepted},
          {"refused", s.refused()},
          {"peak", s.peak},
          {"current", s.current},
          {"idle_closed", s.idle_closed},
          {"refused_by",
           {{"max_connections", s.refused_max_connections},
            {"fd_setsize", s.refused_fd_setsize},
            {"emfile", s.refused_emfile},
            {"fork_failed", s.refused_fork_failed}}}}},
        {"bytes", {{"in", s.bytes_in}, {"out", s.bytes_out}, {"unsent", s.bytes_unsent}}},
        {"datagrams",
         {{"in", s.datagrams.in}, {"out", s.datagrams.out}, {"truncated", s.datagrams.truncated}, {"dropped", s.datagrams.dropped},
          {"overflowed", s.datagrams.overflowed}}},
        {"peers", s.peers},
        {"errors", errors},
        {"duration_s", s.duration_s},
    };
}

class Reporter : public EchoServerObserver {
public:
    Reporter(Output& out, unsigned threads, ReadyNotice& ready) : out_(out), threads_(threads), ready_(ready) {}
    void on_ready(const std::vector<std::string>& addresses) override { ready_.announce(addresses); }
    void on_listening(const std::string& address, Model model) override {
        auto m = model_name(model);
        out_.event({{"type", "listening"}, {"address", address}, {"model", m}, {"threads", threads_}},
                   threads_ > 1 ? fmt::format("listening on {} (model {}, {} threads)", address, m, threads_)
                                : fmt::format("listening on {} (model {})", address, m));
    }
    void on_stats(const EchoServerStats& s) override {
        Json j = stats_json(s);
        j.erase("errors");
        Json line = {{"type", "stats"}};
        for (auto it = j.begin(); it != j.end(); ++it) line[it.key()] = it.value();
            std::string text = fmt::format("stats t={:.1f}s connections={} peak={} accepted={} refused={} bytes_in={} bytes_out={}",
                                       s.duration_s, s.current, s.peak, s.accepted, s.refused(), s.bytes_in, s.bytes_out);
        if (s.datagrams.in > 0)
            text += fmt::format(" datagrams_in={} datagrams_out={} dropped={} peers={}", s.datagrams.in, s.datagrams.out,
                                s.datagrams.dropped, s.peers);
        out_.event(line, text);
    }
    bool wants_connection_events() const override { return out_.verbosity() > 0; }
    void on_connection(const ConnectionEvent& e) override {
        if (e.kind == ConnectionEvent::Kind::peer) {
            out_.event({{"type", "peer"}, {"peer", e.peer}}, fmt::format("new peer {}", e.peer));
            return;
        }
        bool opened = e.kind == ConnectionEvent::Kind::opened;
        Json j = {{"type", "connection"}, {"event", opened ? "opened" : "closed"}, {"id", e.id}, {"peer", e.peer}};
        if (!opened) {
            j["bytes_in"] = e.bytes_in;
            j["bytes_out"] = e.bytes_out;
            j["reason"] = e.reason;
        }
        // A Unix socket peer names its own path: escaped before it reaches a terminal.
        const std::string peer = printable(e.peer);
        out_.event(j, opened ? fmt::format("connection {} opened from {}", e.id, peer)
                             : fmt::format("connection {} closed ({}) from {}: in={} out={}", e.id, e.reason, peer,
                                           e.bytes_in, e.bytes_out));
    }

private:
    Output& out_;
    unsigned threads_;
    ReadyNotice& ready_;
};

int run_echo_server_command(const EchoServerOptions& o) {
    EchoServerConfig config;
    for (const auto& a : o.addresses) config.addresses.push_back(Address::parse(a));
    if (config.addresses.empty()) config.addresses.push_back(Address::parse(o.family.v6 ? "[::1]:7007" : "127.0.0.1:7007"));
    for (auto& a : config.addresses) apply_family(o.family, a);
    config.model = parse_model(o.model, Feature::echo_server);
    std::uint64_t buffer = parse_size(o.buffer_size);
    if (buffer == 0 || buffer > (1u << 30))
        throw UsageError(fmt::format("invalid --buffer-size '{}': must be between 1 byte and 1G", o.buffer_size));
    config.buffer_size = buffer;
    // Counts go through parse_count, so "-1" or a number past 64 bits is refused, not wrapped.
    config.max_connections = parse_count(o.max_connections, "--max-connections", 1, 100'000'000);
    if (!o.idle_timeout.empty()) {
        config.idle_timeout = parse_duration(o.idle_timeout);
        if (config.idle_timeout->count() <= 0)
            throw UsageError(fmt::format("invalid --idle-timeout '{}': must be greater than 0", o.idle_timeout));
    }
    if (!o.duration.empty()) config.duration = parse_duration(o.duration);
    config.drain_timeout = parse_duration(o.drain_timeout);
    if (!o.stats_interval.empty()) {
        config.stats_interval = parse_duration(o.stats_interval);
        if (config.stats_interval->count() <= 0) throw UsageError("invalid --stats-interval: must be greater than 0");
    }
    config.max_clients = parse_count(o.max_clients, "--max-clients");
    if (o.backlog < 1) throw UsageError(fmt::format("invalid --backlog '{}': must be at least 1", o.backlog));
    config.backlog = o.backlog;
    check_threads(o.threads);
    if (o.threads > 1 && config.model == Model::fork)
        throw UsageError("--threads applies to select, poll, epoll, epoll-et and io_uring; fork is one process per connection");
    config.threads = o.threads;
    if (o.store_opt->count() && o.store.empty()) throw UsageError("invalid --store '': a file name is needed");
    if (!o.store.empty()) config.store = StoreConfig{o.store, parse_store_format(o.store_format)};
    else if (o.store_format_opt->count()) throw UsageError("--store-format needs --store FILE");

    Output out("echo-server", o.common);
    ReadyNotice ready = o.ready;
    Reporter reporter(out, config.threads, ready);
    // A store that others can read holds what every client sent: say so (a new one is 0600).
    struct stat st {};
    if (config.store && ::stat(config.store->path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077))
        out.warning(fmt::format("store {} is open to other users (mode {:04o}); new stores are created 0600", printable(config.store->path),
                                st.st_mode & 07777));
    // UDP echo answers whoever a datagram claims to be from: on a public address, a reflector.
    for (const auto& a : config.addresses)
        if (a.datagram() && !is_loopback_host(a.host))
            out.warning(fmt::format("{} echoes to any sender, including forged ones: on an address others can reach it is a "
                                    "traffic reflector (CVE-1999-0103); keep it on loopback or behind a firewall",
                                    a.to_string()));
    // A pipe or socket on stdout can lose its reader between two lines (| head -n 1): end then,
    // quietly, rather than serve on until the next line finds out.
    struct stat out_st {};
    if (::fstat(1, &out_st) == 0 && (S_ISFIFO(out_st.st_mode) || S_ISSOCK(out_st.st_mode))) config.output_fd = 1;
    forward_signals();
    // Room for every connection allowed (select cannot watch past FD_SETSIZE anyway).
    if (config.model != Model::select) raise_fd_limit(config.max_connections + 64);
    EchoServerStats s = run_echo_server(config, reporter);
    ready.rethrow();
    Json summary = {{"model", model_name(config.model)}, {"threads", config.threads}};
    Json body = stats_json(s);
    for (auto it = body.begin(); it != body.end(); ++it) summary[it.key()] = it.value();
    if (config.store)
        summary["store"] = {{"bytes", s.store_bytes},
                            {"records", s.store_records},
                            {"file", config.store->path},
                            {"format", store_format_name(config.store->format)}};
    out.summary(summary);
    return kOk;
}

}  // namespace

Subcommand setup_echo_server(CLI::App& parent) {
    auto opts = std::make_shared<EchoServerOptions>();
    CLI::App* app = parent.add_subcommand("echo-server", "echo every byte back, with select, poll, epoll, io_uring or fork");
    app->add_option("address", opts->addresses,
                    "where to listen: HOST:PORT, [IPV6]:PORT, PORT, unix:PATH or udp:HOST:PORT (default 127.0.0.1:7007; several allowed)")->type_name("ADDRESS");
    add_model_option(*app, opts->model, Feature::echo_server);
    add_family_options(*app, opts->family);
    app->add_option("--buffer-size", opts->buffer_size, "bytes read per call, also the per-connection backlog cap")->type_name("SIZE")
        ->capture_default_str();
    app->add_option("--max-connections", opts->max_connections,
                    "connections beyond N are accepted, closed at once and counted")->type_name("N")
        ->capture_default_str();
    app->add_option("--idle-timeout", opts->idle_timeout, "close a connection idle for DUR")->type_name("DUR");
    app->add_option("--duration", opts->duration, "stop after DUR")->type_name("DUR");
    app->add_option("--drain-timeout", opts->drain_timeout,
                    "at a stop, how long each connection gets to take the echo it is owed")->type_name("DUR")->capture_default_str();
    app->add_option("--max-clients", opts->max_clients, "stop after N clients have come and gone (0: no limit)")->type_name("N");
    app->add_option("--stats-interval", opts->stats_interval, "print a stats line every DUR (SIGUSR1 prints one at any time)")->type_name("DUR");
    app->add_option("--threads", opts->threads, "event loops, one per thread, each with its own listening socket (SO_REUSEPORT)")
        ->type_name("N")
        ->capture_default_str();
    app->add_option("--backlog", opts->backlog, "listen backlog")->type_name("N")->capture_default_str();
    opts->store_opt = app->add_option("--store", opts->store, "keep every received byte in FILE (through a writer process)")->type_name("FILE");
    opts->store_format_opt = app->add_option("--store-format", opts->store_format, "raw (the bytes) or jsonl (one record per chunk)")->type_name("FORMAT")
                                 ->check(CLI::IsMember({"raw", "jsonl"}))
                                 ->capture_default_str();
    opts->ready.add_option(*app);
    add_common_options(*app, opts->common);
    return {app, [opts] { return run_echo_server_command(*opts); }, &opts->common};
}

}  // namespace muxkit::cli
