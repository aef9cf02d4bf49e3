#include "muxkit/address.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <fmt/format.h>

#include "muxkit/error.hpp"

namespace muxkit {

namespace {

std::uint16_t parse_port(std::string_view port, std::string_view input) {
    if (port.empty()) throw UsageError(fmt::format("invalid address '{}': missing port", input));
    unsigned value = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || ptr != port.data() + port.size())
        throw UsageError(fmt::format("invalid address '{}': port '{}' is not a number", input, port));
    if (value > 65535)
        throw UsageError(fmt::format("invalid address '{}': port {} is out of range (0-65535)", input, port));
    return static_cast<std::uint16_t>(value);
}

bool all_digits(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    return true;
}

}  // namespace

Address Address::parse(std::string_view text) {
    Address a;
    if (text.empty()) throw UsageError("invalid address '': empty");
    if (text.starts_with("unix:")) {
        a.kind = Kind::unix_path;
        a.path = std::string(text.substr(5));
        if (a.path.empty()) throw UsageError(fmt::format("invalid address '{}': missing socket path", text));
        if (a.path.size() >= sizeof(sockaddr_un::sun_path))
            throw UsageError(fmt::format("invalid address '{}': socket path longer than {} bytes", text,
                                         sizeof(sockaddr_un::sun_path) - 1));
        return a;
    }
    if (text.starts_with("udp:")) {
        // The inet rules after the prefix; a bare port means loopback, as for TCP.
        std::string_view rest = text.substr(4);
        if (rest.empty()) throw UsageError(fmt::format("invalid address '{}': expected udp:HOST:PORT or udp:[IPV6]:PORT", text));
        if (rest.starts_with("unix:") || rest.starts_with("udp:"))
            throw UsageError(fmt::format("invalid address '{}': expected udp:HOST:PORT or udp:[IPV6]:PORT", text));
        try {
            a = parse(rest);
        } catch (const UsageError& e) {  // the same reason, naming what the user wrote
            std::string why = e.what();
            const std::string inner = fmt::format("'{}'", rest);
            if (auto at = why.find(inner); at != std::string::npos) why.replace(at, inner.size(), fmt::format("'{}'", text));
            throw UsageError(why);
        }
        if (a.kind != Kind::inet) throw UsageError(fmt::format("invalid address '{}': expected udp:HOST:PORT or udp:[IPV6]:PORT", text));
        a.kind = Kind::udp;
        return a;
    }
    if (all_digits(text)) {
        a.host = "127.0.0.1";
        a.port = parse_port(text, text);
        return a;
    }
    if (text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos)
            throw UsageError(fmt::format("invalid address '{}': missing ']' after IPv6 address", text));
        a.host = std::string(text.substr(1, close - 1));
        if (a.host.empty()) throw UsageError(fmt::format("invalid address '{}': empty IPv6 address", text));
        in6_addr probe;
        if (inet_pton(AF_INET6, a.host.c_str(), &probe) != 1)
            throw UsageError(fmt::format("invalid address '{}': '{}' is not an IPv6 address", text, a.host));
        auto rest = text.substr(close + 1);
        if (rest.empty() || rest.front() != ':')
            throw UsageError(fmt::format("invalid address '{}': expected ':PORT' after ']'", text));
        a.port = parse_port(rest.substr(1), text);
        return a;
    }
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos)
        throw UsageError(fmt::format("invalid address '{}': expected HOST:PORT, [IPV6]:PORT, PORT or unix:PATH", text));
    // tls:HOST:PORT, tcp:..., http://...: a scheme of another tool, not an unbracketed IPv6 address
    // (whose first group is hex digits).
    if (const auto first = text.find(':'); first != colon || text.substr(first).starts_with("://")) {
        const std::string_view scheme = text.substr(0, first);
        const bool letters = !scheme.empty() && std::all_of(scheme.begin(), scheme.end(), [](char c) { return std::isalpha(static_cast<unsigned char>(c)); });
        const bool hex = std::all_of(scheme.begin(), scheme.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
        if (letters && (!hex || text.substr(first).starts_with("://")))
            throw UsageError(fmt::format("invalid address '{}': muxkit does not know '{}:' addresses; give HOST:PORT, [IPV6]:PORT, "
                                         "PORT, unix:PATH or udp:HOST:PORT",
                                         text, scheme));
    }
    if (text.find(':') != colon)
        throw UsageError(fmt::format("invalid address '{}': write an IPv6 address in brackets, as [::1]:7007", text));
    a.host = std::string(text.substr(0, colon));
    if (a.host.empty()) throw UsageError(fmt::format("invalid address '{}': missing host", text));
    a.port = parse_port(text.substr(colon + 1), text);
    return a;
}

