/* SPDX-License-Identifier: MIT */
/* Mutual-TLS contexts and identities. */
#include "tn/tls.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tn/certutil.h"
#include "tn/err.h"
#include "tn/log.h"
#include "tn/names.h"
#include "tn/record.h"
#include "tn/revoke.h"
#include "tn/util.h"

#define URI_PREFIX "tunnel://"

static const unsigned char alpn_h2[] = { 2, 'h', '2' };

const char *
tn_role_name(enum tn_role role)
{
    switch (role) {
    case TN_ROLE_SERVER:
        return "server";
    case TN_ROLE_CLIENT:
        return "client";
    case TN_ROLE_PROXY:
        return "proxy";
    case TN_ROLE_NONE:
        break;
    }
    return "none";
}

void
tn_tls_log_errors(const char *what)
{
    char buf[256];
    unsigned long e;
    bool any = false;

    while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
        tn_log_warnx("%s: %s", what, buf);
        any = true;
    }
    if (!any)
        tn_log_warnx("%s", what);
}

/* Logs why |file| could not be used as |what|, in one line: the system's reason when it cannot
 * be read, else what OpenSSL found wrong in it, in words. */
static void
file_error(const char *what, const char *file, bool was_encrypted)
{
    unsigned long e = ERR_peek_error();
    const char *why = ERR_reason_error_string(e);
    struct stat st;

    if (stat(file, &st) != 0)
        tn_log(TN_LOG_ERR, "%s %s: %s", what, file, strerror(errno));
    else if (S_ISDIR(st.st_mode))
        tn_log(TN_LOG_ERR, "%s %s: is a directory", what, file);
    else if (access(file, R_OK) != 0)
        tn_log(TN_LOG_ERR, "%s %s: %s", what, file, strerror(errno));
    else if (was_encrypted)
        tn_log(TN_LOG_ERR,
               "%s %s: is encrypted, and the programs read keys without a passphrase "
               "(openssl pkey -in %s -out PLAIN.pem)",
               what, file, file);
    else if (ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH)
        tn_log(TN_LOG_ERR, "%s %s: does not belong to the certificate", what, file);
    else
        tn_log(TN_LOG_ERR, "%s %s: holds no PEM %s (%s)", what, file, what,
               why != NULL ? why : "unknown reason");
    ERR_clear_error();
}

/* Whether |name| (tls.server_name; NULL: unset) can be what the relay's certificate names: a
 * DNS name (any case), an address, or "*" (none checked). */
static bool
server_name_valid(const char *name)
{
    char lower[TN_HOST_NAME_MAX + 1];
    unsigned char a[16];
    size_t i;

    if (name == NULL || strcmp(name, "*") == 0 || inet_pton(AF_INET, name, a) == 1 ||
        inet_pton(AF_INET6, name, a) == 1)
        return true;
    for (i = 0; name[i] != '\0' && i < TN_HOST_NAME_MAX; i++)
        lower[i] = (char)tolower((unsigned char)name[i]);
    lower[i] = '\0';
    return name[i] == '\0' && tn_host_name_valid(lower);
}

/* Our own certificate, as |ctx| holds it: a peer refuses one without a tunnel identity of our
 * role, or out of its dates, so neither is worth a connection. */
