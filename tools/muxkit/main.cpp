// muxkit: one binary, its subcommands. Parses, runs, and maps every failure to the contract's exit codes.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <optional>
#include <exception>
#include <string_view>
#include <vector>

#include <fmt/color.h>
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

// Edit distance (insertions, deletions, substitutions): how far a typo is from a real name.
std::size_t distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diagonal = up;
        }
    }
    return row[b.size()];
}

// The candidate nearest to word, when it is near enough to be what was meant.
std::optional<std::string> nearest(std::string_view word, const std::vector<std::string>& candidates) {
    for (const auto& c : candidates)
        if (word.size() >= 3 && c.starts_with(word)) return c;  // "echo" for echo-server
    std::optional<std::string> best;
    std::size_t best_distance = std::max<std::size_t>(2, word.size() / 3) + 1;
    for (const auto& c : candidates)
        if (const std::size_t d = distance(word, c); d < best_distance) {
            best = c;
            best_distance = d;
        }
    return best;
}

std::vector<std::string> option_names(const CLI::App& app) {
    std::vector<std::string> names;
    for (const CLI::Option* o : app.get_options()) {
        for (const auto& l : o->get_lnames()) names.push_back("--" + l);
        for (const auto& s : o->get_snames()) names.push_back("-" + s);
    }
    return names;
}

