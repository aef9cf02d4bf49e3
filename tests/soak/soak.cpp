// muxkit-soak: each echo-server model against a crowd of misbehaving clients at once (normal,
// slow readers, resets mid-stream, half-closers, connect-and-vanish, bursts past the buffer cap,
// many short connections), then checks that the server is alive and still echoes, that every
// client that finished normally got exactly its bytes back, that descriptors and memory are back
// near their baseline, that no zombie is left, and that --store holds every byte received.
// Then each model is stopped under load (in = out + unsent, the clients got exactly out), and the
// fork model is run at a descriptor limit where every accept meets EMFILE (no client hangs).
//   muxkit-soak [--seconds N] [--model M]...   prints one line of figures per model; exit 1 on a failed check
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <muxkit/address.hpp>
#include <muxkit/clock.hpp>
#include <muxkit/echo_server.hpp>
#include <muxkit/fd.hpp>
#include <muxkit/report.hpp>

#include "support/proc_info.hpp"
#include "support/spawn.hpp"

using muxkit::Fd;
using muxkit::Json;
using muxkit::test::children_of;
using muxkit::test::open_fds;

namespace {

struct Server {
    pid_t pid = -1;
    Fd out;
    std::uint16_t port = 0;
    std::string stdout_text;
};

// nofile: soft and hard RLIMIT_NOFILE for the server (0: as inherited).
Server start_server(const std::string& model, const std::string& store, rlim_t nofile = 0) {
    muxkit::test::SpawnSetup setup;
    setup.nofile = nofile;
    setup.close_others = true;  // nothing inherited from whoever runs the soak: the limit is exact
    muxkit::test::Spawned p = muxkit::test::spawn_process(
        muxkit::test::muxkit_command({"echo-server", "127.0.0.1:0", "-m", model, "--store", store, "--json", "--buffer-size", "16K"}),
        setup);
    Server s;
    s.pid = p.pid;
    s.out = std::move(p.out);
    const std::string address = muxkit::test::read_listening_address(s.out.get(), 30000);
    if (address.empty()) throw std::runtime_error("the server did not start");
    s.port = muxkit::Address::parse(address).port;
    return s;
}

Json stop_server(Server& s) {
    ::kill(s.pid, SIGTERM);
    char buf[4096];
    ssize_t n;
    while ((n = ::read(s.out.get(), buf, sizeof buf)) > 0) s.stdout_text.append(buf, static_cast<std::size_t>(n));
    int status = 0;
    ::waitpid(s.pid, &status, 0);
    auto end = s.stdout_text.find_last_not_of('\n');
    auto start = s.stdout_text.rfind('\n', end);
    Json summary = Json::parse(s.stdout_text.substr(start == std::string::npos ? 0 : start + 1), nullptr, false);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return nullptr;
    return summary;
}

struct Totals {
    std::atomic<std::uint64_t> connections{0}, echoed{0}, faults{0}, normal_ok{0}, normal_bad{0}, errors{0};
};

Fd dial(std::uint16_t port) {
    Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{10, 0};  // no client waits for ever
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return Fd();
    return fd;
}

bool send_all(int fd, const char* p, std::size_t n) {
    while (n > 0) {
        ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) return false;
        p += w;
        n -= static_cast<std::size_t>(w);
    }
    return true;
}

// Sends data (in chunks of up to chunk bytes) while reading the echo; optional delay between reads.
bool echo_exchange(int fd, const std::string& data, std::size_t chunk, int read_delay_us, bool half_close) {
    std::string got;
    std::thread reader([&] {
        char buf[65536];
        while (got.size() < data.size()) {
            if (read_delay_us) ::usleep(static_cast<useconds_t>(read_delay_us));
            ssize_t r = ::recv(fd, buf, read_delay_us ? 4096 : sizeof buf, 0);
            if (r <= 0) break;
            got.append(buf, static_cast<std::size_t>(r));
        }
    });
    bool ok = true;
    for (std::size_t off = 0; off < data.size() && ok; off += chunk) ok = send_all(fd, data.data() + off, std::min(chunk, data.size() - off));
    if (half_close) ::shutdown(fd, SHUT_WR);
    reader.join();
    if (half_close) {
        char c;
        ok = ok && ::recv(fd, &c, 1, 0) == 0;  // the server closes once the echo is complete
    }
    return ok && got == data;
}

