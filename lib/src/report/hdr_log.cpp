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
    write("#[Histogram log format version 1.3]\n");
    write(fmt::format("#[StartTime: {:.3f} (seconds since epoch), {}]\n", start_epoch_s, when));
    write(fmt::format("#[BaseTime: {:.3f} (seconds since epoch)]\n", start_epoch_s));
    write("\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n");
}

void HdrLogWriter::write(const std::string& line) {
    if (!file_ || err_) return;
    if (std::fwrite(line.data(), 1, line.size(), file_) != line.size()) err_ = errno ? errno : EIO;
}

HdrLogWriter::~HdrLogWriter() {
    if (file_) std::fclose(file_);
}

void HdrLogWriter::interval(std::string_view tag, double start_s, double length_s, const Histogram& h) {
    write(fmt::format("Tag={},{:.3f},{:.3f},{:.3f},{}\n", tag, start_s, length_s, static_cast<double>(h.max()) / 1e6, h.encode()));
}

void HdrLogWriter::close() {
    if (!file_) return;
    int err = err_;
    if (std::fflush(file_) != 0 && !err) err = errno;
    if (std::ferror(file_) && !err) err = EIO;
    if (std::fclose(file_) != 0 && !err) err = errno;
    file_ = nullptr;
    if (err) throw RuntimeError(fmt::format("cannot write --hdr-log '{}': {}", path_, std::strerror(err)));
}

}  // namespace muxkit
