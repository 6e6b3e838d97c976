/* SPDX-License-Identifier: MIT */
/* Unit tests for libtn/busypoll.c: when a process polls after a message, and for how long. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include "tn/busypoll.h"

#define US    1e-6
#define TIMER 0.05 /* the loop's only timer: an ev_run that sleeps returns after it */

static void
assert_near(double got, double want)
{
    assert_true(got > want - 1e-9 && got < want + 1e-9);
}

/* The poll a message starts lasts its window, then ends. */
static void
test_poll_lasts_the_window(void **state)
{
    struct tn_busypoll bp = { 0 };

    (void)state;
    tn_busypoll_set(&bp, 200 * US);
    assert_false(tn_busypoll_turn(&bp, 1.0)); /* no message yet */
    assert_true(tn_busypoll_kick(&bp, 1.0));
    assert_true(tn_busypoll_turn(&bp, 1.0));
    assert_true(tn_busypoll_turn(&bp, 1.0 + 90 * US));
    assert_false(tn_busypoll_turn(&bp, 1.0 + 210 * US));
    assert_false(tn_busypoll_turn(&bp, 1.0 + 220 * US)); /* stays ended */
}

/* 0 is off: no message starts a poll. */
static void
test_off(void **state)
{
    struct tn_busypoll bp = { 0 };

    (void)state;
    tn_busypoll_set(&bp, 0);
    assert_false(tn_busypoll_kick(&bp, 1.0));
    assert_false(tn_busypoll_turn(&bp, 1.0));
    tn_busypoll_set(&bp, 200 * US); /* turned on by a reload */
    assert_true(tn_busypoll_kick(&bp, 2.0));
    tn_busypoll_set(&bp, 0); /* and off again, in the middle of a poll */
    assert_false(tn_busypoll_turn(&bp, 2.0));
    assert_false(tn_busypoll_kick(&bp, 2.0));
}

/* Messages further apart than the longest window narrow it, halving down to a 16th; messages
 * close together widen it back, doubling up to the longest. */
static void
test_window_follows_the_gaps(void **state)
{
    struct tn_busypoll bp = { 0 };
    double t = 10.0;
    int i;

    (void)state;
    tn_busypoll_set(&bp, 160 * US);
    assert_true(tn_busypoll_kick(&bp, t)); /* the first: the gap since the start is long */
    assert_near(bp.window, 80 * US);
    for (i = 0; i < 10; i++)
        assert_true(tn_busypoll_kick(&bp, t += 1e-3)); /* a paced stream, 1 ms apart */
    assert_near(bp.window, 10 * US);
    assert_false(tn_busypoll_turn(&bp, t + 11 * US));
    assert_true(tn_busypoll_kick(&bp, t += 50 * US)); /* a conversation starts */
    assert_near(bp.window, 20 * US);
    assert_true(tn_busypoll_kick(&bp, t += 50 * US));
    assert_true(tn_busypoll_kick(&bp, t += 50 * US));
    assert_true(tn_busypoll_kick(&bp, t += 50 * US));
    assert_near(bp.window, 160 * US);
    assert_true(tn_busypoll_kick(&bp, t += 160 * US)); /* exactly the longest still counts */
    assert_near(bp.window, 160 * US);
    assert_true(tn_busypoll_turn(&bp, t + 150 * US));
}

/* A yield that let another task run ends the poll, and no message starts one for a while; a
 * short yield changes nothing. */
static void
test_contended_cpu_pauses(void **state)
{
    struct tn_busypoll bp = { 0 };

    (void)state;
    tn_busypoll_set(&bp, 200 * US);
    assert_true(tn_busypoll_kick(&bp, 1.0));
    tn_busypoll_yielded(&bp, 1.0 + 10 * US, 5 * US);
    assert_true(tn_busypoll_turn(&bp, 1.0 + 20 * US));
    tn_busypoll_yielded(&bp, 1.0 + 20 * US, 300 * US);
    assert_false(tn_busypoll_turn(&bp, 1.0 + 21 * US));
    assert_false(tn_busypoll_kick(&bp, 1.0 + 400 * US));
    assert_false(tn_busypoll_kick(&bp, 1.004));
    assert_true(tn_busypoll_kick(&bp, 1.006)); /* 5 ms after the yield ended */
    assert_true(tn_busypoll_turn(&bp, 1.006));
}

static void
on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
}

/* How long one ev_run(EVRUN_ONCE) takes, with a TIMER timer pending. */
static double
one_turn(struct ev_loop *loop, ev_timer *t)
{
    double start = ev_time();

    ev_timer_stop(loop, t);
    ev_timer_set(t, TIMER, 0);
    ev_timer_start(loop, t);
    ev_run(loop, EVRUN_ONCE);
    return ev_time() - start;
}

/* The loop: a message keeps it from sleeping until the window has passed; off, it sleeps at
 * once. */
static void
test_loop_polls_then_sleeps(void **state)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    ev_timer t;

    (void)state;
    assert_non_null(loop);
    ev_timer_init(&t, on_timer, TIMER, 0);
    tn_busypoll_configure(loop, 10000); /* 10 ms */
    ev_now_update(loop);
    tn_busypoll_note(loop);
    assert_true(one_turn(loop, &t) < TIMER / 2); /* polled: did not wait for the timer */
    usleep(20000);                               /* the window passes */
    ev_now_update(loop);
    one_turn(loop, &t); /* the turn that sees it has passed */
    assert_true(one_turn(loop, &t) >= TIMER * 0.9);
    tn_busypoll_configure(loop, 0);
    ev_now_update(loop);
    tn_busypoll_note(loop);
    assert_true(one_turn(loop, &t) >= TIMER * 0.9);
    ev_timer_stop(loop, &t);
    ev_loop_destroy(loop);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_poll_lasts_the_window),   cmocka_unit_test(test_off),
        cmocka_unit_test(test_window_follows_the_gaps), cmocka_unit_test(test_contended_cpu_pauses),
        cmocka_unit_test(test_loop_polls_then_sleeps),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
