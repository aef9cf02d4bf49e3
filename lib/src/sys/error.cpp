#include "muxkit/error.hpp"

#include <cerrno>
#include <cstring>

namespace muxkit {

void throw_errno(const std::string& context) { throw SystemError(errno, context); }

std::string errno_name(int err) {
    if (const char* name = strerrorname_np(err)) return name;
    return "E" + std::to_string(err);
}

int errno_from_name(std::string_view name) {
    for (int err = 1; err < 4096; ++err)
        if (errno_name(err) == name) return err;
    return 0;
}

void ErrorCounts::merge(const ErrorCounts& other) noexcept {
    for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
}

std::map<std::string, std::uint64_t> ErrorCounts::by_name() const {
    std::map<std::string, std::uint64_t> out;
    for (int i = 0; i < kSlots; ++i)
        if (counts_[i]) out[i == 0 ? std::string("other") : errno_name(i)] += counts_[i];
    return out;
}

}  // namespace muxkit
