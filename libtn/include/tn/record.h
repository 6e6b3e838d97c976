/* SPDX-License-Identifier: MIT */
/* The TLS 1.3 record layer (RFC 8446 section 5) for the application traffic of a session
 * whose handshake OpenSSL did.
 *
 * SSL_read and SSL_write copy every byte between OpenSSL's buffers and ours.  Here a record is
 * opened from the bytes read off the socket straight into the plaintext that HTTP/2 parses,
 * and sealed from our buffers straight into the socket's output: one copy fewer each way, with
 * the AEAD pass doing the copying.
 *
 * The keys are the session's own: the application traffic secrets that OpenSSL hands to the
 * key log callback (nothing is logged anywhere), expanded as RFC 8446 section 7.3 says, so the
 * bytes on the wire are plain TLS 1.3 that any peer reads.  After the handshake the peer may
 * send KeyUpdate (answered when it asks), NewSessionTicket (ignored: sessions are never
 * resumed; one split across records is refused) and alerts.  A protocol error is answered
 * with its fatal alert, after which nothing more is sealed.  Our own keys are updated every
 * TN_RECORD_UPDATE_AFTER records, inside the AES-GCM limit of section 5.5. */
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
#define TN_RECORD_UPDATES_MAX  32 /* KeyUpdates of the peer in a row, without data */

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
    uint64_t update_after;   /* records under one key of ours; TN_RECORD_UPDATE_AFTER */
    unsigned updates_in_row; /* the peer's KeyUpdates since its last record of data */
    bool is_update_owed;     /* the peer asked for our KeyUpdate: before our next data */
    uint8_t alert_owed;      /* the fatal alert we owe the peer for its error, or 0 */
    uint8_t peer_alert;      /* the description of the peer's alert (TN_RECORD_ALERT) */
    bool is_failed;          /* a fatal alert went either way: nothing more is sealed */
};

/* What tn_record_open found besides application data. */
enum tn_record_status {
    TN_RECORD_OK,
    TN_RECORD_CLOSED, /* close_notify: the peer sends no more */
    TN_RECORD_ALERT,  /* the peer's alert, named in |*why|, its code in peer_alert */
    TN_RECORD_ERROR   /* a record that breaks the protocol, named in |*why| */
};

/* The key log callback of every context made by tn_tls_ctx_new: keeps the application traffic
 * secrets of an SSL that tn_record_watch() registered. */
void tn_record_keylog(const SSL *ssl, const char *line);

/* Zeroes |r| and makes the key log callback fill it for |ssl|.  Returns 0 or -ENOMEM. */
int tn_record_watch(struct tn_record *r, SSL *ssl);

/* Takes over |ssl|'s connection right after its handshake, which must have read nothing past
 * its last message (no read-ahead) nor written anything after it; OpenSSL will write no more
 * on it.  Returns 0, or -1 when the session is not TLS 1.3 with a cipher suite we know, the
 * secrets are missing or OpenSSL holds unread records. */
int tn_record_start(struct tn_record *r, SSL *ssl);

/* Seals the first |n| bytes of |in| (consumed) into application data records appended to
 * |out|, after a KeyUpdate of ours when one is due.  Returns 0, -ENOMEM (nothing lost: what
 * was not sealed is still in |in|) or TN_ERR_TLS (the cipher failed, or a fatal alert went
 * either way). */
int tn_record_seal(struct tn_record *r, struct tn_buf *in, size_t n, struct tn_buf *out);

/* Appends the alert that ends our side: the fatal alert owed for the peer's protocol error
 * (alert_owed), else close_notify.  Returns 0, -ENOMEM or TN_ERR_TLS. */
int tn_record_seal_alert(struct tn_record *r, struct tn_buf *out);

/* Opens the whole records at the head of |in| (|len| bytes) into |plain|, which has room for
 * |*plain_len| + |len| bytes: their application data is appended there, |*plain_len| growing
 * by its length, and |*used| is set to the bytes of |in| that were whole records.  A KeyUpdate
 * that asks for ours is answered before our next record of data (requests while we are silent
 * get one answer, RFC 8446 4.6.3); more than TN_RECORD_UPDATES_MAX KeyUpdates between two
 * records of data are a flood, refused as an error.  Returns TN_RECORD_OK, or the status that
 * stopped it (then |*why| says what, and what came before it is in |plain|). */
enum tn_record_status tn_record_open(struct tn_record *r, const uint8_t *in, size_t len,
                                     size_t *used, uint8_t *plain, size_t *plain_len,
                                     const char **why);

/* Whether the peer's alert (TN_RECORD_ALERT) says it refused our certificate. */
bool tn_record_refused_certificate(const struct tn_record *r);
/* The peer presented no certificate where one is needed: the alert tn_record_seal_alert sends
 * is certificate_required, which tells it not to try again as it is. */
void tn_record_require_certificate(struct tn_record *r);

/* Frees the keys, wiping every secret.  |r| may be finished again. */
void tn_record_fini(struct tn_record *r);

#endif
