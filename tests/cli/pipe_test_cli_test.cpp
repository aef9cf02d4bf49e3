#define BOOST_TEST_MODULE pipe_test_cli
#include <boost/test/unit_test.hpp>

#include <filesystem>

#include <fmt/format.h>

#include "support/test_support.hpp"

using namespace muxkit;
using namespace muxkit::test;

namespace {

std::map<std::string, Json> rows_by_name(const RunResult& r) {
    std::map<std::string, Json> out;
    for (auto& j : r.json_lines())
        if (j["type"] == "scenario") out[j["name"].get<std::string>()] = j;
    return out;
}

std::size_t entries(const std::string& dir) {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++n;
    return n;
}

}  // namespace

BOOST_AUTO_TEST_CASE(default_run_covers_every_correctness_scenario_and_passes) {
    TempDir tmp;  // its own $TMPDIR, so other tests running at once cannot disturb the count
    SpawnOptions in_tmp;
    in_tmp.in_child = [&] { ::setenv("TMPDIR", tmp.path.c_str(), 1); };
    RunResult r = run_muxkit({"pipe-test", "--json"}, in_tmp, 120s);
    BOOST_TEST(r.exit_code == 0, r.out << r.err);
    auto rows = rows_by_name(r);
    for (auto name : {"one-way", "shared-duplex", "duplex", "capacity", "atomicity", "eof", "epipe", "nonblock", "select", "fifo"})
        BOOST_TEST(rows.count(name) == 1u, name);
    BOOST_TEST(rows.count("throughput") == 0u);
    BOOST_TEST(rows.count("latency") == 0u);
    for (auto& [name, row] : rows) {
        if (name == "shared-duplex") BOOST_TEST(row["verdict"] == "info");
        else BOOST_TEST(row["verdict"] == "pass", name << ": " << row.dump());
    }
    BOOST_TEST(rows["capacity"]["measured"]["bytes"] == 65536);
    BOOST_TEST(rows["capacity"]["measured"]["f_getpipe_sz"] == 65536);
    BOOST_TEST(rows["atomicity"]["measured"]["pipe_buf"] == 4096);
    BOOST_TEST(rows["atomicity"]["measured"]["interleaved_small"] == 0);
    BOOST_TEST(rows["atomicity"]["measured"]["records"] == 1024);
    BOOST_TEST(rows["epipe"]["measured"]["sigpipe_default"] == "killed by SIGPIPE");
    BOOST_TEST(rows["eof"]["measured"]["eof_withheld_by_own_unclosed_write_end"] == true);
    BOOST_TEST(rows["nonblock"]["measured"]["read_empty"] == "EAGAIN");
    BOOST_TEST(rows["fifo"]["measured"]["write_open_without_reader"] == "ENXIO");
    Json s = summary_of(r);
    BOOST_TEST(s["scenarios"]["failed"] == 0);
    BOOST_TEST(s["environment"]["pipe_max_size"].get<int>() > 0);
    BOOST_TEST(entries(tmp.path) == 0u);  // the temporary FIFO directory is always removed
}

BOOST_AUTO_TEST_CASE(shared_duplex_counts_self_reads_and_never_hangs) {
    RunResult r = run_muxkit({"pipe-test", "shared-duplex", "--iterations", "50", "--json"}, {}, 60s);
    BOOST_TEST(!r.timed_out);
    BOOST_TEST(r.exit_code == 0);
    Json m = rows_by_name(r)["shared-duplex"]["measured"];
    BOOST_TEST(m["trials"] == 50);
    BOOST_TEST(m["parent_read_own"].get<int>() + m["child_read_own"].get<int>() + m["read_other_side"].get<int>() +
                   m["stalled"].get<int>() == 100);
}

BOOST_AUTO_TEST_CASE(pipe_size_1m_gives_1m_capacity) {
    RunResult r = run_muxkit({"pipe-test", "capacity", "--pipe-size", "1M", "--json"});
    BOOST_TEST(r.exit_code == 0);
    Json m = rows_by_name(r)["capacity"]["measured"];
    BOOST_TEST(m["bytes"] == 1048576);
    BOOST_TEST(m["f_getpipe_sz"] == 1048576);
}

