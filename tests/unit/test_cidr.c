/* SPDX-License-Identifier: MIT */
/* Unit tests for libtn/cidr.c: strict parsing, formatting, membership and mapping. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "parse_helpers.h"
#include "tn/err.h"

static void
assert_rejected(const char *s)
{
    struct tn_cidr c;

    memset(&c, 0xa5, sizeof(c));
    if (tn_cidr_parse(&c, s) != TN_ERR_PARSE)
        fail_msg("accepted '%s'", s);
    assert_int_equal(c.ip.family, 0);
    assert_int_equal(c.prefix, 0);
}

static void
test_cidr_parses_v4_network(void **state)
{
    struct tn_cidr c = cidr("10.1.0.0/16");
    const uint8_t want[16] = { 10, 1 };

    (void)state;
    assert_int_equal(c.ip.family, AF_INET);
    assert_int_equal(c.prefix, 16);
    assert_memory_equal(c.ip.bytes, want, 16);
}

static void
test_cidr_parses_v6_network(void **state)
{
    struct tn_cidr c = cidr("2001:db8:1::/48");
    const uint8_t want[16] = { 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01 };

    (void)state;
    assert_int_equal(c.ip.family, AF_INET6);
    assert_int_equal(c.prefix, 48);
    assert_memory_equal(c.ip.bytes, want, 16);
}

static void
test_cidr_bare_address_is_host_route(void **state)
{
    struct tn_cidr c;

    (void)state;
    c = cidr("192.168.1.5");
    assert_int_equal(c.ip.family, AF_INET);
    assert_int_equal(c.prefix, 32);
    c = cidr("fd00::1");
    assert_int_equal(c.ip.family, AF_INET6);
    assert_int_equal(c.prefix, 128);
}

static void
test_cidr_format_round_trips(void **state)
{
    static const char *const cases[] = {
        "0.0.0.0/0",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "192.168.1.0/24",
        "192.168.1.5/32",
        "255.255.255.255/32",
        "::/0",
        "2001:db8::/32",
        "fd00:1:2:3::/64",
        "fe80::1/128",
        "2001:db8::8000:0/97",
        "::ffff:10.0.0.0/104",
        "1:2:3:4:5:6:7:8/128",
    };
    char buf[TN_CIDR_STRLEN];
    struct tn_cidr c, again;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        c = cidr(cases[i]);
        assert_ptr_equal(tn_cidr_format(&c, buf, sizeof(buf)), buf);
        assert_string_equal(buf, cases[i]);
        again = cidr(buf);
        assert_int_equal(again.ip.family, c.ip.family);
        assert_int_equal(again.prefix, c.prefix);
        assert_memory_equal(again.ip.bytes, c.ip.bytes, 16);
    }
}

static void
test_cidr_format_is_canonical(void **state)
{
    char buf[TN_CIDR_STRLEN];
    struct tn_cidr c;

    (void)state;
    c = cidr("2001:0DB8:0000:0000::/32");
    assert_string_equal(tn_cidr_format(&c, buf, sizeof(buf)), "2001:db8::/32");
    c = cidr("10.0.0.7");
    assert_string_equal(tn_cidr_format(&c, buf, sizeof(buf)), "10.0.0.7/32");
}

static void
test_cidr_format_fits_longest_v6(void **state)
{
    const char *s = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128";
    char buf[TN_CIDR_STRLEN];
    struct tn_cidr c = cidr(s);

    (void)state;
    assert_string_equal(tn_cidr_format(&c, buf, sizeof(buf)), s);
    /* The longest accepted text: an IPv4 tail makes it longer than the canonical form. */
    c = cidr("0000:0000:0000:0000:0000:ffff:255.255.255.255/128");
    assert_string_equal(tn_cidr_format(&c, buf, sizeof(buf)), "::ffff:255.255.255.255/128");
}

