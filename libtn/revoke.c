/* SPDX-License-Identifier: MIT */
/* Revocation: CRLs of the deployment CA and a list of revoked serials, checked in the verify
 * callback of every handshake and, after a reload, against the peers already connected. */
#include "tn/revoke.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tn/certutil.h"
#include "tn/err.h"
#include "tn/log.h"
#include "tn/tls.h"

/* What an SSL_CTX carries (ex_data): the revoked serials, normalised. */
struct revoked {
    size_t n;
    char (*serial)[TN_SERIAL_MAX + 1];
    char **note;
};

static int revoked_index = -1;

static void
revoked_free(struct revoked *r)
{
    size_t i;

    if (r == NULL)
        return;
    for (i = 0; i < r->n; i++)
        free(r->note[i]);
    free(r->note);
    free(r->serial);
    free(r);
}

static void
revoked_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    revoked_free(ptr);
}

static int
revoked_idx(void)
{
    if (revoked_index < 0)
        revoked_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, revoked_ex_free);
    return revoked_index;
}

/* Normalises hexadecimal |s| ("0x" prefix, any case, ':' separators, leading zeros) into |out|
 * (TN_SERIAL_MAX + 1 bytes) as certs-tool show prints serials (OpenSSL's BN_bn2hex): upper
 * case, whole bytes, no leading zero byte.  Returns false when |s| is not hexadecimal or too
 * long. */
static bool
serial_norm(const char *s, char *out)
{
    char digits[TN_SERIAL_MAX + 1];
    size_t i, n = 0;

    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        s += 2;
    if (*s == '\0')
        return false;
    for (i = 0; s[i] != '\0'; i++) {
        char c = s[i];

        if (c == ':')
            continue;
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
        if (n == 0 && c == '0')
            continue;
        if (n == TN_SERIAL_MAX)
            return false;
        digits[n++] = (char)(c >= 'a' && c <= 'f' ? c - 'a' + 'A' : c);
    }
    if (n == 0) {
        strcpy(out, "0");
        return true;
    }
    if (n % 2 == 1) {
        if (n == TN_SERIAL_MAX)
            return false;
        *out++ = '0';
    }
    memcpy(out, digits, n);
    out[n] = '\0';
    return true;
}

void
tn_revoke_serial(X509 *cert, char *buf)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;

    buf[0] = '\0';
    if (hex != NULL && !serial_norm(hex, buf))
        buf[0] = '\0';
    OPENSSL_free(hex);
    BN_free(bn);
}

/* Whether |serial| is in |ctx|'s revoked list; fills |why|. */
static bool
in_list(SSL_CTX *ctx, const char *serial, char *why, size_t whylen)
{
    const struct revoked *r = SSL_CTX_get_ex_data(ctx, revoked_idx());
    size_t i;

    for (i = 0; r != NULL && serial[0] != '\0' && i < r->n; i++) {
        if (strcmp(r->serial[i], serial) == 0) {
            snprintf(why, whylen, "serial %s is in the revoked list%s%s%s", serial,
                     r->note[i] != NULL ? " (" : "", r->note[i] != NULL ? r->note[i] : "",
                     r->note[i] != NULL ? ")" : "");
            return true;
        }
    }
    return false;
}

/* Whose CRL applies to a certificate: its issuer's name, and the issuer's key when the
 * handshake has it (then only a CRL it signed is its), else the key id the certificate names
 * (then a CRL naming another key id is not its). */
struct crl_owner {
    unsigned long name_hash; /* X509_issuer_name_hash */
    EVP_PKEY *key;           /* or NULL */
    const unsigned char *kid;
    size_t kid_len; /* 0: unknown */
};

