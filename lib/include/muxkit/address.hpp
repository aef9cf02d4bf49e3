// Address: what the user wrote (HOST:PORT, [V6]:PORT, PORT, unix:PATH, udp:HOST:PORT); Endpoint: a
// resolved socket address.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <sys/socket.h>

namespace muxkit {

struct Address {
    enum class Kind { inet, unix_path, udp };
    Kind kind = Kind::inet;
    std::string host;  // without brackets; inet and udp
    std::uint16_t port = 0;
    std::string path;  // unix only
    int family = 0;    // AF_INET or AF_INET6: only that family's addresses of a name (-4, -6); 0: any

    // Throws UsageError naming the input and what is wrong with it.
    static Address parse(std::string_view text);
    std::string to_string() const;
    bool datagram() const noexcept { return kind == Kind::udp; }
};

struct Endpoint {
    sockaddr_storage storage{};
    socklen_t length = 0;

    int family() const noexcept { return storage.ss_family; }
    const sockaddr* sa() const noexcept { return reinterpret_cast<const sockaddr*>(&storage); }
    static Endpoint from(const sockaddr* sa, socklen_t len);
    std::string to_string() const;  // "127.0.0.1:7007", "[::1]:7007", "unix:/tmp/s"
    std::uint16_t port() const noexcept;
};

// Resolves host names through getaddrinfo; passive for listening. Throws RuntimeError when
// the host does not resolve (a runtime error, not a usage error).
std::vector<Endpoint> resolve(const Address& address, bool passive);

}  // namespace muxkit
