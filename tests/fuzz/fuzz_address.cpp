// Addresses: any input is an Address or a UsageError, and what parses formats back to itself.
#include <muxkit/address.hpp>
#include <muxkit/error.hpp>

#include "fuzz_target.hpp"

MUXKIT_FUZZ_TARGET(address) {
    muxkit::Address a;
    try {
        a = muxkit::Address::parse(input);
    } catch (const muxkit::UsageError&) {
        return;
    }
    muxkit::Address b = muxkit::Address::parse(a.to_string());
    FUZZ_CHECK(a.kind == b.kind && a.host == b.host && a.port == b.port && a.path == b.path);
}
