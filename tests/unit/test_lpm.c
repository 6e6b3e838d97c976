/* SPDX-License-Identifier: MIT */
/* Unit tests for libtn/lpm.c, including a randomized comparison with a linear scan. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "parse_helpers.h"
#include "tn/lpm.h"

static void *
lookup(const struct tn_lpm *t, const char *addr)
{
    struct tn_ip a = ip(addr);

    return tn_lpm_lookup(t, &a);
}

static void
insert(struct tn_lpm *t, const char *net, void *value)
{
    struct tn_cidr c = cidr(net);

    assert_int_equal(tn_lpm_insert(t, &c, value), 0);
}

static void *
remove_net(struct tn_lpm *t, const char *net)
{
    struct tn_cidr c = cidr(net);

    return tn_lpm_remove(t, &c);
}

static void
test_lpm_longest_match_wins(void **state)
{
    struct tn_lpm *t = tn_lpm_new();
    int a, b, c, d;

    (void)state;
    assert_non_null(t);
    insert(t, "10.1.2.0/24", &c);
    insert(t, "10.0.0.0/8", &a);
    insert(t, "10.1.2.3", &d);
    insert(t, "10.1.0.0/16", &b);
    assert_ptr_equal(lookup(t, "10.200.0.1"), &a);
    assert_ptr_equal(lookup(t, "10.1.200.1"), &b);
    assert_ptr_equal(lookup(t, "10.1.2.200"), &c);
    assert_ptr_equal(lookup(t, "10.1.2.3"), &d);
    assert_null(lookup(t, "11.0.0.0"));
    assert_null(lookup(t, "9.255.255.255"));
    tn_lpm_free(t);
}

static void
test_lpm_default_route_catches_the_rest(void **state)
{
    struct tn_lpm *t = tn_lpm_new();
    int def, lan;

    (void)state;
    insert(t, "0.0.0.0/0", &def);
    insert(t, "192.168.0.0/16", &lan);
    assert_ptr_equal(lookup(t, "192.168.7.7"), &lan);
    assert_ptr_equal(lookup(t, "8.8.8.8"), &def);
    assert_ptr_equal(lookup(t, "255.255.255.255"), &def);
    assert_ptr_equal(lookup(t, "0.0.0.0"), &def);
    assert_ptr_equal(remove_net(t, "0.0.0.0/0"), &def);
    assert_null(lookup(t, "8.8.8.8"));
    assert_ptr_equal(lookup(t, "192.168.7.7"), &lan);
    tn_lpm_free(t);
}

static void
test_lpm_families_are_independent(void **state)
{
    struct tn_lpm *t = tn_lpm_new();
    int v4, v6, v6host;

    (void)state;
    insert(t, "0.0.0.0/0", &v4);
    assert_null(lookup(t, "::"));
    assert_null(lookup(t, "::ffff:10.0.0.1"));
    insert(t, "::/0", &v6);
    insert(t, "::a00:1", &v6host); /* the same low 32 bits as 10.0.0.1 */
    assert_ptr_equal(lookup(t, "10.0.0.1"), &v4);
    assert_ptr_equal(lookup(t, "::a00:1"), &v6host);
    assert_ptr_equal(lookup(t, "2001:db8::1"), &v6);
    assert_ptr_equal(remove_net(t, "::/0"), &v6);
    assert_ptr_equal(lookup(t, "10.0.0.1"), &v4);
    assert_null(lookup(t, "2001:db8::1"));
    tn_lpm_free(t);
}

static void
test_lpm_v6_longest_match_wins(void **state)
{
    struct tn_lpm *t = tn_lpm_new();
    int a, b, c;

    (void)state;
    insert(t, "fd00::/8", &a);
    insert(t, "fd00:1::/32", &b);
    insert(t, "fd00:1:0:1::/64", &c);
    assert_ptr_equal(lookup(t, "fdff::1"), &a);
    assert_ptr_equal(lookup(t, "fd00:1:ffff::1"), &b);
    assert_ptr_equal(lookup(t, "fd00:1:0:1:ffff::"), &c);
    assert_null(lookup(t, "fe00::"));
    tn_lpm_free(t);
}

