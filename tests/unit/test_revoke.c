/* SPDX-License-Identifier: MIT */
/* Unit tests for libtn/revoke.c: revoked serials are matched whatever way they were written,
 * in the form certs-tool show prints (whole bytes, upper case), and bad ones are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/ssl.h>

#include "tn/err.h"
#include "tn/log.h"
#include "tn/revoke.h"

/* A peer identity with only a serial: the serial list is what these tests check. */
static const struct tn_identity *
peer(const char *serial)
{
    static struct tn_identity id;

    memset(&id, 0, sizeof(id));
    snprintf(id.serial, sizeof(id.serial), "%s", serial);
    return &id;
}

static void
test_serial_forms(void **state)
{
    char *serials[] = { "0x0a0d:ff", "00123", "abc", "0" };
    char *notes[] = { "colons", NULL, "odd", NULL };
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    char why[256];

    (void)state;
    assert_non_null(ctx);
    assert_int_equal(tn_revoke_set_serials(ctx, serials, notes, 4), 0);
    assert_true(tn_revoke_check(ctx, peer("0A0DFF"), why, sizeof(why)));
    assert_string_equal(why, "serial 0A0DFF is in the revoked list (colons)");
    assert_true(tn_revoke_check(ctx, peer("0123"), why, sizeof(why)));
    assert_string_equal(why, "serial 0123 is in the revoked list");
    assert_true(tn_revoke_check(ctx, peer("0ABC"), why, sizeof(why)));
    assert_true(tn_revoke_check(ctx, peer("0"), why, sizeof(why)));
    assert_false(tn_revoke_check(ctx, peer("ABC"), why, sizeof(why))); /* not the printed form */
    assert_false(tn_revoke_check(ctx, peer("0A0D"), why, sizeof(why)));
    assert_false(tn_revoke_check(ctx, peer(""), why, sizeof(why)));
    /* A second list replaces the first. */
    assert_int_equal(tn_revoke_set_serials(ctx, serials + 1, notes + 1, 1), 0);
    assert_false(tn_revoke_check(ctx, peer("0A0DFF"), why, sizeof(why)));
    assert_true(tn_revoke_check(ctx, peer("0123"), why, sizeof(why)));
    SSL_CTX_free(ctx);
}

static void
test_bad_serials(void **state)
{
    char *bad[] = { "xyz", "", "0x", "12 34", "123456789012345678901234567890123456789012" };
    char *note[] = { NULL };
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    size_t i;

    (void)state;
    assert_non_null(ctx);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(tn_revoke_set_serials(ctx, &bad[i], note, 1), TN_ERR_CONFIG);
    SSL_CTX_free(ctx);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serial_forms),
        cmocka_unit_test(test_bad_serials),
    };

    tn_log_open("test_revoke", TN_LOG_ERR, TN_LOG_TEXT, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
