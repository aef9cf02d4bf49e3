#include "echo_server/listeners.hpp"

#include <algorithm>
#include <string>

#include <unistd.h>

#include "muxkit/socket.hpp"

namespace muxkit::detail {

std::vector<Listener> open_listeners(const EchoServerConfig& config, EchoServerObserver& observer, int loops) {
    std::vector<Listener> out;
    std::vector<std::string> names;
    for (const auto& address : config.addresses) {
        Endpoint ep = resolve(address, true).front();
        const bool shared = loops == 1 || address.kind == Address::Kind::unix_path;
        const bool datagram = address.datagram();
        auto open = [&](const Endpoint& where, bool reuse_port) {
            return datagram ? bind_datagram(where, reuse_port) : listen_on(where, config.backlog, reuse_port);
        };
        Listener first;
        first.fd = open(ep, !shared);
        first.datagram = datagram;
        first.endpoint = local_endpoint(first.fd.get());  // the real port when 0 was asked
        if (address.kind == Address::Kind::unix_path) {
            first.unix_path = address.path;
            first.endpoint = ep;
        }
        first.loop = shared ? -1 : 0;
        names.push_back((datagram ? "udp:" : "") + first.endpoint.to_string());
        const Endpoint bound = first.endpoint;
        out.push_back(std::move(first));
        for (int i = 1; !shared && i < loops; ++i) {
            Listener more;
            more.fd = open(bound, true);
            more.datagram = datagram;
            more.endpoint = bound;
            more.loop = i;
            out.push_back(std::move(more));
        }
    }
    for (const auto& name : names) observer.on_listening(name, config.model);
    observer.on_ready(names);
    return out;
}

void remove_unix_sockets(const std::vector<Listener>& listeners) noexcept {
    for (const auto& l : listeners)
        if (!l.unix_path.empty()) ::unlink(l.unix_path.c_str());
}

RunSchedule::RunSchedule(const EchoServerConfig& config, std::int64_t start_ns) {
    if (config.duration) end_ = start_ns + config.duration->count();
    if (config.stats_interval) {
        interval_ = config.stats_interval->count();
        next_stats_ = start_ns + interval_;
    }
}

std::optional<std::int64_t> RunSchedule::next_deadline() const {
    if (end_ && next_stats_) return std::min(*end_, *next_stats_);
    return end_ ? end_ : next_stats_;
}

bool RunSchedule::stats_due(std::int64_t now) {
    if (!next_stats_ || now < *next_stats_) return false;
    *next_stats_ += interval_;
    return true;
}

}  // namespace muxkit::detail
