#include "cli.hpp"

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstddef>
#include <cstring>
#include <ctime>

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/color.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <muxkit/error.hpp>
#include <muxkit/fd.hpp>
#include <muxkit/io.hpp>
#include <muxkit/signals.hpp>

namespace muxkit::cli {

std::vector<Subcommand> build_app(CLI::App& app) {
    app.description("muxkit: network and IPC diagnostics (echo server, load client and merge, fd watcher, pipe tests)");
    app.name("muxkit");
    app.set_version_flag("--version", "muxkit " MUXKIT_VERSION);
    app.require_subcommand(1);
    return {setup_echo_server(app), setup_multi_connect(app), setup_merge(app), setup_fd_watch(app), setup_pipe_test(app)};
}

void add_model_option(CLI::App& app, std::string& model, Feature feature) {
    std::vector<std::string_view> summaries;
    for (const ModelInfo& m : models())
        if (feature_takes(feature, m.model)) summaries.push_back(m.summary);
    std::string help;
    for (std::size_t i = 0; i < summaries.size(); ++i)
        help += fmt::format("{}{}", i == 0 ? "" : i + 1 == summaries.size() ? " or " : ", ", summaries[i]);
    app.add_option("-m,--model", model, help)->type_name("MODEL")->check(CLI::IsMember(model_names(feature)))->capture_default_str();
}

void add_family_options(CLI::App& app, FamilyOptions& opts) {
    auto* v4 = app.add_flag("-4", opts.v4, "IPv4 only: a name resolves to its IPv4 addresses");
    auto* v6 = app.add_flag("-6", opts.v6, "IPv6 only: a name resolves to its IPv6 addresses");
    v4->excludes(v6);
}

void apply_family(const FamilyOptions& opts, Address& address) {
    if ((!opts.v4 && !opts.v6) || address.kind == Address::Kind::unix_path) return;
    address.family = opts.v4 ? AF_INET : AF_INET6;
    in_addr v4;
    in6_addr v6;
    if (opts.v4 && inet_pton(AF_INET6, address.host.c_str(), &v6) == 1)
        throw UsageError(fmt::format("-4 asks for IPv4, but {} is an IPv6 address", address.to_string()));
    if (opts.v6 && inet_pton(AF_INET, address.host.c_str(), &v4) == 1)
        throw UsageError(fmt::format("-6 asks for IPv6, but {} is an IPv4 address", address.to_string()));
}

void check_threads(unsigned threads) {
    if (threads < 1 || threads > 256) throw UsageError(fmt::format("invalid --threads '{}': must be between 1 and 256", threads));
}

void notify_service_manager(std::string_view state);

void ReadyNotice::add_option(CLI::App& app) {
    app.add_option("--ready-file", file_,
                   "once every address is bound, write them to FILE (one per line, real ports in place of 0) and keep running")
        ->type_name("FILE");
}

void ReadyNotice::announce(const std::vector<std::string>& addresses) noexcept {
    try {
        if (!file_.empty()) {
            const std::string tmp = fmt::format("{}.{}.tmp", file_, ::getpid());
            Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644));
            if (!fd) throw SystemError(errno, "cannot write --ready-file '" + file_ + "'");
            std::string text;
            for (const auto& a : addresses) text += a + '\n';
            int err = write_all(fd.get(), text.data(), text.size());
            if (!err && ::fsync(fd.get()) != 0) err = errno;
            if (err) {
                ::unlink(tmp.c_str());
                throw SystemError(err, "cannot write --ready-file '" + file_ + "'");
            }
            fd.reset();
            if (::rename(tmp.c_str(), file_.c_str()) != 0) {
                const int err = errno;
                ::unlink(tmp.c_str());
                throw SystemError(err, "cannot write --ready-file '" + file_ + "'");
            }
        }
        notify_service_manager(fmt::format("READY=1\nSTATUS=listening on {}", fmt::join(addresses, " ")));
    } catch (const std::exception& e) {
        error_ = e.what();
        SignalPipe::request_stop();
    }
}

void ReadyNotice::rethrow() const {
    if (!error_.empty()) throw RuntimeError(error_);
}

std::string host_name() {
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) != 0) return "unknown";
    return name;
}

std::string iso8601_utc(double epoch_s) {
    const auto whole = static_cast<std::time_t>(epoch_s);
    std::tm utc{};
    ::gmtime_r(&whole, &utc);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
    return text;
}

