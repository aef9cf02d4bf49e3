// run_load: the connections shared among --threads LoadRuns, their reports merged into one
// observer, their counts into one LoadStats.
#include "muxkit/multi_connect.hpp"

#include <deque>
#include <exception>
#include <mutex>
#include <thread>

#include <sys/select.h>

#include <fmt/format.h>

#include "multi_connect/load_run.hpp"
#include "muxkit/clock.hpp"
#include "uring/ring.hpp"

namespace muxkit {

namespace {

// Several threads report to one observer: the k-th interval of every thread is merged into one
// line (in order), progress is the sum of each thread's latest totals.
class MergingObserver final : public LoadObserver {
public:
    MergingObserver(LoadObserver& out, std::size_t threads) : out_(out), latest_(threads), next_k_(threads, 0) {}

    LoadObserver& thread(std::size_t i) { return ports_.emplace_back(*this, i); }

    // After every thread ended: the intervals some threads did not reach, in order.
    void flush() {
        std::lock_guard lock(mutex_);
        for (auto& [k, slot] : pending_) out_.on_interval(slot.stats, slot.t_end);
        pending_.clear();
    }

private:
    struct Slot {
        LoadStats stats;
        double t_end = 0;
        std::size_t reported = 0;
    };
    struct Port final : LoadObserver {
        Port(MergingObserver& m, std::size_t i) : merger(m), index(i) {}
        void on_interval(const LoadStats& s, double t) override { merger.interval(index, s, t); }
        void on_progress(const LoadStats& s) override { merger.progress(index, s); }
        bool wants_failures() const override { return merger.out_.wants_failures(); }
        void on_failure(const LoadFailure& f) override { merger.failure(f); }
        MergingObserver& merger;
        std::size_t index;
    };

    void interval(std::size_t i, const LoadStats& s, double t) {
        std::lock_guard lock(mutex_);
        Slot& slot = pending_[next_k_[i]++];
        slot.stats.merge(s);
        slot.stats.duration_s = s.duration_s;
        slot.t_end = std::max(slot.t_end, t);
        if (++slot.reported < latest_.size()) return;
        while (!pending_.empty() && pending_.begin()->second.reported == latest_.size()) {
            out_.on_interval(pending_.begin()->second.stats, pending_.begin()->second.t_end);
            pending_.erase(pending_.begin());
        }
    }

    void failure(const LoadFailure& f) {
        std::lock_guard lock(mutex_);
        out_.on_failure(f);
    }

    void progress(std::size_t i, const LoadStats& s) {
        std::lock_guard lock(mutex_);
        latest_[i] = s;
        // Progress is counts: summing every thread's histograms each second would cost more
        // than the load.
        latest_[i].connect_ns = latest_[i].rtt_ns = latest_[i].service_ns = Histogram();
        LoadStats sum;
        for (const auto& l : latest_) sum.merge(l);
        out_.on_progress(sum);
    }

    LoadObserver& out_;
    std::mutex mutex_;
    std::vector<LoadStats> latest_;
    std::vector<std::uint64_t> next_k_;
    std::map<std::uint64_t, Slot> pending_;
    std::deque<Port> ports_;  // stable addresses
};

std::unique_ptr<detail::LoadRun> make_load(const LoadConfig& config, LoadObserver& observer, detail::LoadSlice slice) {
    if (config.model == Model::io_uring) return detail::make_uring_load(config, observer, slice);
    return detail::make_readiness_load(config, observer, slice);
}

}  // namespace

LoadStats run_load(const LoadConfig& config, LoadObserver& observer) {
    if (config.connections == 0) throw UsageError("invalid load: at least 1 connection is needed");
    if (config.pipeline == 0) throw UsageError("invalid load: at least 1 message in flight per connection is needed");
    // Each message in flight keeps its send time: bound the product before allocating it.
    const std::uint64_t window = std::min(config.pipeline, config.duration ? UINT64_MAX : config.messages);
    if (window > detail::kMaxInFlight / config.connections)
        throw UsageError(fmt::format("{} connections with {} messages in flight each are more than one run keeps ({} in all)",
                                     config.connections, config.pipeline, detail::kMaxInFlight));
    if (config.payload.empty() && config.size == 0) throw UsageError("invalid load: messages of at least 1 byte are needed");
    if (config.threads == 0) throw UsageError("invalid load: at least 1 thread is needed");
    if (config.target.datagram()) {
        if (config.mode != LoadMode::echo) throw UsageError("a udp: target is sent datagrams to echo; connect and request are for streams");
        if (config.size > 65507) throw UsageError(fmt::format("a UDP datagram holds at most 65507 bytes, not {}", config.size));
        const std::uint64_t ring = detail::datagram_ring(window, config.size);
        if (window > ring)
            throw UsageError(fmt::format("datagrams of {} bytes carry their sequence number modulo 2^{}: {} in flight are more than "
                                         "can be told apart (at most {}; or larger datagrams)",
                                         config.size, 8 * config.size, window, ring));
    }
    if (config.model == Model::select && config.connections + 16 > FD_SETSIZE)
        throw UsageError(fmt::format("{} connections need more descriptors than select can watch (FD_SETSIZE is {}); the poll and epoll models have no such limit",
                                     config.connections, FD_SETSIZE));
    if (config.model == Model::io_uring) detail::check_uring_available();
    const std::uint64_t threads = std::min<std::uint64_t>(config.threads, config.connections);
    if (threads == 1) return make_load(config, observer, {0, config.connections, 1.0})->run();

    // Several threads, each with its share of the connections (and of the rates).
    MergingObserver merged(observer, threads);
    std::vector<std::unique_ptr<detail::LoadRun>> runs;
    std::uint64_t first = 0;
    for (std::uint64_t i = 0; i < threads; ++i) {
        const std::uint64_t count = config.connections / threads + (i < config.connections % threads ? 1 : 0);
        runs.push_back(make_load(config, merged.thread(i), {first, count, static_cast<double>(count) / static_cast<double>(config.connections)}));
        first += count;
    }
    std::vector<LoadStats> parts(threads);
    std::vector<std::exception_ptr> errors(threads);
    std::vector<std::thread> workers;
    for (std::uint64_t i = 0; i < threads; ++i)
        workers.emplace_back([&, i] {
            try {
                parts[i] = runs[i]->run();
            } catch (...) {
                errors[i] = std::current_exception();
            }
        });
    for (auto& w : workers) w.join();
    for (auto& e : errors)
        if (e) std::rethrow_exception(e);
    merged.flush();
    LoadStats total;
    for (const auto& p : parts) total.merge(p);
    return total;
}

}  // namespace muxkit
