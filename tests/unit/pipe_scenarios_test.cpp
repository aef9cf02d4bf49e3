#define BOOST_TEST_MODULE pipe_scenarios
#include <boost/test/unit_test.hpp>

#include <csignal>
#include <unistd.h>

#include <muxkit/error.hpp>
#include <muxkit/pipe.hpp>
#include <muxkit/pipe_test.hpp>
#include <muxkit/process.hpp>

using namespace muxkit;

BOOST_AUTO_TEST_CASE(default_set_is_every_scenario_but_throughput_and_latency) {
    auto d = default_scenarios();
    BOOST_TEST(d.size() == scenario_names().size() - 2);
    BOOST_CHECK(std::find(d.begin(), d.end(), "throughput") == d.end());
    BOOST_TEST(parse_scenarios({}) == d, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(scenario_lists_parse_words_and_commas) {
    auto v = parse_scenarios({"eof,epipe", "fifo"});
    BOOST_TEST(v == (std::vector<std::string>{"eof", "epipe", "fifo"}), boost::test_tools::per_element());
    BOOST_TEST(parse_scenarios({"all"}).size() == scenario_names().size());
    BOOST_CHECK_THROW(parse_scenarios({"eof,nope"}), UsageError);
}

BOOST_AUTO_TEST_CASE(pipe_capacity_can_be_read_and_set) {
    Pipe p = make_pipe();
    BOOST_TEST(pipe_capacity(p.write.get()) == 65536);
    BOOST_TEST(set_pipe_capacity(p.write.get(), 131072) == 131072);
    BOOST_TEST(pipe_capacity(p.read.get()) == 131072);
}

BOOST_AUTO_TEST_CASE(child_status_is_decoded_and_deadlines_kill) {
    ExitStatus ok = wait_child(fork_child([] { return 3; }));
    BOOST_TEST(ok.exited);
    BOOST_TEST(ok.code == 3);
    BOOST_TEST(ok.to_string() == "exit 3");
    ExitStatus slow = wait_child(fork_child([] {
                                     ::sleep(30);
                                     return 0;
                                 }),
                                 0);
    BOOST_TEST(slow.timed_out);
    BOOST_TEST(slow.to_string() == "timed out");
    BOOST_TEST(signal_name(SIGPIPE) == "SIGPIPE");
}

BOOST_AUTO_TEST_CASE(every_correctness_scenario_passes_in_process) {
    PipeTestConfig cfg;
    cfg.iterations = 20;
    for (const auto& name : default_scenarios()) {
        for (const auto& row : run_scenario(name, cfg)) {
            if (name == "shared-duplex") BOOST_TEST((row.verdict == Verdict::info));
            else BOOST_TEST((row.verdict == Verdict::pass), name << ": " << row.measured.dump());
        }
    }
}