static bool
crl_owned(X509_CRL *crl, const struct crl_owner *o)
{
    AUTHORITY_KEYID *akid;
    bool is_ours;

    if (X509_NAME_hash_ex(X509_CRL_get_issuer(crl), NULL, NULL, NULL) != o->name_hash)
        return false;
    if (o->key != NULL) {
        is_ours = X509_CRL_verify(crl, o->key) == 1;
        ERR_clear_error();
        return is_ours;
    }
    if (o->kid_len == 0 ||
        (akid = X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier, NULL, NULL)) == NULL)
        return true;
    is_ours = akid->keyid == NULL ||
              ((size_t)ASN1_STRING_length(akid->keyid) == o->kid_len &&
               memcmp(ASN1_STRING_get0_data(akid->keyid), o->kid, o->kid_len) == 0);
    AUTHORITY_KEYID_free(akid);
    return is_ours;
}

/* The newest CRL of |o| in |store| (a file may hold an older one too), or NULL: the CA has none,
 * and revokes nothing. */
static X509_CRL *
crl_newest(X509_STORE *store, const struct crl_owner *o)
{
    STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(store);
    X509_CRL *newest = NULL;
    int i;

    for (i = 0; i < sk_X509_OBJECT_num(objs); i++) {
        X509_CRL *crl = X509_OBJECT_get0_X509_CRL(sk_X509_OBJECT_value(objs, i));

        if (crl != NULL && crl_owned(crl, o) &&
            (newest == NULL || ASN1_TIME_compare(X509_CRL_get0_lastUpdate(crl),
                                                 X509_CRL_get0_lastUpdate(newest)) > 0))
            newest = crl;
    }
    return newest;
}

/* The CA certificate in |store| whose SHA-256 is |fp|, or NULL (all zeros, or no longer
 * trusted after a reload). */
static X509 *
ca_by_fingerprint(X509_STORE *store, const unsigned char *fp)
{
    static const unsigned char none[32];
    STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(store);
    unsigned char md[32];
    unsigned int len;
    int i;

    if (memcmp(fp, none, sizeof(none)) == 0)
        return NULL;
    for (i = 0; i < sk_X509_OBJECT_num(objs); i++) {
        X509 *ca = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));

        len = sizeof(md);
        if (ca != NULL && X509_digest(ca, EVP_sha256(), md, &len) == 1 && len == sizeof(md) &&
            memcmp(md, fp, sizeof(md)) == 0)
            return ca;
    }
    return NULL;
}

bool
tn_revoke_check(SSL_CTX *ctx, const struct tn_identity *peer, char *why, size_t whylen)
{
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    X509 *ca = ca_by_fingerprint(store, peer->issuer_fp);
    struct crl_owner o = { peer->issuer_hash, ca != NULL ? X509_get0_pubkey(ca) : NULL,
                           peer->issuer_kid, peer->issuer_kid_len };
    ASN1_INTEGER *ai = NULL;
    X509_REVOKED *rev;
    X509_CRL *crl;
    BIGNUM *bn = NULL;
    bool is_revoked = false;

    if (in_list(ctx, peer->serial, why, whylen))
        return true;
    if (peer->serial[0] == '\0' || BN_hex2bn(&bn, peer->serial) == 0 ||
        (ai = BN_to_ASN1_INTEGER(bn, NULL)) == NULL)
        goto out;
    /* As in the handshake: its own CA's newest CRL; another CA may list the same serial. */
    if ((crl = crl_newest(store, &o)) != NULL && X509_CRL_get0_by_serial(crl, &rev, ai) == 1) {
        snprintf(why, whylen, "serial %s is revoked by the CRL", peer->serial);
        is_revoked = true;
    }
out:
    ASN1_INTEGER_free(ai);
    BN_free(bn);
    return is_revoked;
}

/* Whether the newest CRL of |cert|'s CA (|issuer|, from the handshake's chain, or NULL) refuses
 * it: it lists it, or it is out of date, and then nothing that CA issued is trusted until a
 * new one comes.  Fills |why|. */