void client_loop(std::uint16_t port, std::int64_t until, unsigned seed, Totals& t) {
    std::mt19937 rng(seed);
    while (muxkit::now_ns() < until) {
        int kind = static_cast<int>(rng() % 7);
        std::string data(1 + rng() % 200000, '\0');
        for (auto& c : data) c = static_cast<char>(rng());
        ++t.connections;
        Fd fd = dial(port);
        if (!fd) {
            ++t.errors;
            continue;
        }
        switch (kind) {
        case 0:  // normal
        case 1:  // half-closer
            if (echo_exchange(fd.get(), data, 1 + rng() % 70000, 0, kind == 1)) {
                ++t.normal_ok;
                t.echoed += data.size();
            } else {
                ++t.normal_bad;
            }
            break;
        case 2: {  // slow reader with a burst far past the server's buffer cap
            std::string burst(1 << 20, 'b');
            if (echo_exchange(fd.get(), burst, burst.size(), 200, false)) {
                ++t.normal_ok;
                t.echoed += burst.size();
            } else {
                ++t.normal_bad;
            }
            break;
        }
        case 3: {  // reset mid-stream
            ::send(fd.get(), data.data(), data.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
            linger lg{1, 0};
            ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            ++t.faults;
            break;
        }
        case 4:  // connect and vanish
            ++t.faults;
            break;
        case 5:  // many short connections
            for (int i = 0; i < 20 && muxkit::now_ns() < until; ++i) {
                Fd s = i == 0 ? std::move(fd) : dial(port);
                if (!s) break;
                if (i > 0) ++t.connections;
                if (echo_exchange(s.get(), data.substr(0, 10), 10, 0, false)) ++t.normal_ok;
                else ++t.normal_bad;
                t.echoed += std::min<std::size_t>(10, data.size());
            }
            break;
        case 6: {  // send without reading, then vanish
            ::send(fd.get(), data.data(), data.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
            ++t.faults;
            break;
        }
        }
    }
}

bool soak_model(const std::string& model, double seconds) {
    std::string store = fmt::format("{}/muxkit-soak-{}-{}.raw", muxkit::test::temp_directory(), ::getpid(), model);
    ::unlink(store.c_str());
    Server server = start_server(model, store);
    ::usleep(100000);
    const std::size_t fds_before = open_fds(server.pid);
    const double rss_before = static_cast<double>(muxkit::test::rss_bytes(server.pid)) / (1 << 20);
    Totals t;
    const std::int64_t until = muxkit::now_ns() + static_cast<std::int64_t>(seconds * 1e9);
    std::vector<std::thread> clients;
    for (unsigned i = 0; i < 8; ++i) clients.emplace_back(client_loop, server.port, until, 1000 + i, std::ref(t));
    for (auto& c : clients) c.join();

    // Give the server a moment to see every close, then look at it.
    std::size_t fds_after = 0;
    for (int i = 0; i < 100; ++i) {
        fds_after = open_fds(server.pid);
        if (fds_after <= fds_before) break;
        ::usleep(50000);
    }
    const double rss_after = static_cast<double>(muxkit::test::rss_bytes(server.pid)) / (1 << 20);
    std::size_t zombies = children_of(server.pid, true).size();
    for (int i = 0; i < 50 && zombies > 0; ++i) {
        ::usleep(20000);
        zombies = children_of(server.pid, true).size();
    }
    Fd last = dial(server.port);
    const bool alive = last && echo_exchange(last.get(), "still echoing", 13, 0, false);
    last.reset();
    ::usleep(50000);
    Json summary = stop_server(server);
    struct stat st{};
    ::stat(store.c_str(), &st);
    ::unlink(store.c_str());

    std::uint64_t bytes_in = summary.is_object() ? summary["bytes"]["in"].get<std::uint64_t>() : 0;
    std::uint64_t stored = summary.is_object() ? summary["store"]["bytes"].get<std::uint64_t>() : 0;
    std::uint64_t lost = bytes_in > static_cast<std::uint64_t>(st.st_size) ? bytes_in - static_cast<std::uint64_t>(st.st_size) : 0;
    // Descriptors: the fork model's parent holds none per client; a multiplexed server holds none after they closed.
    const bool fds_ok = fds_after <= fds_before;
    const bool ok = alive && summary.is_object() && t.normal_bad == 0 && lost == 0 && stored == bytes_in &&
                    static_cast<std::uint64_t>(st.st_size) == bytes_in && fds_ok && zombies == 0 && rss_after < rss_before + 64;
    fmt::print("soak {:<9} {:>6} connections, {:>8.1f} MiB echoed, {:>5} faults injected, {} normal clients exact ({} not), "
               "{} bytes lost, fds {} -> {}, rss {:.1f} -> {:.1f} MiB, zombies {}: {}\n",
               model, t.connections.load(), static_cast<double>(t.echoed.load()) / (1 << 20), t.faults.load(), t.normal_ok.load(),
               t.normal_bad.load(), lost, fds_before, fds_after, rss_before, rss_after, zombies, ok ? "ok" : "FAILED");
    if (!ok && !summary.is_object()) fmt::print("  the server did not end cleanly: {}\n", server.stdout_text.substr(0, 400));
    if (!ok && !alive) fmt::print("  the server no longer echoed after the soak\n");
    return ok;
}

// SIGTERM while clients stream (two of them not reading until the stop): nothing received is
// lost or miscounted: in = out + unsent, the clients got exactly out, the store holds in.
bool soak_stop_under_load(const std::string& model) {
    std::string store = fmt::format("{}/muxkit-soak-{}-{}-stop.raw", muxkit::test::temp_directory(), ::getpid(), model);
    ::unlink(store.c_str());
    Server server = start_server(model, store);
    std::vector<Fd> clients;
    for (int i = 0; i < 6; ++i) {
        clients.push_back(dial(server.port));
        if (!clients.back()) return false;
        muxkit::set_nonblocking(clients.back().get());
    }
    std::vector<char> chunk(65536, 'x');
    std::vector<std::uint64_t> got(clients.size(), 0);
    std::vector<bool> done(clients.size(), false);
    char buf[65536];
    auto pump = [&](bool sending, bool all_read) {
        for (std::size_t i = 0; i < clients.size(); ++i) {
            if (done[i]) continue;
            if (sending) ::send(clients[i].get(), chunk.data(), chunk.size(), MSG_NOSIGNAL);
            if (i < 2 && !all_read) continue;
            for (;;) {
                ssize_t n = ::recv(clients[i].get(), buf, sizeof buf, 0);
                if (n > 0) {
                    got[i] += static_cast<std::uint64_t>(n);
                    continue;
                }
                if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) done[i] = true;
                break;
            }
        }
    };
    const std::int64_t until = muxkit::now_ns() + 500'000'000;
    while (muxkit::now_ns() < until) pump(true, false);
    std::atomic<bool> stopped{false};
    std::thread reader([&] {
        const std::int64_t give_up = muxkit::now_ns() + 15'000'000'000;
        while (muxkit::now_ns() < give_up && !(stopped && std::all_of(done.begin(), done.end(), [](bool d) { return d; }))) {
            pump(false, true);
            ::usleep(1000);
        }
    });
    Json summary = stop_server(server);
    stopped = true;
    reader.join();
    struct stat st{};
    ::stat(store.c_str(), &st);
    ::unlink(store.c_str());
    if (!summary.is_object()) {
        fmt::print("soak {:<9} stop under load: the server did not end cleanly\n", model);
        return false;
    }
    const auto in = summary["bytes"]["in"].get<std::uint64_t>(), out = summary["bytes"]["out"].get<std::uint64_t>(),
               unsent = summary["bytes"]["unsent"].get<std::uint64_t>();
    std::uint64_t total = 0;
    for (auto g : got) total += g;
    const bool ok = in == out + unsent && total == out && static_cast<std::uint64_t>(st.st_size) == in &&
                    summary["errors"]["ECONNRESET"] == 0;
    fmt::print("soak {:<9} stop under load: in {} = out {} + unsent {}, clients got {}, stored {}: {}\n", model, in, out, unsent,
               total, st.st_size, ok ? "ok" : "FAILED");
    return ok;
}

// The fork model at a descriptor limit it cannot raise, one past its own needs, so every accept
// meets EMFILE: every client refused at once (the spare descriptor), none hung, no spin.
bool soak_fork_emfile() {
    Server server = start_server("fork", "/dev/null", 10);
    const double cpu_before = muxkit::test::cpu_seconds(server.pid);
    int served = 0, refused = 0, hung = 0;
    std::vector<Fd> clients;
    for (int i = 0; i < 24; ++i) clients.push_back(dial(server.port));
    for (auto& c : clients) {
        if (!c || !send_all(c.get(), "hi", 2)) {
            ++refused;
            continue;
        }
        char b[2];
        pollfd p{c.get(), POLLIN, 0};
        if (::poll(&p, 1, 3000) != 1) {
            ++hung;
            continue;
        }
        (::recv(c.get(), b, 2, MSG_WAITALL) == 2 ? served : refused)++;
    }
    ::usleep(300000);
    const double cpu = muxkit::test::cpu_seconds(server.pid) - cpu_before;
    clients.clear();
    Json summary = stop_server(server);
    const bool ok = hung == 0 && served + refused == 24 && cpu < 0.5 && summary.is_object();
    fmt::print("soak fork      at nofile 10: {} served, {} refused, {} hung, {:.2f} s CPU: {}\n", served, refused, hung, cpu,
               ok ? "ok" : "FAILED");
    return ok;
}

}  // namespace

