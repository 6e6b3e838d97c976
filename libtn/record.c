/* SPDX-License-Identifier: MIT */
/* The TLS 1.3 record layer after OpenSSL's handshake: see tn/record.h. */
#include "tn/record.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "tn/buf.h"
#include "tn/err.h"
#include "tn/util.h"

#define TAG_LEN   16
#define NONCE_LEN 12

enum content_type {
    CT_ALERT = 21,
    CT_HANDSHAKE = 22,
    CT_APPLICATION_DATA = 23
};

enum handshake_type {
    HS_NEW_SESSION_TICKET = 4,
    HS_KEY_UPDATE = 24
};

/* Alert descriptions (section 6). */
enum alert {
    ALERT_CLOSE_NOTIFY = 0,
    ALERT_UNEXPECTED_MESSAGE = 10,
    ALERT_BAD_RECORD_MAC = 20,
    ALERT_RECORD_OVERFLOW = 22,
    ALERT_HANDSHAKE_FAILURE = 40,
    ALERT_BAD_CERTIFICATE = 42,
    ALERT_UNSUPPORTED_CERTIFICATE = 43,
    ALERT_CERTIFICATE_REVOKED = 44,
    ALERT_CERTIFICATE_EXPIRED = 45,
    ALERT_CERTIFICATE_UNKNOWN = 46,
    ALERT_ILLEGAL_PARAMETER = 47,
    ALERT_UNKNOWN_CA = 48,
    ALERT_ACCESS_DENIED = 49,
    ALERT_DECODE_ERROR = 50,
    ALERT_INTERNAL_ERROR = 80,
    ALERT_CERTIFICATE_REQUIRED = 116
};

static int watch_index = -1;

/* HKDF-Expand-Label(secret, label, "", len) (RFC 8446 section 7.1). */
static int
expand_label(const EVP_MD *md, const uint8_t *secret, size_t secret_len, const char *label,
             uint8_t *out, size_t len)
{
    static const char prefix[] = "tls13 ";
    uint8_t info[2 + 1 + sizeof(prefix) - 1 + 16 + 1];
    size_t label_len = strlen(label), n = 0;
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    OSSL_PARAM params[5];
    EVP_KDF_CTX *kctx = NULL;
    EVP_KDF *kdf;
    int r = -1;

    if (label_len > 16)
        return -1;
    info[n++] = (uint8_t)(len >> 8);
    info[n++] = (uint8_t)len;
    info[n++] = (uint8_t)(sizeof(prefix) - 1 + label_len);
    memcpy(info + n, prefix, sizeof(prefix) - 1);
    n += sizeof(prefix) - 1;
    memcpy(info + n, label, label_len);
    n += label_len;
    info[n++] = 0; /* an empty context */
    if ((kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_HKDF, NULL)) == NULL ||
        (kctx = EVP_KDF_CTX_new(kdf)) == NULL)
        goto out;
    params[0] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
                                                 TN_UNCONST(EVP_MD_get0_name(md)), 0);
    params[2] =
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, TN_UNCONST(secret), secret_len);
    params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n);
    params[4] = OSSL_PARAM_construct_end();
    r = EVP_KDF_derive(kctx, out, len, params) == 1 ? 0 : -1;
out:
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    return r;
}

/* Makes |secret| the traffic secret of |k|: its key and IV, from sequence number 0. */
static int
key_set(const struct tn_record *r, struct tn_record_key *k, const uint8_t *secret, int enc)
{
    uint8_t key[32];
    int key_len = EVP_CIPHER_get_key_length(r->cipher), rv = -1;

    memmove(k->secret, secret, r->secret_len);
    if (key_len <= 0 || (size_t)key_len > sizeof(key) ||
        expand_label(r->md, k->secret, r->secret_len, "key", key, (size_t)key_len) != 0 ||
        expand_label(r->md, k->secret, r->secret_len, "iv", k->iv, sizeof(k->iv)) != 0)
        goto out;
    if (k->aead == NULL && (k->aead = EVP_CIPHER_CTX_new()) == NULL)
        goto out;
    if (EVP_CipherInit_ex(k->aead, r->cipher, NULL, key, NULL, enc) != 1)
        goto out;
    k->seq = 0;
    rv = 0;
out:
    OPENSSL_cleanse(key, sizeof(key));
    return rv;
}

