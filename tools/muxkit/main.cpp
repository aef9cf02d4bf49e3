// muxkit: one binary, four subcommands. Parses, runs, and maps every failure to the contract's exit codes.
#include <cerrno>
#include <csignal>
#include <cstring>
#include <optional>
#include <exception>
#include <vector>

#include <fmt/format.h>

#include <muxkit/error.hpp>
#include <muxkit/report.hpp>

#include "cli.hpp"

namespace {

using namespace muxkit;

std::string subcommand_in(int argc, char** argv, const std::vector<cli::Subcommand>& subs) {
    for (int i = 1; i < argc; ++i)
        for (const auto& s : subs)
            if (s.app->get_name() == argv[i]) return s.app->get_name();
    return "";
}

bool json_requested(int argc, char** argv) {
    for (int i = 1; i < argc; ++i)
        if (std::strcmp(argv[i], "--json") == 0) return true;
    return false;
}

// The message escaped as printable() does (a name from outside cannot move the cursor), except
// that backslashes stay as they are, so a message that names an escape reads as written.
std::string one_line(std::string_view message) {
    std::string out;
    for (const char ch : message) out += ch == '\\' ? std::string(1, ch) : printable(std::string_view(&ch, 1));
    return out;
}

int report_error(const std::string& sub, bool json, int exit_code, const std::string& message) {
    std::string prefix = sub.empty() ? "muxkit" : "muxkit " + sub;
    bool color = cli::use_color("auto", stderr);
    // One line, escaped: a message can carry file names and addresses that came from outside.
    fmt::print(stderr, "{}: {}error:{} {}\n", prefix, color ? "\x1b[1;31m" : "", color ? "\x1b[0m" : "", one_line(message));
    if (json) {
        Json e = {{"type", "error"}, {"exit", exit_code}, {"message", message}};
        fmt::print("{}\n", render_json(e));
    }
    return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
    // A closed stdout is an EPIPE to handle, not a death by SIGPIPE (children that exec restore it).
    std::signal(SIGPIPE, SIG_IGN);
    CLI::App app;
    std::vector<cli::Subcommand> subs = cli::build_app(app);
    const std::string sub_name = subcommand_in(argc, argv, subs);
    const bool json = json_requested(argc, argv);
    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& e) {
        return app.exit(e);  // --help, --version: to stdout, exit 0
    } catch (const CLI::ParseError& e) {
        // CLI11 exits with 100-127; the contract says 2 for every usage error.
        report_error(sub_name, json, cli::kUsage, e.what());
        if (sub_name.empty()) fmt::print(stderr, "Run 'muxkit --help' for the subcommands.\n");
        else fmt::print(stderr, "Run 'muxkit {} --help' for its options.\n", sub_name);
        return cli::kUsage;
    }
    for (auto& s : subs) {
        if (!app.got_subcommand(s.app)) continue;
        const std::string name = s.app->get_name();
        // A stdout whose reader went away ends the run quietly (exit 0); another output error
        // is a runtime error, whichever exception it surfaced as (a loop thread reports it as
        // its own failure).
        auto output_failed = [&]() -> std::optional<int> {
            const int err = cli::stdout_error();
            if (err == 0) return std::nullopt;
            if (err == EPIPE) return cli::kOk;
            return report_error(name, false, cli::kRuntime, cli::OutputError(err).what());
        };
        try {
            const int rc = s.run();
            if (auto failed = output_failed()) return *failed;
            return rc;
        } catch (const UsageError& e) {
            return report_error(name, s.common->json, cli::kUsage, e.what());
        } catch (const std::bad_alloc&) {
            return report_error(name, s.common->json, cli::kRuntime, "out of memory");
        } catch (const std::exception& e) {
            if (auto failed = output_failed()) return *failed;
            return report_error(name, s.common->json, cli::kRuntime, e.what());
        }
    }
    return report_error("", json, cli::kUsage, "no subcommand given");
}