static int
own_cert_check(SSL_CTX *ctx, const char *file, enum tn_role self)
{
    X509 *cert = SSL_CTX_get0_certificate(ctx);
    struct tn_identity id;
    char when[32];

    if (cert == NULL || tn_tls_cert_identity(cert, &id) != 0) {
        tn_log(TN_LOG_ERR,
               "certificate %s: no tunnel:// identity in it (certs-tool issue makes "
               "certificates that carry one)",
               file);
        return TN_ERR_CONFIG;
    }
    if (id.role != self) {
        tn_log(TN_LOG_ERR,
               self == TN_ROLE_SERVER
                   ? "%s is a %s certificate, and the relay needs a %s certificate "
                     "(certs-tool issue --role %s)"
                   : "%s is a %s certificate, and the relay takes only %s certificates here "
                     "(certs-tool issue --role %s)",
               file, tn_role_name(id.role), tn_role_name(self), tn_role_name(self));
        return TN_ERR_CONFIG;
    }
    if (X509_cmp_current_time(X509_get0_notBefore(cert)) >= 0) {
        tn_log(TN_LOG_ERR, "certificate %s is not valid before %s (is this machine's clock right?)",
               file, tn_asn1_time_str(X509_get0_notBefore(cert), when, sizeof(when)));
        return TN_ERR_CONFIG;
    }
    if (X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0) {
        tn_log(TN_LOG_ERR, "certificate %s expired on %s: issue a new one (certs-tool issue)", file,
               tn_asn1_time_str(X509_get0_notAfter(cert), when, sizeof(when)));
        return TN_ERR_CONFIG;
    }
    return 0;
}

/* A key any user may read is worth a word: certs-tool writes keys 0600, and the deployment
 * gives the unprivileged programs theirs 0640 with their group. */
static void
key_mode_check(const char *file)
{
    struct stat st;

    if (stat(file, &st) == 0 && (st.st_mode & 007) != 0)
        tn_log_warnx("key %s may be read by any user (mode %04o): chmod o-rwx it", file,
                     (unsigned)(st.st_mode & 07777));
}

int
tn_tls_select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    const unsigned char *ours = arg;
    unsigned char *sel;

    (void)ssl;
    if (SSL_select_next_proto(&sel, outlen, ours, (unsigned)strlen((const char *)ours), in,
                              inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

int
tn_tls_ctx_new(SSL_CTX **out, const struct tn_tls_conf *conf, enum tn_role self)
{
    bool is_server = self == TN_ROLE_SERVER, is_anonymous, was_encrypted = false;
    SSL_CTX *ctx;
    int r = TN_ERR_CONFIG;

    *out = NULL;
    if ((ctx = SSL_CTX_new(is_server ? TLS_server_method() : TLS_client_method())) == NULL) {
        tn_tls_log_errors("SSL_CTX_new");
        r = TN_ERR_TLS;
        goto out;
    }
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1) {
        r = TN_ERR_TLS;
        goto out;
    }
    /* Only a proxy registering with a bearer token goes without a certificate of its own. */
    is_anonymous = !is_server && conf->may_go_without_cert && conf->cert_file == NULL &&
                   conf->key_file == NULL && conf->ca_file != NULL;
    if (!is_anonymous &&
        (conf->cert_file == NULL || conf->key_file == NULL || conf->ca_file == NULL)) {
        tn_log(TN_LOG_ERR, "TLS needs a certificate, a key and a CA file (--tls-cert, "
                           "--tls-key, --tls-ca)");
        goto out;
    }
    if (!is_server && !server_name_valid(conf->server_name)) {
        tn_log(TN_LOG_ERR, "tls.server_name '%.300s' is not a host name, an address or *",
               conf->server_name);
        goto out;
    }
    SSL_CTX_set_default_passwd_cb(ctx, tn_no_passphrase);
    SSL_CTX_set_default_passwd_cb_userdata(ctx, &was_encrypted);
    if (is_anonymous) {
        /* nothing of our own to present */
    } else if (SSL_CTX_use_certificate_chain_file(ctx, conf->cert_file) != 1) {
        file_error("certificate", conf->cert_file, false);
        goto out;
    } else if (SSL_CTX_use_PrivateKey_file(ctx, conf->key_file, SSL_FILETYPE_PEM) != 1) {
        file_error("key", conf->key_file, was_encrypted);
        goto out;
    } else if (SSL_CTX_check_private_key(ctx) != 1) {
        tn_log(TN_LOG_ERR, "key %s does not belong to certificate %s", conf->key_file,
               conf->cert_file);
        goto out;
    } else if (self != TN_ROLE_NONE && own_cert_check(ctx, conf->cert_file, self) != 0) {
        goto out;
    }
    SSL_CTX_set_default_passwd_cb(ctx, NULL);
    SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);
    if (!is_anonymous)
        key_mode_check(conf->key_file);
    if (SSL_CTX_load_verify_locations(ctx, conf->ca_file, NULL) != 1) {
        file_error("CA certificate", conf->ca_file, false);
        goto out;
    }
    /* A relay's peer may come without a certificate (a proxy with a token, a health probe):
     * a certificate it presents must verify, and the relay refuses the rest by role. */
    SSL_CTX_set_verify(
        ctx, is_server ? SSL_VERIFY_PEER : SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    tn_revoke_install(ctx);
    if (conf->crl_file != NULL && tn_revoke_load_crl(ctx, conf->crl_file) != 0)
        goto out;
    r = TN_ERR_TLS;
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* AES-128-GCM first: as strong as the tunnel needs and a quarter cheaper than AES-256. */
    if (SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:"
                                      "TLS_AES_256_GCM_SHA384") != 1)
        goto out;
    /* HTTP/2 sessions leave OpenSSL after the handshake (tn/record.h): it must not read
     * ahead of the handshake's end, it hands over the traffic secrets, and its buffers go. */
    SSL_CTX_set_read_ahead(ctx, 0);
    SSL_CTX_set_keylog_callback(ctx, tn_record_keylog);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    /* The tunnel never renegotiates nor resumes: sessions are long-lived. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);
    if (is_server)
        SSL_CTX_set_alpn_select_cb(ctx, tn_tls_select_alpn, TN_UNCONST(TN_TLS_ALPN_RELAY));
    else if (SSL_CTX_set_alpn_protos(ctx, alpn_h2, sizeof(alpn_h2)) != 0)
        goto out;
    *out = ctx;
    ctx = NULL; /* transferred */
    r = 0;
out:
    SSL_CTX_free(ctx);
    return r;
}

