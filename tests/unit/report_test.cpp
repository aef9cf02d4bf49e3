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
    BOOST_TEST(text.find("in=3 out=3") != std::string::npos);
    BOOST_TEST(text.find("n/a") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(environment_block_has_every_field) {
    Json env = environment_info();
    for (auto key : {"kernel", "nofile_soft", "nofile_hard", "somaxconn", "pipe_max_size", "pipe_buf"})
        BOOST_TEST(env.contains(key), key);
    BOOST_TEST(env["pipe_buf"].get<int>() == 4096);
}