static bool
crl_refuses(X509_STORE *store, X509 *cert, X509 *issuer, char *why, size_t whylen)
{
    const ASN1_OCTET_STRING *kid = X509_get0_authority_key_id(cert);
    struct crl_owner o = {
        .name_hash = X509_issuer_name_hash(cert),
        .key = issuer != NULL ? X509_get0_pubkey(issuer) : NULL,
        .kid = kid != NULL ? ASN1_STRING_get0_data(kid) : NULL,
        .kid_len = kid != NULL ? (size_t)ASN1_STRING_length(kid) : 0,
    };
    X509_CRL *crl = crl_newest(store, &o);
    const ASN1_TIME *next;
    X509_REVOKED *rev;
    char when[32];

    if (crl == NULL)
        return false;
    if ((next = X509_CRL_get0_nextUpdate(crl)) != NULL && X509_cmp_current_time(next) <= 0) {
        snprintf(why, whylen,
                 "the CRL of its CA expired on %s: issue a new one (certs-tool revoke) and send "
                 "SIGHUP",
                 tn_asn1_time_str(next, when, sizeof(when)));
        return true;
    }
    if (X509_CRL_get0_by_cert(crl, &rev, cert) == 1) {
        snprintf(why, whylen, "certificate revoked by the CRL");
        return true;
    }
    return false;
}

/* When |err| says the relay's certificate lacks the name we expect, fills |why| with the name
 * and what to do. */
static bool
name_mismatch(SSL *ssl, int err, char *why, size_t whylen)
{
    X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
    const char *host = X509_VERIFY_PARAM_get0_host(param, 0);
    char *ip = NULL;

    if (err != X509_V_ERR_HOSTNAME_MISMATCH && err != X509_V_ERR_IP_ADDRESS_MISMATCH)
        return false;
    if (host == NULL)
        host = ip = X509_VERIFY_PARAM_get1_ip_asc(param);
    snprintf(why, whylen,
             "it is not issued to '%s' (set the relay's name with tls.server_name / "
             "--server-name, or issue its certificate with that name: certs-tool --server-dns "
             "or --server-ip)",
             host != NULL ? host : "?");
    OPENSSL_free(ip);
    return true;
}

/* Whether the error in |xs| is only that the relay's certificate |cert| (identity |id|)
 * lacks the host we dialed, while no name was configured and the certificate names no host. */
static bool
is_unbound_relay(SSL *ssl, X509_STORE_CTX *xs, X509 *cert, const struct tn_identity *id)
{
    int err = X509_STORE_CTX_get_error(xs);

    return (err == X509_V_ERR_HOSTNAME_MISMATCH || err == X509_V_ERR_IP_ADDRESS_MISMATCH) &&
           ssl != NULL && cert != NULL && X509_STORE_CTX_get_error_depth(xs) == 0 &&
           id->role == TN_ROLE_SERVER && tn_tls_name_is_derived(ssl) &&
           !tn_tls_cert_names_host(cert);
}

/* The certificate that issued the one at depth 0 of |xs|'s chain, or NULL. */
static X509 *
chain_issuer(X509_STORE_CTX *xs)
{
    STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(xs);

    return chain != NULL && sk_X509_num(chain) > 1 ? sk_X509_value(chain, 1) : NULL;
}

/* Every certificate check of a handshake passes here: the serial list is applied to the peer's
 * own certificate, and any refusal is logged with the certificate's identity and the reason
 * (expired, revoked, unknown CA...). */
static int
verify_cb(int ok, X509_STORE_CTX *xs)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
    X509 *cert = X509_STORE_CTX_get_current_cert(xs);
    int depth = X509_STORE_CTX_get_error_depth(xs);
    char serial[TN_SERIAL_MAX + 1] = "", why[256];
    struct tn_identity id = { 0 };
    const char *reason;

    if (cert != NULL)
        tn_revoke_serial(cert, serial);
    if (ok && depth == 0 && ssl != NULL &&
        (in_list(SSL_get_SSL_CTX(ssl), serial, why, sizeof(why)) ||
         crl_refuses(SSL_CTX_get_cert_store(SSL_get_SSL_CTX(ssl)), cert, chain_issuer(xs), why,
                     sizeof(why)))) {
        X509_STORE_CTX_set_error(xs, X509_V_ERR_CERT_REVOKED);
        ok = 0;
        reason = why;
    } else {
        reason = X509_verify_cert_error_string(X509_STORE_CTX_get_error(xs));
        if (ssl != NULL && name_mismatch(ssl, X509_STORE_CTX_get_error(xs), why, sizeof(why)))
            reason = why;
    }
    if (!ok) {
        char name[TN_ID_MAX + 32] = "a certificate without a tunnel identity";

        if (cert != NULL && tn_tls_cert_identity(cert, &id) == 0)
            snprintf(name, sizeof(name), "tunnel://%s/%s", tn_role_name(id.role), id.id);
        if (is_unbound_relay(ssl, xs, cert, &id)) {
            tn_log_info("relay certificate %s names no host, so its name is not checked, only "
                        "its CA and role (issue it with certs-tool --server-dns / --server-ip, "
                        "or set tls.server_name, to have it checked)",
                        name);
            X509_STORE_CTX_set_error(xs, X509_V_OK);
            return 1;
        }
        tn_log_warnx("certificate refused: %s (serial %s, depth %d): %s", name,
                     serial[0] != '\0' ? serial : "?", depth, reason);
    }
    return ok;
}

