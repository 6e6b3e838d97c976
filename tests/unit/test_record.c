/* SPDX-License-Identifier: MIT */
/* Unit tests for libtn/record.c: our TLS 1.3 records against OpenSSL's own, both ways, after a
 * real handshake in memory, for each cipher suite the tunnel offers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tn/buf.h"
#include "tn/record.h"

#define BULK (200 * 1000) /* several records, and more than one tn_buf chunk */

/* One session: |ours| speaks through |rec| once the handshake is over, |theirs| is OpenSSL. */
struct pair {
    SSL_CTX *ours_ctx, *theirs_ctx;
    SSL *ours, *theirs;
    struct tn_record rec;
    struct tn_buf to_theirs; /* records we sealed, not yet given to OpenSSL */
    uint8_t *raw, *plain;    /* OpenSSL's records, and what we opened of them */
    size_t raw_len, plain_len;
};

static const char *suite;
static bool ours_is_server;

static uint8_t
pattern(size_t i)
{
    return (uint8_t)(i * 7 + (i >> 8));
}

static SSL_CTX *
ctx_new(bool is_server, bool is_ours)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    EVP_PKEY *key;
    X509 *cert;
    X509_NAME *name;

    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION), 1);
    assert_int_equal(SSL_CTX_set_ciphersuites(ctx, suite), 1);
    if (is_ours) {
        SSL_CTX_set_keylog_callback(ctx, tn_record_keylog);
        SSL_CTX_set_num_tickets(ctx, 0); /* as tn_tls_ctx_new: nothing after the handshake */
    }
    if (!is_server)
        return ctx;
    assert_non_null(key = EVP_EC_gen("P-256"));
    assert_non_null(cert = X509_new());
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"test", -1, -1, 0);
    X509_set_issuer_name(cert, name);
    assert_true(X509_sign(cert, key, EVP_sha256()) > 0);
    assert_int_equal(SSL_CTX_use_certificate(ctx, cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(ctx, key), 1);
    X509_free(cert);
    EVP_PKEY_free(key);
    return ctx;
}