// A size the kernel refuses is a runtime error (3) naming the limit, not a failed scenario (1).
BOOST_AUTO_TEST_CASE(pipe_size_past_the_kernel_limit_is_a_runtime_error_naming_the_limit) {
    RunResult r = run_muxkit({"pipe-test", "capacity", "--pipe-size", "1G", "--json"});
    if (r.exit_code == 0) {
        BOOST_TEST_MESSAGE("this kernel allows 1G pipes for this user");
        return;
    }
    BOOST_TEST(r.exit_code == 3, r.out << r.err);
    auto lines = r.json_lines();
    BOOST_REQUIRE(lines.size() == 1u);  // no scenario row, no summary: the error alone
    BOOST_TEST(lines[0]["type"] == "error");
    BOOST_TEST(lines[0]["message"].get<std::string>().find("pipe-max-size is") != std::string::npos, lines[0].dump());
    BOOST_TEST(r.err.find("error: cannot set the pipe size to 1G") != std::string::npos, r.err);
}

BOOST_AUTO_TEST_CASE(throughput_gives_a_positive_rate_per_size_and_method) {
    RunResult r = run_muxkit({"pipe-test", "throughput", "--sizes", "4K,64K", "--bytes", "8M", "--splice", "--json"}, {}, 60s);
    BOOST_TEST(r.exit_code == 0, r.err);
    int rows = 0;
    for (auto& j : r.json_lines()) {
        if (j["type"] != "scenario") continue;
        ++rows;
        BOOST_TEST(j["verdict"] == "info");
        BOOST_TEST(j["measured"]["bytes"] == 8 * 1024 * 1024);
        BOOST_TEST(j["measured"]["bytes_per_s"].get<double>() > 0);
    }
    BOOST_TEST(rows == 6);  // 2 sizes x read-write, vmsplice, splice
}

BOOST_AUTO_TEST_CASE(throughput_by_duration_stops_on_time) {
    auto start = std::chrono::steady_clock::now();
    RunResult r = run_muxkit({"pipe-test", "throughput", "--sizes", "64K", "--duration", "200ms", "--json"}, {}, 30s);
    BOOST_CHECK(std::chrono::steady_clock::now() - start < 5s);
    BOOST_TEST(r.exit_code == 0, r.err);
    Json m = rows_by_name(r)["throughput"]["measured"];
    BOOST_TEST(m["duration_s"].get<double>() >= 0.2);
    BOOST_TEST(m["bytes"].get<double>() > 0);
}

BOOST_AUTO_TEST_CASE(latency_percentiles_are_ordered) {
    RunResult r = run_muxkit({"pipe-test", "latency", "--iterations", "2000", "--json"}, {}, 60s);
    BOOST_TEST(r.exit_code == 0);
    Json m = rows_by_name(r)["latency"]["measured"];
    BOOST_TEST(m["iterations"] == 2000);
    BOOST_TEST(m["p50_us"].get<double>() > 0);
    BOOST_TEST(m["p50_us"].get<double>() <= m["p99_us"].get<double>());
    BOOST_TEST(m["p99_us"].get<double>() <= m["max_us"].get<double>() * 1.01);
    BOOST_TEST(m["mismatches"] == 0);
}

BOOST_AUTO_TEST_CASE(scenarios_can_be_listed_with_commas_and_text_has_one_row_each) {
    RunResult r = run_muxkit({"pipe-test", "eof,epipe", "select"});
    BOOST_TEST(r.exit_code == 0);
    BOOST_TEST(r.out.find("eof ") == 0u);
    BOOST_TEST(r.out.find("\nepipe ") != std::string::npos);
    BOOST_TEST(r.out.find("\nselect ") != std::string::npos);
    BOOST_TEST(r.out.find("pass") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(bad_input_exits_2) {
    for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
             {"no-such-scenario"}, {"eof,bogus"}, {"--sizes", "4K,,1M"}, {"--sizes", "0"}, {"--bytes", "lots"},
             {"--bytes", "1M", "--duration", "1s"}, {"--iterations", "0"}, {"--pipe-size", "0"}, {"--duration", "x"}}) {
        args.insert(args.begin(), "pipe-test");
        RunResult r = run_muxkit(args);
        BOOST_TEST(r.exit_code == 2, fmt::format("{}", fmt::join(args, " ")));
        BOOST_TEST(r.out.empty());
        BOOST_TEST(r.err.find("error: ") != std::string::npos);
    }
}
