#define BOOST_TEST_MODULE model
#include <boost/test/unit_test.hpp>

#include <set>
#include <string>

#include <muxkit/error.hpp>
#include <muxkit/model.hpp>

using namespace muxkit;

BOOST_AUTO_TEST_CASE(every_model_has_one_row_and_a_unique_name) {
    std::set<std::string_view> names;
    for (const ModelInfo& m : models()) {
        BOOST_TEST(names.insert(m.name).second, m.name);
        BOOST_TEST(&model_info(m.model) == &m);
        BOOST_TEST(model_name(m.model) == m.name);
        BOOST_TEST(m.features != 0);
    }
    BOOST_TEST(names.size() == 6u);
}

BOOST_AUTO_TEST_CASE(each_feature_parses_exactly_its_own_names) {
    for (Feature f : {Feature::echo_server, Feature::multi_connect, Feature::fd_watch}) {
        for (const ModelInfo& m : models()) {
            if (feature_takes(f, m.model)) BOOST_TEST((parse_model(m.name, f) == m.model));
            else BOOST_CHECK_THROW(parse_model(m.name, f), UsageError);
        }
        BOOST_CHECK_THROW(parse_model("kqueue", f), UsageError);
        BOOST_CHECK_THROW(parse_model("", f), UsageError);
    }
    BOOST_TEST((model_names(Feature::echo_server) ==
                std::vector<std::string>{"select", "poll", "epoll", "epoll-et", "io_uring", "fork"}));
    BOOST_TEST((model_names(Feature::multi_connect) == std::vector<std::string>{"select", "poll", "epoll", "io_uring"}));
    BOOST_TEST((model_names(Feature::fd_watch) == std::vector<std::string>{"select", "poll", "epoll"}));
}

BOOST_AUTO_TEST_CASE(an_unknown_model_is_refused_with_the_choices) {
    try {
        parse_model("epoll-et", Feature::multi_connect);
        BOOST_FAIL("no throw");
    } catch (const UsageError& e) {
        BOOST_TEST(std::string(e.what()) == "invalid model 'epoll-et': multi-connect takes select, poll, epoll, io_uring");
    }
}

BOOST_AUTO_TEST_CASE(only_io_uring_can_be_unavailable) {
    for (const ModelInfo& m : models())
        if (m.model != Model::io_uring) BOOST_TEST(model_unavailable_reason(m.model).empty());
}
