#define BOOST_TEST_MODULE units
#include <boost/test/unit_test.hpp>

#include <muxkit/error.hpp>
#include <muxkit/units.hpp>

using namespace muxkit;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_CASE(size_accepts_binary_suffixes_in_any_case) {
    BOOST_TEST(parse_size("0") == 0u);
    BOOST_TEST(parse_size("64") == 64u);
    BOOST_TEST(parse_size("4K") == 4096u);
    BOOST_TEST(parse_size("4k") == 4096u);
    BOOST_TEST(parse_size("4KiB") == 4096u);
    BOOST_TEST(parse_size("1M") == 1048576u);
    BOOST_TEST(parse_size("1mib") == 1048576u);
    BOOST_TEST(parse_size("2G") == 2147483648u);
    BOOST_TEST(parse_size("1.5K") == 1536u);
}

BOOST_AUTO_TEST_CASE(size_rejects_malformed_values_naming_the_input) {
    for (auto bad : {"", "K", "-1", "4X", "1.1", "abc", "4KK", "1e3"}) {
        try {
            parse_size(bad);
            BOOST_FAIL("accepted '" << bad << "'");
        } catch (const UsageError& e) {
            BOOST_TEST(std::string(e.what()).find("'" + std::string(bad) + "'") != std::string::npos);
        }
    }
}

BOOST_AUTO_TEST_CASE(duration_accepts_every_unit_and_bare_seconds) {
    BOOST_TEST(parse_duration("250us").count() == Duration(250us).count());
    BOOST_TEST(parse_duration("500ms").count() == Duration(500ms).count());
    BOOST_TEST(parse_duration("5s").count() == Duration(5s).count());
    BOOST_TEST(parse_duration("2m").count() == Duration(120s).count());
    BOOST_TEST(parse_duration("1h").count() == Duration(3600s).count());
    BOOST_TEST(parse_duration("3").count() == Duration(3s).count());
    BOOST_TEST(parse_duration("0.5").count() == Duration(500ms).count());
    BOOST_TEST(parse_duration("0").count() == 0);
    BOOST_TEST(parse_duration("1m30s").count() == Duration(90s).count());
    BOOST_TEST(parse_duration("1h2m3.5s").count() == Duration(3723500ms).count());
    BOOST_TEST(parse_duration("2sec").count() == Duration(2s).count());
    BOOST_TEST(parse_duration("1.5min").count() == Duration(90s).count());
    BOOST_TEST(parse_duration("1e3ms").count() == Duration(1s).count());
    BOOST_TEST(parse_duration("10msec").count() == Duration(10ms).count());
}

BOOST_AUTO_TEST_CASE(duration_rejects_malformed_values) {
    for (auto bad : {"", "s", "-5s", "5x", "5 s", "1.2.3s", "ms", "1m30", "1e", "1e3x"}) BOOST_CHECK_THROW(parse_duration(bad), UsageError);
}

BOOST_AUTO_TEST_CASE(count_enforces_range) {
    BOOST_TEST(parse_count("10", "connections", 1) == 10u);
    BOOST_CHECK_THROW(parse_count("0", "connections", 1), UsageError);
    BOOST_CHECK_THROW(parse_count("-3", "connections", 1), UsageError);
    BOOST_CHECK_THROW(parse_count("3x", "connections", 1), UsageError);
    BOOST_CHECK_THROW(parse_count("99", "connections", 1, 10), UsageError);
}

BOOST_AUTO_TEST_CASE(rate_must_be_positive) {
    BOOST_TEST(parse_rate("1000", "rate") == 1000.0);
    BOOST_TEST(parse_rate("2.5", "rate") == 2.5);
    BOOST_TEST(parse_rate("10k", "rate") == 10000.0);
    BOOST_TEST(parse_rate("1.5M", "rate") == 1.5e6);
    BOOST_TEST(parse_rate("1e3", "rate") == 1000.0);
    BOOST_TEST(parse_rate("20k/s", "rate") == 20000.0);
    BOOST_TEST(parse_rate("7/s", "rate") == 7.0);
    BOOST_CHECK_THROW(parse_rate("10x", "rate"), UsageError);
    BOOST_CHECK_THROW(parse_rate("0", "rate"), UsageError);
    BOOST_CHECK_THROW(parse_rate("-1", "rate"), UsageError);
    BOOST_CHECK_THROW(parse_rate("fast", "rate"), UsageError);
}

BOOST_AUTO_TEST_CASE(size_list_splits_on_commas) {
    auto v = parse_size_list("4K,64K,1M");
    BOOST_TEST(v == (std::vector<std::uint64_t>{4096, 65536, 1048576}), boost::test_tools::per_element());
    BOOST_CHECK_THROW(parse_size_list("4K,,1M"), UsageError);
}

BOOST_AUTO_TEST_CASE(formatting_is_readable) {
    BOOST_TEST(format_duration(1500ms) == "1.5s");
    BOOST_TEST(format_duration(250us) == "250us");
}

BOOST_AUTO_TEST_CASE(errno_names_and_counts) {
    BOOST_TEST(errno_name(ECONNRESET) == "ECONNRESET");
    BOOST_TEST(errno_name(EPIPE) == "EPIPE");
    ErrorCounts c;
    c.add(ECONNRESET);
    c.add(ECONNRESET);
    c.add(EPIPE);
    BOOST_TEST(c.count(ECONNRESET) == 2u);
    BOOST_TEST(c.count(EPIPE) == 1u);
    auto m = c.by_name();
    BOOST_TEST(m.size() == 2u);
    BOOST_TEST(m["EPIPE"] == 1u);
}

BOOST_AUTO_TEST_CASE(c_style_escapes_become_the_bytes_they_stand_for) {
    using namespace std::string_literals;
    BOOST_TEST(parse_escapes(R"(PING\r\n)", "--payload") == "PING\r\n");
    BOOST_TEST(parse_escapes(R"(a\tb\\c)", "--payload") == "a\tb\\c");
    BOOST_TEST(parse_escapes(R"(\x00\xfF\0)", "--payload") == "\0\xff\0"s);
    BOOST_TEST(parse_escapes("plain", "--payload") == "plain");
    BOOST_TEST(parse_escapes("", "--payload").empty());
    for (const char* bad : {R"(a\q)", R"(\x4)", R"(\xg0)", R"(end\)"})
        BOOST_CHECK_THROW(parse_escapes(bad, "--expect"), UsageError);
}

BOOST_AUTO_TEST_CASE(percentages_from_zero_to_a_hundred) {
    BOOST_TEST(parse_percent("0", "--max-loss") == 0.0);
    BOOST_TEST(parse_percent("0.5", "--max-loss") == 0.5);
    BOOST_TEST(parse_percent("2%", "--max-loss") == 2.0);
    BOOST_TEST(parse_percent("100", "--max-loss") == 100.0);
    for (auto bad : {"", "-1", "101", "5x", "nan", "%"}) BOOST_CHECK_THROW(parse_percent(bad, "--max-loss"), UsageError);
}
