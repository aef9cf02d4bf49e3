// The pipe scenarios that measure: throughput by copy method and block size, round-trip latency.
#include "pipe_test/common.hpp"

namespace muxkit::detail {

// ---------------------------------------------------------------- throughput
enum class Method { read_write, vmsplice, splice };

std::string_view method_name(Method m) {
    switch (m) {
    case Method::read_write: return "read-write";
    case Method::vmsplice: return "vmsplice";
    case Method::splice: return "splice";
    }
    return "?";
}

ScenarioResult throughput_row(const PipeTestConfig& cfg, std::size_t block, Method method) {
    ScenarioResult r{"throughput"};
    Pipe p = scenario_pipe(cfg);
    const bool timed = cfg.duration.has_value();
    const std::uint64_t target = timed ? UINT64_MAX : std::max<std::uint64_t>(cfg.bytes, block);
    const std::int64_t start = now_ns();
    pid_t pid = fork_child([&] {
        ::signal(SIGPIPE, SIG_IGN);  // a timed run ends by closing the read end: EPIPE ends the writer
        p.read.reset();
        AlignedBuffer buf(block);
        std::uint64_t sent = 0;
        while (sent < target) {
            std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(block, target - sent));
            ssize_t w;
            if (method == Method::read_write) {
                w = ::write(p.write.get(), buf.data.get(), n);
            } else {
                iovec iov{buf.data.get(), n};
                w = ::vmsplice(p.write.get(), &iov, 1, 0);
            }
            if (w < 0) {
                if (errno == EINTR) continue;
                return errno == EPIPE ? 0 : 1;
            }
            sent += static_cast<std::uint64_t>(w);
        }
        return 0;
    });
    p.write.reset();
    AlignedBuffer buf(block);
    Fd devnull = open_dev_null(true);
    std::uint64_t got = 0;
    const std::int64_t end_at = timed ? start + cfg.duration->count() : INT64_MAX;
    for (;;) {
        ssize_t n;
        if (method == Method::splice) n = ::splice(p.read.get(), nullptr, devnull.get(), nullptr, block, SPLICE_F_MOVE);
        else n = ::read(p.read.get(), buf.data.get(), block);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += static_cast<std::uint64_t>(n);
        if (timed && now_ns() >= end_at) break;
    }
    const std::int64_t stop = now_ns();
    p.read.reset();
    ExitStatus st = wait_child(pid, child_deadline());
    const double seconds = static_cast<double>(stop - start) / 1e9;
    const bool complete = timed || got == target;
    r.verdict = (complete && st.exited && st.code == 0) ? Verdict::info : Verdict::fail;
    r.measured = {{"block_size", block},
                  {"method", method_name(method)},
                  {"bytes", got},
                  {"duration_s", seconds},
                  {"bytes_per_s", seconds > 0 ? static_cast<double>(got) / seconds : 0.0}};
    if (!complete || !st.exited || st.code) r.measured["child"] = st.to_string();
    return r;
}

std::vector<ScenarioResult> throughput(const PipeTestConfig& cfg) {
    std::vector<ScenarioResult> rows;
    for (auto size : cfg.sizes) {
        rows.push_back(throughput_row(cfg, size, Method::read_write));
        if (cfg.splice) {
            rows.push_back(throughput_row(cfg, size, Method::vmsplice));
            rows.push_back(throughput_row(cfg, size, Method::splice));
        }
    }
    return rows;
}

// ---------------------------------------------------------------- latency
ScenarioResult latency(const PipeTestConfig& cfg) {
    ScenarioResult r{"latency"};
    constexpr std::size_t kMessage = 64;
    const std::uint64_t iterations = cfg.iterations ? cfg.iterations : 10000;
    Pipe ping = scenario_pipe(cfg), pong = scenario_pipe(cfg);
    pid_t pid = fork_child([&] {
        ping.write.reset();
        pong.read.reset();
        char buf[kMessage];
        for (;;) {
            if (read_full(ping.read.get(), buf, kMessage) != static_cast<ssize_t>(kMessage)) return 0;
            if (write_all(pong.write.get(), buf, kMessage)) return 1;
        }
    });
    ping.read.reset();
    pong.write.reset();
    Histogram h;
    char msg[kMessage], back[kMessage];
    std::uint64_t mismatches = 0, done = 0;
    const std::uint64_t warmup = std::min<std::uint64_t>(100, iterations);
    for (std::uint64_t i = 0; i < warmup + iterations; ++i) {
        fill_stream(i * kMessage, msg, kMessage);
        const std::int64_t t0 = now_ns();
        if (write_all(ping.write.get(), msg, kMessage)) break;
        if (read_full(pong.read.get(), back, kMessage) != static_cast<ssize_t>(kMessage)) break;
        const std::int64_t t1 = now_ns();
        if (std::memcmp(msg, back, kMessage) != 0) ++mismatches;
        if (i >= warmup) {
            h.record(static_cast<std::uint64_t>(t1 - t0));
            ++done;
        }
    }
    ping.write.reset();
    ExitStatus st = wait_child(pid, child_deadline());
    r.verdict = (mismatches == 0 && done == iterations) ? Verdict::info : Verdict::fail;
    r.measured = {{"iterations", done},
                  {"message_size", kMessage},
                  {"p50_us", static_cast<double>(h.percentile(50)) / 1000.0},
                  {"p99_us", static_cast<double>(h.percentile(99)) / 1000.0},
                  {"max_us", static_cast<double>(h.max()) / 1000.0},
                  {"mean_us", h.mean() / 1000.0},
                  {"mismatches", mismatches}};
    if (!st.exited || st.code) r.measured["child"] = st.to_string();
    return r;
}

}  // namespace muxkit::detail
