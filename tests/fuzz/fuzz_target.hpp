// One fuzz target per parser: built for libFuzzer by ./dev fuzz (clang), and replayed over the
// committed corpus and every crash ever found by fuzz_replay_test in the ordinary test suite.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

// An invariant the target checks; a violation aborts, which both libFuzzer and the replay report.
#define FUZZ_CHECK(cond)                                                                       \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            std::fprintf(stderr, "fuzz invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            std::abort();                                                                      \
        }                                                                                      \
    } while (0)

#ifdef MUXKIT_LIBFUZZER
#define MUXKIT_FUZZ_TARGET(name)                                                        \
    void fuzz_##name(std::string_view input);                                           \
    extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) { \
        fuzz_##name(std::string_view(reinterpret_cast<const char*>(data), size));       \
        return 0;                                                                       \
    }                                                                                   \
    void fuzz_##name(std::string_view input)
#else
#define MUXKIT_FUZZ_TARGET(name) void fuzz_##name(std::string_view input)
#endif