std::string random_run_id() {
    unsigned char bits[16];
    std::size_t got = 0;
    while (got < sizeof bits) {
        const ssize_t n = ::getrandom(bits + got, sizeof bits - got, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw SystemError(errno, "getrandom");
        got += static_cast<std::size_t>(n);
    }
    return hex(std::string_view(reinterpret_cast<const char*>(bits), sizeof bits));
}

void add_common_options(CLI::App& app, CommonOptions& opts) {
    app.add_flag("--json", opts.json, "write JSON Lines to stdout: one object per event, then a summary");
    app.add_flag("-v,--verbose", opts.verbose, "more detail (repeatable)");
    app.add_flag("-q,--quiet", opts.quiet,
                 "print only the verdict line and errors; twice, nothing on stdout (the exit code says it); --json output stays the same");
    app.add_option("--color", opts.color, "colour the output: auto, always or never")->type_name("WHEN")
        ->check(CLI::IsMember({"auto", "always", "never"}))
        ->capture_default_str();
}

namespace {
std::atomic<int> first_stdout_error{0};
}  // namespace

// sd_notify(3)'s protocol without libsystemd: one datagram to the Unix socket NOTIFY_SOCKET names
// (an abstract one when it starts with '@'). Nothing to do where it is unset.
void notify_service_manager(std::string_view state) {
    const char* where = std::getenv("NOTIFY_SOCKET");
    if (!where || !*where) return;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::size_t len = std::strlen(where);
    if (len >= sizeof addr.sun_path || (where[0] != '/' && where[0] != '@'))
        throw RuntimeError(fmt::format("NOTIFY_SOCKET '{}' is not a socket path", printable(where)));
    std::memcpy(addr.sun_path, where, len);
    if (where[0] == '@') addr.sun_path[0] = '\0';
    Fd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) throw SystemError(errno, "cannot notify NOTIFY_SOCKET");
    const auto size = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
    if (::sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&addr), size) < 0)
        throw SystemError(errno, fmt::format("cannot notify NOTIFY_SOCKET '{}'", printable(where)));
}

OutputError::OutputError(int err)
    : std::runtime_error(fmt::format("cannot write to stdout: {}", std::strerror(err))), err_(err) {}

int stdout_error() noexcept { return first_stdout_error.load(); }

void write_stdout(std::string_view text) {
    if (int err = first_stdout_error.load()) throw OutputError(err);
    std::fwrite(text.data(), 1, text.size(), stdout);
    if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
        const int err = errno ? errno : EIO;
        int expected = 0;
        first_stdout_error.compare_exchange_strong(expected, err);
        std::clearerr(stdout);
        throw OutputError(err);
    }
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
    if (!opts_.json && opts_.verbosity() < 0) return;  // -q: the verdict and errors only
    std::string line = opts_.json ? render_json(object) : std::string(text_line);
    if (line.empty()) return;
    line += '\n';
    write_stdout(line);
}

void Output::summary(Json object, std::optional<RunVerdict> verdict) {
    Json full = Json::object();
    full["type"] = "summary";
    full["command"] = command_;
    full["schema_version"] = 2;  // 2: a unit in every key (t_s, rate_per_s, duration_s), command in errors
    for (auto it = object.begin(); it != object.end(); ++it) full[it.key()] = it.value();
    full["environment"] = environment_info();
    if (opts_.json) {
        event(full, "");
        return;
    }
    if (opts_.verbosity() <= -2) return;  // -qq: the exit code says it all
    if (full.contains("check") && full["check"].is_object()) {
        Json& check = full["check"];
        if (!verdict && check.value("passed", Json()).is_boolean()) {
            verdict = RunVerdict{check["passed"].get<bool>(), {}};
            for (const auto& r : check.value("reasons", Json::array())) verdict->reasons.push_back(r.get<std::string>());
        }
        check.erase("passed");  // said by the verdict line
        check.erase("reasons");
    }
    std::string text;
    if (verdict) {
        const char* word = verdict->passed ? "PASS" : "FAIL";
        const auto style = fmt::fg(verdict->passed ? fmt::terminal_color::green : fmt::terminal_color::red) | fmt::emphasis::bold;
        text = color_ ? fmt::format(style, "{}", word) : std::string(word);
        if (!verdict->reasons.empty()) text += ": " + printable(fmt::format("{}", fmt::join(verdict->reasons, "; ")));
        text += '\n';
    }
    if (opts_.verbosity() >= 0) {
        if (opts_.verbosity() < 1) full.erase("environment");
        full.erase("schema_version");
        text += render_text(full);
    }
    if (!text.empty()) write_stdout(text);
}

void Output::note(std::string_view line) {
    if (opts_.verbosity() < 0) return;
    fmt::print(stderr, "{}\n", line);
}

void Output::warning(std::string_view line) { fmt::print(stderr, "muxkit {}: warning: {}\n", command_, line); }

}  // namespace muxkit::cli