int
tn_tls_ctx_identity(SSL_CTX *ctx, struct tn_identity *out)
{
    X509 *cert = SSL_CTX_get0_certificate(ctx);

    if (cert == NULL) {
        memset(out, 0, sizeof(*out));
        return TN_ERR_AUTH;
    }
    return tn_tls_cert_identity(cert, out);
}

/* SSL ex_data: set while the name expected of the relay is the host we dialed. */
static int derived_index = -1;

int
tn_tls_expect_name(SSL *ssl, const char *name, bool is_derived)
{
    struct in6_addr a6;
    struct in_addr a4;

    if (name == NULL || strcmp(name, "*") == 0)
        return 0;
    if (is_derived && ((derived_index < 0 &&
                        (derived_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL)) < 0) ||
                       SSL_set_ex_data(ssl, derived_index, ssl) != 1))
        return TN_ERR_TLS;
    if (inet_pton(AF_INET, name, &a4) == 1 || inet_pton(AF_INET6, name, &a6) == 1)
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1 ? 0 : TN_ERR_TLS;
    /* An address is never sent as SNI (RFC 6066). */
    if (SSL_set_tlsext_host_name(ssl, name) != 1 || SSL_set1_host(ssl, name) != 1)
        return TN_ERR_TLS;
    return 0;
}

bool
tn_tls_name_is_derived(SSL *ssl)
{
    return derived_index >= 0 && SSL_get_ex_data(ssl, derived_index) != NULL;
}

/* Whether |gn| is one of the loopback names certs-tool gives every relay certificate. */
static bool
is_loopback_name(const GENERAL_NAME *gn)
{
    static const uint8_t v6_loopback[16] = { [15] = 1 };
    const ASN1_STRING *s = gn->type == GEN_DNS ? gn->d.dNSName : gn->d.iPAddress;
    const unsigned char *b = ASN1_STRING_get0_data(s);
    int n = ASN1_STRING_length(s);

    if (gn->type == GEN_DNS)
        return n == 9 && strncasecmp((const char *)b, "localhost", 9) == 0;
    return (n == 4 && b[0] == 127) || (n == 16 && memcmp(b, v6_loopback, 16) == 0);
}

