#include "muxkit/hdr_log.hpp"

#include <cerrno>
#include <cstring>
#include <ctime>

#include <fmt/format.h>

#include "muxkit/error.hpp"

namespace muxkit {

HdrLogWriter::HdrLogWriter(const std::string& path, double start_epoch_s) : path_(path) {
    file_ = std::fopen(path.c_str(), "we");
    if (!file_) throw RuntimeError(fmt::format("cannot write --hdr-log '{}': {}", path, std::strerror(errno)));
    const auto whole = static_cast<std::time_t>(start_epoch_s);
    std::tm utc{};
    ::gmtime_r(&whole, &utc);
    char when[64];
    std::strftime(when, sizeof when, "%a %b %d %H:%M:%S UTC %Y", &utc);
    fmt::print(file_, "#[Histogram log format version 1.3]\n");
    fmt::print(file_, "#[StartTime: {:.3f} (seconds since epoch), {}]\n", start_epoch_s, when);
    fmt::print(file_, "#[BaseTime: {:.3f} (seconds since epoch)]\n", start_epoch_s);
    fmt::print(file_, "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n");
}

HdrLogWriter::~HdrLogWriter() {
    if (file_) std::fclose(file_);
}

void HdrLogWriter::interval(std::string_view tag, double start_s, double length_s, const Histogram& h) {
    if (!file_) return;
    fmt::print(file_, "Tag={},{:.3f},{:.3f},{:.3f},{}\n", tag, start_s, length_s, static_cast<double>(h.max()) / 1e6, h.encode());
}

void HdrLogWriter::close() {
    if (!file_) return;
    const bool failed = std::ferror(file_) != 0;
    const int err = errno;
    const bool closed = std::fclose(file_) == 0;
    file_ = nullptr;
    if (failed || !closed) throw RuntimeError(fmt::format("cannot write --hdr-log '{}': {}", path_, std::strerror(err)));
}

}  // namespace muxkit
