#define BOOST_TEST_MODULE docs_install
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include <unistd.h>

#include <fmt/format.h>

#include "support/test_support.hpp"

using namespace muxkit;
using namespace muxkit::test;
namespace fs = std::filesystem;

namespace {

const std::string kSource = MUXKIT_SOURCE_DIR;
const char* kSubcommands[] = {"echo-server", "multi-connect", "fd-watch", "pipe-test"};

RunResult sh(const std::string& command, std::chrono::milliseconds timeout = 120s) {
    Child c({"/bin/sh", "-c", command}, {}, false);
    return c.wait(timeout);
}

bool have(const std::string& program) { return sh("command -v " + program + " >/dev/null").exit_code == 0; }

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    BOOST_REQUIRE_MESSAGE(in, "cannot read " << path);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Every long option that `muxkit SUB --help` lists.
std::set<std::string> help_options(const std::string& sub) {
    RunResult r = run_muxkit({sub, "--help"});
    BOOST_REQUIRE(r.exit_code == 0);
    std::set<std::string> out;
    std::istringstream in(r.out);
    std::string line;
    while (std::getline(in, line)) {
        if (line.find("  -") != 0) continue;  // option lines start with two spaces and a dash
        std::string names = line.substr(2, line.find(' ', 2) - 2);  // "-m,--model"
        std::size_t start = 0;
        while (start < names.size()) {
            std::size_t comma = names.find(',', start);
            if (comma == std::string::npos) comma = names.size();
            std::string name = names.substr(start, comma - start);
            if (name.starts_with("--")) out.insert(name);
            start = comma + 1;
        }
    }
    return out;
}

std::string roff_option(const std::string& opt) {
    std::string out;
    for (char c : opt) out += c == '-' ? std::string("\\-") : std::string(1, c);
    return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(generated_options_and_completions_match_the_command_line) {
    Child c({MUXKIT_DOCGEN, "--check", kSource}, {}, false);
    RunResult r = c.wait(60s);
    BOOST_TEST(r.exit_code == 0, "regenerate with muxkit-docgen: " << r.err);
}

BOOST_AUTO_TEST_CASE(every_help_option_is_in_the_man_page_and_every_completion) {
    std::string bash = read_file(kSource + "/completions/muxkit.bash");
    std::string zsh = read_file(kSource + "/completions/_muxkit");
    std::string fish = read_file(kSource + "/completions/muxkit.fish");
    std::string top = read_file(kSource + "/man/muxkit.1");
    for (std::string sub : kSubcommands) {
        BOOST_TEST(top.find("muxkit " + roff_option(sub)) != std::string::npos, sub);
        BOOST_TEST(bash.find(sub) != std::string::npos);
        BOOST_TEST(zsh.find("'" + sub + ":") != std::string::npos);
        BOOST_TEST(fish.find("-a " + sub) != std::string::npos);
        std::string page = read_file(kSource + "/man/muxkit-" + sub + ".1");
        auto options = help_options(sub);
        BOOST_TEST(options.size() > 5u, sub);
        for (const auto& opt : options) {
            BOOST_TEST(page.find("\\fB" + roff_option(opt) + "\\fR") != std::string::npos, sub << " man page lacks " << opt);
            BOOST_TEST(bash.find(opt) != std::string::npos, sub << " bash lacks " << opt);
            BOOST_TEST(zsh.find(opt) != std::string::npos, sub << " zsh lacks " << opt);
            BOOST_TEST(fish.find("-l " + opt.substr(2)) != std::string::npos, sub << " fish lacks " << opt);
        }
    }
}

BOOST_AUTO_TEST_CASE(man_pages_are_lint_clean_and_render) {
    if (!have("mandoc") || !have("man")) {
        BOOST_TEST_MESSAGE("mandoc or man missing (./dev test installs them)");
        return;
    }
    for (std::string page : {"muxkit", "muxkit-echo-server", "muxkit-multi-connect", "muxkit-fd-watch", "muxkit-pipe-test"}) {
        std::string path = kSource + "/man/" + page + ".1";
        RunResult lint = sh("mandoc -T lint -W warning " + path);
        BOOST_TEST(lint.exit_code == 0, page << ": " << lint.out << lint.err);
        BOOST_TEST(lint.out.empty(), page << ": " << lint.out);
        RunResult render = sh("MANWIDTH=100 MANPAGER=cat man -l " + path + " 2>&1");
        BOOST_TEST(render.exit_code == 0, page << ": " << render.out);
        BOOST_TEST(render.out.find("NAME") != std::string::npos);
        BOOST_TEST(render.out.find("EXIT STATUS") != std::string::npos, page);
    }
}

BOOST_AUTO_TEST_CASE(bash_completes_subcommands_and_option_values) {
    std::string file = kSource + "/completions/muxkit.bash";
    auto complete = [&](const std::string& words, int cword) {
        return sh(fmt::format("bash -c 'source {}; COMP_WORDS=({}); COMP_CWORD={}; _muxkit; printf \"%s\\n\" \"${{COMPREPLY[@]}}\"'",
                              file, words, cword))
            .out;
    };
    BOOST_TEST(complete("muxkit \"\"", 1).find("echo-server\n") != std::string::npos);
    BOOST_TEST(complete("muxkit echo-server --model \"\"", 3) == "select\npoll\nepoll\nepoll-et\nio_uring\nfork\n");
    BOOST_TEST(complete("muxkit echo-server --store-format \"\"", 3) == "raw\njsonl\n");
    BOOST_TEST(complete("muxkit fd-watch --show \"\"", 3) == "none\nsize\ntext\nhex\n");
    BOOST_TEST(complete("muxkit pipe-test at", 2) == "atomicity\n");
    BOOST_TEST(complete("muxkit fd-watch fi", 2) == "file:\nfifo:\n");
    BOOST_TEST(complete("muxkit multi-connect --max-p", 2) == "--max-p99\n");
}

BOOST_AUTO_TEST_CASE(fish_completes_subcommands_and_option_values) {
    if (!have("fish")) {
        BOOST_TEST_MESSAGE("fish missing (./dev test installs it)");
        return;
    }
    std::string file = kSource + "/completions/muxkit.fish";
    auto complete = [&](const std::string& line) {
        return sh(fmt::format("fish -c 'source {}; complete -C\"{}\"' | cut -f1 | sort", file, line)).out;
    };
    BOOST_TEST(complete("muxkit pi") == "pipe-test\n");
    BOOST_TEST(complete("muxkit echo-server --model ") == "epoll\nepoll-et\nfork\nio_uring\npoll\nselect\n");
    BOOST_TEST(complete("muxkit multi-connect --color ") == "always\nauto\nnever\n");
    {
        std::string fifo = complete("muxkit pipe-test fi");
        BOOST_TEST(fifo.find("fifo") != std::string::npos, fifo);
    }
}

BOOST_AUTO_TEST_CASE(zsh_completes_subcommands_and_option_values) {
    if (!have("zsh")) {
        BOOST_TEST_MESSAGE("zsh missing (./dev test installs it)");
        return;
    }
    auto complete = [&](const std::string& line) {
        return sh(fmt::format("zsh -f {}/tests/support/zsh_complete.zsh {}/completions {}", kSource, kSource, line), 60s).out;
    };
    std::string subs = complete("muxkit");
    for (std::string sub : kSubcommands) BOOST_TEST(subs.find(sub + "\n") != std::string::npos, subs);
    BOOST_TEST(complete("muxkit echo-server --model") == "epoll\nepoll-et\nfork\nio_uring\npoll\nselect\n");
    BOOST_TEST(complete("muxkit echo-server --store-format") == "jsonl\nraw\n");
}

BOOST_AUTO_TEST_CASE(install_puts_every_file_in_place_and_find_package_works) {
    TempDir prefix;
    RunResult inst = sh(fmt::format("cmake --install {} --prefix {} 2>&1", MUXKIT_BUILD_DIR, prefix.path));
    BOOST_REQUIRE_MESSAGE(inst.exit_code == 0, inst.out);
    for (std::string f : {"bin/muxkit", "include/muxkit/event_loop.hpp", "share/man/man1/muxkit.1",
                          "share/man/man1/muxkit-echo-server.1", "share/man/man1/muxkit-multi-connect.1",
                          "share/man/man1/muxkit-fd-watch.1", "share/man/man1/muxkit-pipe-test.1", "share/man/man1/muxkit-merge.1",
                          "share/bash-completion/completions/muxkit", "share/zsh/site-functions/_muxkit",
                          "share/zsh/vendor-completions/_muxkit",
                          "share/fish/vendor_completions.d/muxkit.fish", "lib/cmake/muxkit/muxkitConfig.cmake"})
        BOOST_TEST(fs::exists(prefix.path + "/" + f), f);
    // The installed headers are exactly the public ones, and none needs a private one.
    std::vector<std::string> headers, installed;
    for (const auto& e : fs::directory_iterator(kSource + "/lib/include/muxkit")) headers.push_back(e.path().filename());
    for (const auto& e : fs::directory_iterator(prefix.path + "/include/muxkit")) installed.push_back(e.path().filename());
    std::sort(headers.begin(), headers.end());
    std::sort(installed.begin(), installed.end());
    BOOST_TEST(installed == headers, boost::test_tools::per_element());
    RunResult v = sh(prefix.path + "/bin/muxkit --version");
    BOOST_TEST(v.out.starts_with("muxkit "), v.out << v.err);

    // Another project finds and links the library.
    TempDir consumer;
    std::ofstream(consumer.path + "/CMakeLists.txt") << "cmake_minimum_required(VERSION 3.25)\nproject(consumer CXX)\n"
                                                        "set(CMAKE_CXX_STANDARD 20)\nfind_package(muxkit REQUIRED)\n"
                                                        "add_executable(consumer main.cpp)\n"
                                                        "target_link_libraries(consumer PRIVATE muxkit::muxkit)\n";
    std::ofstream main(consumer.path + "/main.cpp");
    for (const auto& h : headers) main << "#include <muxkit/" << h << ">\n";
    main << "#include <cstdio>\n"
            "int main() { std::printf(\"%llu\\n\", (unsigned long long)muxkit::parse_size(\"4K\")); }\n";
    main.close();
    // The generator the project itself builds with (./dev installs ninja, not make); every step's
    // output is kept so a failure says why.
    RunResult build = sh(fmt::format("cmake -S {0} -B {0}/build -G Ninja -DCMAKE_PREFIX_PATH={1} 2>&1 && "
                                     "cmake --build {0}/build 2>&1 && LD_LIBRARY_PATH={1}/lib {0}/build/consumer",
                                     consumer.path, prefix.path),
                         180s);
    BOOST_TEST(build.exit_code == 0, build.out << build.err);
    BOOST_TEST(build.out.ends_with("4096\n"), build.out);
}

BOOST_AUTO_TEST_CASE(cpack_builds_a_debian_package_with_every_file) {
    if (!have("cpack") || !have("dpkg-deb")) return;
    TempDir out;
    RunResult pack = sh(fmt::format("cd {} && cpack -G DEB --config {}/CPackConfig.cmake 2>&1", out.path, MUXKIT_BUILD_DIR), 300s);
    BOOST_REQUIRE_MESSAGE(pack.exit_code == 0, pack.out);
    RunResult list = sh(fmt::format("dpkg-deb -c {}/*.deb", out.path));
    BOOST_TEST(list.exit_code == 0);
    for (std::string f : {"./usr/bin/muxkit", "./usr/share/man/man1/muxkit.1", "./usr/share/bash-completion/completions/muxkit",
                          "./usr/share/zsh/site-functions/_muxkit", "./usr/share/zsh/vendor-completions/_muxkit",
                          "./usr/share/fish/vendor_completions.d/muxkit.fish"})
        BOOST_TEST(list.out.find(f) != std::string::npos, f);
    // Debian's zsh searches vendor-completions; the library needs zlib at run time.
    RunResult depends = sh(fmt::format("dpkg-deb -f {}/*.deb Depends", out.path));
    BOOST_TEST(depends.out.find("zlib1g") != std::string::npos, depends.out);
}
