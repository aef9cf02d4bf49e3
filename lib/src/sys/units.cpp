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

bool digit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }

// The length of the number at the start of text: digits and points, then (for rates and
// durations) an exponent (1e3, 2.5E-1) when digits follow the e.
std::size_t number_length(std::string_view text, bool exponent) {
    std::size_t i = 0;
    while (i < text.size() && (digit(text[i]) || text[i] == '.')) ++i;
    if (exponent && i > 0 && i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
        std::size_t j = i + 1;
        if (j < text.size() && (text[j] == '+' || text[j] == '-')) ++j;
        if (j < text.size() && digit(text[j])) {
            while (j < text.size() && digit(text[j])) ++j;
            i = j;
        }
    }
    return i;
}

// Reads the number at the start of text (whole of what, for messages) and moves past it.
double take_number(std::string_view& text, std::string_view whole, std::string_view what, bool exponent = true) {
    const std::size_t i = number_length(text, exponent);
    if (i == 0) throw UsageError(fmt::format("invalid {} '{}': expected a number", what, whole));
    double value = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + i, value);
    if (ec != std::errc() || ptr != text.data() + i)
        throw UsageError(fmt::format("invalid {} '{}': malformed number", what, whole));
    text.remove_prefix(i);
    return value;
}

// Splits "12.5ms" into a number and a suffix; throws if the number part is missing or malformed.
std::pair<double, std::string> number_and_suffix(std::string_view text, std::string_view what, bool exponent = true) {
    if (text.empty()) throw UsageError(fmt::format("invalid {} '': empty value", what));
    std::string_view rest = text;
    const double value = take_number(rest, text, what, exponent);
    return {value, lower(rest)};
}

// Nanoseconds in a duration unit, 0 for a word that is none.
double ns_per(std::string_view unit) {
    static const std::pair<const char*, double> kUnits[] = {
        {"ns", 1}, {"nsec", 1}, {"us", 1e3}, {"usec", 1e3}, {"\xc2\xb5s", 1e3}, {"ms", 1e6}, {"msec", 1e6},
        {"s", 1e9}, {"sec", 1e9}, {"secs", 1e9}, {"second", 1e9}, {"seconds", 1e9}, {"m", 60e9}, {"min", 60e9},
        {"mins", 60e9}, {"minute", 60e9}, {"minutes", 60e9}, {"h", 3600e9}, {"hr", 3600e9}, {"hour", 3600e9}, {"hours", 3600e9}};
    for (const auto& [name, ns] : kUnits)
        if (unit == name) return ns;
    return 0;
}

}  // namespace

std::uint64_t parse_size(std::string_view text) {
    auto [value, suffix] = number_and_suffix(text, "size", false);  // bytes are counted, not written 1e3
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

// "250ms", "1.5s", a bare number of seconds, or several parts each with its unit ("1m30s",
// "1h 2min" without the space); units from ns to hours, with the spellings systemd and sleep take.
Duration parse_duration(std::string_view text) {
    if (text.empty()) throw UsageError("invalid duration '': empty value");
    std::string_view rest = text;
    double ns = 0;
    for (bool first = true; !rest.empty(); first = false) {
        const double value = take_number(rest, text, "duration");
        std::size_t n = 0;
        while (n < rest.size() && !digit(rest[n]) && rest[n] != '.') ++n;
        const std::string unit = lower(rest.substr(0, n));
        rest.remove_prefix(n);
        if (unit.empty()) {
            if (!first || !rest.empty())
                throw UsageError(fmt::format("invalid duration '{}': give each part its unit, as in 1m30s", text));
            ns += value * 1e9;
            continue;
        }
        const double per = ns_per(unit);
        if (per == 0)
            throw UsageError(fmt::format("invalid duration '{}': unknown unit '{}' (use ns, us, ms, s, m or h)", text, unit));
        ns += value * per;
    }
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
    if (suffix.ends_with("/s")) suffix.resize(suffix.size() - 2);
    // Decimal, as rates are counted: 10k is 10000 per second.
    if (suffix == "k") value *= 1e3;
    else if (suffix == "m") value *= 1e6;
    else if (suffix == "g") value *= 1e9;
    else if (!suffix.empty())
        throw UsageError(fmt::format("invalid {} '{}': expected a number per second, with k, M or G", what, text));
    if (!(value > 0) || !std::isfinite(value))
        throw UsageError(fmt::format("invalid {} '{}': must be greater than 0", what, text));
    return value;
}

double parse_percent(std::string_view text, std::string_view what) {
    auto [value, suffix] = number_and_suffix(text, what);
    if ((!suffix.empty() && suffix != "%") || !(value >= 0 && value <= 100))
        throw UsageError(fmt::format("invalid {} '{}': expected a percentage from 0 to 100", what, text));
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
