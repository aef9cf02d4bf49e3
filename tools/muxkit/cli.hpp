// What every subcommand shares: common options, the output writer, and the subcommand registry.
#pragma once

#include <cstdio>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include <muxkit/address.hpp>
#include <muxkit/model.hpp>
#include <muxkit/report.hpp>

namespace muxkit::cli {

struct CommonOptions {
    bool json = false;
    int verbose = 0;
    int quiet = 0;
    std::string color = "auto";
    int verbosity() const noexcept { return verbose - quiet; }
};

// --json, -q, -v, --color on a subcommand.
void add_common_options(CLI::App& app, CommonOptions& opts);
// Installs the handlers that turn SIGINT, SIGTERM, SIGUSR1 and SIGCHLD into SignalPipe notices
// (called by the subcommands that run until stopped).
void forward_signals();
// -4 / -6: which address family a name resolves to, where it has both.
struct FamilyOptions {
    bool v4 = false, v6 = false;
};
void add_family_options(CLI::App& app, FamilyOptions& opts);
// Sets the family on an inet or udp address; a numeric host of the other family is a UsageError.
void apply_family(const FamilyOptions& opts, Address& address);
// --ready-file FILE, and sd_notify's READY=1 where NOTIFY_SOCKET is set: how a script or a service
// manager learns that a server is up, and on which ports (port 0), while it keeps running.
class ReadyNotice {
public:
    void add_option(CLI::App& app);
    // Every address is bound: writes FILE atomically (a temporary file renamed into place), one
    // address per line, and notifies. A failure stops the run (SignalPipe) and is kept for rethrow().
    void announce(const std::vector<std::string>& addresses) noexcept;
    void rethrow() const;  // the failure, as a RuntimeError, once the run has ended

private:
    std::string file_;
    std::string error_;
};
// A run's identity in its summary: this host's name, a time as UTC ISO 8601
// (2026-12-07T21:00:00Z), and 128 random bits as hex.
std::string host_name();
std::string iso8601_utc(double epoch_s);
std::string random_run_id();
// --threads: between 1 and 256 event loops; throws UsageError otherwise.
void check_threads(unsigned threads);
// -m/--model with the choices and help of the models the feature takes (one list: model.hpp).
void add_model_option(CLI::App& app, std::string& model, Feature feature);

// Results go to stdout (JSON Lines with --json, text otherwise), one flushed line at a time;
// notes and warnings go to stderr. Subcommands hand over both shapes and never branch on --json.
// The outcome of a run that has a check: PASS, or FAIL and why.
struct RunVerdict {
    bool passed = true;
    std::vector<std::string> reasons;
};

class Output {
public:
    Output(std::string command, const CommonOptions& opts);
    bool json() const noexcept { return opts_.json; }
    int verbosity() const noexcept { return opts_.verbosity(); }
    // An event: the JSON object with --json, else text_line (skipped when empty, and under -q).
    void event(const Json& object, std::string_view text_line);
    // The final summary: adds command, schema_version and environment. The text starts with the
    // verdict line (the given one, else the summary's "check"), then the figures rendered for
    // people; -q leaves the verdict line alone, -qq nothing. The JSON is the same at every level.
    void summary(Json object, std::optional<RunVerdict> verdict = std::nullopt);
    void note(std::string_view line);     // stderr, unless -q
    void warning(std::string_view line);  // stderr, always: "muxkit CMD: warning: ..."
    bool color() const noexcept { return color_; }
    const std::string& command() const noexcept { return command_; }

private:
    std::string command_;
    CommonOptions opts_;
    bool color_;
};

// Writing stdout failed. EPIPE (the reader went away) ends a run quietly with exit 0, as `yes |
// head` does; any other error (ENOSPC on /dev/full) is a runtime error. main() decides.
class OutputError : public std::runtime_error {
public:
    explicit OutputError(int err);
    int err() const noexcept { return err_; }

private:
    int err_;
};

// The first errno that writing stdout met, 0 when none: a run that caught the OutputError
// (a loop thread) still ends with the right exit code.
int stdout_error() noexcept;

// Writes all of text to stdout in one call and flushes; throws OutputError.
void write_stdout(std::string_view text);

// Bytes as lower-case hex digits, two per byte.
std::string hex(std::string_view data);

// Whether to colour a stream: --color always|never|auto (a terminal, and NO_COLOR unset).
bool use_color(std::string_view mode, std::FILE* stream);

// A subcommand: its options hang off the returned App; run() executes what was parsed.
struct Subcommand {
    CLI::App* app;
    std::function<int()> run;
    const CommonOptions* common;
};

// The whole command line: the top-level App and its subcommands. muxkit and muxkit-docgen
// both build it here, so the man pages and completions come from the same tree as --help.
std::vector<Subcommand> build_app(CLI::App& app);

Subcommand setup_echo_server(CLI::App& parent);
Subcommand setup_multi_connect(CLI::App& parent);
Subcommand setup_merge(CLI::App& parent);
Subcommand setup_fd_watch(CLI::App& parent);
Subcommand setup_pipe_test(CLI::App& parent);

// Exit codes of the command-line contract.
enum Exit : int { kOk = 0, kCheckFailed = 1, kUsage = 2, kRuntime = 3 };

}  // namespace muxkit::cli