static void
test_lpm_remove_falls_back_to_shorter(void **state)
{
    struct tn_lpm *t = tn_lpm_new();
    int a, b, c, d;

    (void)state;
    insert(t, "10.0.0.0/8", &a);
    insert(t, "10.1.0.0/16", &b);
    insert(t, "10.2.0.0/16", &c);
    insert(t, "10.1.1.0/24", &d);
    assert_ptr_equal(remove_net(t, "10.1.0.0/16"), &b);
    assert_ptr_equal(lookup(t, "10.1.2.3"), &a);
    assert_ptr_equal(lookup(t, "10.1.1.3"), &d);
    assert_ptr_equal(remove_net(t, "10.1.1.0/24"), &d);
    assert_ptr_equal(lookup(t, "10.1.1.3"), &a);
    assert_ptr_equal(lookup(t, "10.2.1.3"), &c);
    assert_null(remove_net(t, "10.1.1.0/24"));
    assert_null(remove_net(t, "10.3.0.0/16"));
    assert_null(remove_net(t, "10.0.0.0/9"));
    assert_ptr_equal(remove_net(t, "10.0.0.0/8"), &a);
    assert_ptr_equal(remove_net(t, "10.2.0.0/16"), &c);
    assert_null(lookup(t, "10.2.1.3"));
    /* The table is usable again once empty. */
    insert(t, "10.1.0.0/16", &b);
    assert_ptr_equal(lookup(t, "10.1.1.3"), &b);
    tn_lpm_free(t);
}

static void
test_lpm_remove_of_branch_point_keeps_both_sides(void **state)
{
    struct tn_lpm *t = tn_lpm_new();
    int a, b;

    (void)state;
    /* These two part ways after 8 bits, where the trie adds a node with no route of its own. */
    insert(t, "10.0.0.0/16", &a);
    insert(t, "10.128.0.0/16", &b);
    assert_null(remove_net(t, "10.0.0.0/8"));
    assert_int_equal(tn_lpm_insert(t, &(struct tn_cidr){ .ip = ip("10.0.0.0"), .prefix = 8 }, &a),
                     0);
    assert_ptr_equal(lookup(t, "10.64.0.0"), &a);
    assert_ptr_equal(remove_net(t, "10.0.0.0/8"), &a);
    assert_null(lookup(t, "10.64.0.0"));
    assert_ptr_equal(lookup(t, "10.128.1.1"), &b);
    assert_ptr_equal(lookup(t, "10.0.1.1"), &a);
    tn_lpm_free(t);
}

static void
test_lpm_rejects_duplicate(void **state)
{
    struct tn_lpm *t = tn_lpm_new();
    struct tn_cidr c = cidr("100.64.0.0/10");
    int a, b;

    (void)state;
    assert_int_equal(tn_lpm_insert(t, &c, &a), 0);
    assert_int_equal(tn_lpm_insert(t, &c, &b), -EEXIST);
    assert_ptr_equal(tn_lpm_get(t, &c), &a);
    insert(t, "::/0", &a);
    c = cidr("::/0");
    assert_int_equal(tn_lpm_insert(t, &c, &b), -EEXIST);
    tn_lpm_free(t);
}

static void
test_lpm_rejects_bad_input(void **state)
{
    struct tn_lpm *t = tn_lpm_new();
    struct tn_cidr c = cidr("10.0.0.0/8");
    struct tn_ip none;
    int a;

    (void)state;
    assert_int_equal(tn_lpm_insert(t, &c, NULL), -EINVAL);
    c.prefix = 33;
    assert_int_equal(tn_lpm_insert(t, &c, &a), -EINVAL);
    assert_null(tn_lpm_get(t, &c));
    assert_null(tn_lpm_remove(t, &c));
    memset(&c, 0, sizeof(c));
    assert_int_equal(tn_lpm_insert(t, &c, &a), -EINVAL);
    memset(&none, 0, sizeof(none));
    assert_null(tn_lpm_lookup(t, &none));
    assert_int_equal(tn_lpm_lookup_all(t, &none, NULL, 0), 0);
    tn_lpm_free(t);
    tn_lpm_free(NULL);
}

