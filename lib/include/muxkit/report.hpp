// Report: results as plain JSON data, and the only two output shapers (JSON Lines and text).
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace muxkit {

using Json = nlohmann::ordered_json;

// One compact JSON line (no newline). NaN and infinities become null.
std::string render_json(const Json& object);
// Human text: "key: value" lines; nested objects become "key: a=1, b=2"; "type" and null values
// (figures that do not apply to the run) are left out. Figures are shown in the unit their key
// names, scaled for people: rtt_us {p50: 1031973.3} is "rtt: p50=1.03 s", bytes_per_s
// 177633050 is "177.6 MB/s", messages_per_s 5210 is "5.21 k/s"; counts stay exact.
std::string render_text(const Json& object);

// 0.00025 -> "250 us", 0.00103 -> "1.03 ms", 1.03 -> "1.03 s", 3600 -> "3600 s".
std::string human_duration(double seconds);

// One value as text: strings bare but escaped (printable), null as "n/a", large floats without exponent.
std::string format_scalar(const Json& value);

// Control characters, backslashes and bytes past ASCII as escapes (\n, \t, \\, \xHH), so bytes a
// peer chose (data, addresses, socket paths) can never drive the terminal.
std::string printable(std::string_view data);

// {"kernel":..,"nofile_soft":..,"nofile_hard":..,"somaxconn":..,"pipe_max_size":..,"pipe_buf":..}
Json environment_info();

// A duration or rate that may be unknown: null rather than NaN.
Json number_or_null(double value);

}  // namespace muxkit
