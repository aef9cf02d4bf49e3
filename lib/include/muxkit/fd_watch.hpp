// run_watch: reports the readiness of descriptors (inherited ones, files, FIFOs, sockets, a child's
// output) as timestamped events, with the timeouts of each wait as events too.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "muxkit/address.hpp"
#include "muxkit/event_loop.hpp"
#include "muxkit/units.hpp"

namespace muxkit {

struct SourceSpec {
    enum class Type { fd, file, fifo, listen, connect, udp, exec };
    Type type = Type::fd;
    std::string text;  // as the user wrote it (stdin for "-")
    int fd = -1;
    std::string path;
    Address address;
    std::vector<std::string> argv;

    // N, -, stdin, file:PATH, fifo:PATH, listen:ADDRESS, connect:ADDRESS, udp:ADDRESS (a bound
    // datagram socket), exec:COMMAND; throws UsageError.
    static SourceSpec parse(std::string_view text);
};

// Splits a command line into words without a shell: whitespace separates, quotes group, \ escapes.
std::vector<std::string> split_command(std::string_view command);

// What a descriptor is: pipe, fifo, file, tty, tcp, udp, unix, chr, dir, ...
std::string describe_fd(int fd);

enum class Show { none, size, text, hex };

struct WatchConfig {
    std::vector<SourceSpec> sources;
    Model model = Model::select;
    std::uint32_t events = kReadable;  // kReadable | kWritable | kException
    Duration timeout = std::chrono::seconds(5);
    std::uint64_t count = 0;  // 0: no limit
    std::optional<Duration> duration;
    bool once = false;
    Show show = Show::size;
};

struct WatchEvent {
    double t = 0;  // seconds since start
    int fd = -1;   // -1 for timeout
    std::string source, kind, event;
    std::string summary_key;  // where the summary counts it (accepted connections: per listener)
    std::uint64_t bytes = 0;
    std::string data;    // what was read, with --show text or hex
    std::string peer;    // accepted; datagram: its sender
    std::string status;  // exited: "exit 0", "killed by SIGTERM"; error: the errno name
    int exit_code = 0;   // exited normally: its code
    int signal = 0;      // exited: the signal that killed it
    int error = 0;       // error: errno
};

/// Threads: called on the thread that called run_watch.
class WatchObserver {
public:
    virtual ~WatchObserver() = default;
    virtual void on_event(const WatchEvent& event) = 0;
    // A listen: or udp: source is bound: its source name and the address (real port in place of 0).
    virtual void on_listening(const std::string& source, const std::string& address) { (void)source, (void)address; }
    // Every source is open: the addresses the listen: and udp: sources bound, in their order.
    virtual void on_ready(const std::vector<std::string>& addresses) { (void)addresses; }
};

struct WatchSummary {
    std::uint64_t events = 0, timeouts = 0;
    std::vector<std::pair<std::string, std::map<std::string, std::uint64_t>>> by_source;  // in order of appearance
    bool timed_out_first = false;  // --once ended by a timeout
    bool all_ended = false;
    double duration_s = 0;
};

// Throws UsageError (a source select cannot watch, epoll on a file), SystemError/RuntimeError
// (cannot open, listen, connect or run a source).
WatchSummary run_watch(const WatchConfig& config, WatchObserver& observer);

}  // namespace muxkit
