#define BOOST_TEST_MODULE hardening_cli
#include <boost/test/unit_test.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include "support/test_support.hpp"

using namespace muxkit;
using namespace muxkit::test;

BOOST_AUTO_TEST_CASE(multi_connect_says_clearly_when_it_cannot_get_the_descriptors) {
    SpawnOptions opts;
    opts.in_child = [] {
        rlimit rl{64, 64};
        ::setrlimit(RLIMIT_NOFILE, &rl);
    };
    RunResult r = run_muxkit({"multi-connect", "127.0.0.1:9", "-c", "500", "--json"}, opts);
    BOOST_TEST(r.exit_code == 3);
    BOOST_TEST(r.err.find("descriptor limit") != std::string::npos, r.err);
    BOOST_TEST(r.json_lines().back()["type"] == "error");
}

BOOST_AUTO_TEST_CASE(fork_model_counts_failed_forks_under_rlimit_nproc) {
    if (::geteuid() != 0) {
        BOOST_TEST_MESSAGE("needs root to run the server as a user of its own");
        return;
    }
    SpawnOptions opts;
    opts.in_child = [] {
        // A user of its own (RLIMIT_NPROC counts that user's processes) allowed 3: the server and two children.
        ::setgid(54321);
        ::setuid(54321);
        rlimit rl{3, 3};
        ::setrlimit(RLIMIT_NPROC, &rl);
    };
    EchoServer server({"-m", "fork"}, opts);
    std::vector<Fd> clients;
    for (int i = 0; i < 4; ++i) clients.push_back(connect_to(server.address()));
    for (int i = 0; i < 2; ++i) {
        send_all(clients[i].get(), "ok");
        BOOST_TEST(recv_exact(clients[i].get(), 2) == "ok");
    }
    BOOST_TEST(recv_until_eof(clients[3].get(), 5s).empty());  // refused: closed at once
    BOOST_TEST(server.process().running());
    clients.clear();
    RunResult r = server.stop();
    BOOST_TEST(r.exit_code == 0);
    Json s = summary_of(r);
    BOOST_TEST(s["connections"]["refused_by"]["fork_failed"].get<int>() >= 1);
    BOOST_TEST(s["connections"]["accepted"].get<int>() + s["connections"]["refused"].get<int>() == 4);
}

BOOST_AUTO_TEST_CASE(store_on_a_full_disk_exits_3_naming_the_cause) {
    EchoServer server({"--store", "/dev/full"});
    Fd fd = connect_to(server.address());
    send_all(fd.get(), std::string(10000, 'x'));
    recv_until_eof(fd.get(), 10s);  // the server closes its clients
    RunResult r = server.process().wait(10s);
    BOOST_TEST(!r.timed_out);
    BOOST_TEST(r.exit_code == 3);
    BOOST_TEST(r.err.find("No space left on device") != std::string::npos, r.err);
}

BOOST_AUTO_TEST_CASE(listening_defaults_to_loopback_and_limits_are_finite) {
    RunResult r = run_muxkit({"echo-server", "--duration", "100ms", "--json"});
    if (r.exit_code == 0) BOOST_TEST(r.json_lines().front()["address"] == "127.0.0.1:7007");
    else BOOST_TEST(r.err.find("127.0.0.1:7007") != std::string::npos, r.err);  // the port was taken
    RunResult help = run_muxkit({"echo-server", "--help"});
    BOOST_TEST(help.out.find("--max-connections N=65536") != std::string::npos, help.out);
}

BOOST_AUTO_TEST_CASE(exec_sources_never_go_through_a_shell) {
    RunResult r = run_muxkit({"fd-watch", "exec:echo $HOME;ls `id` *", "--show", "text", "--json"});
    BOOST_TEST(r.exit_code == 0);
    std::string data;
    for (auto& e : r.json_lines())
        if (e["event"] == "readable") data += e["data"].get<std::string>();
    BOOST_TEST(data == "$HOME;ls `id` *\n");
}

