#define BOOST_TEST_MODULE fuzz_replay
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <functional>

// Every fuzz target, compiled in here as a plain function.
#include "fuzz/fuzz_address.cpp"
#include "fuzz/fuzz_histogram.cpp"
#include "fuzz/fuzz_specs.cpp"
#include "fuzz/fuzz_store.cpp"
#include "fuzz/fuzz_units.cpp"

namespace fs = std::filesystem;

namespace {

// Replays the seed corpus and every regression input of one target; returns the inputs run.
std::size_t replay(const std::string& target, const std::function<void(std::string_view)>& fn) {
    std::size_t n = 0;
    for (const char* kind : {"corpus", "regressions"}) {
        fs::path dir = fs::path(MUXKIT_SOURCE_DIR) / "tests" / "fuzz" / kind / target;
        if (!fs::exists(dir)) continue;
        for (const auto& e : fs::directory_iterator(dir)) {
            if (!e.is_regular_file()) continue;
            std::ifstream in(e.path(), std::ios::binary);
            std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
            BOOST_TEST_CHECKPOINT(target << ": " << e.path());
            fn(data);  // an invariant that fails aborts the test binary, naming the input above
            ++n;
        }
    }
    return n;
}

}  // namespace

BOOST_AUTO_TEST_CASE(address_corpus) { BOOST_TEST(replay("address", fuzz_address) > 0u); }
BOOST_AUTO_TEST_CASE(units_corpus) { BOOST_TEST(replay("units", fuzz_units) > 0u); }
BOOST_AUTO_TEST_CASE(specs_corpus) { BOOST_TEST(replay("specs", fuzz_specs) > 0u); }
BOOST_AUTO_TEST_CASE(store_corpus) { BOOST_TEST(replay("store", fuzz_store) > 0u); }
BOOST_AUTO_TEST_CASE(histogram_corpus) { BOOST_TEST(replay("histogram", fuzz_histogram) > 0u); }
