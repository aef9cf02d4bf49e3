// Model: how a run waits for many descriptors. The one list of models, their kinds and which
// features take them, read by the library, the command line, the help, man pages and completions.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace muxkit {

enum class Model : std::uint8_t { select, poll, epoll, epoll_et, io_uring, fork };

enum class ModelKind : std::uint8_t {
    readiness,   // an EventLoop says what is ready; the caller reads and writes
    completion,  // io_uring: the kernel does the I/O and reports it done
    process,     // one process per connection
};

// The features that take a --model, as bits of ModelInfo::features.
enum class Feature : std::uint8_t { echo_server = 1, multi_connect = 2, fd_watch = 4 };

struct ModelInfo {
    Model model;
    std::string_view name;     // as written on the command line and in reports
    ModelKind kind;
    std::uint8_t features;     // Feature bits
    std::string_view summary;  // a few words for --help
};

// Every model, in the order the help lists them.
std::span<const ModelInfo> models() noexcept;
const ModelInfo& model_info(Model m) noexcept;
std::string_view model_name(Model m) noexcept;
bool feature_takes(Feature f, Model m) noexcept;
// The names a feature takes, in order (the CLI's choices).
std::vector<std::string> model_names(Feature f);
// Throws UsageError naming what the feature takes for an unknown name or one it does not take.
Model parse_model(std::string_view text, Feature f);
// Empty when the model can run on this machine; otherwise why not (io_uring: old kernel,
// disabled, seccomp).
std::string model_unavailable_reason(Model m);

}  // namespace muxkit
