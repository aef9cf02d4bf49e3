#include "muxkit/units.hpp"

#include <cctype>
#include <charconv>
#include <cmath>

#include <fmt/format.h>

#include "muxkit/error.hpp"

namespace muxkit {

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// Splits "12.5ms" into a number and a suffix; throws if the number part is missing or malformed.
std::pair<double, std::string> number_and_suffix(std::string_view text, std::string_view what) {
    if (text.empty()) throw UsageError(fmt::format("invalid {} '': empty value", what));
    std::size_t i = 0;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
    if (i == 0) throw UsageError(fmt::format("invalid {} '{}': expected a number", what, text));
    double value = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + i, value);
    if (ec != std::errc() || ptr != text.data() + i)
        throw UsageError(fmt::format("invalid {} '{}': malformed number", what, text));
    return {value, lower(text.substr(i))};
}

}  // namespace

std::uint64_t parse_size(std::string_view text) {
    auto [value, suffix] = number_and_suffix(text, "size");
    double mult = 1;
    if (suffix.empty() || suffix == "b") mult = 1;
    else if (suffix == "k" || suffix == "kib" || suffix == "kb") mult = 1024.0;
    else if (suffix == "m" || suffix == "mib" || suffix == "mb") mult = 1024.0 * 1024;
    else if (suffix == "g" || suffix == "gib" || suffix == "gb") mult = 1024.0 * 1024 * 1024;
    else throw UsageError(fmt::format("invalid size '{}': unknown suffix '{}' (use K, M or G)", text, suffix));
    double bytes = value * mult;
    if (bytes != std::floor(bytes))
        throw UsageError(fmt::format("invalid size '{}': not a whole number of bytes", text));
    if (bytes > 1e18) throw UsageError(fmt::format("invalid size '{}': too large", text));
    return static_cast<std::uint64_t>(bytes);
}

Duration parse_duration(std::string_view text) {
    auto [value, suffix] = number_and_suffix(text, "duration");
    double ns_per_unit;
    if (suffix.empty() || suffix == "s") ns_per_unit = 1e9;
    else if (suffix == "ms") ns_per_unit = 1e6;
    else if (suffix == "us") ns_per_unit = 1e3;
    else if (suffix == "ns") ns_per_unit = 1;
    else if (suffix == "m") ns_per_unit = 60e9;
    else if (suffix == "h") ns_per_unit = 3600e9;
    else throw UsageError(fmt::format("invalid duration '{}': unknown unit '{}' (use us, ms, s, m or h)", text, suffix));
    double ns = value * ns_per_unit;
    if (ns > 1e18) throw UsageError(fmt::format("invalid duration '{}': too long", text));
    return Duration(static_cast<std::int64_t>(std::llround(ns)));
}

std::uint64_t parse_count(std::string_view text, std::string_view what, std::uint64_t min, std::uint64_t max) {
    std::uint64_t value = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc() || ptr != text.data() + text.size())
        throw UsageError(fmt::format("invalid {} '{}': expected a whole number", what, text));
    if (value < min || value > max) {
        if (max == UINT64_MAX) throw UsageError(fmt::format("invalid {} '{}': must be at least {}", what, text, min));
        throw UsageError(fmt::format("invalid {} '{}': must be between {} and {}", what, text, min, max));
    }
    return value;
}

double parse_rate(std::string_view text, std::string_view what) {
    auto [value, suffix] = number_and_suffix(text, what);
    if (!suffix.empty() && suffix != "/s")
        throw UsageError(fmt::format("invalid {} '{}': expected a number per second", what, text));
    if (!(value > 0) || !std::isfinite(value))
        throw UsageError(fmt::format("invalid {} '{}': must be greater than 0", what, text));
    return value;
}

std::vector<std::string_view> split_list(std::string_view text) {
    std::vector<std::string_view> out;
    std::size_t start = 0;
    while (start <= text.size()) {
        std::size_t comma = text.find(',', start);
        if (comma == std::string_view::npos) comma = text.size();
        out.push_back(text.substr(start, comma - start));
        start = comma + 1;
    }
    return out;
}

std::vector<std::uint64_t> parse_size_list(std::string_view text) {
    std::vector<std::uint64_t> out;
    for (auto item : split_list(text)) out.push_back(parse_size(item));
    return out;
}

double to_seconds(Duration d) { return std::chrono::duration<double>(d).count(); }

std::string format_duration(Duration d) {
    double ns = static_cast<double>(d.count());
    if (ns >= 1e9) return fmt::format("{:.3g}s", ns / 1e9);
    if (ns >= 1e6) return fmt::format("{:.3g}ms", ns / 1e6);
    if (ns >= 1e3) return fmt::format("{:.3g}us", ns / 1e3);
    return fmt::format("{}ns", d.count());
}

std::string parse_escapes(std::string_view text, std::string_view what) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '\\') {
            out += text[i];
            continue;
        }
        if (++i == text.size()) throw UsageError(fmt::format("invalid {}: it ends in a lone '\\' (write '\\\\' for a backslash)", what));
        switch (text[i]) {
        case 'r': out += '\r'; break;
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case '0': out += '\0'; break;
        case '\\': out += '\\'; break;
        case 'x': {
            auto digit = [](char ch) { return std::isxdigit(static_cast<unsigned char>(ch)) != 0; };
            if (i + 2 >= text.size() || !digit(text[i + 1]) || !digit(text[i + 2]))
                throw UsageError(fmt::format("invalid {}: '\\x' needs two hex digits", what));
            out += static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16));
            i += 2;
            break;
        }
        default:
            throw UsageError(fmt::format("invalid {}: unknown escape '\\{}' (use \\r \\n \\t \\0 \\\\ or \\xHH)", what, text[i]));
        }
    }
    return out;
}

}  // namespace muxkit