int main(int argc, char** argv) {
    double seconds = 60;
    std::vector<std::string> models;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--seconds" && i + 1 < argc) seconds = std::atof(argv[++i]);
        else if (a == "--model" && i + 1 < argc) models.push_back(argv[++i]);
        else {
            fmt::print(stderr, "usage: muxkit-soak [--seconds N] [--model M]...\n");
            return 2;
        }
    }
    if (models.empty()) {
        for (const muxkit::ModelInfo& m : muxkit::models()) {
            if (!muxkit::feature_takes(muxkit::Feature::echo_server, m.model)) continue;
            if (std::string why = muxkit::model_unavailable_reason(m.model); why.empty()) models.emplace_back(m.name);
            else fmt::print("{} skipped: {}\n", m.name, why);
        }
    }
    if (!(seconds > 0) || seconds > 3600) {
        fmt::print(stderr, "muxkit-soak: --seconds must be between 0 and 3600\n");
        return 2;
    }
    ::signal(SIGPIPE, SIG_IGN);
    bool ok = true;
    for (const auto& m : models) ok = soak_model(m, seconds / static_cast<double>(models.size())) && ok;
    for (const auto& m : models) ok = soak_stop_under_load(m) && ok;
#ifdef MUXKIT_SANITIZED
    const bool sanitized = true;  // a sanitizer's runtime needs descriptors below this limit
#else
    const bool sanitized = false;
#endif
    if (!sanitized) ok = soak_fork_emfile() && ok;
    fmt::print("soak: {}\n", ok ? "every model held" : "a check failed");
    return ok ? 0 : 1;
}
