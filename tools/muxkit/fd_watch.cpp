#include "cli.hpp"

namespace muxkit::cli {

Subcommand setup_fd_watch(CLI::App& parent) {
    auto opts = std::make_shared<CommonOptions>();
    CLI::App* app = parent.add_subcommand("fd-watch", "not yet");
    add_common_options(*app, *opts);
    return {app, [] { return kRuntime; }, opts.get()};
}

}  // namespace muxkit::cli
