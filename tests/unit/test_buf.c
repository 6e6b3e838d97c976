/* SPDX-License-Identifier: MIT */
/* Unit tests for libtn/buf.c: the chunked byte queue. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

#include <cmocka.h>

#include "tn/buf.h"

static void
test_buf_moves_and_frees_when_drained(void **state)
{
    struct tn_buf a, b;
    uint8_t big[100000], out[100000];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)i;
    tn_buf_init(&a);
    tn_buf_init(&b);
    assert_int_equal(tn_buf_append(&a, big, 70000), 0);
    assert_int_equal(tn_buf_append(&b, big + 70000, 30000), 0);
    tn_buf_move(&a, &b);
    assert_int_equal(tn_buf_len(&a), sizeof(big));
    assert_int_equal(tn_buf_len(&b), 0);
    assert_null(b.head);
    assert_int_equal(tn_buf_copy(&a, out, sizeof(out)), sizeof(out));
    assert_memory_equal(out, big, sizeof(big));
    tn_buf_consume(&a, 12345);
    assert_int_equal(tn_buf_copy(&a, out, 10), 10);
    assert_memory_equal(out, big + 12345, 10);
    tn_buf_consume(&a, tn_buf_len(&a));
    assert_null(a.head); /* an idle buffer holds no memory */
    tn_buf_fini(&a);
}

static void
test_buf_reserve_commit_spans_chunks(void **state)
{
    struct tn_buf b;
    size_t avail, total = 0, n;
    const uint8_t *p;
    uint8_t *dst;
    int i;

    (void)state;
    tn_buf_init(&b);
    for (i = 0; i < 5; i++) {
        dst = tn_buf_reserve(&b, 40000, &avail);
        assert_non_null(dst);
        assert_true(avail >= 40000);
        memset(dst, i, 40000);
        tn_buf_commit(&b, 40000);
        total += 40000;
    }
    assert_int_equal(tn_buf_len(&b), total);
    for (i = 0; i < 5; i++) {
        p = tn_buf_peek(&b, &n);
        assert_non_null(p);
        assert_true(n >= 40000);
        assert_int_equal(p[0], i);
        assert_int_equal(p[39999], i);
        tn_buf_consume(&b, 40000);
    }
    assert_int_equal(tn_buf_len(&b), 0);
    assert_null(tn_buf_peek(&b, &n));
    tn_buf_fini(&b);
}

static void
test_buf_iov_lists_spans_in_order(void **state)
{
    struct tn_buf b;
    struct iovec iov[4];
    uint8_t data[150000];
    size_t i, total = 0;
    int n;

    (void)state;
    for (i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 13);
    tn_buf_init(&b);
    assert_int_equal(tn_buf_iov(&b, iov, 4), 0);
    assert_int_equal(tn_buf_append(&b, data, sizeof(data)), 0);
    tn_buf_consume(&b, 1000);
    n = tn_buf_iov(&b, iov, 4);
    assert_true(n >= 1);
    for (i = 0; i < (size_t)n; i++) {
        assert_memory_equal(iov[i].iov_base, data + 1000 + total, iov[i].iov_len);
        total += iov[i].iov_len;
    }
    assert_int_equal(total, sizeof(data) - 1000);
    assert_int_equal(tn_buf_iov(&b, iov, 1), 1); /* never more than asked for */
    tn_buf_fini(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_moves_and_frees_when_drained),
        cmocka_unit_test(test_buf_reserve_commit_spans_chunks),
        cmocka_unit_test(test_buf_iov_lists_spans_in_order),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