void
tn_revoke_install(SSL_CTX *ctx)
{
    SSL_CTX_set_verify(ctx, SSL_CTX_get_verify_mode(ctx), verify_cb);
}

int
tn_revoke_set_serials(SSL_CTX *ctx, char *const *serials, char *const *notes, size_t n)
{
    struct revoked *r;
    size_t i;

    tn_revoke_install(ctx);
    if ((r = calloc(1, sizeof(*r))) == NULL ||
        (n > 0 && ((r->serial = calloc(n, sizeof(*r->serial))) == NULL ||
                   (r->note = calloc(n, sizeof(*r->note))) == NULL))) {
        revoked_free(r);
        tn_log(TN_LOG_ERR, "revoked serials: out of memory");
        return TN_ERR_CONFIG;
    }
    for (r->n = 0; r->n < n; r->n++) {
        i = r->n;
        if (!serial_norm(serials[i], r->serial[i])) {
            tn_log(TN_LOG_ERR,
                   "revoked: serial '%.64s' is not a hexadecimal serial number of at "
                   "most %d digits",
                   serials[i], TN_SERIAL_MAX);
            revoked_free(r);
            return TN_ERR_CONFIG;
        }
        if (notes[i] != NULL && (r->note[i] = strdup(notes[i])) == NULL) {
            revoked_free(r);
            tn_log(TN_LOG_ERR, "revoked serials: out of memory");
            return TN_ERR_CONFIG;
        }
    }
    /* A list set before is freed here; the last one goes with the context (revoked_ex_free). */
    revoked_free(SSL_CTX_get_ex_data(ctx, revoked_idx()));
    SSL_CTX_set_ex_data(ctx, revoked_idx(), r);
    return 0;
}

/* The CA certificate of |store| that signed |crl|, or NULL. */
static X509 *
crl_signer(X509_STORE *store, X509_CRL *crl)
{
    STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(store);
    int i;

    for (i = 0; i < sk_X509_OBJECT_num(objs); i++) {
        X509 *ca = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));

        if (ca != NULL && X509_NAME_cmp(X509_get_subject_name(ca), X509_CRL_get_issuer(crl)) == 0 &&
            X509_CRL_verify(crl, X509_get0_pubkey(ca)) == 1) {
            ERR_clear_error(); /* a namesake's key may have failed first */
            return ca;
        }
    }
    ERR_clear_error();
    return NULL;
}

static bool
crl_expired(X509_CRL *crl)
{
    const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);

    return next != NULL && X509_cmp_current_time(next) <= 0;
}

/* The number (1-based) of a CRL in |crls| that supersedes |crl|: signed by the same CA,
 * issued later, and still current; or 0. */
static int
crl_superseded_by(STACK_OF(X509_CRL) *crls, X509 **signers, X509_CRL *crl, X509 *signer)
{
    int i;

    for (i = 0; i < sk_X509_CRL_num(crls); i++) {
        X509_CRL *other = sk_X509_CRL_value(crls, i);

        if (signers[i] == signer && !crl_expired(other) &&
            ASN1_TIME_compare(X509_CRL_get0_lastUpdate(other), X509_CRL_get0_lastUpdate(crl)) > 0)
            return i + 1;
    }
    return 0;
}

