/* SPDX-License-Identifier: MIT */
/* Unit tests for libtn/bucket.c: the token bucket behind the relay's bandwidth limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tn/bucket.h"

#define MB 1000000.0

static void
assert_near(double got, double want)
{
    if (got < want - 1e-6 || got > want + 1e-6)
        fail_msg("got %.9f, want %.9f", got, want);
}

/* A bucket starts full, refills at its rate and never holds more than its burst. */
static void
test_refill_and_burst(void **state)
{
    struct tn_bucket b;

    (void)state;
    tn_bucket_init(&b, 20 * MB, 1 * MB, 100.0);
    assert_near(tn_bucket_level(&b, 100.0), 1 * MB);
    assert_true(tn_bucket_take(&b, 1000000, 100.0));
    assert_near(tn_bucket_level(&b, 100.0), 0);
    assert_false(tn_bucket_take(&b, 1, 100.0));
    assert_near(tn_bucket_level(&b, 100.01), 200000); /* 10 ms at 20 MB/s */
    assert_near(tn_bucket_level(&b, 100.04), 800000);
    assert_near(tn_bucket_level(&b, 101.0), 1 * MB); /* capped */
    assert_near(tn_bucket_level(&b, 99.0), 1 * MB);  /* time going back adds nothing */
}

/* Over a long run what is taken is the rate times the time, plus the first burst. */
static void
test_long_run_rate(void **state)
{
    struct tn_bucket b;
    double t = 0, taken = 0;
    int i;

    (void)state;
    tn_bucket_init(&b, 10 * MB, 16384, 0);
    for (i = 0; i < 100000 && t < 5.0; i++) {
        t += tn_bucket_delay(&b, 16384, t);
        if (tn_bucket_take(&b, 16384, t))
            taken += 16384;
        else
            t += 1e-6; /* rounding: the bucket is a hair short, wait a little longer */
    }
    assert_true(t >= 5.0);
    assert_true(taken >= 50 * MB - 16384 && taken <= 50 * MB + 2 * 16384);
}

/* The delay is exactly what the missing tokens take at the rate; none when they are there. */
static void
test_delay(void **state)
{
    struct tn_bucket b;

    (void)state;
    tn_bucket_init(&b, 1 * MB, 100000, 0);
    assert_near(tn_bucket_delay(&b, 50000, 0), 0);
    assert_true(tn_bucket_take(&b, 100000, 0));
    assert_near(tn_bucket_delay(&b, 50000, 0), 0.05);
    assert_near(tn_bucket_delay(&b, 50000, 0.02), 0.03);
    /* More than the burst is waited for as the burst: it never accumulates further. */
    assert_near(tn_bucket_delay(&b, 500000, 0.02), 0.08);
}

/* A new rate applies from the moment it is set; what accumulated before is kept, up to the new
 * burst. */
static void
test_set_rate(void **state)
{
    struct tn_bucket b;

    (void)state;
    tn_bucket_init(&b, 1 * MB, 1 * MB, 0);
    assert_true(tn_bucket_take(&b, 1000000, 0));
    tn_bucket_set(&b, 2 * MB, 1 * MB, 0.1); /* 100000 at the old rate */
    assert_near(tn_bucket_level(&b, 0.1), 100000);
    assert_near(tn_bucket_level(&b, 0.2), 300000); /* then 200000 at the new */
    tn_bucket_set(&b, 2 * MB, 50000, 0.2);
    assert_near(tn_bucket_level(&b, 0.2), 50000);
    assert_near(tn_bucket_level(&b, 5.0), 50000);
}

/* Rate 0 is no limit: every take succeeds, nothing is waited for. */
static void
test_unlimited(void **state)
{
    struct tn_bucket b;

    (void)state;
    tn_bucket_init(&b, 0, 0, 0);
    assert_true(tn_bucket_take(&b, 1u << 30, 0));
    assert_near(tn_bucket_delay(&b, 1u << 30, 0), 0);
    tn_bucket_init(&b, 1 * MB, 1 * MB, 0);
    assert_true(tn_bucket_take(&b, 1000000, 0));
    tn_bucket_set(&b, 0, 0, 0); /* a limit lifted by a reload */
    assert_true(tn_bucket_take(&b, 1000000, 0));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refill_and_burst),
        cmocka_unit_test(test_long_run_rate),
        cmocka_unit_test(test_delay),
        cmocka_unit_test(test_set_rate),
        cmocka_unit_test(test_unlimited),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
