// muxkit-bench: muxkit against small C baselines and its peers, measured side by side in one run
// (contenders interleaved, each measurement repeated, medians reported), printed as tables of
// absolute figures and ratios, and written as JSON. Loopback only; every run is bounded in time.
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <muxkit/address.hpp>
#include <muxkit/clock.hpp>
#include <muxkit/echo_server.hpp>
#include <muxkit/report.hpp>
#include <muxkit/socket.hpp>

#include "support/spawn.hpp"

using muxkit::Json;

namespace {

const std::string kBaselines = BASELINE_DIR;
int g_rounds = 3;
double g_seconds = 0.5;

struct Proc {
    pid_t pid = -1;
    int out = -1;
};

using Argv = std::vector<std::string>;

// Runs argv without a shell, stdout on a pipe, stderr discarded.
Proc spawn(const Argv& argv, int stdin_fd = -1) {
    muxkit::test::SpawnSetup setup;
    setup.quiet_stderr = true;
    setup.stdin_fd = stdin_fd;
    muxkit::test::Spawned p = muxkit::test::spawn_process(argv, setup);
    return {p.pid, p.out.release()};
}

std::string read_line(const Proc& p, int timeout_ms = 10000) { return muxkit::test::read_line(p.out, timeout_ms); }

void stop(Proc& p) {
    muxkit::test::stop_process(p.pid);
    if (p.out >= 0) ::close(p.out);
    p = Proc{};
}

// Everything argv writes to stdout; its wait status in *status.
std::string capture(const Argv& argv, int* status = nullptr) {
    Proc p = spawn(argv);
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(p.out, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
        if (n > 0) out.append(buf, static_cast<std::size_t>(n));
    ::close(p.out);
    int st = 0;
    while (::waitpid(p.pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (status) *status = st;
    return out;
}

Argv muxkit(Argv args) { return muxkit::test::muxkit_command(std::move(args)); }

// program, as PATH finds it.
bool have(const std::string& program) {
    const char* path = std::getenv("PATH");
    std::istringstream dirs(path ? path : "");
    for (std::string dir; std::getline(dirs, dir, ':');)
        if (!dir.empty() && ::access((dir + "/" + program).c_str(), X_OK) == 0) return true;
    return false;
}

std::string scratch(const std::string& what) { return fmt::format("{}/muxkit-bench-{}-{}.out", muxkit::test::temp_directory(), what, ::getpid()); }

// "A B C" as argv (the fixed command lines below have no quoting).
Argv words(const std::string& line) {
    Argv out;
    std::istringstream in(line);
    for (std::string w; in >> w;) out.push_back(w);
    return out;
}

Json last_json_line(const std::string& out) {
    auto end = out.find_last_not_of('\n');
    if (end == std::string::npos) return nullptr;
    auto start = out.rfind('\n', end);
    try {
        return Json::parse(out.substr(start == std::string::npos ? 0 : start + 1, end + 1 - (start == std::string::npos ? 0 : start + 1)));
    } catch (...) {
        return nullptr;
    }
}

double median(std::vector<double> v) {
    v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !(x > 0); }), v.end());
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

std::uint16_t free_port() {
    muxkit::Fd l = muxkit::listen_on(muxkit::resolve(muxkit::Address::parse("127.0.0.1:0"), true).front(), 1);
    return muxkit::local_endpoint(l.get()).port();
}

bool wait_for_port(std::uint16_t port) {
    auto ep = muxkit::resolve(muxkit::Address::parse(fmt::format("127.0.0.1:{}", port)), false).front();
    for (int i = 0; i < 200; ++i) {
        muxkit::Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (::connect(fd.get(), ep.sa(), ep.length) == 0) return true;
        ::usleep(10000);
    }
    return false;
}

long rss_kib(pid_t pid) {
    std::ifstream in(fmt::format("/proc/{}/status", pid));
    std::string key;
    long value = 0;
    while (in >> key) {
        if (key == "VmRSS:") {
            in >> value;
            return value;
        }
        std::getline(in, key);
    }
    return 0;
}

// ---------------------------------------------------------------- echo servers

struct Server {
    explicit Server(std::string n, bool f = false) : name(std::move(n)), forks(f) {}
    std::string name;
    bool forks = false;  // a process per connection: skipped at 1000 connections
    Proc proc;
    std::uint16_t port = 0;
};

// The muxkit models to measure: io_uring only where this kernel allows it.
std::vector<std::string> muxkit_models() {
    std::vector<std::string> m;
    for (const muxkit::ModelInfo& info : muxkit::models()) {
        if (!muxkit::feature_takes(muxkit::Feature::echo_server, info.model)) continue;
        if (std::string why = muxkit::model_unavailable_reason(info.model); why.empty()) m.emplace_back(info.name);
        else fmt::print("{} skipped: {}\n", info.name, why);
    }
    return m;
}

// The port of echo-server's --json listening line; 0 if none came.
std::uint16_t listening_port(const Proc& server, int timeout_ms = 10000) {
    const std::string address = muxkit::test::read_listening_address(server.out, timeout_ms);
    return address.empty() ? 0 : muxkit::Address::parse(address).port;
}

// "muxkit-MODEL" or "muxkit-MODEL/THREADS".
bool start(Server& s) {
    if (s.name.starts_with("muxkit-")) {
        std::string model = s.name.substr(7), threads = "1";
        if (auto slash = model.find('/'); slash != std::string::npos) {
            threads = model.substr(slash + 1);
            model.resize(slash);
        }
        s.proc = spawn(muxkit({"echo-server", "127.0.0.1:0", "-m", model, "--threads", threads, "--json"}));
        s.port = listening_port(s.proc);
        return s.port != 0;
    }
    if (s.name == "c-epoll") {
        s.proc = spawn({kBaselines + "/epoll_echo_server", "0"});
        std::string line = read_line(s.proc);  // ready PORT
        if (!line.starts_with("ready ")) return false;
        s.port = static_cast<std::uint16_t>(std::stoi(line.substr(6)));
        return true;
    }
    s.port = free_port();
    if (s.name == "ncat") s.proc = spawn(words(fmt::format("ncat -l -k -m 2000 -e /bin/cat 127.0.0.1 {}", s.port)));
    if (s.name == "socat")
        s.proc = spawn(words(fmt::format("socat TCP-LISTEN:{},bind=127.0.0.1,fork,reuseaddr,backlog=1024 EXEC:cat", s.port)));
    return wait_for_port(s.port);
}

struct Load {
    int conns;
    int size;
    int pipeline;
    std::string label() const { return fmt::format("{} conns, {} B, {}", conns, size, pipeline == 1 ? "ping-pong" : fmt::format("{} in flight", pipeline)); }
};

struct Sample {
    double rps = 0, p99 = 0;
};

Sample drive(const Server& s, const Load& l) {
    int st = 0;
    std::string out = capture({kBaselines + "/epoll_echo_client", std::to_string(s.port), std::to_string(l.conns),
                               std::to_string(l.size), std::to_string(l.pipeline), fmt::format("{}", g_seconds)},
                              &st);
    Sample r;
    if (st != 0) return r;
    std::istringstream in(out);
    double p50;
    in >> r.rps >> p50 >> r.p99;
    return r;
}

// One row of the echo table, from its JSON.
void print_echo_row(const Json& r) {
    const Load l{r["conns"].get<int>(), r["size"].get<int>(), r["pipeline"].get<int>()};
    fmt::print("{:<28} {:>14} {:>12.0f} {:>10.0f} {:>9.2f}\n", l.label(), r["server"].get<std::string>(),
               r["round_trips_per_s"].get<double>(), r["p99_us"].get<double>(), r["ratio_to_c_epoll"].get<double>());
}

Json echo_section() {
    std::vector<Server> servers;
    for (const auto& m : muxkit_models()) servers.emplace_back("muxkit-" + m, m == "fork");
    servers.emplace_back("c-epoll");
    if (have("ncat")) servers.emplace_back("ncat", true);
    if (have("socat")) servers.emplace_back("socat", true);
    for (auto& s : servers)
        if (!start(s)) fmt::print(stderr, "bench: {} did not start\n", s.name);
    std::vector<Load> loads = {{1, 64, 1},    {10, 64, 1},    {100, 64, 1},    {1000, 64, 1}, {100, 4096, 1},
                               {10, 64, 16}, {100, 64, 16}, {10, 4096, 16}, {100, 4096, 16}};
    Json rows = Json::array();
    fmt::print("\n== echo-server: round trips per second (median of {} x {}s, driven by the C epoll client)\n", g_rounds, g_seconds);
    fmt::print("{:<28} {:>14} {:>12} {:>10} {:>9}\n", "load", "server", "round trips/s", "p99 us", "x c-epoll");
    for (const auto& l : loads) {
        std::map<std::string, std::vector<double>> rps, p99;
        for (int round = 0; round < g_rounds; ++round)
            for (std::size_t k = 0; k < servers.size(); ++k) {
                const Server& s = servers[(k + round) % servers.size()];  // rotate the order each round
                if (s.port == 0 || (s.forks && l.conns > 100)) continue;
                Sample r = drive(s, l);
                rps[s.name].push_back(r.rps);
                p99[s.name].push_back(r.p99);
            }
        double base = median(rps["c-epoll"]);
        for (const auto& s : servers) {
            if (!rps.count(s.name)) continue;
            double m = median(rps[s.name]);
            double ratio = base > 0 ? m / base : 0;
            rows.push_back({{"conns", l.conns}, {"size", l.size}, {"pipeline", l.pipeline}, {"server", s.name},
                            {"round_trips_per_s", m}, {"p99_us", median(p99[s.name])}, {"ratio_to_c_epoll", ratio}});
            print_echo_row(rows.back());
        }
    }
    for (auto& s : servers) stop(s.proc);
    return rows;
}

// ---------------------------------------------------------------- multi-connect as a load generator

Json client_section() {
    fmt::print("\n== multi-connect as a load generator (against the C epoll server, 100 connections, 64 B ping-pong)\n");
    Server c{"c-epoll"};
    Json out = Json::object();
    if (!start(c)) return out;
    std::vector<std::string> variants = {"-m epoll"};
    if (muxkit::model_unavailable_reason(muxkit::Model::io_uring).empty()) variants.push_back("-m io_uring");
    variants.push_back("-m epoll --threads 2");
    std::map<std::string, std::vector<double>> mc;
    std::vector<double> cc;
    for (int round = 0; round < g_rounds; ++round) {
        for (const auto& v : variants) {
            Argv args = muxkit(words(fmt::format("multi-connect 127.0.0.1:{} -c 100 -d {}s {} --json", c.port, g_seconds * 2, v)));
            Json s = last_json_line(capture(args));
            if (s.is_object()) mc[v].push_back(s["throughput"]["messages_per_s"].get<double>());
        }
        cc.push_back(drive(c, {100, 64, 1}).rps);
    }
    stop(c.proc);
    double b = median(cc);
    fmt::print("{:<40} {:>12.0f}\n", "C epoll client round trips/s", b);
    for (const auto& v : variants) {
        double m = median(mc[v]);
        fmt::print("{:<40} {:>12.0f} {:>7.2f}\n", "multi-connect " + v, m, b > 0 ? m / b : 0);
        out["variants"][v] = m;
    }
    double m = median(mc["-m epoll"]);
    out["multi_connect_per_s"] = m;
    out["c_client_per_s"] = b;
    out["ratio"] = b > 0 ? m / b : 0;

    // 10,000 connections against echo-server -m epoll.
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_max < 10100) {  // each side needs its own 10,000 descriptors
        fmt::print("10,000 connections: skipped (hard descriptor limit {})\n", rl.rlim_max);
        return out;
    }
    Server e{"muxkit-epoll"};
    if (!start(e)) return out;
    Json once = last_json_line(capture(muxkit(words(fmt::format("multi-connect 127.0.0.1:{} -c 10000 -n 1 --json", e.port)))));
    Proc idle = spawn(muxkit(words(fmt::format("multi-connect 127.0.0.1:{} -c 10000 -d 4s --rate 200 --json", e.port))));
    ::sleep(3);
    long client_rss = rss_kib(idle.pid), server_rss = rss_kib(e.proc.pid);
    ::waitpid(idle.pid, nullptr, 0);
    ::close(idle.out);
    stop(e.proc);
    if (once.is_object()) {
        out["conn10k_established"] = once["connections"]["established"];
        out["conn10k_duration_s"] = once["duration_s"];
        fmt::print("{:<40} {:>12}\n{:<40} {:>12.2f}\n", "10,000 connections: established", once["connections"]["established"].dump(),
                   "  connected and echoed once, seconds", once["duration_s"].get<double>());
    }
    out["conn10k_client_rss_kib"] = client_rss;
    out["conn10k_server_rss_kib"] = server_rss;
    fmt::print("{:<40} {:>12.1f}\n{:<40} {:>12.1f}\n", "  echo-server RSS, MiB", server_rss / 1024.0, "  multi-connect RSS, MiB", client_rss / 1024.0);
    return out;
}

// ---------------------------------------------------------------- connect mode: the accept path

// New connections per second, each closed once established: multi-connect --mode connect and the
// C connect loop, against muxkit's epoll echo-server and the C epoll server; then connect p99
// under an open-loop --rate.
Json connect_section() {
    constexpr int kSlots = 10;
    fmt::print("\n== connect mode: new connections per second ({} slots, median of {} x {}s)\n", kSlots, g_rounds, g_seconds * 2);
    fmt::print("{:<16} {:<24} {:>12} {:>10} {:>10}\n", "server", "client", "connects/s", "p99 us", "x C loop");
    Json rows = Json::array();
    for (std::string name : {"muxkit-epoll", "c-epoll"}) {
        Server server(name);
        if (!start(server)) continue;
        std::vector<double> mc, mc_p99, loop, loop_p99;
        for (int round = 0; round < g_rounds; ++round) {
            Json s = last_json_line(capture(muxkit(words(fmt::format("multi-connect 127.0.0.1:{} --mode connect -c {} -d {}s --json",
                                                                     server.port, kSlots, g_seconds * 2)))));
            if (s.is_object()) {
                mc.push_back(s["throughput"]["connections_per_s"].get<double>());
                mc_p99.push_back(s["connect_us"]["p99"].is_number() ? s["connect_us"]["p99"].get<double>() : 0);
            }
            int st = 0;
            std::istringstream in(capture({kBaselines + "/connect_loop", std::to_string(server.port), std::to_string(kSlots),
                                           fmt::format("{}", g_seconds * 2)},
                                          &st));
            double rate = 0, p50 = 0, p99 = 0;
            if (st == 0 && in >> rate >> p50 >> p99) {
                loop.push_back(rate);
                loop_p99.push_back(p99);
            }
        }
        const double base = median(loop), m = median(mc);
        rows.push_back({{"server", name}, {"client", "c-connect-loop"}, {"connects_per_s", base}, {"p99_us", median(loop_p99)}, {"ratio", 1.0}});
        rows.push_back({{"server", name}, {"client", "multi-connect"}, {"connects_per_s", m}, {"p99_us", median(mc_p99)},
                        {"ratio", base > 0 ? m / base : 0}});
        for (std::size_t i = rows.size() - 2; i < rows.size(); ++i)
            fmt::print("{:<16} {:<24} {:>12.0f} {:>10.0f} {:>10.2f}\n", name, rows[i]["client"].get<std::string>(),
                       rows[i]["connects_per_s"].get<double>(), rows[i]["p99_us"].get<double>(), rows[i]["ratio"].get<double>());
        if (name == "muxkit-epoll") {
            Json s = last_json_line(capture(muxkit(words(fmt::format("multi-connect 127.0.0.1:{} --mode connect -c {} --rate 5000 -d {}s --json",
                                                                     server.port, kSlots, g_seconds * 2)))));
            if (s.is_object() && s["connect_us"]["p99"].is_number()) {
                rows.push_back({{"server", name}, {"client", "multi-connect --rate 5000"},
                                {"connects_per_s", s["throughput"]["connections_per_s"]}, {"p99_us", s["connect_us"]["p99"]}});
                fmt::print("{:<16} {:<24} {:>12.0f} {:>10.0f}\n", name, "multi-connect --rate 5000",
                           s["throughput"]["connections_per_s"].get<double>(), s["connect_us"]["p99"].get<double>());
            }
        }
        stop(server.proc);
    }
    return rows;
}

// ---------------------------------------------------------------- UDP

// Waits until a datagram to 127.0.0.1:port comes back (a UDP server has no accept to probe).
bool wait_for_udp_echo(std::uint16_t port) {
    muxkit::Connecting c = muxkit::connect_datagram(muxkit::resolve(muxkit::Address::parse(fmt::format("udp:127.0.0.1:{}", port)), false).front());
    if (c.err) return false;
    for (int i = 0; i < 50; ++i) {
        if (::send(c.fd.get(), "probe", 5, 0) == 5) {
            pollfd p{c.fd.get(), POLLIN, 0};
            char buf[16];
            if (::poll(&p, 1, 100) == 1 && ::recv(c.fd.get(), buf, sizeof buf, 0) == 5) return true;
        }
        ::usleep(20000);
    }
    return false;
}

std::uint16_t free_udp_port() {
    muxkit::Fd s = muxkit::bind_datagram(muxkit::resolve(muxkit::Address::parse("udp:127.0.0.1:0"), true).front());
    return muxkit::local_endpoint(s.get()).port();
}

bool start_udp(Server& s) {
    if (s.name.starts_with("muxkit-")) {
        s.proc = spawn(muxkit({"echo-server", "udp:127.0.0.1:0", "-m", s.name.substr(7), "--buffer-size", "64K", "--json"}));
        s.port = listening_port(s.proc);
    } else if (s.name == "c-udp") {
        s.proc = spawn({kBaselines + "/udp_echo_server", "0"});
        const std::string line = read_line(s.proc);  // ready PORT
        if (line.starts_with("ready ")) s.port = static_cast<std::uint16_t>(std::stoi(line.substr(6)));
    } else {
        s.port = free_udp_port();
        if (s.name == "ncat") s.proc = spawn(words(fmt::format("ncat -u -l -k -e /bin/cat 127.0.0.1 {}", s.port)));
        if (s.name == "socat") s.proc = spawn(words(fmt::format("socat UDP-RECVFROM:{},bind=127.0.0.1,fork EXEC:cat", s.port)));
    }
    return s.port != 0 && wait_for_udp_echo(s.port);
}

// Datagram round trips per second and the share lost, with multi-connect as the client of every
// server (the same client for all, so the ratios compare the servers).
Json udp_section() {
    std::vector<Server> servers;
    for (const auto& m : muxkit_models())
        if (m != "fork") servers.emplace_back("muxkit-" + m);
    servers.emplace_back("c-udp");
    if (have("ncat")) servers.emplace_back("ncat");
    if (have("socat")) servers.emplace_back("socat");
    for (auto& s : servers)
        if (!start_udp(s)) fmt::print(stderr, "bench: {} did not answer over UDP\n", s.name);
    const std::vector<Load> loads = {{1, 64, 1}, {10, 64, 1}, {10, 64, 16}, {10, 1400, 16}};
    Json rows = Json::array();
    fmt::print("\n== UDP echo: datagram round trips per second (median of {} x {}s, multi-connect as the client)\n", g_rounds, g_seconds * 2);
    fmt::print("{:<28} {:>14} {:>12} {:>10} {:>9} {:>8}\n", "load", "server", "round trips/s", "p99 us", "x c-udp", "lost %");
    for (const auto& l : loads) {
        std::map<std::string, std::vector<double>> rps, p99, lost;
        for (int round = 0; round < g_rounds; ++round)
            for (std::size_t k = 0; k < servers.size(); ++k) {
                const Server& s = servers[(k + round) % servers.size()];
                if (s.port == 0) continue;
                Json j = last_json_line(capture(muxkit(words(fmt::format(
                    "multi-connect udp:127.0.0.1:{} -c {} -s {} --pipeline {} -d {}s --reply-timeout 200ms --max-loss 100 --json",
                    s.port, l.conns, l.size, l.pipeline, g_seconds * 2)))));
                if (!j.is_object()) continue;
                const double sent = j["messages"]["sent"].get<double>();
                rps[s.name].push_back(j["throughput"]["messages_per_s"].get<double>());
                p99[s.name].push_back(j["rtt_us"]["p99"].is_number() ? j["rtt_us"]["p99"].get<double>() : 0);
                lost[s.name].push_back(sent > 0 ? 100.0 * j["messages"]["lost"].get<double>() / sent : 0);
            }
        const double base = median(rps["c-udp"]);
        for (const auto& s : servers) {
            if (!rps.count(s.name)) continue;
            const double m = median(rps[s.name]);
            std::vector<double> l_lost = lost[s.name];
            std::sort(l_lost.begin(), l_lost.end());
            rows.push_back({{"conns", l.conns}, {"size", l.size}, {"pipeline", l.pipeline}, {"server", s.name}, {"round_trips_per_s", m},
                            {"p99_us", median(p99[s.name])}, {"ratio_to_c_udp", base > 0 ? m / base : 0},
                            {"lost_percent", l_lost.empty() ? 0.0 : l_lost[l_lost.size() / 2]}});
            const Json& r = rows.back();
            fmt::print("{:<28} {:>14} {:>12.0f} {:>10.0f} {:>9.2f} {:>8.2f}\n", l.label(), s.name, m, r["p99_us"].get<double>(),
                       r["ratio_to_c_udp"].get<double>(), r["lost_percent"].get<double>());
        }
    }
    for (auto& s : servers) stop(s.proc);
    return rows;
}

// ---------------------------------------------------------------- pipes

// dd if=/dev/zero | dd of=/dev/null, TOTAL bytes in BLOCK-sized blocks: two processes and a pipe.
void dd_pipeline(std::uint64_t block, std::uint64_t total) {
    Proc source = spawn({"dd", "if=/dev/zero", fmt::format("bs={}", block), fmt::format("count={}", total / block), "status=none"});
    Proc sink = spawn({"dd", "of=/dev/null", fmt::format("bs={}", block), "status=none"}, source.out);
    ::close(source.out);
    ::waitpid(source.pid, nullptr, 0);
    ::waitpid(sink.pid, nullptr, 0);
    ::close(sink.out);
}

Json pipe_section() {
    fmt::print("\n== pipe-test throughput, bytes per second (median of {})\n", g_rounds);
    fmt::print("{:>8} {:>14} {:>14} {:>14} {:>14} {:>14} {:>9} {:>9}\n", "block", "read-write", "vmsplice", "splice", "dd | dd",
               "C copy", "rw x dd", "splice x rw");
    Json rows = Json::array();
    const std::uint64_t total = 512ull << 20;
    for (std::uint64_t block : {4096ull, 65536ull, 1048576ull}) {
        std::map<std::string, std::vector<double>> v;
        for (int round = 0; round < g_rounds; ++round) {
            std::string out = capture(muxkit(words(fmt::format("pipe-test throughput --sizes {} --bytes {} --splice --json", block, total))));
            std::istringstream lines(out);
            std::string line;
            while (std::getline(lines, line)) {
                Json j = Json::parse(line, nullptr, false);
                if (j.is_object() && j["type"] == "scenario")
                    v[j["measured"]["method"].get<std::string>()].push_back(j["measured"]["bytes_per_s"].get<double>());
            }
            std::int64_t t0 = muxkit::now_ns();
            dd_pipeline(block, total);
            v["dd"].push_back(static_cast<double>(total) / (static_cast<double>(muxkit::now_ns() - t0) / 1e9));
            v["c"].push_back(std::atof(capture({kBaselines + "/pipe_copy", std::to_string(block), std::to_string(total)}).c_str()));
        }
        double rw = median(v["read-write"]), vm = median(v["vmsplice"]), sp = median(v["splice"]), dd = median(v["dd"]), c = median(v["c"]);
        rows.push_back({{"block_size", block}, {"read_write", rw}, {"vmsplice", vm}, {"splice", sp}, {"dd", dd}, {"c_copy", c},
                        {"rw_over_dd", dd > 0 ? rw / dd : 0}, {"splice_over_rw", rw > 0 ? sp / rw : 0}});
        const Json& r = rows.back();
        fmt::print("{:>8} {:>14.3g} {:>14.3g} {:>14.3g} {:>14.3g} {:>14.3g} {:>9.2f} {:>9.2f}\n", r["block_size"].get<std::uint64_t>(),
                   r["read_write"].get<double>(), r["vmsplice"].get<double>(), r["splice"].get<double>(), r["dd"].get<double>(),
                   r["c_copy"].get<double>(), r["rw_over_dd"].get<double>(), r["splice_over_rw"].get<double>());
    }
    std::vector<double> mux, c;
    for (int round = 0; round < g_rounds; ++round) {
        std::string out = capture(muxkit({"pipe-test", "latency", "--iterations", "20000", "--json"}));
        std::istringstream lines(out);
        std::string line;
        std::getline(lines, line);
        Json row = Json::parse(line, nullptr, false);
        if (row.is_object()) mux.push_back(row["measured"]["p50_us"].get<double>());
        c.push_back(std::atof(capture({kBaselines + "/pipe_pingpong", "20000", "64"}).c_str()));
    }
    double m = median(mux), b = median(c);
    fmt::print("pipe round trip (64 B) p50: muxkit {:.2f} us, C ping-pong {:.2f} us, ratio {:.2f}\n", m, b, b > 0 ? m / b : 0);
    return {{"throughput", rows}, {"latency_p50_us", m}, {"c_pingpong_p50_us", b}, {"latency_ratio", b > 0 ? m / b : 0}};
}

// ---------------------------------------------------------------- echo-server under a tool

// Runs `TOOL echo-server ... SERVER_ARGS` (TOOL writes its report to REPORT), drives it with
// `multi-connect CLIENT_ARGS` until --max-clients in SERVER_ARGS ends it, and returns the report's
// lines; nullopt when the server did not start.
std::optional<std::vector<std::string>> under_tool(const std::string& tool, const std::string& report, const std::string& server_args,
                                                   const std::string& client_args, int start_timeout_ms) {
    Argv command = words(tool);
    for (auto& w : muxkit(words("echo-server 127.0.0.1:0 --json " + server_args))) command.push_back(w);
    Proc server = spawn(command);
    const std::uint16_t port = listening_port(server, start_timeout_ms);
    if (port == 0) {
        stop(server);
        return std::nullopt;
    }
    capture(muxkit(words(fmt::format("multi-connect 127.0.0.1:{} {}", port, client_args))));
    for (int i = 0; i < 3000 && ::waitpid(server.pid, nullptr, WNOHANG) != server.pid; ++i) ::usleep(10000);
    ::close(server.out);
    std::vector<std::string> lines;
    std::ifstream in(report);
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    ::unlink(report.c_str());
    return lines;
}

// ---------------------------------------------------------------- several event loops

// Round trips/s of two C clients at once (50 connections x 16 in flight each, 64 B), so that
// the server, not one client, is what runs out of CPU first.
double drive_two_clients(const Server& s) {
    const Argv cmd = {kBaselines + "/epoll_echo_client", std::to_string(s.port), "50", "64", "16", fmt::format("{}", g_seconds * 2)};
    std::string a, b;
    std::thread other([&] { a = capture(cmd); });
    b = capture(cmd);
    other.join();
    return std::atof(a.c_str()) + std::atof(b.c_str());
}

Json threads_section() {
    fmt::print("\n== --threads 2 against --threads 1 (two C clients x 50 connections x 16 in flight, 64 B; median of {})\n", g_rounds);
    std::vector<std::string> models = {"epoll"};
    if (muxkit::model_unavailable_reason(muxkit::Model::io_uring).empty()) models.push_back("io_uring");
    Json out = Json::object();
    for (const auto& m : models) {
        Server one{"muxkit-" + m + "/1"}, two{"muxkit-" + m + "/2"};
        if (!start(one) || !start(two)) continue;
        std::vector<double> r1, r2;
        for (int round = 0; round < g_rounds; ++round) {
            r1.push_back(drive_two_clients(one));
            r2.push_back(drive_two_clients(two));
        }
        stop(one.proc);
        stop(two.proc);
        double a = median(r1), b = median(r2);
        fmt::print("{:<10} threads 1: {:>10.0f}/s  threads 2: {:>10.0f}/s  ratio {:.2f}\n", m, a, b, a > 0 ? b / a : 0);
        out[m] = {{"threads_1_per_s", a}, {"threads_2_per_s", b}, {"ratio", a > 0 ? b / a : 0}};
    }
    return out;
}

// ---------------------------------------------------------------- system calls per message

// How system calls are counted: perf's raw_syscalls tracepoint (exact, nearly free), or
// strace -c -f where perf cannot (strace slows the server, so more work waits per call).
std::string syscall_counter() {
    if (have("perf")) {
        std::string probe = capture(words("perf stat -x, -e raw_syscalls:sys_enter -o /dev/stdout true"));
        if (probe.find("raw_syscalls") != std::string::npos && std::atof(probe.substr(probe.find('\n') + 1).c_str()) > 0) return "perf";
    }
    return have("strace") ? "strace" : "";
}

// System calls of echo-server while multi-connect sends 10 connections x MESSAGES messages; the
// difference between two message counts cancels start-up and shutdown.
std::optional<double> count_syscalls(const std::string& counter, const std::string& model, std::uint64_t messages, int pipeline) {
    std::string file = scratch("syscalls");
    std::string tool = counter == "perf" ? fmt::format("perf stat -x, -e raw_syscalls:sys_enter -o {} --", file)
                                         : fmt::format("strace -c -f -o {}", file);
    auto lines = under_tool(tool, file, fmt::format("-m {} --max-clients 10", model),
                            fmt::format("-c 10 -n {} -s 64 --pipeline {}", messages, pipeline), 30000);
    if (!lines) return std::nullopt;
    std::optional<double> total;
    for (const auto& l : *lines) {
        if (counter == "perf" && l.find("raw_syscalls:sys_enter") != std::string::npos) total = std::atof(l.c_str());
        if (counter == "strace" && l.ends_with(" total")) {  // "100.00  SECONDS  USECS/CALL  CALLS  ERRORS total"
            std::istringstream fields(l);
            double pct, seconds, usecs, calls;
            if (fields >> pct >> seconds >> usecs >> calls) total = calls;
        }
    }
    return total;
}

Json syscalls_section() {
    std::string counter = syscall_counter();
    fmt::print("\n== system calls per echoed message (echo-server under {}; 10 connections, 64 B)\n", counter.empty() ? "?" : counter);
    if (counter.empty()) {
        fmt::print("skipped: neither perf nor strace can count system calls here\n");
        return nullptr;
    }
    Json out = {{"counter", counter}};
    fmt::print("{:<10} {:>12} {:>16}\n", "model", "ping-pong", "16 in flight");
    for (const auto& m : muxkit_models()) {
        if (m == "fork") continue;
        Json row = Json::object();
        for (int pipeline : {1, 16}) {
            auto a = count_syscalls(counter, m, 2000, pipeline), b = count_syscalls(counter, m, 10000, pipeline);
            if (a && b) row[pipeline == 1 ? "ping_pong" : "pipelined"] = (*b - *a) / 80000.0;
        }
        fmt::print("{:<10} {:>12.2f} {:>16.2f}\n", m, row.value("ping_pong", 0.0), row.value("pipelined", 0.0));
        out[m] = row;
    }
    return out;
}

// ---------------------------------------------------------------- instructions per message

std::optional<double> callgrind_instructions(std::uint64_t messages) {
    std::string file = scratch("callgrind");
    auto lines = under_tool(fmt::format("valgrind --tool=callgrind --callgrind-out-file={}", file), file, "-m epoll --max-clients 1",
                            fmt::format("-n {} -s 64", messages), 60000);
    if (!lines) return std::nullopt;
    std::optional<double> total;
    for (const auto& l : *lines)
        if (l.starts_with("summary:") || l.starts_with("totals:")) total = std::atof(l.substr(l.find(':') + 1).c_str());
    return total;
}

Json callgrind_section() {
    fmt::print("\n== instructions per echoed message (echo-server -m epoll under callgrind; 64 B ping-pong)\n");
    if (!have("valgrind")) {
        fmt::print("skipped: valgrind is not installed\n");
        return nullptr;
    }
    auto a = callgrind_instructions(1000), b = callgrind_instructions(5000);
    if (!a || !b) {
        fmt::print("callgrind run failed\n");
        return nullptr;
    }
    double per = (*b - *a) / 4000.0;  // the difference cancels start-up and shutdown
    fmt::print("{:.0f} instructions per message\n", per);
    return per;
}

// ---------------------------------------------------------------- the targets, from what was measured

double echo_rps(const Json& rows, const std::string& server, int conns, int size, int pipeline) {
    for (const auto& r : rows)
        if (r["server"] == server && r["conns"] == conns && r["size"] == size && r["pipeline"] == pipeline)
            return r["round_trips_per_s"].get<double>();
    return 0;
}

// What muxkit should reach, in one table: each check below names its row.
struct Target {
    const char* id;
    double wanted;
    bool at_most;  // the measured value must not exceed wanted (else: reach it)
};
constexpr Target kTargets[] = {
    {"readiness_vs_c", 0.95, false},      // epoll, epoll-et, poll at 100 connections x the C epoll server
    {"select_vs_c", 0.90, false},         // select at 100 connections x the C epoll server
    {"vs_ncat", 4.0, false},              // the readiness models x ncat at 100 connections
    {"vs_socat", 5.0, false},             // the readiness models x socat at 100 connections
    {"fork_vs_socat", 1.2, false},        // fork x socat (both a process per connection)
    {"uring_pipelined_vs_c", 1.3, false},  // io_uring, 100 connections x 16 in flight, 4 KiB
    {"uring_pingpong_vs_c", 1.1, false},  // io_uring, 100 connections, 64 B
    {"uring_syscalls", 1.0, true},        // io_uring system calls per message, 16 in flight
    {"threads_scaling", 1.5, false},      // --threads 2 x --threads 1, two clients
    {"client_vs_c", 0.95, false},         // multi-connect x the C client
    {"connect_vs_c", 0.90, false},        // --mode connect x the C connect loop, new connections per second
    {"udp_vs_c", 0.90, false},            // each model's UDP echo x the C recvmmsg/sendmmsg server
    {"udp_vs_peers", 4.0, false},         // the UDP echo x ncat -u and socat UDP-RECVFROM
    {"conn10k_rss_mib", 64, true},        // RSS at 10,000 connections, each side
    {"pipe_rw_vs_dd", 1.0, false},        // pipe-test read-write x dd | dd
    {"splice_vs_rw", 1.5, false},         // splice x read-write at 1 MiB blocks
    {"pipe_latency_vs_c", 1.1, true},     // pipe round trip p50 x the C ping-pong
};

const Target& target(std::string_view id) {
    for (const Target& t : kTargets)
        if (t.id == id) return t;
    throw std::logic_error("no target " + std::string(id));
}

void print_target_row(const Json& r) {
    fmt::print("{:<64} {:>7.2f} {} {:<5} {}\n", r["target"].get<std::string>(), r["measured"].get<double>(),
               r["at_most"].get<bool>() ? "<=" : ">=", r["wanted"].get<double>(), r["met"].get<bool>() ? "met" : "MISSED");
}

Json targets_section(const Json& results) {
    fmt::print("\n== targets (ratios measured side by side in this run)\n");
    Json out = Json::array();
    auto check = [&](std::string_view id, const std::string& what, double measured) {
        if (!(measured > 0)) return;
        const Target& t = target(id);
        const bool met = t.at_most ? measured <= t.wanted : measured >= t.wanted;
        out.push_back({{"target", what}, {"id", t.id}, {"measured", measured}, {"wanted", t.wanted}, {"at_most", t.at_most}, {"met", met}});
        print_target_row(out.back());
    };
    if (results.contains("echo_server")) {
        const Json& rows = results["echo_server"];
        for (int size : {64, 4096}) {
            double c = echo_rps(rows, "c-epoll", 100, size, 1);
            if (!(c > 0)) continue;
            for (std::string m : {"epoll", "epoll-et", "poll"})
                check("readiness_vs_c", fmt::format("{} at 100 connections, {} B, x c-epoll", m, size), echo_rps(rows, "muxkit-" + m, 100, size, 1) / c);
            check("select_vs_c", fmt::format("select at 100 connections, {} B, x c-epoll", size), echo_rps(rows, "muxkit-select", 100, size, 1) / c);
        }
        double ncat = echo_rps(rows, "ncat", 100, 64, 1), socat = echo_rps(rows, "socat", 100, 64, 1);
        for (std::string m : {"select", "poll", "epoll", "epoll-et"}) {
            double v = echo_rps(rows, "muxkit-" + m, 100, 64, 1);
            if (ncat > 0) check("vs_ncat", fmt::format("{} at 100 connections x ncat", m), v / ncat);
            if (socat > 0) check("vs_socat", fmt::format("{} at 100 connections x socat", m), v / socat);
        }
        for (int conns : {10, 100}) {
            double so = echo_rps(rows, "socat", conns, 64, 1);
            if (so > 0) check("fork_vs_socat", fmt::format("fork at {} connections x socat", conns), echo_rps(rows, "muxkit-fork", conns, 64, 1) / so);
        }
        double c16 = echo_rps(rows, "c-epoll", 100, 4096, 16), c1 = echo_rps(rows, "c-epoll", 100, 64, 1);
        if (c16 > 0)
            check("uring_pipelined_vs_c", "io_uring at 100 connections x 16 in flight, 4 KiB, x c-epoll",
                  echo_rps(rows, "muxkit-io_uring", 100, 4096, 16) / c16);
        if (c1 > 0) check("uring_pingpong_vs_c", "io_uring at 100 connections, 64 B, x c-epoll", echo_rps(rows, "muxkit-io_uring", 100, 64, 1) / c1);
    }
    if (results.contains("syscalls") && results["syscalls"].contains("io_uring"))
        check("uring_syscalls", "io_uring system calls per message, 16 in flight", results["syscalls"]["io_uring"].value("pipelined", 0.0));
    if (results.contains("threads"))
        for (const auto& [model, row] : results["threads"].items())
            check("threads_scaling", fmt::format("{} --threads 2 x --threads 1, pipelined, two clients", model), row["ratio"].get<double>());
    if (results.contains("connect")) {
        for (const Json& r : results["connect"])
            if (r["client"] == "multi-connect")
                check("connect_vs_c", fmt::format("--mode connect against {} x the C connect loop", r["server"].get<std::string>()),
                      r["ratio"].get<double>());
    }
    if (results.contains("udp")) {
        auto udp_rps = [&](const std::string& server, int conns, int pipeline) {
            for (const Json& r : results["udp"])
                if (r["server"] == server && r["conns"] == conns && r["pipeline"] == pipeline && r["size"] == 64)
                    return r["round_trips_per_s"].get<double>();
            return 0.0;
        };
        for (auto [conns, pipeline] : {std::pair{10, 1}, {10, 16}}) {
            const double c = udp_rps("c-udp", conns, pipeline);
            for (const Json& r : results["udp"]) {
                const std::string server = r["server"].get<std::string>();
                if (!server.starts_with("muxkit-") || r["conns"] != conns || r["pipeline"] != pipeline || r["size"] != 64) continue;
                if (c > 0)
                    check("udp_vs_c", fmt::format("UDP {} at {} sockets x {} in flight x c-udp", server.substr(7), conns, pipeline),
                          r["round_trips_per_s"].get<double>() / c);
                for (std::string peer : {"ncat", "socat"})
                    if (pipeline == 1 && udp_rps(peer, conns, pipeline) > 0)
                        check("udp_vs_peers", fmt::format("UDP {} at {} sockets x {}", server.substr(7), conns, peer),
                              r["round_trips_per_s"].get<double>() / udp_rps(peer, conns, pipeline));
            }
        }
    }
    if (results.contains("multi_connect")) {
        const Json& mc = results["multi_connect"];
        if (mc.contains("ratio")) check("client_vs_c", "multi-connect x the C client, 100 connections", mc["ratio"].get<double>());
        if (mc.contains("conn10k_server_rss_kib")) {
            check("conn10k_rss_mib", "10,000 connections: echo-server RSS, MiB", mc["conn10k_server_rss_kib"].get<double>() / 1024);
            check("conn10k_rss_mib", "10,000 connections: multi-connect RSS, MiB", mc["conn10k_client_rss_kib"].get<double>() / 1024);
        }
    }
    if (results.contains("pipe")) {
        for (const auto& r : results["pipe"]["throughput"]) {
            check("pipe_rw_vs_dd", fmt::format("pipe read-write {} B x dd", r["block_size"].get<int>()), r["rw_over_dd"].get<double>());
            if (r["block_size"] == 1048576) check("splice_vs_rw", "pipe splice at 1 MiB x read-write", r["splice_over_rw"].get<double>());
        }
        check("pipe_latency_vs_c", "pipe latency p50 x the C ping-pong", results["pipe"]["latency_ratio"].get<double>());
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    std::string out_dir = "bench/results";
    std::vector<std::string> sections;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--quick") {
            g_rounds = 1;
            g_seconds = 0.25;
        } else if (a == "--out" && i + 1 < argc) out_dir = argv[++i];
        else sections.push_back(a);
    }
    if (sections.empty()) sections = {"echo", "threads", "syscalls", "client", "connect", "udp", "pipe", "callgrind"};
    ::signal(SIGPIPE, SIG_IGN);
    std::setvbuf(stdout, nullptr, _IOLBF, 0);  // tables appear as they are measured, never twice through a fork
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);

    Json results = {{"machine", {{"kernel", muxkit::environment_info()["kernel"]}, {"cpus", std::thread::hardware_concurrency()},
                                 {"date", capture({"date", "-u", "+%Y-%m-%dT%H:%M:%SZ"}).substr(0, 20)}}}};
    fmt::print("muxkit-bench on {} cpus, kernel {}; loopback only\n", std::thread::hardware_concurrency(),
               results["machine"]["kernel"].get<std::string>());
    for (const auto& s : sections) {
        if (s == "echo") results["echo_server"] = echo_section();
        else if (s == "client") results["multi_connect"] = client_section();
        else if (s == "connect") results["connect"] = connect_section();
        else if (s == "udp") results["udp"] = udp_section();
        else if (s == "pipe") results["pipe"] = pipe_section();
        else if (s == "callgrind") results["instructions_per_message"] = callgrind_section();
        else if (s == "threads") results["threads"] = threads_section();
        else if (s == "syscalls") results["syscalls"] = syscalls_section();
        else {
            fmt::print(stderr, "muxkit-bench: unknown section '{}' (echo, threads, syscalls, client, connect, udp, pipe, callgrind)\n", s);
            return 2;
        }
    }
    results["targets"] = targets_section(results);
    ::mkdir(out_dir.c_str(), 0755);
    std::string path = fmt::format("{}/bench-{}.json", out_dir, ::time(nullptr));
    std::ofstream(path) << results.dump(2) << "\n";
    fmt::print("\nresults written to {}\n", path);
    return 0;
}