static void
test_cidr_format_of_unset_is_none(void **state)
{
    char buf[TN_CIDR_STRLEN];
    struct tn_cidr c;

    (void)state;
    memset(&c, 0, sizeof(c));
    assert_string_equal(tn_cidr_format(&c, buf, sizeof(buf)), "(none)");
    assert_string_equal(tn_ip_format(&c.ip, buf, sizeof(buf)), "(none)");
}

static void
test_ip_format_writes_bare_address(void **state)
{
    char buf[TN_CIDR_STRLEN];
    struct tn_ip a;

    (void)state;
    a = ip("100.64.1.5");
    assert_string_equal(tn_ip_format(&a, buf, sizeof(buf)), "100.64.1.5");
    a = ip("fd00:0::0:1");
    assert_string_equal(tn_ip_format(&a, buf, sizeof(buf)), "fd00::1");
}

static void
test_cidr_rejects_empty(void **state)
{
    (void)state;
    assert_rejected("");
    assert_rejected("/");
    assert_rejected("/8");
}

static void
test_cidr_rejects_prefix_too_long(void **state)
{
    (void)state;
    assert_rejected("10.0.0.0/33");
    assert_rejected("0.0.0.0/100");
    assert_rejected("::/129");
    assert_rejected("::/1000");
    assert_rejected("10.0.0.0/4294967304"); /* 2^32 + 8: no wrap-around to /8 */
}

static void
test_cidr_rejects_non_digit_prefix(void **state)
{
    (void)state;
    assert_rejected("10.0.0.0/8a");
    assert_rejected("10.0.0.0/a");
    assert_rejected("10.0.0.0/ 8");
    assert_rejected("10.0.0.0/-8");
    assert_rejected("10.0.0.0/8.0");
    assert_rejected("10.0.0.0/0x8");
    assert_rejected("10.0.0.0/08");
}

static void
test_cidr_rejects_leading_plus(void **state)
{
    (void)state;
    assert_rejected("10.0.0.0/+8");
    assert_rejected("+10.0.0.0/8");
}

static void
test_cidr_rejects_slash_without_prefix(void **state)
{
    (void)state;
    assert_rejected("10.0.0.0/");
    assert_rejected("fd00::/");
}

static void
test_cidr_rejects_host_bits(void **state)
{
    (void)state;
    assert_rejected("10.0.0.1/8");
    assert_rejected("192.168.1.128/24");
    assert_rejected("0.0.0.1/0");
    assert_rejected("fd00::1/64");
    assert_rejected("2001:db8::8000:0/96");
    assert_rejected("2001:db8::1:0/111");
}

static void
test_cidr_rejects_trailing_garbage(void **state)
{
    (void)state;
    assert_rejected("10.0.0.0/8 ");
    assert_rejected("10.0.0.0/8/8");
    assert_rejected("10.0.0.0x");
    assert_rejected("10.0.0.0 /8");
    assert_rejected(" 10.0.0.0/8");
    assert_rejected("10.0.0.0/8\n");
}

static void
test_cidr_rejects_malformed_address(void **state)
{
    (void)state;
    assert_rejected("abc");
    assert_rejected("1.2.3");
    assert_rejected("1.2.3.4.5");
    assert_rejected("256.0.0.0/8");
    assert_rejected("010.0.0.0/8");
    assert_rejected("fd00:::/8");
    assert_rejected("[fd00::]/8");
    assert_rejected("fe80::1%eth0");
}

