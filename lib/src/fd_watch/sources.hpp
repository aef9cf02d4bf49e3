// What fd-watch watches: opening each kind of source (descriptor, file, FIFO, listening or
// connected socket) and starting a command whose output it watches (private to the library).
#pragma once

#include <chrono>
#include <string>

#include <sys/types.h>

#include "muxkit/fd.hpp"
#include "muxkit/fd_watch.hpp"

namespace muxkit::detail {

enum class Role { stream, listener, fifo, exec_out, datagram };

// A connect: source that gets no answer within this long is an error.
constexpr std::chrono::seconds kConnectTimeout{5};

struct OpenedSource {
    Fd owned;  // descriptors opened here; inherited ones are not closed
    int fd = -1;
    std::string name;
    Role role = Role::stream;
    std::string fifo_path;
    std::string unix_path;  // a listener's socket file, removed at the end
};

// Every type but exec; throws SystemError/RuntimeError naming the source.
OpenedSource open_source(const SourceSpec& spec);
// Non-blocking, so a FIFO without a writer opens at once (and reads EOF until one comes).
Fd open_fifo(const std::string& path);

struct StartedExec {
    pid_t pid = -1;
    Fd out, err;  // the read ends of its stdout and stderr, non-blocking
};
// Runs spec.argv with stdin from /dev/null; throws when the command cannot be run (exec failed).
StartedExec start_exec(const SourceSpec& spec);

}  // namespace muxkit::detail
