/* SPDX-License-Identifier: MIT */
/* Unit tests for libtn/packet.c: what the client takes from NFQUEUE is parsed only when every
 * length agrees, and the replies it builds parse back with valid checksums. */
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "parse_helpers.h"
#include "tn/packet.h"

/* The one's complement sum over |n| bytes plus |extra|, folded: 0xffff when a checksum in
 * them is right. */
static unsigned
fold(const uint8_t *p, size_t n, uint32_t extra)
{
    uint32_t sum = extra;
    size_t i;

    for (i = 0; i + 1 < n; i += 2)
        sum += (uint32_t)p[i] << 8 | p[i + 1];
    if (n & 1)
        sum += (uint32_t)p[n - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return sum;
}

static uint32_t
pseudo(const struct tn_ip *s, const struct tn_ip *d, int proto, size_t len)
{
    uint8_t b[32];
    size_t a = s->family == AF_INET ? 4 : 16;

    memcpy(b, s->bytes, a);
    memcpy(b + a, d->bytes, a);
    return fold(b, 2 * a, (uint32_t)proto + (uint32_t)len);
}

static size_t
udp4(uint8_t *out, const char *payload)
{
    struct tn_ip s = ip("10.0.0.1"), d = ip("100.64.2.2");

    return tn_pkt_build_udp(out, TN_PKT_MAX, &s, 40000, &d, 53, (const uint8_t *)payload,
                            strlen(payload));
}

static void
test_udp4_roundtrip(void **state)
{
    static uint8_t p[TN_PKT_MAX];
    struct tn_ip s = ip("10.0.0.1"), d = ip("100.64.2.2");
    struct tn_pkt pkt;
    size_t n = udp4(p, "hello");

    (void)state;
    assert_int_equal(n, 20 + 8 + 5);
    assert_int_equal(tn_pkt_parse(p, n, &pkt), TN_PKT_OK);
    assert_int_equal(pkt.proto, IPPROTO_UDP);
    assert_int_equal(pkt.sport, 40000);
    assert_int_equal(pkt.dport, 53);
    assert_memory_equal(pkt.src.bytes, s.bytes, 4);
    assert_memory_equal(pkt.dst.bytes, d.bytes, 4);
    assert_int_equal(pkt.len, 5);
    assert_memory_equal(pkt.payload, "hello", 5);
    assert_int_equal(fold(p, 20, 0), 0xffff); /* IP header checksum */
    assert_int_equal(fold(p + 20, n - 20, pseudo(&s, &d, IPPROTO_UDP, n - 20)), 0xffff);
    /* Trailing bytes beyond the IP total length (padding) are ignored. */
    assert_int_equal(tn_pkt_parse(p, n + 7, &pkt), TN_PKT_OK);
    assert_int_equal(pkt.len, 5);
}

static void
test_udp6_and_icmp6_roundtrip(void **state)
{
    static uint8_t p[TN_PKT_MAX], icmp[12] = { 128, 0, 0, 0, 0x12, 0x34, 0, 1, 'p', 'i', 'n', 'g' };
    struct tn_ip s = ip("fd00::1"), d = ip("fd00:64::2");
    struct tn_pkt pkt;
    size_t n = tn_pkt_build_udp(p, sizeof(p), &s, 1234, &d, 5353, (const uint8_t *)"x", 1);

    (void)state;
    assert_int_equal(n, 40 + 8 + 1);
    assert_int_equal(tn_pkt_parse(p, n, &pkt), TN_PKT_OK);
    assert_int_equal(pkt.src.family, AF_INET6);
    assert_int_equal(pkt.dport, 5353);
    assert_memory_equal(pkt.dst.bytes, d.bytes, 16);
    assert_int_equal(fold(p + 40, n - 40, pseudo(&s, &d, IPPROTO_UDP, n - 40)), 0xffff);
    /* An echo request, then the reply we would build for it with another identifier. */
    n = tn_pkt_build_icmp(p, sizeof(p), &s, &d, icmp, sizeof(icmp), 0x1234);
    assert_int_equal(tn_pkt_parse(p, n, &pkt), TN_PKT_OK);
    assert_int_equal(pkt.proto, IPPROTO_ICMPV6);
    assert_int_equal(pkt.sport, 0x1234);
    assert_int_equal(fold(p + 40, n - 40, pseudo(&s, &d, IPPROTO_ICMPV6, n - 40)), 0xffff);
}

static void
test_icmp4_echo(void **state)
{
    static uint8_t p[TN_PKT_MAX];
    uint8_t reply[10] = { 0, 0, 0xde, 0xad, 0x55, 0x55, 0, 7, 'h', 'i' };
    struct tn_ip s = ip("100.64.2.2"), d = ip("10.0.0.1");
    struct tn_pkt pkt;
    size_t n;

    (void)state;
    n = tn_pkt_build_icmp(p, sizeof(p), &s, &d, reply, sizeof(reply), 0x4242);
    assert_int_equal(n, 30);
    assert_int_equal(p[9], IPPROTO_ICMP);
    assert_int_equal(p[20], 0); /* still an echo reply */
    assert_int_equal(p[24] << 8 | p[25], 0x4242);
    assert_int_equal(p[26] << 8 | p[27], 7); /* sequence kept */
    assert_int_equal(fold(p + 20, 10, 0), 0xffff);
    /* A reply is not what we take from the queue; a request is. */
    assert_int_equal(tn_pkt_parse(p, n, &pkt), TN_PKT_UNSUPPORTED);
    p[20] = 8;
    assert_int_equal(tn_pkt_parse(p, n, &pkt), TN_PKT_OK);
    assert_int_equal(pkt.proto, IPPROTO_ICMP);
    assert_int_equal(pkt.sport, 0x4242);
    assert_int_equal(pkt.dport, 0);
    assert_int_equal(pkt.len, 10);
    /* ICMPv6 inside IPv4 is not ICMP. */
    p[9] = IPPROTO_ICMPV6;
    assert_int_equal(tn_pkt_parse(p, n, &pkt), TN_PKT_UNSUPPORTED);
    /* Too short for an echo header. */
    assert_int_equal(tn_pkt_build_icmp(p, sizeof(p), &s, &d, reply, 7, 1), 0);
}

static void
test_every_truncation_is_refused(void **state)
{
    static uint8_t p[TN_PKT_MAX];
    struct tn_pkt pkt;
    size_t n = udp4(p, "0123456789"), i;

    (void)state;
    for (i = 0; i < n; i++)
        assert_int_not_equal(tn_pkt_parse(p, i, &pkt), TN_PKT_OK);
    assert_int_equal(tn_pkt_parse(p, 0, &pkt), TN_PKT_TRUNCATED);
    assert_int_equal(tn_pkt_parse(p, 19, &pkt), TN_PKT_TRUNCATED);
    assert_int_equal(tn_pkt_parse(p, n - 1, &pkt), TN_PKT_TRUNCATED);
}

static void
test_bad_headers_and_lengths(void **state)
{
    static uint8_t p[TN_PKT_MAX];
    struct tn_pkt pkt;
    size_t n;

    (void)state;
    n = udp4(p, "abcd");
    p[0] = 0x44; /* header length 16 */
    assert_int_equal(tn_pkt_parse(p, n, &pkt), TN_PKT_BAD_HEADER);
    p[0] = 0x55; /* version 5 */
    assert_int_equal(tn_pkt_parse(p, n, &pkt), TN_PKT_BAD_HEADER);
    p[0] = 0x4f; /* header length 60 > the packet */
    assert_int_equal(tn_pkt_parse(p, n, &pkt), TN_PKT_BAD_LENGTH);
    n = udp4(p, "abcd");
    p[3] = 10; /* total length below the header */
    assert_int_equal(tn_pkt_parse(p, n, &pkt), TN_PKT_BAD_LENGTH);
    n = udp4(p, "abcd");
    p[20 + 5] = 7; /* UDP length below its header */
    assert_int_equal(tn_pkt_parse(p, n, &pkt), TN_PKT_BAD_LENGTH);
    p[20 + 5] = 13; /* UDP length beyond the IP payload */
    assert_int_equal(tn_pkt_parse(p, n, &pkt), TN_PKT_BAD_LENGTH);
    p[20 + 5] = 10; /* shorter than the IP payload: the UDP length wins */
    assert_int_equal(tn_pkt_parse(p, n, &pkt), TN_PKT_OK);
    assert_int_equal(pkt.len, 2);
    n = udp4(p, "abcd");
    p[20 + 2] = p[20 + 3] = 0; /* destination port 0 */
    assert_int_equal(tn_pkt_parse(p, n, &pkt), TN_PKT_BAD_HEADER);
    n = udp4(p, "abcd");
    p[9] = IPPROTO_TCP;
    assert_int_equal(tn_pkt_parse(p, n, &pkt), TN_PKT_UNSUPPORTED);
}

static void
test_fragments_are_refused(void **state)
{
    static uint8_t p[TN_PKT_MAX];
    struct tn_ip s = ip("fd00::1"), d = ip("fd00::2");
    struct tn_pkt pkt;
    size_t n;

    (void)state;
    n = udp4(p, "abcd");
    p[6] = 0x20; /* more fragments */
    assert_int_equal(tn_pkt_parse(p, n, &pkt), TN_PKT_FRAGMENT);
    p[6] = 0x00;
    p[7] = 0x01; /* offset 8 */
    assert_int_equal(tn_pkt_parse(p, n, &pkt), TN_PKT_FRAGMENT);
    p[6] = 0x40; /* don't fragment only: whole */
    p[7] = 0;
    assert_int_equal(tn_pkt_parse(p, n, &pkt), TN_PKT_OK);
    n = tn_pkt_build_udp(p, sizeof(p), &s, 1, &d, 2, (const uint8_t *)"abcd", 4);
    p[6] = 44; /* an IPv6 fragment header */
    assert_int_equal(tn_pkt_parse(p, n, &pkt), TN_PKT_FRAGMENT);
    p[6] = 0; /* hop-by-hop options: not read */
    assert_int_equal(tn_pkt_parse(p, n, &pkt), TN_PKT_UNSUPPORTED);
}

/* A reply larger than the link: fragments of at most the MTU, payloads in multiples of 8,
 * offsets and MF right, each header's checksum right, and together the original payload. */
static void
test_fragment4(void **state)
{
    static uint8_t p[TN_PKT_MAX], f[1500], whole[4000];
    char payload[2973];
    size_t n, len, off = 0, at = 0, frags = 0;
    unsigned flags;

    (void)state;
    memset(payload, 'q', sizeof(payload) - 1);
    payload[sizeof(payload) - 1] = '\0';
    n = udp4(p, payload); /* 20 + 8 + 2972 */
    assert_int_equal(n, 3000);
    while ((len = tn_pkt_fragment4(p, n, sizeof(f), 7, &off, f)) > 0) {
        frags++;
        assert_true(len <= sizeof(f));
        assert_int_equal((f[2] << 8) | f[3], len);
        assert_int_equal((f[4] << 8) | f[5], 7);
        flags = (unsigned)((f[6] << 8) | f[7]);
        assert_int_equal((flags & 0x1fff) * 8, at);
        assert_int_equal((flags & 0x2000) != 0, at + len - 20 < n - 20);
        assert_int_equal(fold(f, 20, 0), 0xffff); /* the header's checksum */
        assert_memory_equal(f + 12, p + 12, 8);   /* same addresses */
        memcpy(whole + at, f + 20, len - 20);
        at += len - 20;
        if (at < n - 20)
            assert_int_equal((len - 20) % 8, 0);
    }
    assert_int_equal(frags, 3); /* 1480 + 1480 + 20 */
    assert_int_equal(at, n - 20);
    assert_memory_equal(whole, p + 20, n - 20);
    off = 0;
    assert_int_equal(tn_pkt_fragment4(p, n, 27, 7, &off, f), 0); /* no room for 8 bytes */
}

static void
test_build_limits(void **state)
{
    static uint8_t p[TN_PKT_MAX], payload[65535];
    struct tn_ip s4 = ip("10.0.0.1"), s6 = ip("fd00::1");

    (void)state;
    assert_int_equal(tn_pkt_build_udp(p, 20 + 8 + 3, &s4, 1, &s4, 2, payload, 4), 0);
    assert_int_equal(tn_pkt_build_udp(p, 20 + 8 + 4, &s4, 1, &s4, 2, payload, 4), 32);
    assert_int_equal(tn_pkt_build_udp(p, sizeof(p), &s4, 1, &s6, 2, payload, 4), 0);
    assert_int_equal(tn_pkt_build_udp(p, sizeof(p), &s6, 1, &s6, 2, payload, 65535 - 8),
                     40 + 65535);
    assert_int_equal(tn_pkt_build_udp(p, sizeof(p), &s6, 1, &s6, 2, payload, 65535 - 7), 0);
    /* IPv4's total length counts its header: 65507 bytes of UDP payload at most. */
    assert_int_equal(tn_pkt_build_udp(p, sizeof(p), &s4, 1, &s4, 2, payload, 65507), 65535);
    assert_int_equal(p[2] << 8 | p[3], 65535); /* the IPv4 total length */
    assert_int_equal(tn_pkt_build_udp(p, sizeof(p), &s4, 1, &s4, 2, payload, 65508), 0);
    payload[0] = 0; /* an echo reply */
    assert_int_equal(tn_pkt_build_icmp(p, sizeof(p), &s4, &s4, payload, 65515, 1), 65535);
    assert_int_equal(tn_pkt_build_icmp(p, sizeof(p), &s4, &s4, payload, 65516, 1), 0);
    assert_int_equal(tn_pkt_build_icmp(p, sizeof(p), &s6, &s6, payload, 65535, 1), 40 + 65535);
    assert_string_equal(tn_pkt_reason(TN_PKT_FRAGMENT), "fragment");
    assert_string_equal(tn_pkt_reason(99), "unknown");
}

/* Only echo requests leave a proxy's raw ICMP socket: not a redirect, not an unreachable. */
static void
test_icmp_echo_request_only(void **state)
{
    uint8_t m[8] = { 8, 0, 0, 0, 0, 1, 0, 1 };

    (void)state;
    assert_true(tn_icmp_is_echo_request(AF_INET, m, sizeof(m)));
    assert_false(tn_icmp_is_echo_request(AF_INET, m, 7)); /* no whole echo header */
    assert_false(tn_icmp_is_echo_request(AF_INET6, m, sizeof(m)));
    m[1] = 1;
    assert_false(tn_icmp_is_echo_request(AF_INET, m, sizeof(m)));
    m[0] = 5; /* redirect */
    m[1] = 0;
    assert_false(tn_icmp_is_echo_request(AF_INET, m, sizeof(m)));
    m[0] = 3; /* destination unreachable */
    assert_false(tn_icmp_is_echo_request(AF_INET, m, sizeof(m)));
    m[0] = 128;
    assert_true(tn_icmp_is_echo_request(AF_INET6, m, sizeof(m)));
    m[0] = 2; /* packet too big */
    assert_false(tn_icmp_is_echo_request(AF_INET6, m, sizeof(m)));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_udp4_roundtrip),
        cmocka_unit_test(test_fragment4),
        cmocka_unit_test(test_udp6_and_icmp6_roundtrip),
        cmocka_unit_test(test_icmp4_echo),
        cmocka_unit_test(test_every_truncation_is_refused),
        cmocka_unit_test(test_bad_headers_and_lengths),
        cmocka_unit_test(test_fragments_are_refused),
        cmocka_unit_test(test_build_limits),
        cmocka_unit_test(test_icmp_echo_request_only),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