static void
test_cidr_rejects_overlong_input(void **state)
{
    char big[300];

    (void)state;
    memset(big, '1', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_rejected(big);
    /* Leading zeros in the prefix would make an overlong text mean "/0". */
    memset(big, '0', sizeof(big) - 1);
    memcpy(big, "10.0.0.0/", 9);
    assert_rejected(big);
}

static void
test_ip_parse_rejects_network_and_junk(void **state)
{
    struct tn_ip a;

    (void)state;
    assert_int_equal(tn_ip_parse(&a, "10.0.0.0/8"), TN_ERR_PARSE);
    assert_int_equal(a.family, 0);
    assert_int_equal(tn_ip_parse(&a, ""), TN_ERR_PARSE);
    assert_int_equal(tn_ip_parse(&a, "1.2.3.4 "), TN_ERR_PARSE);
    assert_int_equal(tn_ip_parse(&a, "::1"), 0);
    assert_int_equal(a.family, AF_INET6);
}

static void
test_cidr_contains_v4(void **state)
{
    struct tn_cidr net = cidr("100.64.0.0/10"), all = cidr("0.0.0.0/0"), host = cidr("1.2.3.4");
    struct tn_ip in = ip("100.127.255.255"), out = ip("100.128.0.0"), v6 = ip("::");

    (void)state;
    assert_true(tn_cidr_contains(&net, &in));
    assert_false(tn_cidr_contains(&net, &out));
    assert_true(tn_cidr_contains(&all, &out));
    assert_false(tn_cidr_contains(&all, &v6));
    in = ip("1.2.3.4");
    assert_true(tn_cidr_contains(&host, &in));
    in = ip("1.2.3.5");
    assert_false(tn_cidr_contains(&host, &in));
}

static void
test_cidr_contains_v6(void **state)
{
    struct tn_cidr net = cidr("fd00:1::/33"), all = cidr("::/0");
    struct tn_ip in = ip("fd00:1:7fff::1"), out = ip("fd00:1:8000::"), v4 = ip("10.0.0.1");

    (void)state;
    assert_true(tn_cidr_contains(&net, &in));
    assert_false(tn_cidr_contains(&net, &out));
    assert_true(tn_cidr_contains(&all, &out));
    assert_false(tn_cidr_contains(&all, &v4));
}

static void
test_cidr_overlaps(void **state)
{
    struct tn_cidr a = cidr("10.0.0.0/8"), b = cidr("10.1.0.0/16"), c = cidr("11.0.0.0/8");
    struct tn_cidr all4 = cidr("0.0.0.0/0"), all6 = cidr("::/0"), v6 = cidr("fd00::/8");

    (void)state;
    assert_true(tn_cidr_overlaps(&a, &b));
    assert_true(tn_cidr_overlaps(&b, &a));
    assert_true(tn_cidr_overlaps(&a, &a));
    assert_false(tn_cidr_overlaps(&a, &c));
    assert_false(tn_cidr_overlaps(&b, &c));
    assert_true(tn_cidr_overlaps(&all4, &c));
    assert_false(tn_cidr_overlaps(&all4, &all6));
    assert_true(tn_cidr_overlaps(&all6, &v6));
    assert_false(tn_cidr_overlaps(&a, &v6));
}

static void
test_cidr_map_keeps_host_bits_v4(void **state)
{
    struct tn_cidr from = cidr("100.64.1.0/24"), to = cidr("192.168.1.0/24");
    struct tn_ip in = ip("100.64.1.5"), out;
    char buf[TN_CIDR_STRLEN];

    (void)state;
    assert_int_equal(tn_cidr_map(&from, &to, &in, &out), 0);
    assert_string_equal(tn_ip_format(&out, buf, sizeof(buf)), "192.168.1.5");
    from = cidr("100.64.0.0/10");
    to = cidr("10.0.0.0/10");
    in = ip("100.100.200.3");
    assert_int_equal(tn_cidr_map(&from, &to, &in, &out), 0);
    assert_string_equal(tn_ip_format(&out, buf, sizeof(buf)), "10.36.200.3");
}

static void
test_cidr_map_keeps_host_bits_v6(void **state)
{
    struct tn_cidr from = cidr("fd00:64:1::/48"), to = cidr("2001:db8:abcd::/48");
    struct tn_ip in = ip("fd00:64:1:2::5"), out;
    char buf[TN_CIDR_STRLEN];

    (void)state;
    assert_int_equal(tn_cidr_map(&from, &to, &in, &out), 0);
    assert_int_equal(out.family, AF_INET6);
    assert_string_equal(tn_ip_format(&out, buf, sizeof(buf)), "2001:db8:abcd:2::5");
}

static void
test_cidr_map_rejects_mismatch(void **state)
{
    struct tn_cidr from = cidr("100.64.1.0/24"), to16 = cidr("192.168.0.0/16");
    struct tn_cidr to6 = cidr("fd00::/120"), to = cidr("192.168.1.0/24");
    struct tn_ip in = ip("100.64.1.5"), outside = ip("100.64.2.5"), v6 = ip("fd00::5"), out;

    (void)state;
    assert_int_equal(tn_cidr_map(&from, &to16, &in, &out), TN_ERR_PARSE);
    assert_int_equal(out.family, 0);
    assert_int_equal(tn_cidr_map(&from, &to6, &in, &out), TN_ERR_PARSE);
    assert_int_equal(tn_cidr_map(&from, &to, &outside, &out), TN_ERR_PARSE);
    assert_int_equal(tn_cidr_map(&from, &to, &v6, &out), TN_ERR_PARSE);
}

static void
test_cidr_list_grows_and_keeps_order(void **state)
{
    struct tn_cidr_list l = { NULL, 0 };
    struct tn_cidr c = cidr("10.0.0.0/8");
    size_t i;

    (void)state;
    for (i = 0; i < 1000; i++) {
        c.ip.bytes[1] = (uint8_t)i;
        c.ip.bytes[2] = (uint8_t)(i >> 8);
        c.prefix = 24;
        assert_int_equal(tn_cidr_list_add(&l, &c), 0);
    }
    assert_int_equal(l.n, 1000);
    for (i = 0; i < 1000; i++) {
        assert_int_equal(l.v[i].ip.bytes[1], (uint8_t)i);
        assert_int_equal(l.v[i].ip.bytes[2], (uint8_t)(i >> 8));
    }
    tn_cidr_list_fini(&l);
    assert_null(l.v);
    assert_int_equal(l.n, 0);
    tn_cidr_list_fini(&l);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cidr_parses_v4_network),
        cmocka_unit_test(test_cidr_parses_v6_network),
        cmocka_unit_test(test_cidr_bare_address_is_host_route),
        cmocka_unit_test(test_cidr_format_round_trips),
        cmocka_unit_test(test_cidr_format_is_canonical),
        cmocka_unit_test(test_cidr_format_fits_longest_v6),
        cmocka_unit_test(test_cidr_format_of_unset_is_none),
        cmocka_unit_test(test_ip_format_writes_bare_address),
        cmocka_unit_test(test_cidr_rejects_empty),
        cmocka_unit_test(test_cidr_rejects_prefix_too_long),
        cmocka_unit_test(test_cidr_rejects_non_digit_prefix),
        cmocka_unit_test(test_cidr_rejects_leading_plus),
        cmocka_unit_test(test_cidr_rejects_slash_without_prefix),
        cmocka_unit_test(test_cidr_rejects_host_bits),
        cmocka_unit_test(test_cidr_rejects_trailing_garbage),
        cmocka_unit_test(test_cidr_rejects_malformed_address),
        cmocka_unit_test(test_cidr_rejects_overlong_input),
        cmocka_unit_test(test_ip_parse_rejects_network_and_junk),
        cmocka_unit_test(test_cidr_contains_v4),
        cmocka_unit_test(test_cidr_contains_v6),
        cmocka_unit_test(test_cidr_overlaps),
        cmocka_unit_test(test_cidr_map_keeps_host_bits_v4),
        cmocka_unit_test(test_cidr_map_keeps_host_bits_v6),
        cmocka_unit_test(test_cidr_map_rejects_mismatch),
        cmocka_unit_test(test_cidr_list_grows_and_keeps_order),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
