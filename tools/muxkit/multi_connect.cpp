#include "cli.hpp"

namespace muxkit::cli {

Subcommand setup_multi_connect(CLI::App& parent) {
    auto opts = std::make_shared<CommonOptions>();
    CLI::App* app = parent.add_subcommand("multi-connect", "not yet");
    add_common_options(*app, *opts);
    return {app, [] { return kRuntime; }, opts.get()};
}

}  // namespace muxkit::cli