static void
test_lpm_get_is_exact(void **state)
{
    struct tn_lpm *t = tn_lpm_new();
    struct tn_cidr c;
    int a;

    (void)state;
    insert(t, "10.1.0.0/16", &a);
    c = cidr("10.1.0.0/16");
    assert_ptr_equal(tn_lpm_get(t, &c), &a);
    c = cidr("10.0.0.0/8");
    assert_null(tn_lpm_get(t, &c));
    c = cidr("10.1.0.0/24");
    assert_null(tn_lpm_get(t, &c));
    c = cidr("10.1.0.0");
    assert_null(tn_lpm_get(t, &c));
    tn_lpm_free(t);
}

static void
test_lpm_lookup_all_is_longest_first(void **state)
{
    struct tn_lpm *t = tn_lpm_new();
    struct tn_ip a = ip("10.1.2.3");
    void *out[8];
    int r0, r8, r16, r24, r32, other;

    (void)state;
    insert(t, "10.1.0.0/16", &r16);
    insert(t, "0.0.0.0/0", &r0);
    insert(t, "10.1.2.3/32", &r32);
    insert(t, "10.0.0.0/8", &r8);
    insert(t, "10.1.2.0/24", &r24);
    insert(t, "10.2.0.0/16", &other);
    assert_int_equal(tn_lpm_lookup_all(t, &a, out, 8), 5);
    assert_ptr_equal(out[0], &r32);
    assert_ptr_equal(out[1], &r24);
    assert_ptr_equal(out[2], &r16);
    assert_ptr_equal(out[3], &r8);
    assert_ptr_equal(out[4], &r0);
    /* A short buffer gets the longest ones and the full count. */
    memset(out, 0, sizeof(out));
    assert_int_equal(tn_lpm_lookup_all(t, &a, out, 2), 5);
    assert_ptr_equal(out[0], &r32);
    assert_ptr_equal(out[1], &r24);
    assert_null(out[2]);
    a = ip("11.0.0.1");
    assert_int_equal(tn_lpm_lookup_all(t, &a, out, 8), 1);
    assert_ptr_equal(out[0], &r0);
    tn_lpm_free(t);
}

/*
 * Randomized check against a linear scan.  Addresses are drawn mostly from a few byte values,
 * so that routes nest and share long prefixes, which is where a trie can go wrong.
 */

struct route {
    struct tn_cidr c;
    bool is_in;
};

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint32_t
rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)((rng >> 16) % n);
}

static void
random_addr(struct tn_ip *a)
{
    static const uint8_t pool[] = { 0x00, 0x0a, 0x80, 0xff };
    size_t i, len;

    memset(a, 0, sizeof(*a));
    a->family = rnd(10) < 7 ? AF_INET : AF_INET6;
    len = a->family == AF_INET ? 4 : 16;
    for (i = 0; i < len; i++)
        a->bytes[i] = rnd(10) < 8 ? pool[rnd(4)] : (uint8_t)rnd(256);
}

static void
mask(struct tn_ip *a, unsigned prefix)
{
    unsigned i;

    for (i = 0; i < 16; i++) {
        if (prefix <= 8 * i)
            a->bytes[i] = 0;
        else if (prefix < 8 * (i + 1))
            a->bytes[i] &= (uint8_t)(0xff << (8 * (i + 1) - prefix));
    }
}

static bool
same_cidr(const struct tn_cidr *a, const struct tn_cidr *b)
{
    return a->ip.family == b->ip.family && a->prefix == b->prefix &&
           memcmp(a->ip.bytes, b->ip.bytes, 16) == 0;
}

/* All routes containing |a|, longest first (at most one per length, as duplicates are refused). */
static size_t
scan(struct route *routes, size_t n, const struct tn_ip *a, void **out)
{
    struct route *by_len[129] = { NULL };
    size_t i, count = 0;
    int len;

    for (i = 0; i < n; i++) {
        if (routes[i].is_in && tn_cidr_contains(&routes[i].c, a)) {
            assert_null(by_len[routes[i].c.prefix]);
            by_len[routes[i].c.prefix] = &routes[i];
        }
    }
    for (len = 128; len >= 0; len--) {
        if (by_len[len] != NULL)
            out[count++] = by_len[len];
    }
    return count;
}

