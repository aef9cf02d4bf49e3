#include "muxkit/pipe_test.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <memory>

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <fmt/format.h>

#include "muxkit/clock.hpp"
#include "muxkit/error.hpp"
#include "muxkit/event_loop.hpp"
#include "muxkit/histogram.hpp"
#include "muxkit/io.hpp"
#include "muxkit/pipe.hpp"
#include "muxkit/process.hpp"

namespace muxkit {

std::string_view verdict_name(Verdict v) noexcept {
    switch (v) {
    case Verdict::pass: return "pass";
    case Verdict::fail: return "fail";
    case Verdict::info: return "info";
    }
    return "?";
}

const std::vector<std::string>& scenario_names() {
    static const std::vector<std::string> names = {"one-way", "shared-duplex", "duplex", "capacity", "atomicity", "eof",
                                                   "epipe", "nonblock", "select", "fifo", "throughput", "latency"};
    return names;
}

const std::vector<std::string>& default_scenarios() {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> v;
        for (const auto& n : scenario_names())
            if (n != "throughput" && n != "latency") v.push_back(n);
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

namespace {

constexpr std::int64_t kChildDeadlineNs = 20'000'000'000;  // no scenario's child may take longer

std::int64_t child_deadline() { return now_ns() + kChildDeadlineNs; }

// The byte at offset o of the stream every correctness scenario sends: any loss, reordering or
// duplication shows up as a mismatch.
inline char stream_byte(std::uint64_t o) { return static_cast<char>((o * 131 + (o >> 12)) & 0xff); }

void fill_stream(std::uint64_t offset, char* dst, std::size_t len) {
    for (std::size_t i = 0; i < len; ++i) dst[i] = stream_byte(offset + i);
}

Pipe scenario_pipe(const PipeTestConfig& cfg, bool nonblocking = false) {
    Pipe p = make_pipe(nonblocking);
    if (cfg.pipe_size) set_pipe_capacity(p.write.get(), static_cast<int>(*cfg.pipe_size));
    return p;
}

std::size_t message_size(std::uint64_t i) { return static_cast<std::size_t>(1 + (i * 37) % 8000); }

// Page-aligned buffers: the copy into and out of a pipe is fastest from page boundaries.
struct AlignedBuffer {
    explicit AlignedBuffer(std::size_t n) : size(n) {
        void* p = nullptr;
        if (::posix_memalign(&p, 4096, std::max<std::size_t>(n, 1)) != 0) throw std::bad_alloc();
        data.reset(static_cast<char*>(p));
        std::memset(data.get(), 'x', n);
    }
    struct Free {
        void operator()(char* p) const { std::free(p); }
    };
    std::unique_ptr<char, Free> data;
    std::size_t size;
};

bool readable_within(int fd, int timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    int rc;
    do rc = ::poll(&p, 1, timeout_ms);
    while (rc < 0 && errno == EINTR);
    return rc > 0;
}

// ---------------------------------------------------------------- one-way
ScenarioResult one_way(const PipeTestConfig& cfg) {
    ScenarioResult r{"one-way"};
    const std::uint64_t messages = cfg.iterations ? cfg.iterations : 1000;
    std::uint64_t total = 0;
    for (std::uint64_t i = 0; i < messages; ++i) total += message_size(i);
    Pipe p = scenario_pipe(cfg);
    pid_t pid = fork_child([&] {
        p.write.reset();  // the child only reads: its copy of the write end would withhold EOF
        char buf[65536], want[65536];
        std::uint64_t got = 0;
        for (;;) {
            IoResult n = read_some(p.read.get(), buf, sizeof buf);
            if (n.n <= 0) break;
            fill_stream(got, want, static_cast<std::size_t>(n.n));
            if (std::memcmp(buf, want, static_cast<std::size_t>(n.n)) != 0) return 2;
            got += n.n;
        }
        return got == total ? 0 : 1;
    });
    p.read.reset();
    std::vector<char> msg(8000);
    std::uint64_t off = 0;
    int err = 0;
    for (std::uint64_t i = 0; i < messages && !err; ++i) {
        std::size_t n = message_size(i);
        fill_stream(off, msg.data(), n);
        err = write_all(p.write.get(), msg.data(), n);
        off += n;
    }
    p.write.reset();
    ExitStatus st = wait_child(pid, child_deadline());
    r.verdict = (!err && st.exited && st.code == 0) ? Verdict::pass : Verdict::fail;
    r.measured = {{"messages", messages}, {"bytes", off}, {"child", st.to_string()},
                  {"verified", st.exited && st.code == 0}};
    if (st.exited && st.code == 2) r.measured["error"] = "the reader saw bytes other than those written";
    return r;
}

// ---------------------------------------------------------------- duplex (two pipes)
ScenarioResult duplex(const PipeTestConfig& cfg) {
    ScenarioResult r{"duplex"};
    const std::uint64_t messages = cfg.iterations ? cfg.iterations : 1000;
    Pipe down = scenario_pipe(cfg), up = scenario_pipe(cfg);
    pid_t pid = fork_child([&] {
        down.write.reset();
        up.read.reset();
        char buf[65536];
        for (;;) {
            IoResult n = read_some(down.read.get(), buf, sizeof buf);
            if (n.n <= 0) return n.n == 0 ? 0 : 1;
            for (ssize_t i = 0; i < n.n; ++i) buf[i] = static_cast<char>(buf[i] + 1);  // proof it went through the child
            if (write_all(up.write.get(), buf, static_cast<std::size_t>(n.n))) return 1;
        }
    });
    down.read.reset();
    up.write.reset();
    std::vector<char> msg(8000), back(8000);
    std::uint64_t off = 0, mismatches = 0, received = 0;
    for (std::uint64_t i = 0; i < messages; ++i) {
        std::size_t n = message_size(i);
        fill_stream(off, msg.data(), n);
        off += n;
        if (write_all(down.write.get(), msg.data(), n)) break;
        ssize_t got = read_full(up.read.get(), back.data(), n);
        if (got != static_cast<ssize_t>(n)) break;
        received += n;
        for (std::size_t k = 0; k < n; ++k)
            if (back[k] != static_cast<char>(msg[k] + 1)) {
                ++mismatches;
                break;
            }
    }
    down.write.reset();
    char extra;
    ssize_t tail = read_full(up.read.get(), &extra, 1);  // EOF once the child is done: nothing more
    ExitStatus st = wait_child(pid, child_deadline());
    bool ok = mismatches == 0 && received == off && tail == 0 && st.exited && st.code == 0;
    r.verdict = ok ? Verdict::pass : Verdict::fail;
    r.measured = {{"messages", messages}, {"bytes_sent", off}, {"bytes_returned", received},
                  {"mismatches", mismatches}, {"child", st.to_string()}};
    return r;
}

// ---------------------------------------------------------------- shared-duplex (one pipe, the pitfall)
ScenarioResult shared_duplex(const PipeTestConfig& cfg) {
    ScenarioResult r{"shared-duplex"};
    r.verdict = Verdict::info;
    const std::uint64_t trials = cfg.iterations ? cfg.iterations : 200;
    Pipe shared = scenario_pipe(cfg, true), go = make_pipe(), done = make_pipe();
    constexpr int kWaitMs = 100;
    // Each side writes an 8-byte message into the one pipe, then reads one message back.
    auto exchange = [&](char who, std::uint64_t t) -> char {
        char msg[8];
        std::snprintf(msg, sizeof msg, "%c%06llu", who, static_cast<unsigned long long>(t % 1000000));
        write_all(shared.write.get(), msg, 8);
        if (!readable_within(shared.read.get(), kWaitMs)) return 'T';
        char got[8];
        IoResult n = read_some(shared.read.get(), got, 8);
        if (n.n != 8) return 'T';
        return got[0] == who ? 'S' : 'O';
    };
    pid_t pid = fork_child([&] {
        go.write.reset();
        done.read.reset();
        for (std::uint64_t t = 0; t < trials; ++t) {
            char g;
            if (read_full(go.read.get(), &g, 1) != 1) return 0;
            char res = exchange('C', t);
            write_all(done.write.get(), &res, 1);
        }
        return 0;
    });
    go.read.reset();
    done.write.reset();
    std::uint64_t parent_own = 0, child_own = 0, other = 0, stalled = 0;
    for (std::uint64_t t = 0; t < trials; ++t) {
        write_all(go.write.get(), "g", 1);
        char mine = exchange('P', t);
        char theirs = 'T';
        if (readable_within(done.read.get(), 2000)) read_full(done.read.get(), &theirs, 1);
        parent_own += mine == 'S';
        child_own += theirs == 'S';
        other += (mine == 'O') + (theirs == 'O');
        stalled += (mine == 'T') + (theirs == 'T');
        char drain[64];
        while (read_some(shared.read.get(), drain, sizeof drain).n > 0) {
        }  // what nobody read must not shift the next trial
    }
    go.write.reset();
    ExitStatus st = wait_child(pid, child_deadline());
    double reads = static_cast<double>(2 * trials);
    r.measured = {{"trials", trials},
                  {"parent_read_own", parent_own},
                  {"child_read_own", child_own},
                  {"read_other_side", other},
                  {"stalled", stalled},
                  {"self_read_ratio", static_cast<double>(parent_own + child_own) / reads},
                  {"child", st.to_string()}};
    return r;
}

// ---------------------------------------------------------------- capacity
ScenarioResult capacity(const PipeTestConfig& cfg) {
    ScenarioResult r{"capacity"};
    Pipe p = scenario_pipe(cfg, true);
    const int size = pipe_capacity(p.write.get());
    char page[4096] = {};
    std::uint64_t total = 0;
    for (;;) {
        IoResult w = write_some(p.write.get(), page, sizeof page);
        if (w.n <= 0) break;
        total += w.n;
    }
    for (;;) {  // the last bytes one at a time
        IoResult w = write_some(p.write.get(), page, 1);
        if (w.n <= 0) break;
        total += w.n;
    }
    r.measured = {{"bytes", total}, {"f_getpipe_sz", size}};
    if (cfg.pipe_size) r.measured["requested"] = *cfg.pipe_size;
    r.verdict = total == static_cast<std::uint64_t>(size) ? Verdict::pass : Verdict::fail;
    return r;
}

// ---------------------------------------------------------------- atomicity
struct InterleaveCount {
    std::uint64_t records = 0, interleaved = 0, bytes = 0;
};

// W writers each write `records` records of `size` bytes (one write call each, filled with the
// writer's letter); the reader counts the size-aligned records that mix letters.
InterleaveCount interleave_run(const PipeTestConfig& cfg, int writers, std::uint64_t records, std::size_t size) {
    Pipe p = scenario_pipe(cfg);
    std::vector<pid_t> pids;
    for (int w = 0; w < writers; ++w) {
        pids.push_back(fork_child([&, w] {
            p.read.reset();
            std::vector<char> rec(size, static_cast<char>('A' + w));
            for (std::uint64_t i = 0; i < records; ++i) {
                IoResult n = write_some(p.write.get(), rec.data(), rec.size());  // one call: atomic or not
                if (n.n < 0) return 1;
                if (static_cast<std::size_t>(n.n) < size && write_all(p.write.get(), rec.data() + n.n, size - n.n)) return 1;
            }
            return 0;
        }));
    }
    p.write.reset();
    std::vector<char> all;
    all.reserve(static_cast<std::size_t>(writers) * records * size);
    char buf[65536];
    for (;;) {
        IoResult n = read_some(p.read.get(), buf, sizeof buf);
        if (n.n <= 0) break;
        all.insert(all.end(), buf, buf + n.n);
    }
    for (pid_t pid : pids) wait_child(pid, child_deadline());
    InterleaveCount c;
    c.bytes = all.size();
    for (std::size_t off = 0; off + size <= all.size(); off += size) {
        ++c.records;
        const char first = all[off];
        if (std::any_of(all.begin() + off, all.begin() + off + size, [&](char ch) { return ch != first; })) ++c.interleaved;
    }
    return c;
}

ScenarioResult atomicity(const PipeTestConfig& cfg) {
    ScenarioResult r{"atomicity"};
    constexpr int writers = 4;
    const std::uint64_t small_records = cfg.iterations ? cfg.iterations : 256;
    InterleaveCount small = interleave_run(cfg, writers, small_records, PIPE_BUF);
    const std::size_t large_size = 16 * PIPE_BUF;
    InterleaveCount large = interleave_run(cfg, writers, 32, large_size);
    const bool complete = small.bytes == writers * small_records * PIPE_BUF;
    r.verdict = (complete && small.interleaved == 0) ? Verdict::pass : Verdict::fail;
    r.measured = {{"pipe_buf", PIPE_BUF},
                  {"writers", writers},
                  {"records", small.records},
                  {"interleaved_small", small.interleaved},
                  {"large_record_size", large_size},
                  {"records_large", large.records},
                  {"interleaved_large", large.interleaved}};
    return r;
}

// ---------------------------------------------------------------- eof
ScenarioResult eof(const PipeTestConfig& cfg) {
    ScenarioResult r{"eof"};
    Pipe p = scenario_pipe(cfg);
    pid_t pid = fork_child([&] {
        p.read.reset();
        ::usleep(100000);  // hold the write end open for a while
        write_all(p.write.get(), "bye", 3);
        return 0;
    });
    p.write.reset();  // the parent's own copy: without this close, EOF never comes
    set_nonblocking(p.read.get());
    char buf[16];
    IoResult early = read_some(p.read.get(), buf, sizeof buf);
    const bool eagain_while_writer_open = early.would_block();
    std::string got;
    bool eof_seen = false;
    const std::int64_t deadline = now_ns() + 5'000'000'000;
    while (!eof_seen && now_ns() < deadline) {
        if (!readable_within(p.read.get(), 1000)) continue;
        IoResult n = read_some(p.read.get(), buf, sizeof buf);
        if (n.n > 0) got.append(buf, static_cast<std::size_t>(n.n));
        else if (n.n == 0) eof_seen = true;
    }
    ExitStatus st = wait_child(pid, child_deadline());

    // The classic mistake: a write end left open in the reader itself withholds EOF for ever.
    Pipe q = scenario_pipe(cfg, true);
    pid_t pid2 = fork_child([&] {
        q.read.reset();
        write_all(q.write.get(), "x", 1);
        return 0;
    });
    wait_child(pid2, child_deadline());
    read_some(q.read.get(), buf, sizeof buf);
    IoResult after = read_some(q.read.get(), buf, sizeof buf);
    const bool withheld = after.would_block();

    r.verdict = (eagain_while_writer_open && eof_seen && got == "bye" && withheld) ? Verdict::pass : Verdict::fail;
    r.measured = {{"eagain_while_a_writer_is_open", eagain_while_writer_open},
                  {"data_before_eof", got},
                  {"eof_after_last_writer_closed", eof_seen},
                  {"eof_withheld_by_own_unclosed_write_end", withheld},
                  {"child", st.to_string()}};
    return r;
}

// ---------------------------------------------------------------- epipe
ScenarioResult epipe(const PipeTestConfig& cfg) {
    ScenarioResult r{"epipe"};
    auto writer_without_reader = [&](bool ignore) {
        return fork_child([&, ignore] {
            ::signal(SIGPIPE, ignore ? SIG_IGN : SIG_DFL);
            Pipe p = scenario_pipe(cfg);
            p.read.reset();
            IoResult w = write_some(p.write.get(), "x", 1);
            return (w.failed() && w.err == EPIPE) ? 0 : 1;
        });
    };
    ExitStatus ignored = wait_child(writer_without_reader(true), child_deadline());
    ExitStatus deflt = wait_child(writer_without_reader(false), child_deadline());
    const bool got_epipe = ignored.exited && ignored.code == 0;
    const bool killed = deflt.signal == SIGPIPE;
    r.verdict = (got_epipe && killed) ? Verdict::pass : Verdict::fail;
    r.measured = {{"sigpipe_ignored", got_epipe ? "write failed with EPIPE" : ignored.to_string()},
                  {"sigpipe_default", deflt.to_string()}};
    return r;
}

// ---------------------------------------------------------------- nonblock
ScenarioResult nonblock(const PipeTestConfig& cfg) {
    ScenarioResult r{"nonblock"};
    Pipe p = scenario_pipe(cfg, true);
    char buf[4096] = {};
    IoResult empty_read = read_some(p.read.get(), buf, sizeof buf);
    std::uint64_t filled = 0;
    IoResult w;
    while ((w = write_some(p.write.get(), buf, sizeof buf)).n > 0) filled += w.n;
    const bool write_eagain = w.would_block();
    // With room for one page, a write larger than PIPE_BUF is cut short rather than refused.
    read_some(p.read.get(), buf, sizeof buf);
    std::vector<char> big(3 * 4096);
    IoResult partial = write_some(p.write.get(), big.data(), big.size());
    r.verdict = (empty_read.would_block() && write_eagain) ? Verdict::pass : Verdict::fail;
    r.measured = {{"read_empty", empty_read.would_block() ? "EAGAIN" : errno_name(empty_read.err)},
                  {"write_full", write_eagain ? "EAGAIN" : errno_name(w.err)},
                  {"bytes_before_full", filled},
                  {"large_write_with_one_page_free", partial.n}};
    return r;
}

// ---------------------------------------------------------------- select
ScenarioResult select_scenario(const PipeTestConfig& cfg) {
    ScenarioResult r{"select"};
    Pipe p = scenario_pipe(cfg, true);
    auto loop = EventLoop::create(Model::select);
    loop->add(p.read.get(), kReadable);
    loop->add(p.write.get(), kWritable);
    auto ready = [&](int fd, std::uint32_t what) {
        for (const Event& ev : loop->wait(now_ns()))
            if (ev.fd == fd && (ev.events & what)) return true;
        return false;
    };
    char buf[4096] = {};
    const bool empty_not_readable = !ready(p.read.get(), kReadable);
    write_some(p.write.get(), "x", 1);
    const bool data_readable = ready(p.read.get(), kReadable);
    read_some(p.read.get(), buf, sizeof buf);
    const bool drained_not_readable = !ready(p.read.get(), kReadable);
    const bool empty_writable = ready(p.write.get(), kWritable);
    while (write_some(p.write.get(), buf, sizeof buf).n > 0) {
    }
    while (write_some(p.write.get(), buf, 1).n > 0) {
    }
    const bool full_not_writable = !ready(p.write.get(), kWritable);
    while (read_some(p.read.get(), buf, sizeof buf).n > 0) {
    }
    loop->remove(p.write.get());
    p.write.reset();
    const bool eof_readable = ready(p.read.get(), kReadable);
    const bool eof_reads_zero = read_some(p.read.get(), buf, sizeof buf).n == 0;
    const bool ok = empty_not_readable && data_readable && drained_not_readable && empty_writable &&
                    full_not_writable && eof_readable && eof_reads_zero;
    r.verdict = ok ? Verdict::pass : Verdict::fail;
    r.measured = {{"empty_not_readable", empty_not_readable},   {"readable_with_data", data_readable},
                  {"drained_not_readable", drained_not_readable}, {"writable_with_room", empty_writable},
                  {"full_not_writable", full_not_writable},       {"readable_at_eof", eof_readable},
                  {"eof_read_returns_0", eof_reads_zero}};
    return r;
}

// ---------------------------------------------------------------- fifo
class TempDir {
public:
    TempDir() {  // in $TMPDIR when it is set, as mktemp(1) does
        const char* dir = std::getenv("TMPDIR");
        std::string tmpl = std::string(dir && *dir ? dir : "/tmp") + "/muxkit-fifo-XXXXXX";
        if (!::mkdtemp(tmpl.data())) throw_errno("mkdtemp");
        path_ = tmpl;
    }
    ~TempDir() {
        ::unlink((path_ + "/fifo").c_str());
        ::rmdir(path_.c_str());
    }
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

ScenarioResult fifo(const PipeTestConfig& cfg) {
    ScenarioResult r{"fifo"};
    TempDir dir;
    const std::string path = dir.path() + "/fifo";
    if (::mkfifo(path.c_str(), 0600) != 0) throw_errno("mkfifo " + path);
    Fd lonely_writer(::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
    const bool enxio = !lonely_writer && errno == ENXIO;
    Fd reader(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    const bool opened_without_writer = static_cast<bool>(reader);
    if (!reader) throw_errno("open " + path);
    const bool quiet_before_writer = !readable_within(reader.get(), 50);
    const std::uint64_t messages = cfg.iterations ? cfg.iterations : 500;
    std::uint64_t total = 0;
    for (std::uint64_t i = 0; i < messages; ++i) total += message_size(i);
    pid_t pid = fork_child([&] {
        reader.reset();
        Fd w(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
        if (!w) return 1;
        if (cfg.pipe_size) set_pipe_capacity(w.get(), static_cast<int>(*cfg.pipe_size));
        std::vector<char> msg(8000);
        std::uint64_t off = 0;
        for (std::uint64_t i = 0; i < messages; ++i) {
            std::size_t n = message_size(i);
            fill_stream(off, msg.data(), n);
            if (write_all(w.get(), msg.data(), n)) return 1;
            off += n;
        }
        return 0;
    });
    std::uint64_t got = 0, mismatches = 0;
    bool eof_seen = false;
    char buf[65536], want[65536];
    const std::int64_t deadline = now_ns() + 10'000'000'000;
    while (!eof_seen && now_ns() < deadline) {
        if (!readable_within(reader.get(), 1000)) continue;
        IoResult n = read_some(reader.get(), buf, sizeof buf);
        if (n.n > 0) {
            fill_stream(got, want, static_cast<std::size_t>(n.n));
            if (std::memcmp(buf, want, static_cast<std::size_t>(n.n)) != 0) ++mismatches;
            got += n.n;
        } else if (n.n == 0 && got > 0) {
            eof_seen = true;
        }
    }
    ExitStatus st = wait_child(pid, child_deadline());
    const bool ok = enxio && opened_without_writer && quiet_before_writer && got == total && mismatches == 0 &&
                    eof_seen && st.exited && st.code == 0;
    r.verdict = ok ? Verdict::pass : Verdict::fail;
    r.measured = {{"write_open_without_reader", enxio ? "ENXIO" : "opened"},
                  {"read_open_without_writer", opened_without_writer ? "opened without blocking" : "failed"},
                  {"quiet_until_a_writer_comes", quiet_before_writer},
                  {"bytes", got},
                  {"mismatches", mismatches},
                  {"eof_when_writer_left", eof_seen},
                  {"child", st.to_string()}};
    return r;
}

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
                  {"seconds", seconds},
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

}  // namespace

std::vector<ScenarioResult> run_scenario(const std::string& name, const PipeTestConfig& cfg) {
    try {
        if (name == "one-way") return {one_way(cfg)};
        if (name == "shared-duplex") return {shared_duplex(cfg)};
        if (name == "duplex") return {duplex(cfg)};
        if (name == "capacity") return {capacity(cfg)};
        if (name == "atomicity") return {atomicity(cfg)};
        if (name == "eof") return {eof(cfg)};
        if (name == "epipe") return {epipe(cfg)};
        if (name == "nonblock") return {nonblock(cfg)};
        if (name == "select") return {select_scenario(cfg)};
        if (name == "fifo") return {fifo(cfg)};
        if (name == "throughput") return throughput(cfg);
        if (name == "latency") return {latency(cfg)};
    } catch (const std::exception& e) {
        ScenarioResult r{name, Verdict::fail};
        r.measured = {{"error", e.what()}};
        if (cfg.pipe_size) r.measured["pipe_max_size"] = environment_info()["pipe_max_size"];
        return {r};
    }
    throw UsageError(fmt::format("unknown scenario '{}'", name));
}

}  // namespace muxkit
