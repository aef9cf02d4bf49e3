#include "muxkit/report.hpp"

#include <climits>
#include <cmath>
#include <fstream>

#include <sys/resource.h>
#include <sys/utsname.h>

#include <fmt/format.h>

namespace muxkit {

namespace {

Json sanitize(const Json& j) {
    if (j.is_number_float()) return number_or_null(j.get<double>());
    if (j.is_object()) {
        Json out = Json::object();
        for (auto it = j.begin(); it != j.end(); ++it) out[it.key()] = sanitize(it.value());
        return out;
    }
    if (j.is_array()) {
        Json out = Json::array();
        for (const auto& v : j) out.push_back(sanitize(v));
        return out;
    }
    return j;
}

}  // namespace

std::string printable(std::string_view data) {
    std::string out;
    out.reserve(data.size());
    for (unsigned char c : data) {
        if (c == '\n') out += "\\n";
        else if (c == '\t') out += "\\t";
        else if (c == '\\') out += "\\\\";
        else if (c < 0x20 || c >= 0x7f) out += fmt::format("\\x{:02x}", c);
        else out += static_cast<char>(c);
    }
    return out;
}

std::string format_scalar(const Json& v) {
    if (v.is_string()) return printable(v.get<std::string>());
    if (v.is_null()) return "n/a";
    if (v.is_number_float()) {
        double d = v.get<double>();
        if (!std::isfinite(d)) return "n/a";
        if (std::abs(d) >= 1e4) return fmt::format("{:.0f}", d);
        return fmt::format("{:.4g}", d);
    }
    return v.dump();
}

namespace {

// The unit a key names by its suffix (schema 2: every figure carries its unit in its key).
enum class Unit { none, us, s, per_s, bytes_per_s, percent };

Unit unit_of(std::string_view key, Unit inherited) {
    if (key == "samples") return Unit::none;  // a count beside the figures of its block
    if (key.ends_with("bytes_per_s")) return Unit::bytes_per_s;
    if (key.ends_with("_per_s")) return Unit::per_s;
    if (key.ends_with("_us")) return Unit::us;
    if (key.ends_with("_s")) return Unit::s;
    if (key.ends_with("_percent")) return Unit::percent;
    return inherited;
}

// A key without its unit suffix, for the text (the value says its unit).
std::string text_key(std::string_view key) {
    for (std::string_view suffix : {"_us", "_s"})
        if (key.ends_with(suffix) && !key.ends_with("_per_s")) return std::string(key.substr(0, key.size() - suffix.size()));
    return std::string(key);
}

std::string scaled(double v, const char* const units[], int count, double step) {
    int i = 0;
    while (i + 1 < count && std::abs(v) >= step) {
        v /= step;
        ++i;
    }
    const char* space = units[i][0] == '/' ? "" : " ";  // 12/s, 5.21 k/s
    return std::abs(v) >= 1000 ? fmt::format("{:.0f}{}{}", v, space, units[i]) : fmt::format("{:.4g}{}{}", v, space, units[i]);
}

std::string with_unit(const Json& v, Unit unit) {
    if (!v.is_number() || unit == Unit::none) return format_scalar(v);
    if (v.is_number_integer() && unit != Unit::us && unit != Unit::s) return format_scalar(v);  // counts (samples) stay exact
    const double d = v.get<double>();
    if (!std::isfinite(d)) return "n/a";
    switch (unit) {
    case Unit::us: return human_duration(d * 1e-6);
    case Unit::s: return human_duration(d);
    case Unit::per_s: {
        static const char* const units[] = {"/s", "k/s", "M/s", "G/s"};
        return scaled(d, units, 4, 1000.0);
    }
    case Unit::bytes_per_s: {
        static const char* const units[] = {"B/s", "kB/s", "MB/s", "GB/s"};
        return scaled(d, units, 4, 1000.0);
    }
    case Unit::percent: return fmt::format("{:.3g}%", d);
    case Unit::none: break;
    }
    return format_scalar(v);
}

// "a=1, b=2" for a nested object; null values (figures that do not apply) are left out.
void flatten(const Json& obj, const std::string& prefix, Unit unit, std::string& out) {
    for (auto it = obj.begin(); it != obj.end(); ++it) {
        if (it.value().is_null()) continue;
        const Unit u = unit_of(it.key(), unit);
        std::string key = prefix.empty() ? it.key() : prefix + "." + it.key();
        if (it.value().is_object()) {
            if (it.value().empty()) continue;
            flatten(it.value(), key, u, out);
        } else {
            if (!out.empty()) out += ", ";
            out += (u == unit ? key : text_key(key)) + "=" + with_unit(it.value(), u);
        }
    }
}

long read_proc_number(const char* path) {
    std::ifstream in(path);
    long v = -1;
    if (in >> v) return v;
    return -1;
}

}  // namespace

Json number_or_null(double value) { return std::isfinite(value) ? Json(value) : Json(nullptr); }

std::string render_json(const Json& object) {
    // Bytes from the network or a file need not be UTF-8: replace what is not, never throw.
    return sanitize(object).dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string render_text(const Json& object) {
    std::string out;
    for (auto it = object.begin(); it != object.end(); ++it) {
        if (it.key() == "type") continue;
        Json v = it.value();
        if (it.key() == "errors" && v.is_object())  // a zero count says nothing to a reader
            for (auto e = v.begin(); e != v.end();) e = e.value() == 0 ? v.erase(e) : std::next(e);
        if (v.is_null() || ((v.is_object() || v.is_array()) && v.empty())) continue;  // does not apply to this run
        const Unit unit = unit_of(it.key(), Unit::none);
        std::string line;
        if (v.is_object()) flatten(v, "", unit, line);
        else if (v.is_array()) {
            for (const auto& e : v) {
                if (!line.empty()) line += ", ";
                line += e.is_object() ? e.dump() : format_scalar(e);
            }
        } else line = with_unit(v, unit);
        if (line.empty()) continue;
        out += fmt::format("{:<12} {}\n", text_key(it.key()) + ":", line);
    }
    return out;
}

std::string human_duration(double seconds) {
    if (!std::isfinite(seconds)) return "n/a";
    const double a = std::abs(seconds);
    if (a == 0) return "0 s";
    if (a < 1e-3) return fmt::format("{:.3g} us", seconds * 1e6);
    if (a < 1) return fmt::format("{:.3g} ms", seconds * 1e3);
    if (a < 100) return fmt::format("{:.3g} s", seconds);
    return fmt::format("{:.0f} s", seconds);
}

Json environment_info() {
    Json env = Json::object();
    utsname u{};
    env["kernel"] = ::uname(&u) == 0 ? std::string(u.release) : std::string("unknown");
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    auto lim = [](rlim_t v) { return v == RLIM_INFINITY ? Json(nullptr) : Json(static_cast<std::uint64_t>(v)); };
    env["nofile_soft"] = lim(rl.rlim_cur);
    env["nofile_hard"] = lim(rl.rlim_max);
    long somaxconn = read_proc_number("/proc/sys/net/core/somaxconn");
    env["somaxconn"] = somaxconn >= 0 ? Json(somaxconn) : Json(nullptr);
    long pipe_max = read_proc_number("/proc/sys/fs/pipe-max-size");
    env["pipe_max_size"] = pipe_max >= 0 ? Json(pipe_max) : Json(nullptr);
    env["pipe_buf"] = PIPE_BUF;
    return env;
}

}  // namespace muxkit
