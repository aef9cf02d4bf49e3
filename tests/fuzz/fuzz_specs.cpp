// fd-watch source specs, command splitting and pipe-test scenario lists.
#include <algorithm>
#include <string>
#include <vector>

#include <muxkit/error.hpp>
#include <muxkit/pipe_test.hpp>
#include <muxkit/fd_watch.hpp>

#include "fuzz_target.hpp"

MUXKIT_FUZZ_TARGET(specs) {
    try {
        muxkit::SourceSpec s = muxkit::SourceSpec::parse(input);
        if (s.type == muxkit::SourceSpec::Type::exec) FUZZ_CHECK(!s.argv.empty());
    } catch (const muxkit::UsageError&) {
    }
    try {
        for (const auto& word : muxkit::split_command(input)) FUZZ_CHECK(word.size() <= input.size());
    } catch (const muxkit::UsageError&) {
    }
    std::vector<std::string> words;
    std::string word;
    for (char c : input) {
        if (c == '\n') {
            words.push_back(word);
            word.clear();
        } else {
            word += c;
        }
    }
    words.push_back(word);
    try {
        for (const auto& name : muxkit::parse_scenarios(words)) {
            const auto& known = muxkit::scenario_names();
            FUZZ_CHECK(std::find(known.begin(), known.end(), name) != known.end());
        }
    } catch (const muxkit::UsageError&) {
    }
}
