#define BOOST_TEST_MODULE event_loop
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <csignal>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <netinet/in.h>
#include <poll.h>
#include <unistd.h>

#include <muxkit/clock.hpp>
#include <muxkit/error.hpp>
#include <muxkit/event_loop.hpp>
#include <muxkit/fd.hpp>
#include <muxkit/socket.hpp>

using namespace muxkit;
namespace bdata = boost::unit_test::data;

namespace {

const Model kModels[] = {Model::select, Model::poll, Model::epoll, Model::epoll_et};

struct PipePair {
    Fd r, w;
    PipePair() {
        int fds[2];
        BOOST_REQUIRE(::pipe(fds) == 0);
        r = Fd(fds[0]);
        w = Fd(fds[1]);
        set_nonblocking(r.get());
        set_nonblocking(w.get());
    }
};

std::uint32_t events_for(std::span<const Event> evs, int fd) {
    std::uint32_t e = 0;
    for (const auto& ev : evs)
        if (ev.fd == fd) e |= ev.events;
    return e;
}

std::int64_t in_ms(int ms) { return now_ns() + std::int64_t{ms} * 1'000'000; }

}  // namespace

namespace muxkit {
std::ostream& operator<<(std::ostream& os, Model m) { return os << model_name(m); }
}  // namespace muxkit

BOOST_DATA_TEST_CASE(read_end_is_readable_only_when_data_is_there, bdata::make(kModels), model) {
    auto loop = EventLoop::create(model);
    PipePair p;
    loop->add(p.r.get(), kReadable);
    BOOST_TEST(events_for(loop->wait(in_ms(20)), p.r.get()) == 0u);
    BOOST_REQUIRE(::write(p.w.get(), "x", 1) == 1);
    BOOST_TEST((events_for(loop->wait(in_ms(1000)), p.r.get()) & kReadable) != 0u);
}

BOOST_DATA_TEST_CASE(write_end_is_writable, bdata::make(kModels), model) {
    auto loop = EventLoop::create(model);
    PipePair p;
    loop->add(p.w.get(), kWritable);
    BOOST_TEST((events_for(loop->wait(in_ms(1000)), p.w.get()) & kWritable) != 0u);
}

BOOST_DATA_TEST_CASE(wait_returns_nothing_after_the_deadline_and_not_before, bdata::make(kModels), model) {
    auto loop = EventLoop::create(model);
    PipePair p;
    loop->add(p.r.get(), kReadable);
    std::int64_t start = now_ns();
    auto evs = loop->wait(start + 30'000'000);
    BOOST_TEST(evs.empty());
    BOOST_TEST(now_ns() - start >= 30'000'000);
}

BOOST_DATA_TEST_CASE(modify_and_remove_change_what_is_reported, bdata::make(kModels), model) {
    auto loop = EventLoop::create(model);
    PipePair p;
    BOOST_REQUIRE(::write(p.w.get(), "x", 1) == 1);
    loop->add(p.r.get(), 0);
    BOOST_TEST(events_for(loop->wait(in_ms(10)), p.r.get()) == 0u);
    loop->modify(p.r.get(), kReadable);
    BOOST_TEST(loop->interest(p.r.get()) == static_cast<std::uint32_t>(kReadable));
    BOOST_TEST((events_for(loop->wait(in_ms(1000)), p.r.get()) & kReadable) != 0u);
    loop->remove(p.r.get());
    BOOST_TEST(!loop->watching(p.r.get()));
    BOOST_TEST(loop->size() == 0u);
    BOOST_TEST(events_for(loop->wait(in_ms(10)), p.r.get()) == 0u);
}

BOOST_DATA_TEST_CASE(misuse_is_rejected, bdata::make(kModels), model) {
    auto loop = EventLoop::create(model);
    PipePair p;
    loop->add(p.r.get(), kReadable);
    BOOST_CHECK_THROW(loop->add(p.r.get(), kReadable), RuntimeError);
    BOOST_CHECK_THROW(loop->remove(p.w.get()), RuntimeError);
    BOOST_CHECK_THROW(loop->modify(p.w.get(), kReadable), RuntimeError);
    BOOST_CHECK_THROW(loop->add(-1, kReadable), RuntimeError);
}

BOOST_DATA_TEST_CASE(peer_close_on_socketpair_wakes_the_reader, bdata::make(kModels), model) {
    auto loop = EventLoop::create(model);
    int sv[2];
    BOOST_REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    Fd a(sv[0]), b(sv[1]);
    loop->add(a.get(), kReadable);
    b.reset();
    std::uint32_t ev = events_for(loop->wait(in_ms(1000)), a.get());
    BOOST_TEST((ev & (kReadable | kHangup)) != 0u);
    char c;
    BOOST_TEST(::read(a.get(), &c, 1) == 0);
}

