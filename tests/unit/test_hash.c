/* SPDX-License-Identifier: MIT */
/* Unit tests for libtn/hash.c: rendezvous ranking is stable, even, and moves little. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tn/hash.h"

#define NFLOWS 20000

static size_t
pick(uint64_t flow, const uint64_t *members, size_t n)
{
    size_t i, best = 0;

    for (i = 1; i < n; i++) {
        if (tn_hash_hrw(flow, members[i]) > tn_hash_hrw(flow, members[best]))
            best = i;
    }
    return best;
}

static uint64_t
flow_id(uint32_t i)
{
    uint8_t tuple[13] = { 6, 10, 0, 0, 1, (uint8_t)(i >> 8), (uint8_t)i, 100, 64, 2, 2, 0, 80 };

    tuple[1] = (uint8_t)(i >> 16);
    return tn_hash_bytes(tuple, sizeof(tuple));
}

static void
test_hrw_is_stable_and_even(void **state)
{
    const uint64_t members[3] = { tn_hash_bytes("lan-a", 5), tn_hash_bytes("lan-b", 5),
                                  tn_hash_bytes("lan-c", 5) };
    size_t count[3] = { 0 }, i;

    (void)state;
    for (i = 0; i < NFLOWS; i++) {
        size_t p = pick(flow_id((uint32_t)i), members, 3);
        assert_int_equal(p, pick(flow_id((uint32_t)i), members, 3));
        count[p]++;
    }
    for (i = 0; i < 3; i++) /* each within 10% of a third */
        assert_true(count[i] > NFLOWS / 3 * 9 / 10 && count[i] < NFLOWS / 3 * 11 / 10);
}

static void
test_hrw_moves_only_to_a_new_member(void **state)
{
    uint64_t members[4] = { tn_hash_bytes("a", 1), tn_hash_bytes("b", 1), tn_hash_bytes("c", 1),
                            tn_hash_bytes("d", 1) };
    size_t i, moved = 0, before, after;

    (void)state;
    for (i = 0; i < NFLOWS; i++) {
        before = pick(flow_id((uint32_t)i), members, 3);
        after = pick(flow_id((uint32_t)i), members, 4);
        if (after != before) {
            assert_int_equal(after, 3); /* a flow only ever moves to the newcomer */
            moved++;
        }
    }
    /* About a quarter moves: what the newcomer now owns. */
    assert_true(moved > NFLOWS / 4 * 9 / 10 && moved < NFLOWS / 4 * 11 / 10);
}

static void
test_hrw_leaving_member_moves_only_its_flows(void **state)
{
    uint64_t members[3] = { 11, 22, 33 }, rest[2] = { 11, 33 };
    size_t i, before, after;

    (void)state;
    for (i = 0; i < NFLOWS; i++) {
        before = pick(flow_id((uint32_t)i), members, 3);
        after = pick(flow_id((uint32_t)i), rest, 2);
        if (before != 1) /* flows of the members that stay keep their member */
            assert_int_equal(rest[after], members[before]);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hrw_is_stable_and_even),
        cmocka_unit_test(test_hrw_moves_only_to_a_new_member),
        cmocka_unit_test(test_hrw_leaving_member_moves_only_its_flows),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