static SSL *
ssl_new(SSL_CTX *ctx, bool is_server)
{
    SSL *ssl = SSL_new(ctx);

    assert_non_null(ssl);
    SSL_set_bio(ssl, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
    if (is_server)
        SSL_set_accept_state(ssl);
    else
        SSL_set_connect_state(ssl);
    return ssl;
}

/* Moves what |from| wrote to |to|'s input. */
static void
shuttle(SSL *from, SSL *to)
{
    uint8_t buf[4096];
    int n;

    while ((n = BIO_read(SSL_get_wbio(from), buf, sizeof(buf))) > 0)
        assert_int_equal(BIO_write(SSL_get_rbio(to), buf, n), n);
}

/* Collects what OpenSSL wrote since, for tn_record_open. */
static void
collect(struct pair *p)
{
    int n;

    p->raw = realloc(p->raw, p->raw_len + BULK + 4096);
    assert_non_null(p->raw);
    while ((n = BIO_read(SSL_get_wbio(p->theirs), p->raw + p->raw_len, 4096)) > 0) {
        p->raw_len += (size_t)n;
        p->raw = realloc(p->raw, p->raw_len + 4096);
        assert_non_null(p->raw);
    }
}

/* Gives OpenSSL what we sealed. */
static void
deliver(struct pair *p)
{
    const uint8_t *span;
    size_t n;

    while ((span = tn_buf_peek(&p->to_theirs, &n)) != NULL) {
        assert_int_equal(BIO_write(SSL_get_rbio(p->theirs), span, (int)n), (int)n);
        tn_buf_consume(&p->to_theirs, n);
    }
}

/* Opens what OpenSSL wrote, fed in pieces of |step| bytes as reads would cut it.  Returns the
 * status that stopped it; |*why| names it. */
static enum tn_record_status
open_all(struct pair *p, size_t step, const char **why)
{
    enum tn_record_status st = TN_RECORD_OK;
    size_t off = 0, avail = 0, used;

    collect(p);
    p->plain = realloc(p->plain, p->plain_len + p->raw_len + 1);
    assert_non_null(p->plain);
    while (st == TN_RECORD_OK && avail < p->raw_len) {
        avail = avail + step < p->raw_len ? avail + step : p->raw_len;
        st =
            tn_record_open(&p->rec, p->raw + off, avail - off, &used, p->plain, &p->plain_len, why);
        off += used;
    }
    if (st == TN_RECORD_OK)
        assert_int_equal(off, p->raw_len); /* nothing cut in the middle is left behind */
    p->raw_len = 0;
    return st;
}

static int
pair_setup(void **state)
{
    struct pair *p = calloc(1, sizeof(*p));
    SSL *client, *server;
    int done_c = 0, done_s = 0, i;

    assert_non_null(p);
    p->ours_ctx = ctx_new(ours_is_server, true);
    p->theirs_ctx = ctx_new(!ours_is_server, false);
    p->ours = ssl_new(p->ours_ctx, ours_is_server);
    p->theirs = ssl_new(p->theirs_ctx, !ours_is_server);
    assert_int_equal(tn_record_watch(&p->rec, p->ours), 0);
    tn_buf_init(&p->to_theirs);
    client = ours_is_server ? p->theirs : p->ours;
    server = ours_is_server ? p->ours : p->theirs;
    /* The side that is ours must stop at its handshake's end: what comes after is ours. */
    for (i = 0; i < 20 && !(done_c == 1 && done_s == 1); i++) {
        if (done_c != 1)
            done_c = SSL_do_handshake(client);
        shuttle(client, server);
        if (done_s != 1)
            done_s = SSL_do_handshake(server);
        if (!(client == p->ours && done_c == 1)) /* OpenSSL's tickets are for our records */
            shuttle(server, client);
    }
    assert_int_equal(done_c, 1);
    assert_int_equal(done_s, 1);
    assert_int_equal(tn_record_start(&p->rec, p->ours), 0);
    *state = p;
    return 0;
}

static int
pair_teardown(void **state)
{
    struct pair *p = *state;

    tn_record_fini(&p->rec);
    tn_buf_fini(&p->to_theirs);
    SSL_free(p->ours);
    SSL_free(p->theirs);
    SSL_CTX_free(p->ours_ctx);
    SSL_CTX_free(p->theirs_ctx);
    free(p->raw);
    free(p->plain);
    free(p);
    return 0;
}

/* Seals |n| bytes of the pattern, starting at |from|, and checks that OpenSSL reads them. */
static void
ours_to_theirs(struct pair *p, size_t from, size_t n)
{
    uint8_t *data = malloc(n), *got = malloc(n);
    struct tn_buf in;
    size_t i, have = 0;
    int k;

    assert_non_null(data);
    assert_non_null(got);
    for (i = 0; i < n; i++)
        data[i] = pattern(from + i);
    tn_buf_init(&in);
    assert_int_equal(tn_buf_append(&in, data, n / 3), 0); /* several spans */
    assert_int_equal(tn_buf_append(&in, data + n / 3, n - n / 3), 0);
    assert_int_equal(tn_record_seal(&p->rec, &in, n, &p->to_theirs), 0);
    assert_int_equal(tn_buf_len(&in), 0);
    deliver(p);
    while (have < n && (k = SSL_read(p->theirs, got + have, (int)(n - have))) > 0)
        have += (size_t)k;
    assert_int_equal(have, n);
    assert_memory_equal(got, data, n);
    tn_buf_fini(&in);
    free(data);
    free(got);
}

/* Has OpenSSL write |n| bytes of the pattern and checks that we open them. */
static void
theirs_to_ours(struct pair *p, size_t from, size_t n, size_t step)
{
    uint8_t *data = malloc(n);
    const char *why = NULL;
    size_t i;

    assert_non_null(data);
    for (i = 0; i < n; i++)
        data[i] = pattern(from + i);
    assert_int_equal(SSL_write(p->theirs, data, (int)n), (int)n);
    p->plain_len = 0;
    assert_int_equal(open_all(p, step, &why), TN_RECORD_OK);
    assert_int_equal(p->plain_len, n);
    assert_memory_equal(p->plain, data, n);
    free(data);
}

static void
test_bulk_both_ways(void **state)
{
    struct pair *p = *state;

    ours_to_theirs(p, 0, BULK);
    theirs_to_ours(p, 0, BULK, BULK + 100); /* everything at once */
    theirs_to_ours(p, 1, BULK, 1000);       /* records cut by every read */
    theirs_to_ours(p, 2, 1, 1);
    ours_to_theirs(p, 3, 1);
}

/* OpenSSL updates its keys and asks for ours: we follow, answer before our next data, and
 * both go on. */
static void
test_key_update_requested_by_peer(void **state)
{
    struct pair *p = *state;

    assert_int_equal(SSL_key_update(p->theirs, SSL_KEY_UPDATE_REQUESTED), 1);
    theirs_to_ours(p, 10, 5000, 700);
    assert_true(p->rec.is_update_owed);
    assert_int_equal(tn_buf_len(&p->to_theirs), 0); /* nothing goes out before our data */
    ours_to_theirs(p, 20, 50000);                   /* under the new key: OpenSSL followed */
    assert_false(p->rec.is_update_owed);
    theirs_to_ours(p, 30, 5000, 5000);
}

/* A KeyUpdate record of ours: header, the 5-byte message, its content type, the tag. */
#define KEY_UPDATE_RECORD (TN_RECORD_HEADER + 5 + 1 + 16)

/* Requests that come while we are silent get one answer (RFC 8446 4.6.3), not one each. */
static void
test_key_update_requests_answered_once(void **state)
{
    struct pair *p = *state;
    struct tn_buf in;
    const char *why = NULL;
    char got[16];
    int i;

    for (i = 0; i < 5; i++) {
        assert_int_equal(SSL_key_update(p->theirs, SSL_KEY_UPDATE_REQUESTED), 1);
        assert_int_equal(SSL_do_handshake(p->theirs), 1);
    }
    assert_int_equal(open_all(p, 1000, &why), TN_RECORD_OK);
    tn_buf_init(&in);
    assert_int_equal(tn_buf_append(&in, "hello", 5), 0);
    assert_int_equal(tn_record_seal(&p->rec, &in, 5, &p->to_theirs), 0);
    assert_int_equal(tn_buf_len(&p->to_theirs), KEY_UPDATE_RECORD + TN_RECORD_HEADER + 5 + 1 + 16);
    tn_buf_fini(&in);
    deliver(p);
    assert_int_equal(SSL_read(p->theirs, got, sizeof(got)), 5);
    assert_memory_equal(got, "hello", 5);
    theirs_to_ours(p, 60, 100, 100); /* still in step both ways */
    ours_to_theirs(p, 70, 1000);
}

/* KeyUpdates without data in between are a flood: each costs a key derivation. */
static void
test_key_update_flood_refused(void **state)
{
    struct pair *p = *state;
    const char *why = NULL;
    int i;

    for (i = 0; i <= TN_RECORD_UPDATES_MAX; i++) {
        assert_int_equal(SSL_key_update(p->theirs, SSL_KEY_UPDATE_NOT_REQUESTED), 1);
        assert_int_equal(SSL_do_handshake(p->theirs), 1);
    }
    assert_int_equal(open_all(p, 1 << 20, &why), TN_RECORD_ERROR);
    assert_non_null(strstr(why, "a flood of KeyUpdates"));
    assert_int_equal(p->rec.alert_owed, 10); /* unexpected_message */
}

/* Our own key is replaced every update_after records, without a word from the peer. */
static void
test_our_key_update_on_schedule(void **state)
{
    struct pair *p = *state;

    p->rec.update_after = 2;
    ours_to_theirs(p, 40, 5 * TN_RECORD_PLAIN_MAX + 10);
    assert_true(p->rec.wr.seq <= 2);
    theirs_to_ours(p, 50, 100, 100);
}

static void
test_close_notify_both_ways(void **state)
{
    struct pair *p = *state;
    const char *why = NULL;
    uint8_t b;

    assert_int_equal(tn_record_seal_alert(&p->rec, &p->to_theirs), 0); /* close_notify */
    deliver(p);
    assert_int_equal(SSL_read(p->theirs, &b, 1), 0);
    assert_int_equal(SSL_get_error(p->theirs, 0), SSL_ERROR_ZERO_RETURN);
    SSL_shutdown(p->theirs);
    assert_int_equal(open_all(p, 1 << 20, &why), TN_RECORD_CLOSED);
}

static void
test_tampered_record_fails(void **state)
{
    struct pair *p = *state;
    const char *why = NULL;
    struct tn_buf in;
    uint8_t b = 0;

    assert_int_equal(SSL_write(p->theirs, "hello", 5), 5);
    collect(p);
    p->raw[p->raw_len - 20] ^= 1;
    assert_int_equal(open_all(p, 1 << 20, &why), TN_RECORD_ERROR);
    assert_non_null(strstr(why, "bad record MAC"));

    /* The alert we owe reaches OpenSSL, and nothing is sealed after it. */
    assert_int_equal(tn_record_seal_alert(&p->rec, &p->to_theirs), 0);
    deliver(p);
    assert_true(SSL_read(p->theirs, &b, 1) <= 0);
    assert_int_equal(ERR_GET_REASON(ERR_peek_error()),
                     SSL_AD_REASON_OFFSET + SSL_AD_BAD_RECORD_MAC);
    ERR_clear_error();
    tn_buf_init(&in);
    assert_int_equal(tn_buf_append(&in, &b, 1), 0);
    assert_int_not_equal(tn_record_seal(&p->rec, &in, 1, &p->to_theirs), 0);
    assert_int_equal(tn_buf_len(&p->to_theirs), 0);
    tn_buf_fini(&in);
}

/* Ours, changed on the way: OpenSSL refuses it with a fatal alert, which we report. */
static void
test_peer_alert_is_reported(void **state)
{
    struct pair *p = *state;
    const char *why = NULL;
    const uint8_t *span;
    uint8_t *rec, b = 1;
    struct tn_buf in;
    size_t n;

    tn_buf_init(&in);
    assert_int_equal(tn_buf_append(&in, &b, 1), 0);
    assert_int_equal(tn_record_seal(&p->rec, &in, 1, &p->to_theirs), 0);
    span = tn_buf_peek(&p->to_theirs, &n);
    rec = (uint8_t *)(uintptr_t)span;
    rec[n - 1] ^= 0x80;
    deliver(p);
    assert_true(SSL_read(p->theirs, &b, 1) <= 0);
    ERR_clear_error();
    assert_int_equal(open_all(p, 1 << 20, &why), TN_RECORD_ALERT);
    assert_string_equal(why, "bad record mac");
    assert_false(tn_record_refused_certificate(&p->rec));
    assert_int_equal(tn_buf_append(&in, &b, 1), 0);
    assert_int_not_equal(tn_record_seal(&p->rec, &in, 1, &p->to_theirs), 0); /* closed */
    tn_buf_fini(&in);
}

static void
test_malformed_headers_fail(void **state)
{
    struct pair *p = *state;

    static const struct {
        uint8_t rec[8];
        const char *why;
    } bad[] = {
        { { 22, 3, 3, 0, 3, 1, 2, 3 }, "unprotected" },
        { { 23, 3, 3, 0x48, 0x12, 0, 0, 0 }, "impossible length" },
        { { 23, 3, 3, 0, 3, 1, 2, 3 }, "impossible length" },
    };

    static const uint8_t header[] = { 23, 3, 3, 0, 40 };
    const char *why = NULL;
    uint8_t plain[8];
    size_t used, plain_len = 0, i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(
            tn_record_open(&p->rec, bad[i].rec, sizeof(bad[i].rec), &used, plain, &plain_len, &why),
            TN_RECORD_ERROR);
        assert_non_null(strstr(why, bad[i].why));
    }
    /* A header alone is not an error: the rest comes with the next read. */
    assert_int_equal(
        tn_record_open(&p->rec, header, sizeof(header), &used, plain, &plain_len, &why),
        TN_RECORD_OK);
    assert_int_equal(used, 0);
}

#define CASE(f) cmocka_unit_test_setup_teardown(f, pair_setup, pair_teardown)

int
main(void)
{
    static const char *const suites[] = { "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                                          "TLS_CHACHA20_POLY1305_SHA256" };
    const struct CMUnitTest tests[] = {
        CASE(test_bulk_both_ways),
        CASE(test_key_update_requested_by_peer),
        CASE(test_key_update_requests_answered_once),
        CASE(test_key_update_flood_refused),
        CASE(test_our_key_update_on_schedule),
        CASE(test_close_notify_both_ways),
        CASE(test_tampered_record_fails),
        CASE(test_peer_alert_is_reported),
        CASE(test_malformed_headers_fail),
    };
    int failed = 0;
    size_t i;

    for (i = 0; i < 2 * sizeof(suites) / sizeof(suites[0]); i++) {
        suite = suites[i / 2];
        ours_is_server = i % 2 == 1;
        failed +=
            _cmocka_run_group_tests(suite, tests, sizeof(tests) / sizeof(tests[0]), NULL, NULL);
    }
    return failed != 0;
}
