/* SPDX-License-Identifier: MIT */
/* Unit tests for libtn/lookup.c: addresses answered at once, names answered later on the loop,
 * a cancelled lookup that never calls back nor writes, a callback that starts another lookup,
 * and a loop that the lookups do not keep running. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tn/err.h"
#include "tn/lookup.h"

#define MAX 4

struct answer {
    struct sockaddr_storage out[MAX];
    socklen_t lens[MAX];
    int n;     /* what the callback got */
    int calls; /* how many times it came */
    struct tn_lookup *lk;
};

static struct ev_loop *loop;
static int outstanding; /* callbacks still expected: the loop runs until none */

static void
on_answer(void *arg, int n)
{
    struct answer *a = arg;

    a->n = n;
    a->calls++;
    if (--outstanding == 0)
        ev_break(loop, EVBREAK_ALL);
}

static void
on_guard(struct ev_loop *l, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(l, EVBREAK_ALL);
}

/* Runs the loop until the expected callbacks came, or 10 s. */
static void
run_until_answered(void)
{
    ev_timer guard;

    ev_timer_init(&guard, on_guard, 10., 0.);
    ev_timer_start(loop, &guard);
    ev_run(loop, 0);
    ev_timer_stop(loop, &guard);
    assert_int_equal(outstanding, 0);
}

static void
assert_loopback(const struct answer *a, int n, unsigned port)
{
    const struct sockaddr_in *in = (const void *)&a->out[0];
    const struct sockaddr_in6 *in6 = (const void *)&a->out[0];

    assert_true(n >= 1);
    if (a->out[0].ss_family == AF_INET) {
        assert_int_equal(ntohl(in->sin_addr.s_addr), INADDR_LOOPBACK);
        assert_int_equal(ntohs(in->sin_port), port);
    } else {
        assert_int_equal(a->out[0].ss_family, AF_INET6);
        assert_true(IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr));
        assert_int_equal(ntohs(in6->sin6_port), port);
    }
}

static void
test_address_at_once(void **state)
{
    struct answer a = { 0 };
    int n;

    (void)state;
    n = tn_lookup_start(loop, "127.0.0.1:80", false, a.out, a.lens, MAX, on_answer, &a, &a.lk);
    assert_int_equal(n, 1);
    assert_null(a.lk);
    assert_loopback(&a, n, 80);
    n = tn_lookup_start(loop, "[::1]:443", false, a.out, a.lens, MAX, on_answer, &a, &a.lk);
    assert_int_equal(n, 1);
    assert_loopback(&a, n, 443);
    n = tn_lookup_start(loop, ":8443", false, a.out, a.lens, MAX, on_answer, &a, &a.lk);
    assert_true(n >= 1);
    assert_loopback(&a, n, 8443);
    assert_int_equal(
        tn_lookup_start(loop, "no port", false, a.out, a.lens, MAX, on_answer, &a, &a.lk),
        TN_ERR_PARSE);
    assert_int_equal(a.calls, 0); /* never a callback for what was answered at once */
}

static void
test_name_later(void **state)
{
    struct answer a = { 0 };

    (void)state;
    assert_int_equal(
        tn_lookup_start(loop, "localhost:8080", false, a.out, a.lens, MAX, on_answer, &a, &a.lk),
        TN_LOOKUP_PENDING);
    assert_non_null(a.lk);
    assert_int_equal(a.calls, 0);
    outstanding = 1;
    run_until_answered();
    assert_int_equal(a.calls, 1);
    assert_loopback(&a, a.n, 8080);
}

static void
test_cancelled_is_silent(void **state)
{
    struct answer gone, kept = { 0 };
    struct sockaddr_storage untouched;
    int tries;

    (void)state;
    memset(&gone, 0xa5, sizeof(gone));
    gone.calls = 0;
    memset(&untouched, 0xa5, sizeof(untouched));
    assert_int_equal(tn_lookup_start(loop, "localhost:1", false, gone.out, gone.lens, MAX,
                                     on_answer, &gone, &gone.lk),
                     TN_LOOKUP_PENDING);
    tn_lookup_cancel(gone.lk);
    assert_int_equal(tn_lookup_start(loop, "localhost:2", false, kept.out, kept.lens, MAX,
                                     on_answer, &kept, &kept.lk),
                     TN_LOOKUP_PENDING);
    assert_int_equal(tn_lookup_in_flight(), 2); /* the cancelled one is glibc's until done */
    outstanding = 1;
    run_until_answered();
    for (tries = 0; tn_lookup_in_flight() > 0 && tries < 500; tries++) {
        usleep(10 * 1000);
        ev_run(loop, EVRUN_NOWAIT);
    }
    assert_int_equal(tn_lookup_in_flight(), 0); /* and then freed */
    assert_int_equal(kept.calls, 1);
    assert_int_equal(gone.calls, 0);
    assert_memory_equal(&gone.out[0], &untouched, sizeof(untouched));
}

static struct answer chained;

static void
on_answer_then_start(void *arg, int n)
{
    on_answer(arg, n); /* |outstanding| counted this one's answer too */
    assert_int_equal(tn_lookup_start(loop, "localhost:4", false, chained.out, chained.lens, MAX,
                                     on_answer, &chained, &chained.lk),
                     TN_LOOKUP_PENDING);
}

static void
test_callback_starts_another(void **state)
{
    struct answer first = { 0 };

    (void)state;
    assert_int_equal(tn_lookup_start(loop, "localhost:3", false, first.out, first.lens, MAX,
                                     on_answer_then_start, &first, &first.lk),
                     TN_LOOKUP_PENDING);
    outstanding = 2;
    run_until_answered();
    assert_int_equal(first.calls, 1);
    assert_int_equal(chained.calls, 1);
    assert_loopback(&chained, chained.n, 4);
}

static void
test_loop_not_kept(void **state)
{
    (void)state;
    /* Nothing pending and no watcher of ours: ev_run returns (a hang here fails by alarm). */
    alarm(10);
    ev_run(loop, 0);
    alarm(0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_address_at_once),     cmocka_unit_test(test_name_later),
        cmocka_unit_test(test_cancelled_is_silent), cmocka_unit_test(test_callback_starts_another),
        cmocka_unit_test(test_loop_not_kept),
    };

    loop = ev_default_loop(0);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