BOOST_AUTO_TEST_CASE(data_from_peers_is_never_a_format_string) {
    const std::string nasty = "%s%n%x%p{}{0}{:>999999}\x1b[2J\n";
    EchoServer server({"-v"});
    SpawnOptions in;
    in.stdin_data = nasty;
    RunResult client = run_muxkit({"multi-connect", server.address(), "-i"}, in);
    BOOST_TEST(client.exit_code == 0);
    BOOST_TEST((client.out == nasty));
    RunResult watch = run_muxkit({"fd-watch", "--show", "text"}, in);
    BOOST_TEST(watch.exit_code == 0);
    BOOST_TEST(watch.out.find("%s%n%x%p{}{0}{:>999999}\\x1b[2J\\n") != std::string::npos, watch.out);
    RunResult s = server.stop();
    BOOST_TEST(s.exit_code == 0);
    BOOST_TEST(s.out.find("%n") == std::string::npos);  // the server reports counts, never data
}

// A mistyped subcommand or option gets the name that was meant; an option before its
// subcommand is blamed, not the subcommand; `muxkit help SUBCOMMAND` is the subcommand's help.
BOOST_AUTO_TEST_CASE(mistyped_names_get_the_name_that_was_meant) {
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
        {{"echo-sever"}, "unknown subcommand 'echo-sever': did you mean 'echo-server'?"},
        {{"-V"}, "unknown option '-V': did you mean '--version'?"},
        {{}, "a subcommand is required: echo-server, multi-connect, merge, fd-watch, pipe-test"},
        {{"--json", "echo-server"}, "'--json' goes after the subcommand: muxkit echo-server --json"},
        {{"echo-server", "--modle", "epoll"}, "unknown option '--modle': did you mean '--model'?"},
        {{"multi-connect", "--conections=3"}, "unknown option '--conections': did you mean '--connections'?"},
        {{"multi-connect", "127.0.0.1", "7007"}, "give the address as one operand, 127.0.0.1:7007"},
        {{"echo-server", "--threads", "x"}, "could not convert: --threads = x"},
        {{"help", "echo"}, "no subcommand 'echo': did you mean 'echo-server'?"},
        // A typo before an operand: the typo is named, not the operand it swallowed.
        {{"multi-connect", "--conections", "3", "127.0.0.1:7"}, "unknown option '--conections': did you mean '--connections'?"},
        {{"multi-connect", "--pipline", "4", "127.0.0.1:7"}, "unknown option '--pipline': did you mean '--pipeline'?"},
        {{"multi-connect", "127.0.0.1:7", "--durration", "1s"}, "unknown option '--durration': did you mean '--duration'?"},
        {{"multi-connect", "-x", "3", "127.0.0.1:7"}, "unknown option '-x'"},
        // A choice: the one meant, and the list.
        {{"multi-connect", "-m", "epol", "127.0.0.1:7"}, "invalid --model 'epol': did you mean 'epoll'?"},
        {{"multi-connect", "--mode", "conect"}, "invalid --mode 'conect': did you mean 'connect'? (one of echo, connect, request)"},
        {{"echo-server", "--store-format", "json", "--store", "x"}, "invalid --store-format 'json': did you mean 'jsonl'?"},
    };
    for (const auto& [args, message] : cases) {
        RunResult r = run_muxkit(args);
        BOOST_TEST(r.exit_code == 2, message << ": " << r.err);
        BOOST_TEST(r.err.find(message) != std::string::npos, message << " not in: " << r.err);
        BOOST_TEST(r.err.find("error: ") != std::string::npos, r.err);
    }
    RunResult help = run_muxkit({"help", "multi-connect"});
    BOOST_TEST(help.exit_code == 0);
    BOOST_TEST(help.out.find("--mode") != std::string::npos);
    RunResult top = run_muxkit({"help"});
    BOOST_TEST(top.exit_code == 0);
    BOOST_TEST(top.out.find("merge") != std::string::npos);
}
