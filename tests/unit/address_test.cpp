#define BOOST_TEST_MODULE address
#include <boost/test/unit_test.hpp>

#include <muxkit/address.hpp>
#include <muxkit/error.hpp>

using namespace muxkit;

BOOST_AUTO_TEST_CASE(bare_port_means_ipv4_loopback) {
    Address a = Address::parse("7007");
    BOOST_TEST(a.host == "127.0.0.1");
    BOOST_TEST(a.port == 7007);
    BOOST_TEST(a.to_string() == "127.0.0.1:7007");
}

BOOST_AUTO_TEST_CASE(host_port_ipv6_and_unix_forms) {
    Address a = Address::parse("localhost:80");
    BOOST_TEST(a.host == "localhost");
    BOOST_TEST(a.port == 80);
    Address b = Address::parse("[::1]:0");
    BOOST_TEST(b.host == "::1");
    BOOST_TEST(b.port == 0);
    BOOST_TEST(b.to_string() == "[::1]:0");
    Address c = Address::parse("unix:/tmp/muxkit.sock");
    BOOST_TEST((c.kind == Address::Kind::unix_path));
    BOOST_TEST(c.path == "/tmp/muxkit.sock");
    BOOST_TEST(c.to_string() == "unix:/tmp/muxkit.sock");
    BOOST_TEST(Address::parse("0.0.0.0:65535").port == 65535);
}

BOOST_AUTO_TEST_CASE(udp_addresses_are_inet_addresses_of_datagram_sockets) {
    Address a = Address::parse("udp:127.0.0.1:7007");
    BOOST_TEST((a.kind == Address::Kind::udp));
    BOOST_TEST(a.datagram());
    BOOST_TEST(a.host == "127.0.0.1");
    BOOST_TEST(a.port == 7007);
    BOOST_TEST(a.to_string() == "udp:127.0.0.1:7007");
    Address b = Address::parse("udp:[::1]:53");
    BOOST_TEST(b.host == "::1");
    BOOST_TEST(b.to_string() == "udp:[::1]:53");
    BOOST_TEST(Address::parse("udp:9").host == "127.0.0.1");  // a bare port is loopback, as for TCP
    BOOST_TEST(!Address::parse("127.0.0.1:7").datagram());
}

BOOST_AUTO_TEST_CASE(malformed_addresses_are_usage_errors_naming_the_input) {
    for (auto bad : {"", "host", ":80", "host:", "host:http", "1.2.3.4:65536", "::1:80", "[::1]80", "[::1", "[]:80",
                     "[nothost]:80", "unix:", "host:-1", "udp:", "udp:host", "udp:unix:/tmp/s", "udp:udp:1", "udp:[::1]"}) {
        try {
            Address::parse(bad);
            BOOST_FAIL("accepted '" << bad << "'");
        } catch (const UsageError& e) {
            BOOST_TEST(std::string(e.what()).find("'" + std::string(bad) + "'") != std::string::npos, e.what());
        }
    }
}

// Another tool's scheme (tls: before muxkit has TLS, tcp:, http://) is named as such, with the
// forms muxkit knows, not taken for an IPv6 address without brackets.
BOOST_AUTO_TEST_CASE(unknown_schemes_name_the_forms_muxkit_knows) {
    for (auto [bad, scheme] : {std::pair{"tls:127.0.0.1:443", "tls:"}, {"tcp:localhost:80", "tcp:"}, {"http://example.com", "http:"},
                               {"ssl:[::1]:443", "ssl:"}}) {
        try {
            Address::parse(bad);
            BOOST_FAIL("accepted '" << bad << "'");
        } catch (const UsageError& e) {
            const std::string why = e.what();
            BOOST_TEST(why.find("muxkit does not know '" + std::string(scheme) + "' addresses") != std::string::npos, why);
            BOOST_TEST(why.find("unix:PATH or udp:HOST:PORT") != std::string::npos, why);
        }
    }
    try {
        Address::parse("fe80::1:80");  // hex first: an IPv6 address that wants brackets
        BOOST_FAIL("accepted fe80::1:80");
    } catch (const UsageError& e) {
        BOOST_TEST(std::string(e.what()).find("brackets") != std::string::npos, e.what());
    }
}

BOOST_AUTO_TEST_CASE(unix_path_longer_than_sun_path_is_refused) {
    BOOST_CHECK_THROW(Address::parse("unix:/" + std::string(200, 'x')), UsageError);
}

BOOST_AUTO_TEST_CASE(resolve_numeric_and_format_back) {
    auto eps = resolve(Address::parse("127.0.0.1:7007"), false);
    BOOST_REQUIRE(!eps.empty());
    BOOST_TEST(eps.front().to_string() == "127.0.0.1:7007");
    BOOST_TEST(eps.front().port() == 7007);
    auto v6 = resolve(Address::parse("[::1]:9"), false);
    BOOST_TEST(v6.front().to_string() == "[::1]:9");
    auto un = resolve(Address::parse("unix:/tmp/x.sock"), false);
    BOOST_TEST(un.front().to_string() == "unix:/tmp/x.sock");
}

BOOST_AUTO_TEST_CASE(unresolvable_host_is_a_runtime_error) {
    BOOST_CHECK_THROW(resolve(Address::parse("no-such-host.invalid:80"), false), RuntimeError);
}
