#define BOOST_TEST_MODULE report
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>

#include <muxkit/report.hpp>

using namespace muxkit;

BOOST_AUTO_TEST_CASE(json_never_carries_nan_or_infinity) {
    Json j = {{"a", std::nan("")}, {"b", {{"c", std::numeric_limits<double>::infinity()}}}, {"d", 1.5}};
    std::string line = render_json(j);
    BOOST_TEST(line == R"({"a":null,"b":{"c":null},"d":1.5})");
}

BOOST_AUTO_TEST_CASE(text_flattens_nested_objects_and_skips_type) {
    Json j = {{"type", "summary"}, {"model", "epoll"}, {"bytes", {{"in", 3}, {"out", 3}}}, {"x", nullptr}};
    std::string text = render_text(j);
    BOOST_TEST(text.find("type") == std::string::npos);
    BOOST_TEST(text.find("model:") != std::string::npos);
    BOOST_TEST(text.find("in=3, out=3") != std::string::npos);
    BOOST_TEST(text.find("x:") == std::string::npos);  // null: does not apply, left out of the text
}

BOOST_AUTO_TEST_CASE(text_shows_figures_in_the_unit_their_key_names_scaled_for_people) {
    Json j = {{"rtt_us", {{"p50", 88.38}, {"p99", 1031973.3}, {"max", nullptr}, {"samples", 300}}},
              {"throughput", {{"messages_per_s", 5210.4}, {"bytes_per_s", 177633050.0}, {"connections_per_s", 12.0}}},
              {"duration_s", 0.02107},
              {"check", {{"p99_us", 250.0}, {"lost_percent", 12.5}}},
              {"errors", {{"ECONNREFUSED", 0}, {"ECONNRESET", 2}}}};
    const std::string text = render_text(j);
    BOOST_TEST(text.find("rtt:         p50=88.4 us, p99=1.03 s, samples=300\n") != std::string::npos, text);
    BOOST_TEST(text.find("messages_per_s=5.21 k/s, bytes_per_s=177.6 MB/s, connections_per_s=12/s") != std::string::npos, text);
    BOOST_TEST(text.find("duration:    21.1 ms\n") != std::string::npos, text);
    BOOST_TEST(text.find("check:       p99=250 us, lost_percent=12.5%") != std::string::npos, text);
    BOOST_TEST(text.find("errors:      ECONNRESET=2\n") != std::string::npos, text);  // zero counts left out
    BOOST_TEST(human_duration(0.00025) == "250 us");
    BOOST_TEST(human_duration(3600) == "3600 s");
}

BOOST_AUTO_TEST_CASE(environment_block_has_every_field) {
    Json env = environment_info();
    for (auto key : {"kernel", "nofile_soft", "nofile_hard", "somaxconn", "pipe_max_size", "pipe_buf"})
        BOOST_TEST(env.contains(key), key);
    BOOST_TEST(env["pipe_buf"].get<int>() == 4096);
}
