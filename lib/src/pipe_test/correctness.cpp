// The pipe scenarios that check what a pipe guarantees: direction, capacity, atomicity, EOF,
// EPIPE, non-blocking behaviour, select and FIFOs.
#include "pipe_test/common.hpp"

namespace muxkit::detail {

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

}  // namespace muxkit::detail