/* The next generation of |k|'s secret, after a KeyUpdate (section 7.2). */
static int
key_update(const struct tn_record *r, struct tn_record_key *k, int enc)
{
    uint8_t next[TN_RECORD_SECRET_MAX];
    int rv = -1;

    if (expand_label(r->md, k->secret, r->secret_len, "traffic upd", next, r->secret_len) == 0)
        rv = key_set(r, k, next, enc);
    OPENSSL_cleanse(next, sizeof(next));
    return rv;
}

/* The per-record nonce: the IV with the sequence number XORed into its end (section 5.3). */
static void
key_nonce(const struct tn_record_key *k, uint8_t nonce[NONCE_LEN])
{
    int i;

    memcpy(nonce, k->iv, NONCE_LEN);
    for (i = 0; i < 8; i++)
        nonce[NONCE_LEN - 1 - i] ^= (uint8_t)(k->seq >> (8 * i));
}

/* Seals |len| bytes gathered from |iov|, and the inner content |type|, as one record at |out|,
 * which has room for it. */
static int
seal_one(struct tn_record_key *k, uint8_t type, const struct iovec *iov, size_t len, uint8_t *out)
{
    size_t sealed_len = len + 1 + TAG_LEN, piece;
    uint8_t nonce[NONCE_LEN], *p = out + TN_RECORD_HEADER;
    int n;

    out[0] = CT_APPLICATION_DATA;
    out[1] = 3; /* legacy_record_version 0x0303 */
    out[2] = 3;
    out[3] = (uint8_t)(sealed_len >> 8);
    out[4] = (uint8_t)sealed_len;
    key_nonce(k, nonce);
    if (EVP_CipherInit_ex(k->aead, NULL, NULL, NULL, nonce, -1) != 1 ||
        EVP_CipherUpdate(k->aead, NULL, &n, out, TN_RECORD_HEADER) != 1)
        return -1;
    for (; len > 0; iov++) {
        piece = iov->iov_len < len ? iov->iov_len : len;
        if (EVP_CipherUpdate(k->aead, p, &n, iov->iov_base, (int)piece) != 1 || (size_t)n != piece)
            return -1;
        p += piece;
        len -= piece;
    }
    if (EVP_CipherUpdate(k->aead, p, &n, &type, 1) != 1 || n != 1 ||
        EVP_CipherFinal_ex(k->aead, p + 1, &n) != 1 ||
        EVP_CIPHER_CTX_ctrl(k->aead, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, p + 1) != 1)
        return -1;
    k->seq++;
    return 0;
}

/* Opens the record at |rec| (header included), whose protected part is |sealed_len| long, into
 * |out|, setting |*n| to the length of its inner plaintext (content type and padding
 * included). */
static int
open_one(struct tn_record_key *k, const uint8_t *rec, size_t sealed_len, uint8_t *out, size_t *n)
{
    size_t len = sealed_len - TAG_LEN;
    uint8_t nonce[NONCE_LEN];
    int k_out;

    key_nonce(k, nonce);
    if (EVP_CipherInit_ex(k->aead, NULL, NULL, NULL, nonce, -1) != 1 ||
        EVP_CipherUpdate(k->aead, NULL, &k_out, rec, TN_RECORD_HEADER) != 1 ||
        EVP_CipherUpdate(k->aead, out, &k_out, rec + TN_RECORD_HEADER, (int)len) != 1 ||
        (size_t)k_out != len ||
        EVP_CIPHER_CTX_ctrl(k->aead, EVP_CTRL_AEAD_SET_TAG, TAG_LEN,
                            TN_UNCONST(rec + TN_RECORD_HEADER + len)) != 1 ||
        EVP_CipherFinal_ex(k->aead, out + len, &k_out) != 1)
        return -1;
    k->seq++;
    *n = len;
    return 0;
}

static int seal_key_update(struct tn_record *r, struct tn_buf *out);

