#include "muxkit/error.hpp"

#include <cerrno>
#include <cstring>
#include <stdexcept>

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

void ErrorCounts::merge(const ErrorCounts& other) {
    for (std::size_t i = 0; i < counts_.size(); ++i)
        if (__builtin_add_overflow(counts_[i], other.counts_[i], &counts_[i])) throw std::overflow_error("an error count passed 2^64 - 1");
}

std::map<std::string, std::uint64_t> ErrorCounts::by_name() const {
    std::map<std::string, std::uint64_t> out;
    for (int i = 0; i < kSlots; ++i)
        if (counts_[i]) out[i == 0 ? std::string("other") : errno_name(i)] += counts_[i];
    return out;
}

}  // namespace muxkit
