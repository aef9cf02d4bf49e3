#define BOOST_TEST_MODULE store
#include <boost/test/unit_test.hpp>

#include <climits>
#include <random>

#include <muxkit/error.hpp>
#include <muxkit/store.hpp>

#include "support/test_support.hpp"

using namespace muxkit;

namespace {

std::vector<std::string> encode_all(StoreFormat f, const std::string& data, std::uint64_t conn = 7) {
    StoreEncoder enc(f);
    std::vector<std::string> records;
    std::size_t n = enc.encode({conn, "127.0.0.1:5555"}, data.data(), data.size(),
                               [&](const char* p, std::size_t len) { records.emplace_back(p, len); });
    BOOST_TEST(n == records.size());
    return records;
}

}  // namespace

BOOST_AUTO_TEST_CASE(base64_round_trips_every_length) {
    std::mt19937 rng(1);
    for (std::size_t len = 0; len < 70; ++len) {
        std::string s(len, '\0');
        for (auto& c : s) c = static_cast<char>(rng());
        BOOST_TEST(base64_decode(base64_encode(s)) == s);
    }
    BOOST_TEST(base64_encode("hello") == "aGVsbG8=");
    BOOST_CHECK_THROW(base64_decode("abc"), std::invalid_argument);
    BOOST_CHECK_THROW(base64_decode("a=bc"), std::invalid_argument);
    BOOST_CHECK_THROW(base64_decode("ab!c"), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(utf8_prefix_stops_at_invalid_or_cut_characters) {
    BOOST_TEST(valid_utf8_prefix("hello", 5) == 5u);
    std::string euro = "a\xe2\x82\xac";
    BOOST_TEST(valid_utf8_prefix(euro.data(), euro.size()) == 4u);
    BOOST_TEST(valid_utf8_prefix(euro.data(), 3) == 1u);  // the euro sign cut in two
    BOOST_TEST(valid_utf8_prefix("a\xff", 2) == 1u);
    BOOST_TEST(valid_utf8_prefix("\xc0\xaf", 2) == 0u);          // overlong
    BOOST_TEST(valid_utf8_prefix("\xed\xa0\x80", 3) == 0u);      // surrogate
}

BOOST_AUTO_TEST_CASE(raw_records_are_the_bytes_in_pipe_buf_pieces) {
    std::string data = test::random_bytes(3 * PIPE_BUF + 100, 2);
    auto records = encode_all(StoreFormat::raw, data);
    BOOST_TEST(records.size() == 4u);
    std::string joined;
    for (auto& r : records) {
        BOOST_TEST(r.size() <= static_cast<std::size_t>(PIPE_BUF));
        joined += r;
    }
    BOOST_TEST((joined == data));
}

BOOST_AUTO_TEST_CASE(jsonl_records_decode_back_to_the_same_bytes_and_fit_pipe_buf) {
    std::mt19937 rng(3);
    std::vector<std::string> inputs = {"hello\n", std::string(20000, 'a'), std::string(5000, '\x01'),
                                       test::random_bytes(30000, 4), "caf\xc3\xa9 \xe2\x82\xac end"};
    std::string mixed;
    for (int i = 0; i < 3000; ++i) mixed += (i % 3 == 0) ? "\xe2\x82\xac" : "x";
    inputs.push_back(mixed);
    for (const auto& data : inputs) {
        auto records = encode_all(StoreFormat::jsonl, data, 42);
        std::string joined;
        for (auto& line : records) {
            BOOST_TEST(line.size() <= static_cast<std::size_t>(PIPE_BUF));
            BOOST_TEST(line.back() == '\n');
            StoreRecord r = parse_store_record(line);
            BOOST_TEST(r.conn == 42u);
            BOOST_TEST(r.peer == "127.0.0.1:5555");
            BOOST_TEST((r.encoding == "utf8" || r.encoding == "base64"));
            joined += r.data;
        }
        BOOST_TEST((joined == data));
    }
    BOOST_TEST(parse_store_record(encode_all(StoreFormat::jsonl, "plain text")[0]).encoding == "utf8");
    BOOST_TEST(parse_store_record(encode_all(StoreFormat::jsonl, "\xff\xfe")[0]).encoding == "base64");
}

BOOST_AUTO_TEST_CASE(store_formats_parse) {
    BOOST_TEST((parse_store_format("raw") == StoreFormat::raw));
    BOOST_TEST((parse_store_format("jsonl") == StoreFormat::jsonl));
    BOOST_CHECK_THROW(parse_store_format("csv"), UsageError);
}