static void
check_lookups(const struct tn_lpm *t, struct route *routes, size_t n, size_t rounds)
{
    void *want[129], *got[129];
    struct tn_ip a;
    size_t i, k, nwant;

    for (i = 0; i < rounds; i++) {
        random_addr(&a);
        if (rnd(2) == 0) {
            /* An address inside a random route, with random host bits. */
            const struct route *r = &routes[rnd((uint32_t)n)];
            struct tn_ip host;

            random_addr(&host);
            a = r->c.ip;
            for (k = r->c.prefix; k < (a.family == AF_INET ? 32u : 128u); k++) {
                uint8_t bit = (uint8_t)(0x80 >> (k % 8));

                a.bytes[k / 8] = (uint8_t)((a.bytes[k / 8] & ~bit) | (host.bytes[k / 8] & bit));
            }
        }
        nwant = scan(routes, n, &a, want);
        assert_ptr_equal(tn_lpm_lookup(t, &a), nwant > 0 ? want[0] : NULL);
        assert_int_equal(tn_lpm_lookup_all(t, &a, got, 129), nwant);
        for (k = 0; k < nwant; k++)
            assert_ptr_equal(got[k], want[k]);
    }
}

static void
test_lpm_matches_linear_scan(void **state)
{
    enum {
        N = 4000,
        ROUNDS = 10000
    };
    struct route *routes = calloc(N, sizeof(*routes));
    struct tn_lpm *t = tn_lpm_new();
    size_t i, j, present = 0;
    int r;

    (void)state;
    assert_non_null(routes);
    assert_non_null(t);
    for (i = 0; i < N; i++) {
        struct tn_ip a;
        unsigned bits;
        bool is_dup = false;

        random_addr(&a);
        bits = a.family == AF_INET ? 32 : 128;
        routes[i].c.prefix = (uint8_t)(rnd(4) == 0 ? bits - rnd(4) : rnd(bits + 1));
        mask(&a, routes[i].c.prefix);
        routes[i].c.ip = a;
        for (j = 0; j < i && !is_dup; j++)
            is_dup = routes[j].is_in && same_cidr(&routes[j].c, &routes[i].c);
        r = tn_lpm_insert(t, &routes[i].c, &routes[i]);
        assert_int_equal(r, is_dup ? -EEXIST : 0);
        routes[i].is_in = !is_dup;
        present += !is_dup;
    }
    assert_true(present > N / 2);
    check_lookups(t, routes, N, ROUNDS);

    /* Remove about half, then check again; a second removal finds nothing. */
    for (i = 0; i < N; i++) {
        if (!routes[i].is_in || rnd(2) == 0)
            continue;
        assert_ptr_equal(tn_lpm_remove(t, &routes[i].c), &routes[i]);
        assert_null(tn_lpm_remove(t, &routes[i].c));
        routes[i].is_in = false;
    }
    for (i = 0; i < N; i++) {
        struct route *found = tn_lpm_get(t, &routes[i].c);

        if (routes[i].is_in)
            assert_ptr_equal(found, &routes[i]);
        else if (found != NULL) /* a refused duplicate: the route that holds its place */
            assert_true(found->is_in && same_cidr(&found->c, &routes[i].c));
    }
    check_lookups(t, routes, N, ROUNDS);

    /* Empty it completely. */
    for (i = 0; i < N; i++) {
        if (routes[i].is_in) {
            assert_ptr_equal(tn_lpm_remove(t, &routes[i].c), &routes[i]);
            routes[i].is_in = false;
        }
    }
    check_lookups(t, routes, N, 1000);
    tn_lpm_free(t);
    free(routes);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lpm_longest_match_wins),
        cmocka_unit_test(test_lpm_default_route_catches_the_rest),
        cmocka_unit_test(test_lpm_families_are_independent),
        cmocka_unit_test(test_lpm_v6_longest_match_wins),
        cmocka_unit_test(test_lpm_remove_falls_back_to_shorter),
        cmocka_unit_test(test_lpm_remove_of_branch_point_keeps_both_sides),
        cmocka_unit_test(test_lpm_rejects_duplicate),
        cmocka_unit_test(test_lpm_rejects_bad_input),
        cmocka_unit_test(test_lpm_get_is_exact),
        cmocka_unit_test(test_lpm_lookup_all_is_longest_first),
        cmocka_unit_test(test_lpm_matches_linear_scan),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
