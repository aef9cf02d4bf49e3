// Store records: whatever the bytes, every record fits one atomic pipe write and decoding the
// records gives back exactly the bytes; decoding arbitrary lines never crashes.
#include <climits>
#include <string>

#include <muxkit/store.hpp>

#include "fuzz_target.hpp"

MUXKIT_FUZZ_TARGET(store) {
    for (auto format : {muxkit::StoreFormat::raw, muxkit::StoreFormat::jsonl}) {
        muxkit::StoreEncoder encoder(format);
        std::string joined;
        encoder.encode({42, "[::1]:65535"}, input.data(), input.size(), [&](const char* rec, std::size_t n) {
            FUZZ_CHECK(n > 0 && n <= PIPE_BUF);
            if (format == muxkit::StoreFormat::raw) {
                joined.append(rec, n);
            } else {
                FUZZ_CHECK(rec[n - 1] == '\n');
                muxkit::StoreRecord r = muxkit::parse_store_record(std::string_view(rec, n - 1));
                FUZZ_CHECK(r.conn == 42 && r.peer == "[::1]:65535");
                joined += r.data;
            }
        });
        FUZZ_CHECK(joined == input);
    }
    FUZZ_CHECK(muxkit::base64_decode(muxkit::base64_encode(input)) == input);
    try {
        muxkit::parse_store_record(input);
    } catch (const std::exception&) {
    }
    try {
        muxkit::base64_decode(input);
    } catch (const std::exception&) {
    }
    std::size_t valid = muxkit::valid_utf8_prefix(input.data(), input.size());
    FUZZ_CHECK(valid <= input.size());
    FUZZ_CHECK(muxkit::valid_utf8_prefix(input.data(), valid) == valid);
}