/* Seals one record into |out|, after our KeyUpdate when the current key has sealed enough. */
static int
seal_record(struct tn_record *r, uint8_t type, const struct iovec *iov, size_t len,
            struct tn_buf *out)
{
    size_t size = TN_RECORD_HEADER + len + 1 + TAG_LEN, avail;
    uint8_t *dst;
    int rv;

    if (r->is_failed)
        return TN_ERR_TLS;
    if ((r->is_update_owed || r->wr.seq >= r->update_after) && type != CT_HANDSHAKE &&
        (rv = seal_key_update(r, out)) != 0)
        return rv;
    if ((dst = tn_buf_reserve(out, size, &avail)) == NULL)
        return -ENOMEM;
    if (seal_one(&r->wr, type, iov, len, dst) != 0)
        return TN_ERR_TLS;
    tn_buf_commit(out, size);
    return 0;
}

/* Our KeyUpdate (not asking for the peer's), then our next key: scheduled, or in answer to the
 * peer's request (RFC 8446 4.6.3). */
static int
seal_key_update(struct tn_record *r, struct tn_buf *out)
{
    static const uint8_t msg[] = { HS_KEY_UPDATE, 0, 0, 1, 0 /* update_not_requested */ };
    const struct iovec iov = { TN_UNCONST(msg), sizeof(msg) };
    int rv = seal_record(r, CT_HANDSHAKE, &iov, sizeof(msg), out);

    if (rv == 0 && key_update(r, &r->wr, 1) != 0)
        rv = TN_ERR_TLS;
    if (rv == 0)
        r->is_update_owed = false;
    return rv;
}

int
tn_record_seal(struct tn_record *r, struct tn_buf *in, size_t n, struct tn_buf *out)
{
    struct iovec iov[8];
    size_t len;
    int i, count, rv;

    if (r->is_failed)
        return TN_ERR_TLS;
    while (n > 0 && (count = tn_buf_iov(in, iov, (int)TN_ARRAY_LEN(iov))) > 0) {
        for (len = 0, i = 0; i < count && len < n && len < TN_RECORD_PLAIN_MAX; i++)
            len += iov[i].iov_len;
        if (len > n)
            len = n;
        if (len > TN_RECORD_PLAIN_MAX)
            len = TN_RECORD_PLAIN_MAX;
        if ((rv = seal_record(r, CT_APPLICATION_DATA, iov, len, out)) != 0)
            return rv;
        tn_buf_consume(in, len);
        n -= len;
    }
    return 0;
}

int
tn_record_seal_alert(struct tn_record *r, struct tn_buf *out)
{
    /* The level is 1 (warning) for close_notify, 2 (fatal) for the rest. */
    uint8_t alert[2] = { r->alert_owed != 0 ? 2 : 1, r->alert_owed };
    const struct iovec iov = { alert, sizeof(alert) };
    int rv = seal_record(r, CT_ALERT, &iov, sizeof(alert), out);

    if (r->alert_owed != 0)
        r->is_failed = true;
    return rv;
}

bool
tn_record_refused_certificate(const struct tn_record *r)
{
    switch (r->peer_alert) {
    case ALERT_HANDSHAKE_FAILURE: /* what OpenSSL sends when a verify callback says no */
    case ALERT_BAD_CERTIFICATE:
    case ALERT_UNSUPPORTED_CERTIFICATE:
    case ALERT_CERTIFICATE_REVOKED:
    case ALERT_CERTIFICATE_EXPIRED:
    case ALERT_CERTIFICATE_UNKNOWN:
    case ALERT_UNKNOWN_CA:
    case ALERT_ACCESS_DENIED:
    case ALERT_CERTIFICATE_REQUIRED:
        return true;
    default:
        return false;
    }
}

void
tn_record_require_certificate(struct tn_record *r)
{
    r->alert_owed = ALERT_CERTIFICATE_REQUIRED;
}

/* The peer broke the protocol: |alert| is owed to it, |what| says why. */
static enum tn_record_status
protocol_error(struct tn_record *r, uint8_t alert, const char *what, const char **why)
{
    r->alert_owed = alert;
    *why = what;
    return TN_RECORD_ERROR;
}