bool
tn_tls_cert_names_host(X509 *cert)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    bool names_host = false;
    int i;

    for (i = 0; !names_host && i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, i);

        names_host = (gn->type == GEN_DNS || gn->type == GEN_IPADD) && !is_loopback_name(gn);
    }
    GENERAL_NAMES_free(gens);
    return names_host;
}

static enum tn_role
role_parse(const char *s, size_t n)
{
    static const enum tn_role roles[] = { TN_ROLE_SERVER, TN_ROLE_CLIENT, TN_ROLE_PROXY };

    size_t i;

    for (i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
        const char *name = tn_role_name(roles[i]);
        if (strlen(name) == n && memcmp(name, s, n) == 0)
            return roles[i];
    }
    return TN_ROLE_NONE;
}

static bool
id_valid(const char *s, size_t n)
{
    size_t i;

    if (n == 0 || n > TN_ID_MAX)
        return false;
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

int
tn_tls_cert_identity(X509 *cert, struct tn_identity *out)
{
    GENERAL_NAMES *names;
    int i, r = TN_ERR_AUTH;

    memset(out, 0, sizeof(*out));
    if ((names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL)) == NULL)
        return TN_ERR_AUTH;
    for (i = 0; i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
        const char *uri, *slash;
        size_t n;

        if (gn->type != GEN_URI)
            continue;
        uri = (const char *)ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier);
        n = (size_t)ASN1_STRING_length(gn->d.uniformResourceIdentifier);
        if (n <= strlen(URI_PREFIX) || memcmp(uri, URI_PREFIX, strlen(URI_PREFIX)) != 0 ||
            memchr(uri, '\0', n) != NULL)
            continue;
        uri += strlen(URI_PREFIX);
        n -= strlen(URI_PREFIX);
        if ((slash = memchr(uri, '/', n)) == NULL)
            continue;
        out->role = role_parse(uri, (size_t)(slash - uri));
        n -= (size_t)(slash - uri) + 1;
        if (out->role == TN_ROLE_NONE || !id_valid(slash + 1, n))
            continue;
        memcpy(out->id, slash + 1, n);
        out->id[n] = '\0';
        r = 0;
        break;
    }
    GENERAL_NAMES_free(names);
    if (r != 0)
        memset(out, 0, sizeof(*out));
    return r;
}

int
tn_tls_peer_identity(SSL *ssl, struct tn_identity *out)
{
    X509 *cert;
    int r;

    memset(out, 0, sizeof(*out));
    if (SSL_get_verify_result(ssl) != X509_V_OK || (cert = SSL_get1_peer_certificate(ssl)) == NULL)
        return TN_ERR_AUTH;
    r = tn_tls_cert_identity(cert, out);
    if (r == 0) {
        const ASN1_OCTET_STRING *kid = X509_get0_authority_key_id(cert);

        tn_revoke_serial(cert, out->serial);
        out->issuer_hash = X509_issuer_name_hash(cert);
        STACK_OF(X509) *chain = SSL_get0_verified_chain(ssl);
        unsigned int fp_len = sizeof(out->issuer_fp);

        if (kid != NULL && (size_t)ASN1_STRING_length(kid) <= sizeof(out->issuer_kid)) {
            out->issuer_kid_len = (size_t)ASN1_STRING_length(kid);
            memcpy(out->issuer_kid, ASN1_STRING_get0_data(kid), out->issuer_kid_len);
        }
        /* Which CA verified it: a reload finds its CRL by that CA's key, as the handshake. */
        if (chain != NULL && sk_X509_num(chain) > 1 &&
            X509_digest(sk_X509_value(chain, 1), EVP_sha256(), out->issuer_fp, &fp_len) != 1)
            memset(out->issuer_fp, 0, sizeof(out->issuer_fp));
    }
    X509_free(cert);
    return r;
}