std::string Address::to_string() const {
    if (kind == Kind::unix_path) return "unix:" + path;
    const char* scheme = kind == Kind::udp ? "udp:" : "";
    if (host.find(':') != std::string::npos) return fmt::format("{}[{}]:{}", scheme, host, port);
    return fmt::format("{}{}:{}", scheme, host, port);
}

Endpoint Endpoint::from(const sockaddr* sa, socklen_t len) {
    Endpoint e;
    if (len > sizeof(e.storage)) len = sizeof(e.storage);
    std::memcpy(&e.storage, sa, len);
    e.length = len;
    return e;
}

std::uint16_t Endpoint::port() const noexcept {
    if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
    if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
    return 0;
}

std::string Endpoint::to_string() const {
    char buf[INET6_ADDRSTRLEN] = {};
    switch (family()) {
    case AF_INET: {
        auto in = reinterpret_cast<const sockaddr_in*>(&storage);
        inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
        return fmt::format("{}:{}", buf, ntohs(in->sin_port));
    }
    case AF_INET6: {
        auto in6 = reinterpret_cast<const sockaddr_in6*>(&storage);
        inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
        return fmt::format("[{}]:{}", buf, ntohs(in6->sin6_port));
    }
    case AF_UNIX: {
        auto un = reinterpret_cast<const sockaddr_un*>(&storage);
        if (length <= offsetof(sockaddr_un, sun_path)) return "unix:";
        std::size_t n = length - offsetof(sockaddr_un, sun_path);
        return "unix:" + std::string(un->sun_path, strnlen(un->sun_path, n));
    }
    default: return "unknown";
    }
}

std::vector<Endpoint> resolve(const Address& address, bool passive) {
    std::vector<Endpoint> out;
    if (address.kind == Address::Kind::unix_path) {
        sockaddr_un un{};
        un.sun_family = AF_UNIX;
        std::memcpy(un.sun_path, address.path.data(), address.path.size());
        out.push_back(Endpoint::from(reinterpret_cast<sockaddr*>(&un),
                                     static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.path.size() + 1)));
        return out;
    }
    addrinfo hints{};
    hints.ai_family = address.family ? address.family : AF_UNSPEC;
    hints.ai_socktype = address.datagram() ? SOCK_DGRAM : SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
    addrinfo* res = nullptr;
    std::string port = std::to_string(address.port);
    int rc = getaddrinfo(address.host.c_str(), port.c_str(), &hints, &res);
    if (rc != 0)
        throw RuntimeError(fmt::format("cannot resolve '{}'{}: {}", address.host,
                                       address.family == AF_INET ? " as IPv4" : address.family == AF_INET6 ? " as IPv6" : "",
                                       rc == EAI_SYSTEM ? std::strerror(errno) : gai_strerror(rc)));
    for (auto p = res; p; p = p->ai_next) out.push_back(Endpoint::from(p->ai_addr, p->ai_addrlen));
    freeaddrinfo(res);
    if (out.empty()) throw RuntimeError(fmt::format("cannot resolve '{}': no addresses", address.host));
    return out;
}

}  // namespace muxkit