/* The handshake messages of one record: only those a peer may send after the handshake. */
static enum tn_record_status
open_handshake(struct tn_record *r, const uint8_t *p, size_t n, const char **why)
{
    size_t len;

    while (n > 0) {
        if (n < 4 || (len = (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3]) > n - 4)
            return protocol_error(r, ALERT_UNEXPECTED_MESSAGE,
                                  "a handshake message split across records", why);
        switch (p[0]) {
        case HS_NEW_SESSION_TICKET: /* sessions are never resumed */
            break;
        case HS_KEY_UPDATE:
            if (len != 1)
                return protocol_error(r, ALERT_DECODE_ERROR, "a malformed KeyUpdate", why);
            if (p[4] > 1)
                return protocol_error(r, ALERT_ILLEGAL_PARAMETER, "a malformed KeyUpdate", why);
            if (n != 5) /* a key change ends its record (section 5.1) */
                return protocol_error(r, ALERT_UNEXPECTED_MESSAGE,
                                      "a KeyUpdate before the end of its record", why);
            if (++r->updates_in_row > TN_RECORD_UPDATES_MAX)
                return protocol_error(r, ALERT_UNEXPECTED_MESSAGE,
                                      "a flood of KeyUpdates without data", why);
            if (key_update(r, &r->rd, 0) != 0)
                return protocol_error(r, ALERT_INTERNAL_ERROR, "cannot update the keys", why);
            r->is_update_owed |= p[4] == 1;
            return TN_RECORD_OK;
        default:
            return protocol_error(r, ALERT_UNEXPECTED_MESSAGE, "an unexpected handshake message",
                                  why);
        }
        p += 4 + len;
        n -= 4 + len;
    }
    return TN_RECORD_OK;
}

enum tn_record_status
tn_record_open(struct tn_record *r, const uint8_t *in, size_t len, size_t *used, uint8_t *plain,
               size_t *plain_len, const char **why)
{
    enum tn_record_status st = TN_RECORD_OK;
    size_t off = 0, sealed_len, n;
    uint8_t *dst, type;

    while (st == TN_RECORD_OK && len - off >= TN_RECORD_HEADER) {
        const uint8_t *rec = in + off;

        sealed_len = (size_t)rec[3] << 8 | rec[4];
        if (rec[0] != CT_APPLICATION_DATA) {
            st = protocol_error(r, ALERT_UNEXPECTED_MESSAGE,
                                "an unprotected record after the handshake", why);
            break;
        }
        if (sealed_len > TN_RECORD_MAX - TN_RECORD_HEADER) {
            st = protocol_error(r, ALERT_RECORD_OVERFLOW, "a record of impossible length", why);
            break;
        }
        if (sealed_len < 1 + TAG_LEN) {
            st = protocol_error(r, ALERT_DECODE_ERROR, "a record of impossible length", why);
            break;
        }
        if (len - off < TN_RECORD_HEADER + sealed_len)
            break; /* the rest comes with the next read */
        dst = plain + *plain_len;
        if (open_one(&r->rd, rec, sealed_len, dst, &n) != 0) {
            st = protocol_error(r, ALERT_BAD_RECORD_MAC,
                                "a record that does not decrypt (bad record MAC)", why);
            break;
        }
        off += TN_RECORD_HEADER + sealed_len;
        if (n > TN_RECORD_PLAIN_MAX + 1) { /* content, type and padding (section 5.4) */
            st = protocol_error(r, ALERT_RECORD_OVERFLOW, "a record over 16 KiB", why);
            break;
        }
        while (n > 0 && dst[n - 1] == 0) /* padding */
            n--;
        if (n == 0) {
            st = protocol_error(r, ALERT_UNEXPECTED_MESSAGE, "a record without content type", why);
            break;
        }
        type = dst[--n];
        if (type == CT_APPLICATION_DATA) {
            *plain_len += n;
            if (n > 0) /* an empty record is no data: it must not reset the count */
                r->updates_in_row = 0;
        } else if (type == CT_HANDSHAKE && n > 0) {
            st = open_handshake(r, dst, n, why);
        } else if (type == CT_ALERT && n == 2) {
            r->peer_alert = dst[1];
            /* (OpenSSL 3.0 has no name for certificate_required, TLS 1.3's own) */
            *why = dst[1] == ALERT_CERTIFICATE_REQUIRED ? "certificate required"
                                                        : SSL_alert_desc_string_long(dst[1]);
            if (dst[1] == ALERT_CLOSE_NOTIFY) {
                st = TN_RECORD_CLOSED;
            } else {
                st = TN_RECORD_ALERT;
                r->is_failed = true;
            }
        } else {
            st = protocol_error(r, ALERT_UNEXPECTED_MESSAGE, "a record of unexpected content", why);
        }
    }
    *used = off;
    return st;
}