/* Reads every CRL of |crl_file| into |crls|.  Returns 0 or TN_ERR_CONFIG (logged). */
static int
crl_read_all(const char *crl_file, STACK_OF(X509_CRL) *crls)
{
    X509_CRL *crl;
    unsigned long e;
    BIO *bio;
    int r = TN_ERR_CONFIG;

    if ((bio = BIO_new_file(crl_file, "r")) == NULL) {
        tn_log(TN_LOG_ERR, "CRL %s: %s", crl_file, strerror(errno));
        ERR_clear_error();
        return TN_ERR_CONFIG;
    }
    while ((crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL)) != NULL) {
        if (sk_X509_CRL_push(crls, crl) <= 0) {
            X509_CRL_free(crl);
            tn_log(TN_LOG_ERR, "CRL %s: out of memory", crl_file);
            goto out;
        }
    }
    e = ERR_peek_last_error();
    ERR_clear_error();
    if (sk_X509_CRL_num(crls) == 0)
        tn_log(TN_LOG_ERR, "CRL %s: no CRL in the file (PEM, \"BEGIN X509 CRL\")", crl_file);
    else if (ERR_GET_LIB(e) != ERR_LIB_PEM || ERR_GET_REASON(e) != PEM_R_NO_START_LINE)
        /* Not the end: a damaged CRL, and what follows it would be ignored. */
        tn_log(TN_LOG_ERR, "CRL %s: CRL #%d cannot be read", crl_file, sk_X509_CRL_num(crls) + 1);
    else
        r = 0;
out:
    BIO_free(bio);
    return r;
}

int
tn_revoke_load_crl(SSL_CTX *ctx, const char *crl_file)
{
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    STACK_OF(X509_CRL) *crls;
    X509 **signers = NULL;
    X509_CRL *crl;
    char when[32];
    int i, n, newer, r = TN_ERR_CONFIG;

    tn_revoke_install(ctx);
    if ((crls = sk_X509_CRL_new_null()) == NULL || crl_read_all(crl_file, crls) != 0)
        goto out;
    n = sk_X509_CRL_num(crls);
    if ((signers = calloc((size_t)n, sizeof(*signers))) == NULL)
        goto out;
    for (i = 0; i < n; i++) {
        crl = sk_X509_CRL_value(crls, i);
        if ((signers[i] = crl_signer(store, crl)) == NULL) {
            tn_log(TN_LOG_ERR, "CRL %s: CRL #%d is not signed by the CA (tls.ca_file)", crl_file,
                   i + 1);
            goto out;
        }
        if (X509_cmp_current_time(X509_CRL_get0_lastUpdate(crl)) > 0) {
            tn_log(TN_LOG_ERR,
                   "CRL %s: CRL #%d is not valid before %s (is this machine's clock behind?)",
                   crl_file, i + 1,
                   tn_asn1_time_str(X509_CRL_get0_lastUpdate(crl), when, sizeof(when)));
            goto out;
        }
    }
    for (i = 0; i < n; i++) {
        crl = sk_X509_CRL_value(crls, i);
        if (!crl_expired(crl)) {
            if (X509_STORE_add_crl(store, crl) != 1) {
                tn_tls_log_errors("CRL");
                goto out;
            }
        } else if ((newer = crl_superseded_by(crls, signers, crl, signers[i])) > 0) {
            /* An old CRL left in the file: the CA's newer one decides, this one is not used. */
            tn_log_info("CRL %s: CRL #%d has expired, and CRL #%d of the same CA replaces it",
                        crl_file, i + 1, newer);
        } else {
            tn_log(TN_LOG_ERR,
                   "CRL %s: CRL #%d has expired (its next update was due): issue a "
                   "new one (certs-tool revoke), else every certificate is refused",
                   crl_file, i + 1);
            goto out;
        }
    }
    r = 0;
out:
    free(signers);
    sk_X509_CRL_pop_free(crls, X509_CRL_free);
    return r;
}
