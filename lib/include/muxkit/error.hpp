// Error types: SystemError for failed system calls, UsageError for bad user input.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace muxkit {

// A failed system call, with what was being attempted: "bind 127.0.0.1:7007: Address already in use".
class SystemError : public std::system_error {
public:
    SystemError(int err, const std::string& context)
        : std::system_error(err, std::generic_category(), context) {}
};

// Input the user gave that cannot be used (exit status 2).
class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A failure at run time that is not one system call (exit status 3).
class RuntimeError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

[[noreturn]] void throw_errno(const std::string& context);

// "ECONNRESET" for ECONNRESET; "E<number>" for an unknown value.
std::string errno_name(int err);
// The errno an errno_name() stands for ("ECONNRESET", "E200"); 0 for a name that is none.
int errno_from_name(std::string_view name);

// Counts of errors by errno, without allocation when counting.
class ErrorCounts {
public:
    void add(int err, std::uint64_t n = 1) noexcept { counts_[index(err)] += n; }
    void merge(const ErrorCounts& other);  // throws std::overflow_error when a sum passes 2^64 - 1
    std::uint64_t count(int err) const noexcept { return counts_[index(err)]; }
    std::map<std::string, std::uint64_t> by_name() const;  // only non-zero counts

private:
    static constexpr int kSlots = 160;  // Linux errno values stay below 134
    static std::size_t index(int err) noexcept { return (err > 0 && err < kSlots) ? err : 0; }
    std::array<std::uint64_t, kSlots> counts_{};
};

}  // namespace muxkit