void
tn_record_keylog(const SSL *ssl, const char *line)
{
    static const char client[] = "CLIENT_TRAFFIC_SECRET_0 ", server[] = "SERVER_TRAFFIC_SECRET_0 ";
    struct tn_record *r;
    const char *hex;
    uint8_t *secret;
    size_t *secret_len;

    if (watch_index < 0 || (r = SSL_get_ex_data(ssl, watch_index)) == NULL)
        return;
    if (strncmp(line, client, sizeof(client) - 1) == 0) {
        secret = r->client_secret;
        secret_len = &r->client_secret_len;
    } else if (strncmp(line, server, sizeof(server) - 1) == 0) {
        secret = r->server_secret;
        secret_len = &r->server_secret_len;
    } else {
        return;
    }
    /* "LABEL client_random secret", in hexadecimal. */
    if ((hex = strchr(line + sizeof(client) - 1, ' ')) == NULL ||
        OPENSSL_hexstr2buf_ex(secret, TN_RECORD_SECRET_MAX, secret_len, hex + 1, '\0') != 1)
        *secret_len = 0;
}

int
tn_record_watch(struct tn_record *r, SSL *ssl)
{
    memset(r, 0, sizeof(*r));
    r->update_after = TN_RECORD_UPDATE_AFTER;
    if (watch_index < 0 && (watch_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL)) < 0)
        return -ENOMEM;
    return SSL_set_ex_data(ssl, watch_index, r) == 1 ? 0 : -ENOMEM;
}

int
tn_record_start(struct tn_record *r, SSL *ssl)
{
    const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);
    const uint8_t *ours = SSL_is_server(ssl) ? r->server_secret : r->client_secret;
    const uint8_t *theirs = SSL_is_server(ssl) ? r->client_secret : r->server_secret;
    int rv = -1;

    SSL_set_ex_data(ssl, watch_index, NULL);
    /* OpenSSL must neither hold records we would never see nor write any more under the keys
     * we now use: the same nonce twice would break the cipher. */
    SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    if (SSL_version(ssl) != TLS1_3_VERSION || cipher == NULL || SSL_has_pending(ssl))
        goto out;
    switch (SSL_CIPHER_get_protocol_id(cipher)) {
    case 0x1301:
        r->cipher = EVP_aes_128_gcm();
        r->md = EVP_sha256();
        break;
    case 0x1302:
        r->cipher = EVP_aes_256_gcm();
        r->md = EVP_sha384();
        break;
    case 0x1303:
        r->cipher = EVP_chacha20_poly1305();
        r->md = EVP_sha256();
        break;
    default:
        goto out;
    }
    r->secret_len = (size_t)EVP_MD_get_size(r->md);
    if (r->client_secret_len != r->secret_len || r->server_secret_len != r->secret_len ||
        key_set(r, &r->wr, ours, 1) != 0 || key_set(r, &r->rd, theirs, 0) != 0)
        goto out;
    rv = 0;
out:
    OPENSSL_cleanse(r->client_secret, sizeof(r->client_secret));
    OPENSSL_cleanse(r->server_secret, sizeof(r->server_secret));
    return rv;
}

void
tn_record_fini(struct tn_record *r)
{
    EVP_CIPHER_CTX_free(r->rd.aead);
    EVP_CIPHER_CTX_free(r->wr.aead);
    OPENSSL_cleanse(r, sizeof(*r));
}