BOOST_DATA_TEST_CASE(urgent_data_is_an_exception, bdata::make(kModels), model) {
    if (model == Model::epoll_et) return;  // one edge only; the level-triggered models say enough
    Fd listener = listen_on(resolve(Address::parse("127.0.0.1:0"), true).front(), 4);
    Endpoint ep = local_endpoint(listener.get());
    Fd client(::socket(AF_INET, SOCK_STREAM, 0));
    BOOST_REQUIRE(::connect(client.get(), ep.sa(), ep.length) == 0);
    pollfd queued{listener.get(), POLLIN, 0};
    BOOST_REQUIRE(::poll(&queued, 1, 5000) == 1);  // the connection waits in the accept queue
    Accepted server = accept_connection(listener.get());
    BOOST_REQUIRE(server.fd);
    auto loop = EventLoop::create(model);
    loop->add(server.fd.get(), kException);
    BOOST_REQUIRE(::send(client.get(), "!", 1, MSG_OOB) == 1);
    BOOST_TEST((events_for(loop->wait(in_ms(1000)), server.fd.get()) & kException) != 0u);
}

BOOST_AUTO_TEST_CASE(edge_triggered_reports_each_arrival_once) {
    auto loop = EventLoop::create(Model::epoll_et);
    PipePair p;
    loop->add(p.r.get(), kReadable);
    BOOST_REQUIRE(::write(p.w.get(), "x", 1) == 1);
    BOOST_TEST((events_for(loop->wait(in_ms(1000)), p.r.get()) & kReadable) != 0u);
    // Not drained, but no new data: edge-triggered stays quiet; level-triggered would not.
    BOOST_TEST(events_for(loop->wait(in_ms(20)), p.r.get()) == 0u);
    BOOST_REQUIRE(::write(p.w.get(), "y", 1) == 1);
    BOOST_TEST((events_for(loop->wait(in_ms(1000)), p.r.get()) & kReadable) != 0u);
}

BOOST_AUTO_TEST_CASE(level_triggered_repeats_until_drained) {
    auto loop = EventLoop::create(Model::epoll);
    PipePair p;
    loop->add(p.r.get(), kReadable);
    BOOST_REQUIRE(::write(p.w.get(), "x", 1) == 1);
    BOOST_TEST((events_for(loop->wait(in_ms(1000)), p.r.get()) & kReadable) != 0u);
    BOOST_TEST((events_for(loop->wait(in_ms(1000)), p.r.get()) & kReadable) != 0u);
}

BOOST_AUTO_TEST_CASE(select_refuses_descriptor_past_fd_setsize) {
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_max < FD_SETSIZE + 10) {
        BOOST_TEST_MESSAGE("hard RLIMIT_NOFILE below FD_SETSIZE: nothing to check");
        return;
    }
    raise_fd_limit(FD_SETSIZE + 10);
    PipePair p;
    Fd high(::dup2(p.r.get(), FD_SETSIZE));
    BOOST_REQUIRE(high);
    auto select_loop = EventLoop::create(Model::select);
    BOOST_TEST(!select_loop->can_watch(FD_SETSIZE));
    BOOST_TEST(select_loop->can_watch(FD_SETSIZE - 1));
    BOOST_CHECK_THROW(select_loop->add(high.get(), kReadable), RuntimeError);
    for (Model m : {Model::poll, Model::epoll}) {
        auto loop = EventLoop::create(m);
        loop->add(high.get(), kReadable);
        BOOST_REQUIRE(::write(p.w.get(), "x", 1) == 1);
        BOOST_TEST((events_for(loop->wait(in_ms(1000)), high.get()) & kReadable) != 0u);
        char c;
        BOOST_REQUIRE(::read(p.r.get(), &c, 1) == 1);
    }
}

namespace {
void on_alarm(int) {}
}  // namespace

BOOST_DATA_TEST_CASE(a_signal_during_wait_does_not_end_it_early, bdata::make(kModels), model) {
    struct sigaction sa {};
    sa.sa_handler = on_alarm;
    ::sigaction(SIGALRM, &sa, nullptr);  // no SA_RESTART: the wait sees EINTR
    auto loop = EventLoop::create(model);
    PipePair p;
    loop->add(p.r.get(), kReadable);
    itimerval t{};
    t.it_value.tv_usec = 10'000;
    ::setitimer(ITIMER_REAL, &t, nullptr);
    std::int64_t start = now_ns();
    auto evs = loop->wait(start + 60'000'000);
    BOOST_TEST(evs.empty());
    BOOST_TEST(now_ns() - start >= 60'000'000);
}

BOOST_AUTO_TEST_CASE(only_readiness_models_make_an_event_loop) {
    for (const ModelInfo& m : models()) {
        if (m.kind == ModelKind::readiness) BOOST_TEST(EventLoop::create(m.model)->model() == m.model);
        else BOOST_CHECK_THROW(EventLoop::create(m.model), UsageError);
    }
}
