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

void flatten(const Json& obj, const std::string& prefix, std::string& out) {
    for (auto it = obj.begin(); it != obj.end(); ++it) {
        std::string key = prefix.empty() ? it.key() : prefix + "." + it.key();
        if (it.value().is_object()) {
            if (it.value().empty()) continue;
            flatten(it.value(), key, out);
        } else {
            if (!out.empty()) out += ' ';
            out += key + "=" + format_scalar(it.value());
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
        const Json& v = it.value();
        std::string line;
        if ((v.is_object() || v.is_array()) && v.empty()) continue;
        if (v.is_object()) flatten(v, "", line);
        else if (v.is_array()) {
            for (const auto& e : v) {
                if (!line.empty()) line += ", ";
                line += e.is_object() ? e.dump() : format_scalar(e);
            }
        } else line = format_scalar(v);
        out += fmt::format("{:<12} {}\n", it.key() + ":", line);
    }
    return out;
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
