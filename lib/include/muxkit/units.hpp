// Parsing and formatting of the sizes ("4K"), durations ("250ms") and counts users type.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace muxkit {

using Duration = std::chrono::nanoseconds;

// Bytes with an optional binary suffix K, M, G (or KiB, MiB, GiB; any case): "4K" is 4096.
std::uint64_t parse_size(std::string_view text);
// "250us", "500ms", "5s", "2m", "1h", "1m30s", "2sec", "1e3ms"; a bare number is seconds
// (fractions allowed).
Duration parse_duration(std::string_view text);
// A whole number in [min, max]; what names the value in the error message.
std::uint64_t parse_count(std::string_view text, std::string_view what, std::uint64_t min = 0,
                          std::uint64_t max = UINT64_MAX);
// A positive rate per second: "1000", "2.5", "10k", "1.5M", "1e3", "20k/s" (k, M, G decimal).
double parse_rate(std::string_view text, std::string_view what);
// A percentage from 0 to 100: "0", "0.5", "2%".
double parse_percent(std::string_view text, std::string_view what);
// "a,b,,c" -> {"a", "b", "", "c"}: the items of a comma-separated list, empty ones kept.
std::vector<std::string_view> split_list(std::string_view text);
// Comma-separated list of sizes: "4K,64K,1M".
std::vector<std::uint64_t> parse_size_list(std::string_view text);
// TEXT with C-style escapes (\r \n \t \0 \\ \xHH) turned into the bytes they stand for; what
// names the value in the error message for an unknown or unfinished escape.
std::string parse_escapes(std::string_view text, std::string_view what);

std::string format_duration(Duration d);       // "1.5s", "250ms", "12us"
double to_seconds(Duration d);

}  // namespace muxkit
