/* SPDX-License-Identifier: MIT */
/* The TLS 1.3 record layer (RFC 8446 section 5) for the application traffic of a session
 * whose handshake OpenSSL did.
 *
 * SSL_read and SSL_write copy every byte between OpenSSL's buffers and ours.  Here a record is
 * opened from the bytes read off the socket straight into the plaintext that HTTP/2 parses,
 * and sealed from the streams' buffers straight into the socket's output: the AEAD pass is the
 * only pass over the bytes in user space.
 *
 * The keys are the session's own: the application traffic secrets that OpenSSL hands to the
 * key log callback (nothing is logged anywhere), expanded as RFC 8446 section 7.3 says, so the
 * bytes on the wire are plain TLS 1.3 that any peer reads.  After the handshake the peer may
 * send KeyUpdate (answered when it asks), NewSessionTicket (ignored: sessions are never
 * resumed) and alerts.  Our own keys are updated every TN_RECORD_UPDATE_AFTER records, inside
 * the AES-GCM limit of section 5.5. */
#ifndef TN_RECORD_H
#define TN_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

struct tn_buf;

#define TN_RECORD_HEADER       5
#define TN_RECORD_PLAIN_MAX    (16 * 1024)                                    /* 2^14 (5.1) */
#define TN_RECORD_MAX          (TN_RECORD_HEADER + TN_RECORD_PLAIN_MAX + 256) /* 5.2 */
#define TN_RECORD_SECRET_MAX   48                                             /* SHA-384 */
#define TN_RECORD_UPDATE_AFTER (1ull << 24)

/* One direction's key. */
struct tn_record_key {
    EVP_CIPHER_CTX *aead;
    uint8_t iv[12];
    uint64_t seq;
    uint8_t secret[TN_RECORD_SECRET_MAX]; /* the next KeyUpdate derives from it */
};

struct tn_record {
    struct tn_record_key rd, wr;
    const EVP_CIPHER *cipher;
    const EVP_MD *md;
    size_t secret_len;
    /* From the key log callback until tn_record_start. */
    uint8_t client_secret[TN_RECORD_SECRET_MAX], server_secret[TN_RECORD_SECRET_MAX];
    size_t client_secret_len, server_secret_len;
    uint64_t update_after; /* records under one key of ours; TN_RECORD_UPDATE_AFTER */
    bool is_started;
};

/* What tn_record_open found besides application data. */
enum tn_record_status {
    TN_RECORD_OK,
    TN_RECORD_CLOSED, /* close_notify: the peer sends no more */
    TN_RECORD_ALERT,  /* the peer's fatal alert, named in |*why| */
    TN_RECORD_ERROR   /* a record that breaks the protocol, named in |*why| */
};

/* The key log callback of every context made by tn_tls_ctx_new: keeps the application traffic
 * secrets of an SSL that tn_record_watch() registered. */
void tn_record_keylog(const SSL *ssl, const char *line);

/* Zeroes |r| and makes the key log callback fill it for |ssl|.  Returns 0 or -ENOMEM. */
int tn_record_watch(struct tn_record *r, SSL *ssl);

/* Takes over |ssl|'s connection right after its handshake, which must have read nothing past
 * its last message (no read-ahead) nor written anything after it.  Returns 0, or -1 when the
 * session is not TLS 1.3 with a cipher suite we know or the secrets are missing. */
int tn_record_start(struct tn_record *r, SSL *ssl);

/* Seals the first |n| bytes of |in| (consumed) into application data records appended to
 * |out|, after a KeyUpdate of ours when one is due.  Returns 0 or -ENOMEM (nothing lost: what
 * was not sealed is still in |in|). */
int tn_record_seal(struct tn_record *r, struct tn_buf *in, size_t n, struct tn_buf *out);

/* Appends a close_notify alert to |out|.  Returns 0 or -ENOMEM. */
int tn_record_seal_close(struct tn_record *r, struct tn_buf *out);

/* Opens the whole records at the head of |in| (|len| bytes) into |plain|, which has room for
 * |len| bytes: their application data is appended there, |*plain_len| growing by its length,
 * and |*used| is set to the bytes of |in| that were whole records.  A KeyUpdate that asks for
 * ours is answered into |reply|.  Returns TN_RECORD_OK, or the status that stopped it (then
 * |*why| says what, and what came before it is in |plain|). */
enum tn_record_status tn_record_open(struct tn_record *r, const uint8_t *in, size_t len,
                                     size_t *used, uint8_t *plain, size_t *plain_len,
                                     struct tn_buf *reply, const char **why);

/* Frees the keys, wiping every secret. */
void tn_record_fini(struct tn_record *r);

#endif
