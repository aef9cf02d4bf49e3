#include "cli.hpp"

#include <cstdlib>
#include <unistd.h>

#include <fmt/format.h>

namespace muxkit::cli {

std::vector<Subcommand> build_app(CLI::App& app) {
    app.description("muxkit: network and IPC diagnostics (echo server, load client, fd watcher, pipe tests)");
    app.name("muxkit");
    app.set_version_flag("--version", "muxkit " MUXKIT_VERSION);
    app.require_subcommand(1);
    return {setup_echo_server(app), setup_multi_connect(app), setup_fd_watch(app), setup_pipe_test(app)};
}

void add_common_options(CLI::App& app, CommonOptions& opts) {
    app.add_flag("--json", opts.json, "write JSON Lines to stdout: one object per event, then a summary");
    app.add_flag("-v,--verbose", opts.verbose, "more detail (repeatable)");
    app.add_flag("-q,--quiet", opts.quiet, "less detail (repeatable)");
    app.add_option("--color", opts.color, "colour the output: auto, always or never")->type_name("WHEN")
        ->check(CLI::IsMember({"auto", "always", "never"}))
        ->capture_default_str();
}

std::string printable(std::string_view data) {
    std::string out;
    out.reserve(data.size());
    for (unsigned char c : data) {
        if (c == '\n') out += "\\n";
        else if (c == '\t') out += "\\t";
        else if (c == '\\') out += "\\\\";
        else if (c < 0x20 || c >= 0x7f) out += fmt::format("\\x{:02x}", c);
        else out += static_cast<char>(c);
    }
    return out;
}

std::string hex(std::string_view data) {
    std::string out;
    out.reserve(data.size() * 2);
    for (unsigned char c : data) out += fmt::format("{:02x}", c);
    return out;
}

bool use_color(std::string_view mode, std::FILE* stream) {
    if (mode == "always") return true;
    if (mode == "never") return false;
    const char* no_color = std::getenv("NO_COLOR");
    if (no_color && *no_color) return false;
    return ::isatty(::fileno(stream));
}

Output::Output(std::string command, const CommonOptions& opts)
    : command_(std::move(command)), opts_(opts), color_(use_color(opts.color, stdout)) {}

void Output::event(const Json& object, std::string_view text_line) {
    // One write per line: events may come from several threads (echo-server --threads).
    std::string line = opts_.json ? render_json(object) : std::string(text_line);
    if (line.empty()) return;
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fflush(stdout);
}

void Output::summary(Json object) {
    Json full = Json::object();
    full["type"] = "summary";
    full["command"] = command_;
    full["schema_version"] = 1;
    for (auto it = object.begin(); it != object.end(); ++it) full[it.key()] = it.value();
    full["environment"] = environment_info();
    if (opts_.json) {
        event(full, "");
        return;
    }
    if (opts_.verbosity() < 1) full.erase("environment");
    full.erase("schema_version");
    std::string text = render_text(full);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
}

void Output::note(std::string_view line) {
    if (opts_.verbosity() < 0) return;
    fmt::print(stderr, "{}\n", line);
}

void Output::warning(std::string_view line) { fmt::print(stderr, "muxkit {}: warning: {}\n", command_, line); }

}  // namespace muxkit::cli
