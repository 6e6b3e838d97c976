/* SPDX-License-Identifier: MIT */
/* Unit tests for libtn/link.c: the reconnect backoff. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tn/link.h"

static const struct tn_link_conf conf = { .initial_ms = 1000, .max_ms = 30000 };

/* The largest of |n| draws: the ceiling shows through. */
static double
max_of(int64_t failures, double outage, int n)
{
    double m = 0, d;
    int i;

    for (i = 0; i < n; i++) {
        d = tn_link_backoff(&conf, failures, outage);
        assert_true(d >= 0);
        if (d > m)
            m = d;
    }
    return m;
}

static void
test_backoff_doubles_to_the_ceiling(void **state)
{
    (void)state;
    /* A long outage: the ceiling doubles per failure, 1 2 4 8 16 then 30. */
    assert_true(max_of(1, 1000, 2000) <= 1.0 && max_of(1, 1000, 2000) > 0.9);
    assert_true(max_of(3, 1000, 2000) <= 4.0 && max_of(3, 1000, 2000) > 3.6);
    assert_true(max_of(5, 1000, 2000) <= 16.0 && max_of(5, 1000, 2000) > 14.4);
    assert_true(max_of(9, 1000, 2000) <= 30.0 && max_of(9, 1000, 2000) > 27.0);
}

static void
test_backoff_never_outwaits_the_outage(void **state)
{
    (void)state;
    /* Ten quick refusals in 3 s: the next attempt is still within 3 s. */
    assert_true(max_of(10, 3.0, 2000) <= 3.0);
    /* But never under the initial ceiling. */
    assert_true(max_of(10, 0.1, 2000) <= 1.0 && max_of(10, 0.1, 2000) > 0.9);
}

static void
test_backoff_is_jittered(void **state)
{
    double a = tn_link_backoff(&conf, 6, 1000), b = tn_link_backoff(&conf, 6, 1000);
    double c = tn_link_backoff(&conf, 6, 1000);

    (void)state;
    assert_false(a == b && b == c); /* full jitter: three equal draws would be a broken RNG */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_doubles_to_the_ceiling),
        cmocka_unit_test(test_backoff_never_outwaits_the_outage),
        cmocka_unit_test(test_backoff_is_jittered),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
