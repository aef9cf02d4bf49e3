// multi-connect --hdr-log, --percentiles and service_us, and muxkit merge: read by HdrHistogram's
// own Java tools, merged exactly, across load hosts in network namespaces driven by pdsh, and
// refusing inputs it cannot merge.
#define BOOST_TEST_MODULE merge_cli
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

#include <csignal>

#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <muxkit/histogram.hpp>

#include "support/test_support.hpp"

using namespace muxkit;
using namespace muxkit::test;

namespace {

const char* kHdrJar = "/usr/share/java/hdrhistogram.jar";

void write_file(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// A multi-connect --json run against server, its whole output kept in dir/name.
Json load_run(const std::string& path, std::vector<std::string> args) {
    RunResult r = run_muxkit(args);
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    write_file(path, r.out);
    return summary_of(r);
}

RunResult run_program(std::vector<std::string> argv, std::chrono::milliseconds timeout = 120s) {
    Child c(std::move(argv), {}, false);
    return c.wait(timeout);
}

// The whole-run line of HistogramLogProcessor's interval output, the last one:
// "2.503: I:10104 ( 50% 90% Max ) T:49932 ( 50% 90% 99% 99.9% 99.99% Max )": count, then values.
std::vector<double> total_percentiles(const std::string& text) {
    std::vector<double> values;
    const auto t = text.rfind(" T:");
    if (t == std::string::npos) return values;
    std::istringstream in(text.substr(t + 3));
    double v = 0;
    std::string paren;
    in >> v;  // the count
    values.push_back(v);
    in >> paren;  // "("
    while (in >> v) values.push_back(v);
    return values;
}

}  // namespace

BOOST_AUTO_TEST_CASE(hdr_log_reads_the_same_in_hdrhistograms_own_processor) {
    if (::access(kHdrJar, R_OK) != 0 || ::access("/usr/bin/java", X_OK) != 0) {
        BOOST_TEST_MESSAGE("skipped: no libhdrhistogram-java and java here");
        return;
    }
    TempDir dir;
    EchoServer server({"-m", "epoll"});
    const std::string log = dir.path + "/run.hlog";
    Json s = load_run(dir.path + "/run.json", {"multi-connect", server.address(), "-c", "4", "-n", "4000", "--interval", "100ms",
                                               "--hdr-log", log, "--json"});
    const std::string text = read_text(log);
    BOOST_TEST(text.starts_with("#[Histogram log format version 1.3]\n#[StartTime: "));
    BOOST_TEST(text.find("\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"") != std::string::npos);
    BOOST_TEST(text.find("Tag=rtt,0.000,") != std::string::npos);
    BOOST_TEST(text.find("Tag=connect,") != std::string::npos);

    for (const auto& [tag, block] : {std::pair{"rtt", "rtt_us"}, {"connect", "connect_us"}}) {
        const std::string out = dir.path + "/" + tag;
        RunResult java = run_program({"java", "-cp", kHdrJar, "org.HdrHistogram.HistogramLogProcessor", "-i", log, "-o", out,
                                      "-tag", tag, "-outputValueUnitRatio", "1000"});
        BOOST_REQUIRE_MESSAGE(java.exit_code == 0, java.err);
        const std::vector<double> theirs = total_percentiles(read_text(out));
        BOOST_REQUIRE_MESSAGE(theirs.size() >= 5u, tag << ": no whole-run line in " << read_text(out));
        BOOST_TEST(theirs[0] == s[block]["samples"].get<double>(), tag);  // every value is in the log
        const char* keys[] = {"p50", "p90", "p99"};
        for (int k = 0; k < 3; ++k) {
            const double ours = s[block][keys[k]].get<double>();
            BOOST_TEST(std::abs(ours - theirs[k + 1]) <= ours / 1000.0 + 0.001,
                       tag << " " << keys[k] << ": muxkit " << ours << ", HdrHistogram " << theirs[k + 1]);
        }
    }
    BOOST_TEST(s["rtt_us"]["samples"] == 16000);  // every message received is in the log
}

BOOST_AUTO_TEST_CASE(merged_percentiles_equal_one_histogram_of_all_samples) {
    TempDir dir;
    EchoServer server({"-m", "epoll"});
    const std::vector<std::vector<std::string>> loads = {
        {"-c", "2", "-n", "2000"}, {"-c", "3", "-n", "1000", "--pipeline", "4", "-s", "1K"}, {"-c", "1", "-n", "3000"}};
    std::vector<std::string> files;
    Histogram all;
    std::uint64_t received = 0, established = 0, bytes = 0;
    double longest = 0;
    for (std::size_t i = 0; i < loads.size(); ++i) {
        std::vector<std::string> args = {"multi-connect", server.address(), "--json"};
        args.insert(args.end(), loads[i].begin(), loads[i].end());
        files.push_back(fmt::format("{}/host{}.json", dir.path, i + 1));
        Json s = load_run(files.back(), args);
        Histogram h = Histogram::decode(s["histograms"]["rtt"].get<std::string>());
        h.set_exact(h.min(), static_cast<std::uint64_t>(s["rtt_us"]["max"].get<double>() * 1000.0 + 0.5), s["rtt_us"]["mean"].get<double>() * 1000.0);
        all.merge(h);
        received += s["messages"]["received"].get<std::uint64_t>();
        established += s["connections"]["established"].get<std::uint64_t>();
        bytes += s["bytes"]["sent"].get<std::uint64_t>();
        longest = std::max(longest, s["duration_s"].get<double>());
    }
    std::vector<std::string> merge = {"merge", "--json"};
    merge.insert(merge.end(), files.begin(), files.end());
    RunResult r = run_muxkit(merge);
    BOOST_TEST(r.exit_code == 0, r.err);
    Json m = summary_of(r);
    BOOST_TEST(m["command"] == "merge");
    BOOST_TEST(m["hosts"] == 3);
    BOOST_TEST(m["inputs"].size() == 3u);
    BOOST_TEST(m["inputs"][1]["file"] == files[1]);
    BOOST_TEST(m["inputs"][1]["messages"] == 3000);
    BOOST_TEST(m["messages"]["received"] == received);
    BOOST_TEST(received == 10000u);
    BOOST_TEST(m["connections"]["established"] == established);
    BOOST_TEST(m["bytes"]["sent"] == bytes);
    BOOST_TEST(m["duration_s"] == longest);
    BOOST_TEST(m["rtt_us"]["samples"] == all.count());
    for (const auto& [p, key] : {std::pair{50.0, "p50"}, {90.0, "p90"}, {99.0, "p99"}, {99.9, "p999"}})
        BOOST_TEST(m["rtt_us"][key].get<double>() == static_cast<double>(all.percentile(p)) / 1000.0, key);
    BOOST_TEST(m["rtt_us"]["max"].get<double>() == static_cast<double>(all.max()) / 1000.0);
    BOOST_TEST(m["target"] == server.address());
    BOOST_TEST(m["settings"].is_array());  // the three runs had different settings
    // The merged summary merges again, to the same result.
    write_file(dir.path + "/merged.json", r.out);
    RunResult again = run_muxkit({"merge", dir.path + "/merged.json", "--json"});
    BOOST_TEST(again.exit_code == 2, "a merge summary is not a multi-connect summary: " << again.err);
    // Thresholds apply to the merged result.
    std::vector<std::string> strict = merge;
    strict.insert(strict.end(), {"--max-p99", "1us"});
    RunResult tight = run_muxkit(strict);
    BOOST_TEST(tight.exit_code == 1);
    BOOST_TEST(summary_of(tight)["check"]["reasons"][0].get<std::string>().find("over --max-p99") != std::string::npos);
    // --percentiles: the .hgrm distribution, its total every merged sample.
    std::vector<std::string> text = {"merge", "--percentiles"};
    text.insert(text.end(), files.begin(), files.end());
    RunResult dist = run_muxkit(text);
    BOOST_TEST(dist.exit_code == 0, dist.err);
    BOOST_TEST(dist.out.find("rtt_us percentile distribution (microseconds):") != std::string::npos);
    BOOST_TEST(dist.out.find("Total count    =        10000]") != std::string::npos, dist.out);
}

BOOST_AUTO_TEST_CASE(connect_mode_runs_merge_and_other_modes_do_not_mix) {
    TempDir dir;
    EchoServer server({"-m", "epoll"});
    const std::string a = dir.path + "/a.json", b = dir.path + "/b.json", e = dir.path + "/e.json";
    load_run(a, {"multi-connect", server.address(), "--mode", "connect", "-c", "2", "-n", "20", "--json"});
    load_run(b, {"multi-connect", server.address(), "--mode", "connect", "-c", "3", "-n", "10", "--json"});
    load_run(e, {"multi-connect", server.address(), "-n", "5", "--json"});
    RunResult r = run_muxkit({"merge", a, b, "--json"});
    BOOST_TEST(r.exit_code == 0, r.err);
    Json m = summary_of(r);
    BOOST_TEST(m["mode"] == "connect");
    BOOST_TEST(m["connections"]["requested"] == 70);
    BOOST_TEST(m["connect_us"]["samples"] == 70);
    BOOST_TEST(m["rtt_us"].is_null());
    BOOST_TEST(m["messages"].is_null());
    RunResult mixed = run_muxkit({"merge", a, e});
    BOOST_TEST(mixed.exit_code == 2);
    BOOST_TEST(mixed.err.find("merge runs of one mode") != std::string::npos, mixed.err);
}

BOOST_AUTO_TEST_CASE(inputs_that_cannot_be_merged_are_named) {
    TempDir dir;
    EchoServer server({"-m", "epoll"});
    const std::string good = dir.path + "/good.json";
    Json s = load_run(good, {"multi-connect", server.address(), "-n", "50", "--json"});
    const std::string line = s.dump();

    write_file(dir.path + "/empty.json", "");
    write_file(dir.path + "/cut.json", line.substr(0, line.size() / 2));
    RunResult es = server.stop();
    write_file(dir.path + "/server.json", es.out);
    Json corrupt = s;
    corrupt["histograms"]["rtt"] = "HISTFAAAAB" + std::string(20, 'A');
    write_file(dir.path + "/corrupt.json", corrupt.dump() + "\n");
    Json missing = s;
    missing.erase("histograms");
    write_file(dir.path + "/nohist.json", missing.dump() + "\n");
    // HdrHistogram's V2 encoding of a histogram recorded with 2 significant digits.
    RunResult two = run_program({"python3", "-c", R"(
import base64, struct, zlib
def zigzag(v):
    v = (v << 1) ^ (v >> 63); out = bytearray()
    while v >> 7: out.append((v & 0x7f) | 0x80); v >>= 7
    out.append(v); return bytes(out)
payload = zigzag(-100) + zigzag(5)
plain = struct.pack('>iiiiqqd', 0x1c849313, len(payload), 0, 2, 1, 3600000000000, 1.0) + payload
packed = zlib.compress(plain)
print(base64.b64encode(struct.pack('>ii', 0x1c849314, len(packed)) + packed).decode())
)"});
    BOOST_REQUIRE_MESSAGE(two.exit_code == 0, two.err);
    Json precision = s;
    precision["histograms"]["rtt"] = two.out.substr(0, two.out.find('\n'));
    write_file(dir.path + "/digits.json", precision.dump() + "\n");
    Json null_rtt = s;  // messages received, but their round trips left out
    null_rtt["histograms"]["rtt"] = nullptr;
    write_file(dir.path + "/nullrtt.json", null_rtt.dump() + "\n");
    Json fewer = s;
    fewer["messages"]["received"] = 5000;
    write_file(dir.path + "/fewer.json", fewer.dump() + "\n");
    Json huge = s;  // with good.json's 50, 2^64 - 1 sent would wrap to 49
    huge["messages"]["sent"] = std::numeric_limits<std::uint64_t>::max();
    huge["run_id"] = "another run";
    write_file(dir.path + "/huge.json", huge.dump() + "\n");

    const std::vector<std::tuple<std::string, int, std::string>> cases = {
        {"empty.json", 2, "holds no summary"},
        {"cut.json", 2, "holds no summary"},
        {"server.json", 2, "is a summary of echo-server, not of multi-connect"},
        {"corrupt.json", 2, "histograms.rtt cannot be merged"},
        {"nohist.json", 2, "histograms.unit is missing"},
        {"digits.json", 2, "recorded with 2 significant digits; muxkit records 3"},
        {"nullrtt.json", 2, "histograms.rtt is missing but rtt_us.samples is 50"},
        {"fewer.json", 2, "histograms.rtt holds 50 round trips but messages.received is 5000"},
        {"huge.json", 2, "pass 2^64 - 1"},
        {"absent.json", 3, "No such file or directory"},
        {"", 3, "Is a directory"},
        {"/dev/zero", 2, "is not a regular file or a pipe"},
        {"/dev/urandom", 2, "is not a regular file or a pipe"},
    };
    for (const auto& [name, code, message] : cases) {
        const std::string path = name.empty() ? dir.path : name.starts_with("/") ? name : dir.path + "/" + name;
        RunResult r = run_muxkit({"merge", good, path, "--json"});
        BOOST_TEST(r.exit_code == code, name << ": " << r.err);
        BOOST_TEST(r.err.find("error: ") != std::string::npos, r.err);
        BOOST_TEST(r.err.find(path) != std::string::npos, name << " not named: " << r.err);
        BOOST_TEST(r.err.find(message) != std::string::npos, message << " not in: " << r.err);
        const auto lines = r.json_lines();
        BOOST_TEST((!lines.empty() && lines.back()["type"] == "error"), name);
    }
    RunResult none = run_muxkit({"merge"});
    BOOST_TEST(none.exit_code == 2);
    // The same run twice is refused, naming both files; runs against different targets merge,
    // with a warning.
    RunResult twice = run_muxkit({"merge", good, good});
    BOOST_TEST(twice.exit_code == 2, twice.err);
    BOOST_TEST(twice.err.find("'" + good + "' and '" + good + "' are the same run (run_id " + s["run_id"].get<std::string>()) !=
                   std::string::npos,
               twice.err);
    EchoServer other({"-m", "poll"});
    const std::string elsewhere = dir.path + "/elsewhere.json";
    load_run(elsewhere, {"multi-connect", other.address(), "-n", "50", "--json"});
    RunResult mixed = run_muxkit({"merge", good, elsewhere, "--json"});
    BOOST_TEST(mixed.exit_code == 0, mixed.err);
    BOOST_TEST(mixed.err.find("warning: the inputs ran against different targets") != std::string::npos, mixed.err);
    // A pipe is read, as far as a limit no summary comes near: one that never ends is refused.
    RunResult endless = run_program({"/bin/sh", "-c", "head -c 100000000 /dev/zero | " MUXKIT_BINARY " merge /dev/stdin"}, 30s);
    BOOST_TEST(endless.exit_code == 2, endless.err);
    BOOST_TEST(endless.err.find("is larger than 64 MiB") != std::string::npos, endless.err);
    RunResult piped = run_program({"/bin/sh", "-c", "cat " + good + " | " MUXKIT_BINARY " merge /dev/stdin --json"}, 30s);
    BOOST_TEST(piped.exit_code == 0, piped.err);
}

BOOST_AUTO_TEST_CASE(service_time_beside_response_time_under_rate) {
    EchoServer server({"-m", "epoll"});
    RunResult r = run_muxkit({"multi-connect", server.address(), "-c", "2", "-n", "200", "--rate", "2000", "--json"});
    BOOST_TEST(r.exit_code == 0, r.err);
    Json s = summary_of(r);
    BOOST_TEST(s["service_us"]["samples"] == 400);
    BOOST_TEST(s["service_us"]["p50"].get<double>() <= s["rtt_us"]["p50"].get<double>());  // sent no earlier than due
    BOOST_TEST(s["service_us"]["max"].get<double>() <= s["rtt_us"]["max"].get<double>());
    BOOST_TEST(s["histograms"]["service"].is_string());
    RunResult plain = run_muxkit({"multi-connect", server.address(), "-n", "20", "--json"});
    Json p = summary_of(plain);
    BOOST_TEST(p["service_us"].is_null());  // without --rate the two are one
    BOOST_TEST(p["histograms"]["service"].is_null());
    RunResult text = run_muxkit({"multi-connect", server.address(), "-n", "20", "--rate", "1000", "--percentiles"});
    BOOST_TEST(text.exit_code == 0, text.err);
    BOOST_TEST(text.out.find("service:     p50=") != std::string::npos, text.out);
    BOOST_TEST(text.out.find("histograms") == std::string::npos);  // for JSON readers only
    BOOST_TEST(text.out.find("rtt_us percentile distribution (microseconds):") != std::string::npos);
    BOOST_TEST(text.out.find("Total count    =           20]") != std::string::npos, text.out);
    RunResult rows = run_muxkit({"multi-connect", server.address(), "-n", "20", "--percentiles", "--json"});
    Json last = summary_of(rows)["percentiles"].back();
    BOOST_TEST(last["percentile"] == 100.0);
    BOOST_TEST(last["total_count"] == 20);
}

// Every summary says which run it was: host, start (UTC), version, and an id of its own.
BOOST_AUTO_TEST_CASE(each_summary_names_its_host_start_version_and_run) {
    EchoServer server({"-m", "epoll"});
    TempDir dir;
    const Json a = load_run(dir.path + "/a.json", {"multi-connect", server.address(), "-n", "5", "--json"});
    const Json b = load_run(dir.path + "/b.json", {"multi-connect", server.address(), "-n", "5", "--json"});
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    BOOST_TEST(a["host"] == std::string(host));
    const std::string started = a["started_at"].get<std::string>();
    BOOST_TEST(started.size() == 20u, started);  // 2026-12-07T21:00:00Z
    BOOST_TEST(started[10] == 'T');
    BOOST_TEST(started.back() == 'Z');
    BOOST_TEST(a["muxkit_version"].get<std::string>().size() > 0u);
    BOOST_TEST(a["run_id"].get<std::string>().size() == 32u);
    BOOST_TEST(a["run_id"] != b["run_id"]);
}

BOOST_AUTO_TEST_CASE(hdr_log_that_cannot_be_written_is_a_runtime_error) {
    RunResult r = run_muxkit({"multi-connect", "127.0.0.1:1", "--hdr-log", "/nonexistent/dir/x.hlog"});
    BOOST_TEST(r.exit_code == 3);
    BOOST_TEST(r.err.find("cannot write --hdr-log '/nonexistent/dir/x.hlog': No such file or directory") != std::string::npos, r.err);
    // A full disk: the error of the write that failed, not of whatever call came after it.
    EchoServer server({"-m", "epoll"});
    RunResult full = run_muxkit({"multi-connect", server.address(), "-n", "20", "--hdr-log", "/dev/full"});
    BOOST_TEST(full.exit_code == 3, full.err);
    BOOST_TEST(full.err.find("cannot write --hdr-log '/dev/full': No space left on device") != std::string::npos, full.err);
}

// ---------------------------------------------------------------- many load hosts for real

namespace {

// Network namespaces and links made with ip(8), deleted again (links go with their namespaces)
// when the test ends, however it ends. Commands run inside one through nsenter, which switches
// the network namespace only ('ip -n' and 'ip netns exec' also remount /, which a chroot refuses).
class Namespaces {
public:
    ~Namespaces() {
        for (const auto& ns : made_) run_program({"ip", "netns", "del", ns}, 10s);
    }
    bool add(const std::string& ns) {
        if (run_program({"ip", "netns", "add", ns}, 10s).exit_code != 0) return false;
        made_.push_back(ns);
        return true;
    }
    static std::vector<std::string> in(const std::string& ns, std::vector<std::string> command) {
        command.insert(command.begin(), {"nsenter", "--net=/var/run/netns/" + ns});
        return command;
    }
    RunResult try_ip(const std::string& ns, std::vector<std::string> args) {
        args.insert(args.begin(), "ip");
        return run_program(ns.empty() ? args : in(ns, args), 10s);
    }
    void ip(const std::string& ns, std::vector<std::string> args) {
        RunResult r = try_ip(ns, args);
        BOOST_REQUIRE_MESSAGE(r.exit_code == 0, fmt::format("ip {} (in '{}'): {}", fmt::join(args, " "), ns, r.err));
    }

private:
    std::vector<std::string> made_;
};

}  // namespace

// One server namespace, three client namespaces, each linked to it by a veth pair; the server
// answers on 198.18.0.1 (the benchmarking range), each client reaches it through its own link.
// pdsh starts one multi-connect in each client namespace at the same time; merge must account for
// exactly what the server received.
BOOST_AUTO_TEST_CASE(three_load_hosts_in_network_namespaces_through_pdsh) {
    if (::geteuid() != 0 || ::access("/usr/bin/pdsh", X_OK) != 0 || run_program({"ip", "netns", "list"}, 10s).exit_code != 0) {
        BOOST_TEST_MESSAGE("skipped: needs root, pdsh and ip netns");
        return;
    }
    Namespaces ns;
    const std::string tag = std::to_string(::getpid());
    const std::string server_ns = "mk-srv-" + tag;
    if (!ns.add(server_ns)) {
        BOOST_TEST_MESSAGE("skipped: ip netns add is not allowed here");
        return;
    }
    if (RunResult r = ns.try_ip(server_ns, {"link", "set", "lo", "up"}); r.exit_code != 0) {
        BOOST_TEST_MESSAGE("skipped: cannot enter a network namespace here: " << r.err);
        return;
    }
    ns.ip(server_ns, {"addr", "add", "198.18.0.1/32", "dev", "lo"});
    std::vector<std::string> clients;
    for (int i = 1; i <= 3; ++i) {
        const std::string c = fmt::format("mk-c{}-{}", i, tag), here = fmt::format("mkc{}{}", i, tag), there = fmt::format("mks{}{}", i, tag);
        BOOST_REQUIRE(ns.add(c));
        clients.push_back(c);
        // Interface names are at most 15 bytes: cut the PID part if need be.
        const std::string a = here.substr(0, 15), b = there.substr(0, 15);
        ns.ip("", {"link", "add", a, "netns", c, "type", "veth", "peer", "name", b, "netns", server_ns});
        ns.ip(c, {"link", "set", "lo", "up"});
        ns.ip(c, {"addr", "add", fmt::format("198.18.{}.2/24", i), "dev", a});
        ns.ip(c, {"link", "set", a, "up"});
        ns.ip(c, {"route", "add", "198.18.0.1/32", "via", fmt::format("198.18.{}.1", i)});
        ns.ip(server_ns, {"addr", "add", fmt::format("198.18.{}.1/24", i), "dev", b});
        ns.ip(server_ns, {"link", "set", b, "up"});
    }
    Child server(Namespaces::in(server_ns, {MUXKIT_BINARY, "echo-server", "198.18.0.1:7007", "-m", "epoll", "--json"}), {}, false);
    BOOST_REQUIRE(server.read_line(10s).find("\"listening\"") != std::string::npos);

    // pdsh prefixes each line with the host it came from: "mk-c1-PID: {...}".
    RunResult r = run_program({"pdsh", "-R", "exec", "-f", "3", "-w", fmt::format("{}", fmt::join(clients, ",")), "nsenter",
                               "--net=/var/run/netns/%h", MUXKIT_BINARY, "multi-connect", "198.18.0.1:7007", "-c", "5", "-n",
                               "400", "-s", "256", "--json"});
    BOOST_TEST(r.exit_code == 0, r.err);
    TempDir dir;
    std::map<std::string, std::string> outputs;
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);)
        if (auto colon = line.find(": "); colon != std::string::npos) outputs[line.substr(0, colon)] += line.substr(colon + 2) + "\n";
    BOOST_REQUIRE(outputs.size() == 3u);
    std::vector<std::string> merge = {"merge", "--json"};
    for (const auto& [host, text] : outputs) {
        merge.push_back(dir.path + "/" + host + ".json");
        write_file(merge.back(), text);
    }
    RunResult merged = run_muxkit(merge);
    BOOST_TEST(merged.exit_code == 0, merged.err);
    Json m = summary_of(merged);
    BOOST_TEST(m["hosts"] == 3);
    BOOST_TEST(m["connections"]["established"] == 15);
    BOOST_TEST(m["messages"]["received"] == 6000);
    BOOST_TEST(m["rtt_us"]["samples"] == 6000);

    server.signal(SIGTERM);
    RunResult served = server.wait(10s);
    Json s = summary_of(served);
    BOOST_TEST(s["connections"]["accepted"] == 15);
    BOOST_TEST(s["bytes"]["in"] == m["bytes"]["sent"]);  // every byte each host sent, the server received
    BOOST_TEST(s["bytes"]["in"] == 6000 * 256);
}
