/* SPDX-License-Identifier: MIT */
/* Mutual TLS 1.3 contexts and the peer identity carried in a certificate's URI SAN
 * "tunnel://ROLE/ID" (made by certs-tool). */
#ifndef TN_TLS_H
#define TN_TLS_H

#include <stdbool.h>

#include <openssl/ssl.h>

enum tn_role {
    TN_ROLE_NONE,
    TN_ROLE_SERVER,
    TN_ROLE_CLIENT,
    TN_ROLE_PROXY
};

#define TN_ID_MAX 64
/* A serial as certs-tool show prints it: hexadecimal, upper case, no leading zeros. */
#define TN_SERIAL_MAX 40 /* 20 octets (RFC 5280) */

struct tn_identity {
    enum tn_role role;
    char id[TN_ID_MAX + 1];
    char serial[TN_SERIAL_MAX +
                1]; /* the certificate's serial (tn_revoke_serial; peer identities only) */
    /* Its issuer, for finding the CRL that applies (peer identities only): the name's hash
     * (X509_issuer_name_hash) and the key id the certificate names (0 bytes: none). */
    unsigned long issuer_hash;
    unsigned char issuer_kid[64];
    size_t issuer_kid_len;
    unsigned char issuer_fp[32]; /* SHA-256 of the CA certificate that verified it, or zeros */
};

struct tn_tls_conf {
    char *cert_file, *key_file, *ca_file; /* owned by the program's config */
    char *crl_file;                       /* NULL: no CRL (tls.crl_file) */
    char *server_name;        /* client, proxy: the relay's name (tls.server_name); NULL: derived */
    bool may_go_without_cert; /* a client side that authenticates otherwise (a proxy's token) */
};

/* Loads our certificate and key and the deployment CA into a TLS 1.3 context for a program
 * of role |self|: the relay (TN_ROLE_SERVER) makes a server context, the others a client one.
 * Our certificate must carry a tunnel identity of role |self| and be valid now (TN_ROLE_NONE
 * checks neither: test tools).  A client requires the relay's certificate from that CA and
 * offers only ALPN "h2"; the relay asks for a certificate (one that is given must verify, and
 * not be revoked by the CRL file when one is given) and accepts "h2" or "http/1.1" (health
 * probes).  Refused peer certificates are logged with the reason.  Returns 0 and sets |*out|,
 * TN_ERR_CONFIG (a file is missing, unreadable, encrypted, of another role, out of its dates
 * or does not fit the others: logged, naming the file) or TN_ERR_TLS (OpenSSL failed). */
int tn_tls_ctx_new(SSL_CTX **out, const struct tn_tls_conf *conf, enum tn_role self);

/* The identity in the certificate of |ctx| (made by tn_tls_ctx_new).  Returns 0 or
 * TN_ERR_AUTH (a context without a certificate: a proxy with a token). */
int tn_tls_ctx_identity(SSL_CTX *ctx, struct tn_identity *out);

/* Client side: the peer's certificate must carry |name| (a DNS name, or an IP address) in its
 * subjectAltNames; a DNS name is also sent as SNI.  NULL or "*" checks no name.  |is_derived|
 * says that |name| is only the host we dialed (no tls.server_name was configured): then a
 * certificate of the server role that names no host (tn_tls_cert_names_host) is trusted by its
 * CA and role alone.
 * Returns 0 or TN_ERR_TLS (out of memory). */
int tn_tls_expect_name(SSL *ssl, const char *name, bool is_derived);

/* Whether the name |ssl| expects of its peer is only the host it dialed. */
bool tn_tls_name_is_derived(SSL *ssl);

/* Whether |cert| names a host (a DNS name or an address) besides localhost, 127.0.0.0/8 and
 * ::1, the names certs-tool gives every relay certificate: a relay certificate issued without
 * --server-dns or --server-ip is bound to no host. */
bool tn_tls_cert_names_host(X509 *cert);

/* Reads the identity from |cert|'s URI SAN.  Returns 0 or TN_ERR_AUTH when there is none. */
int tn_tls_cert_identity(X509 *cert, struct tn_identity *out);

/* The identity of the verified peer of |ssl|.  Returns 0 or TN_ERR_AUTH. */
int tn_tls_peer_identity(SSL *ssl, struct tn_identity *out);

const char *tn_role_name(enum tn_role role);

/* Logs and clears OpenSSL's error queue, prefixed with |what|. */
void tn_tls_log_errors(const char *what);

/* ALPN lists in wire format (each name after its length), in the server's order. */
#define TN_TLS_ALPN_RELAY  "\x02h2\x08http/1.1" /* the tunnel, and health probes */
#define TN_TLS_ALPN_HTTP11 "\x08http/1.1"

/* An ALPN select callback for a server: the first protocol of |arg| (a TN_TLS_ALPN_* list)
 * that the client offers; none is a fatal alert. */
int tn_tls_select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg);

#endif
