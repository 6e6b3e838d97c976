/* SPDX-License-Identifier: MIT */
/* Unit tests for libtn/addr.c's parsers: ports, and IP:PORT that must be an address, never a
 * name (the relay's services: targets, the proxy's address targets), IPv4-mapped IPv6 taken as
 * the IPv4 address it stands for. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "tn/addr.h"
#include "tn/cidr.h"
#include "tn/err.h"

static void
test_parse_port(void **state)
{
    (void)state;
    assert_int_equal(tn_addr_parse_port("1"), 1);
    assert_int_equal(tn_addr_parse_port("65535"), 65535);
    assert_int_equal(tn_addr_parse_port("08080"), 8080);
    assert_int_equal(tn_addr_parse_port("0"), 0);
    assert_int_equal(tn_addr_parse_port("65536"), 0);
    assert_int_equal(tn_addr_parse_port(""), 0);
    assert_int_equal(tn_addr_parse_port("+80"), 0);
    assert_int_equal(tn_addr_parse_port(" 80"), 0);
    assert_int_equal(tn_addr_parse_port("80 "), 0);
    assert_int_equal(tn_addr_parse_port("0x50"), 0);
    assert_int_equal(tn_addr_parse_port("http"), 0);
    assert_int_equal(tn_addr_parse_port("99999999999999999999"), 0);
}

static void
test_parse_ip(void **state)
{
    static const char *const bad[] = {
        "db.lan:5432",    "localhost:80",   "10.0.0.1",     "10.0.0.1:",    "10.0.0.1:0",
        "10.0.0.1:70000", "10.0.0.1:+80",   "10.0.0.1: 80", " 10.0.0.1:80", "127.1:80",
        "::1:80",         "[::1]",          "[]:80",        ":80",          "[fe80::1%eth0]:80",
        "10.0.0.1:80\n",  "[10.0.0.1]:80x", "10.0.0.256:1",
    };
    struct tn_ip ip;
    unsigned port = 0;
    size_t i;

    (void)state;
    assert_int_equal(tn_addr_parse_ip("10.0.0.5:5432", &ip, &port), 0);
    assert_int_equal(ip.family, AF_INET);
    assert_memory_equal(ip.bytes, "\x0a\x00\x00\x05", 4);
    assert_int_equal(port, 5432);
    assert_int_equal(tn_addr_parse_ip("[fd00::5]:443", &ip, &port), 0);
    assert_int_equal(ip.family, AF_INET6);
    assert_int_equal(port, 443);
    /* ::ffff:10.0.0.5 is 10.0.0.5: a rule for 10.0.0.0/8 must see it. */
    assert_int_equal(tn_addr_parse_ip("[::ffff:10.0.0.5]:80", &ip, &port), 0);
    assert_int_equal(ip.family, AF_INET);
    assert_memory_equal(ip.bytes, "\x0a\x00\x00\x05", 4);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (tn_addr_parse_ip(bad[i], &ip, &port) != TN_ERR_PARSE)
            fail_msg("'%s' was taken for IP:PORT", bad[i]);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_port),
        cmocka_unit_test(test_parse_ip),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