// CLI11's message for a parse error, said in muxkit's words: the subcommand or option that was
// meant when a name is mistyped, and the right place for an option given before its subcommand.
std::string explain(const CLI::ParseError& e, int argc, char** argv, const CLI::App& app,
                    const std::vector<cli::Subcommand>& subs, const std::string& sub_name) {
    std::vector<std::string> names;
    for (const auto& s : subs) names.push_back(s.app->get_name());
    const std::string listed = fmt::format("{}", fmt::join(names, ", "));
    int sub_at = 0;
    for (int i = 1; i < argc && !sub_at; ++i)
        if (std::find(names.begin(), names.end(), argv[i]) != names.end()) sub_at = i;
    if (!sub_at) {
        for (int i = 1; i < argc; ++i) {
            const std::string word = argv[i];
            if (word.starts_with("-")) {
                if (word == "-V" || word == "-v") return fmt::format("unknown option '{}': did you mean '--version'?", word);
                continue;
            }
            if (auto best = nearest(word, names)) return fmt::format("unknown subcommand '{}': did you mean '{}'?", printable(word), *best);
            return fmt::format("unknown subcommand '{}': give one of {}", printable(word), listed);
        }
        if (argc > 1) return fmt::format("unknown option '{}': give a subcommand first ({})", printable(argv[1]), listed);
        return fmt::format("a subcommand is required: {}", listed);
    }
    for (int i = 1; i < sub_at; ++i)
        if (std::string(argv[i]).starts_with("-"))
            return fmt::format("'{}' goes after the subcommand: muxkit {} {} ...", printable(argv[i]), sub_name, printable(argv[i]));
    std::string message = e.what();
    const CLI::App* sub = app.get_subcommand(sub_name);
    // A mistyped option takes the operand after it as its value, so CLI11 blames that operand:
    // the unknown option is the thing to name, wherever it stands.
    const std::vector<std::string> known = option_names(*sub);
    for (int i = sub_at + 1; i < argc; ++i) {
        const std::string word = argv[i];
        if (word == "--") break;
        if (!word.starts_with("-") || word == "-" || std::isdigit(static_cast<unsigned char>(word[1]))) continue;
        const std::string name = word.starts_with("--") ? word.substr(0, word.find('=')) : word.substr(0, 2);
        if (name == "--help" || name == "-h" || std::find(known.begin(), known.end(), name) != known.end()) continue;
        if (name.size() > 2)  // one letter is near every other: no guess for those
            if (auto best = nearest(name, known)) return fmt::format("unknown option '{}': did you mean '{}'?", printable(name), *best);
        return fmt::format("unknown option '{}'", printable(name));
    }
    // CLI11's "--model: epol not in {select,poll,epoll}": the choice that was meant.
    if (const auto colon = message.find(": "), not_in = message.find(" not in {"); dynamic_cast<const CLI::ValidationError*>(&e) &&
                                                                              message.starts_with("--") && colon < not_in &&
                                                                              not_in != std::string::npos && message.ends_with("}")) {
        const std::string option = message.substr(0, colon), value = message.substr(colon + 2, not_in - colon - 2);
        std::vector<std::string> choices;
        std::string list = message.substr(not_in + 9, message.size() - not_in - 10);
        for (std::size_t at = 0; at <= list.size();) {
            const std::size_t comma = std::min(list.find(',', at), list.size());
            choices.push_back(list.substr(at, comma - at));
            at = comma + 1;
        }
        const std::string all = fmt::format("{}", fmt::join(choices, ", "));
        if (auto best = nearest(value, choices))
            return fmt::format("invalid {} '{}': did you mean '{}'? (one of {})", option, printable(value), *best, all);
        return fmt::format("invalid {} '{}': give one of {}", option, printable(value), all);
    }
    if (const auto* extras = dynamic_cast<const CLI::ExtrasError*>(&e); extras) {
        const std::string extra = message.substr(message.rfind(": ") + 2);
        const std::string first = extra.substr(0, extra.find(' '));
        if (first.starts_with("-")) {
            const std::string name = first.substr(0, first.find('='));
            if (auto best = nearest(name, option_names(*sub))) return fmt::format("unknown option '{}': did you mean '{}'?", printable(name), *best);
            return fmt::format("unknown option '{}'", printable(name));
        }
        // nc's HOST PORT: the address is one operand.
        int at = 1;
        while (at < argc && argv[at] != first) ++at;
        const std::string before = at > 1 ? argv[at - 1] : "";
        if (!first.empty() && first.find_first_not_of("0123456789") == std::string::npos && !before.empty() &&
            !before.starts_with("-") && before.find(':') == std::string::npos && before != sub_name)
            return fmt::format("unexpected argument '{}': give the address as one operand, {}:{}", first, printable(before), first);
        return fmt::format("unexpected argument '{}'", printable(first));
    }
    if (!message.empty()) message[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(message[0])));
    return message;
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
    const std::string label = color ? fmt::format(fmt::fg(fmt::terminal_color::red) | fmt::emphasis::bold, "error:") : "error:";
    fmt::print(stderr, "{}: {} {}\n", prefix, label, one_line(message));
    if (json) {
        Json e = {{"type", "error"}, {"command", sub.empty() ? Json(nullptr) : Json(sub)}, {"exit", exit_code}, {"message", message}};
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
    // `muxkit help [SUBCOMMAND]`, as git and many tools take it.
    if (argc >= 2 && std::string_view(argv[1]) == "help") {
        if (argc == 2) {
            fmt::print("{}", app.help());
            return cli::kOk;
        }
        for (const auto& s : subs)
            if (s.app->get_name() == argv[2]) {
                fmt::print("{}", s.app->help());
                return cli::kOk;
            }
        std::vector<std::string> names;
        for (const auto& s : subs) names.push_back(s.app->get_name());
        const auto best = nearest(argv[2], names);
        return report_error("", false, cli::kUsage,
                            best ? fmt::format("no subcommand '{}': did you mean '{}'?", printable(argv[2]), *best)
                                 : fmt::format("no subcommand '{}': give one of {}", printable(argv[2]), fmt::join(names, ", ")));
    }
    const std::string sub_name = subcommand_in(argc, argv, subs);
    const bool json = json_requested(argc, argv);
    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& e) {
        return app.exit(e);  // --help, --version: to stdout, exit 0
    } catch (const CLI::ParseError& e) {
        // CLI11 exits with 100-127; the contract says 2 for every usage error.
        report_error(sub_name, json, cli::kUsage, explain(e, argc, argv, app, subs, sub_name));
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
