/* SPDX-License-Identifier: MIT */
/* Unit tests for libtn/revoke.c: revoked serials are matched whatever way they were written,
 * in the form certs-tool show prints (whole bytes, upper case), and bad ones are refused; a CRL
 * file with an expired CRL loads only when a later, current CRL of the same CA replaces it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

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

/* A self-signed CA: its key in |*key|. */
static X509 *
make_ca(const char *cn, EVP_PKEY **key)
{
    X509 *ca = X509_new();
    X509_NAME *name = X509_NAME_new();

    assert_non_null(*key = EVP_EC_gen("P-256"));
    assert_non_null(ca);
    assert_int_equal(
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0),
        1);
    X509_set_version(ca, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(ca), 1);
    X509_set_subject_name(ca, name);
    X509_set_issuer_name(ca, name);
    X509_gmtime_adj(X509_getm_notBefore(ca), -86400 * 10);
    X509_gmtime_adj(X509_getm_notAfter(ca), 86400 * 10);
    X509_set_pubkey(ca, *key);
    assert_true(X509_sign(ca, *key, EVP_sha256()) > 0);
    X509_NAME_free(name);
    return ca;
}

/* A CRL of |ca| issued |last_days| ago (negative: in the past), due again in |next_days|. */
static X509_CRL *
make_crl(X509 *ca, EVP_PKEY *key, long last_days, long next_days)
{
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *last = X509_gmtime_adj(NULL, last_days * 86400);
    ASN1_TIME *next = X509_gmtime_adj(NULL, next_days * 86400);

    assert_non_null(crl);
    X509_CRL_set_version(crl, 1);
    X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca));
    X509_CRL_set1_lastUpdate(crl, last);
    X509_CRL_set1_nextUpdate(crl, next);
    assert_true(X509_CRL_sign(crl, key, EVP_sha256()) > 0);
    ASN1_TIME_free(last);
    ASN1_TIME_free(next);
    return crl;
}

/* Loads a file of |n| CRLs, in that order, into a context trusting |ca| and |ca2| (or NULL). */
static int
load(X509 *ca, X509 *ca2, X509_CRL **crls, size_t n)
{
    char path[] = "/tmp/test_revoke.XXXXXX";
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    int fd = mkstemp(path), r;
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    size_t i;

    assert_non_null(ctx);
    assert_non_null(f);
    for (i = 0; i < n; i++)
        assert_int_equal(PEM_write_X509_CRL(f, crls[i]), 1);
    fclose(f);
    assert_int_equal(X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), ca), 1);
    if (ca2 != NULL)
        assert_int_equal(X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), ca2), 1);
    r = tn_revoke_load_crl(ctx, path);
    unlink(path);
    SSL_CTX_free(ctx);
    return r;
}

static void
test_superseded_crl(void **state)
{
    EVP_PKEY *key, *key2;
    X509 *ca = make_ca("test CA", &key), *ca2 = make_ca("test CA", &key2); /* namesakes */
    X509_CRL *old = make_crl(ca, key, -20, -10); /* expired ten days ago */
    X509_CRL *cur = make_crl(ca, key, -1, 6);
    X509_CRL *early_cur = make_crl(ca, key, -30, 6); /* current, but older than |old| */
    X509_CRL *other_old = make_crl(ca2, key2, -20, -10);

    (void)state;
    assert_int_equal(load(ca, NULL, (X509_CRL *[]){ cur }, 1), 0);
    /* Expired and alone: every certificate of the CA would be refused. */
    assert_int_equal(load(ca, NULL, (X509_CRL *[]){ old }, 1), TN_ERR_CONFIG);
    /* An old CRL left in the file, before or after the CA's current one: skipped. */
    assert_int_equal(load(ca, NULL, (X509_CRL *[]){ old, cur }, 2), 0);
    assert_int_equal(load(ca, NULL, (X509_CRL *[]){ cur, old }, 2), 0);
    /* Only a later CRL replaces it... */
    assert_int_equal(load(ca, NULL, (X509_CRL *[]){ old, early_cur }, 2), TN_ERR_CONFIG);
    /* ...of the same CA: not one of a CA of the same name with another key. */
    assert_int_equal(load(ca, ca2, (X509_CRL *[]){ other_old, cur }, 2), TN_ERR_CONFIG);
    X509_CRL_free(old);
    X509_CRL_free(cur);
    X509_CRL_free(early_cur);
    X509_CRL_free(other_old);
    X509_free(ca);
    X509_free(ca2);
    EVP_PKEY_free(key);
    EVP_PKEY_free(key2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serial_forms),
        cmocka_unit_test(test_bad_serials),
        cmocka_unit_test(test_superseded_crl),
    };

    tn_log_open("test_revoke", TN_LOG_ERR, TN_LOG_TEXT, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
