/* SPDX-License-Identifier: MIT */
/* X.509 building blocks shared by the CA and the leaves, and the identity they carry. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certs.h"
#include "tn/certutil.h"

/* Peers whose clocks run a little behind must still accept a certificate made just now. */
#define SERIAL_BYTES 16

int
ct_key_new(EVP_PKEY **out)
{
    *out = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (*out == NULL) {
        ct_err_ssl("cannot generate a P-256 key");
        return -1;
    }
    return 0;
}

static int
set_random_serial(X509 *cert)
{
    unsigned char bytes[SERIAL_BYTES];
    BIGNUM *bn = NULL;
    int r = -1;

    /* Read as an unsigned number the bytes give a positive serial of up to 128 bits; DER adds
     * a leading zero octet when the top bit is set, staying within RFC 5280's 20 octets. */
    do {
        if (RAND_bytes(bytes, sizeof(bytes)) != 1)
            goto out;
        BN_free(bn);
        if ((bn = BN_bin2bn(bytes, sizeof(bytes), NULL)) == NULL)
            goto out;
    } while (BN_is_zero(bn));
    if (BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) == NULL)
        goto out;
    r = 0;
out:
    if (r != 0)
        ct_err_ssl("cannot make a serial number");
    BN_free(bn);
    return r;
}

int
ct_cert_new(X509 **out, const char *cn, EVP_PKEY *key, int days)
{
    X509 *cert = NULL;
    int r = -1;

    *out = NULL;
    if ((cert = X509_new()) == NULL || X509_set_version(cert, X509_VERSION_3) != 1) {
        ct_err_ssl("cannot make a certificate");
        goto out;
    }
    if (set_random_serial(cert) != 0)
        goto out;
    if (X509_gmtime_adj(X509_getm_notBefore(cert), -CT_CLOCK_SKEW_SECONDS) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(cert), days, 0, NULL) == NULL) {
        ct_err_ssl("cannot set the validity of %d days", days);
        goto out;
    }
    if (X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_UTF8,
                                   (const unsigned char *)cn, -1, -1, 0) != 1) {
        ct_err_ssl("cannot set the subject CN '%s'", cn);
        goto out;
    }
    if (X509_set_pubkey(cert, key) != 1) {
        ct_err_ssl("cannot set the public key");
        goto out;
    }
    *out = cert;
    cert = NULL; /* transferred */
    r = 0;
out:
    X509_free(cert);
    return r;
}

int
ct_cert_add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    int r = -1;

    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    if ((ext = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value)) == NULL)
        goto out;
    if (X509_add_ext(cert, ext, -1) != 1)
        goto out;
    r = 0;
out:
    if (r != 0)
        ct_err_ssl("cannot add %s '%s'", OBJ_nid2sn(nid), value);
    X509_EXTENSION_free(ext);
    return r;
}

int
ct_cert_sign(X509 *cert, X509 *issuer, EVP_PKEY *issuer_key)
{
    if (X509_set_issuer_name(cert, X509_get_subject_name(issuer)) != 1 ||
        X509_sign(cert, issuer_key, EVP_sha256()) <= 0) {
        ct_err_ssl("cannot sign the certificate");
        return -1;
    }
    return 0;
}

/* Parses "tunnel://ROLE/ID" of |len| bytes (not NUL-terminated). */
static int
parse_uri(const char *s, size_t len, enum ct_role *role, char *id)
{
    size_t scheme_len = strlen(CT_URI_SCHEME), id_len;
    const char *slash;
    int k;

    if (len <= scheme_len || memcmp(s, CT_URI_SCHEME, scheme_len) != 0)
        return -ENOENT;
    s += scheme_len;
    len -= scheme_len;
    if ((slash = memchr(s, '/', len)) == NULL)
        return -EINVAL;
    for (k = 0; k < CT_ROLE_COUNT; k++) {
        const char *name = ct_role_name((enum ct_role)k);

        if ((size_t)(slash - s) == strlen(name) && memcmp(s, name, strlen(name)) == 0)
            break;
    }
    if (k == CT_ROLE_COUNT)
        return -EINVAL;
    id_len = len - (size_t)(slash - s) - 1;
    if (!ct_id_is_valid(slash + 1, id_len))
        return -EINVAL;
    memcpy(id, slash + 1, id_len);
    id[id_len] = '\0';
    *role = (enum ct_role)k;
    return 0;
}

/* Whether the subject of |cert| has exactly one CN and it equals |id|. */
static bool
cn_equals(X509 *cert, const char *id)
{
    const X509_NAME *name = X509_get_subject_name(cert);
    const ASN1_STRING *data;
    int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);

    if (i < 0 || X509_NAME_get_index_by_NID(name, NID_commonName, i) >= 0)
        return false;
    data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    return (size_t)ASN1_STRING_length(data) == strlen(id) &&
           memcmp(ASN1_STRING_get0_data(data), id, strlen(id)) == 0;
}

int
ct_cert_identity(X509 *cert, enum ct_role *role, char *id)
{
    GENERAL_NAMES *gens;
    int i, r = -ENOENT;

    gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *gen = sk_GENERAL_NAME_value(gens, i);
        const ASN1_STRING *uri;
        int q;

        if (gen->type != GEN_URI)
            continue;
        uri = gen->d.uniformResourceIdentifier;
        q = parse_uri((const char *)ASN1_STRING_get0_data(uri), (size_t)ASN1_STRING_length(uri),
                      role, id);
        if (q == -ENOENT)
            continue;
        if (q != 0 || r != -ENOENT) { /* malformed, or a second identity */
            r = -EINVAL;
            break;
        }
        r = 0;
    }
    if (r == 0 && !cn_equals(cert, id))
        r = -EINVAL;
    GENERAL_NAMES_free(gens);
    return r;
}

bool
ct_cert_is_ca(X509 *cert)
{
    return (X509_get_extension_flags(cert) & EXFLAG_CA) != 0;
}

char *
ct_time_str(const ASN1_TIME *t, char *buf)
{
    return tn_asn1_time_str(t, buf, CT_TIME_STR_MAX);
}

/* Copies |len| bytes of |s| into |buf|, replacing what a terminal would interpret. */
static void
printable(char *buf, size_t size, const unsigned char *s, int len)
{
    size_t i;

    for (i = 0; i + 1 < size && i < (size_t)len; i++)
        buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? (char)s[i] : '?';
    buf[i] = '\0';
}

char *
ct_general_name_str(const GENERAL_NAME *gen, char *buf, size_t size)
{
    const ASN1_STRING *s = gen->d.ia5;
    const char *kind = gen->type == GEN_DNS ? "DNS:" : gen->type == GEN_URI ? "URI:" : "email:";
    char text[CT_PATH_MAX];
    int family = 0;

    switch (gen->type) {
    case GEN_DNS:
    case GEN_URI:
    case GEN_EMAIL:
        printable(text, sizeof(text), ASN1_STRING_get0_data(s), ASN1_STRING_length(s));
        snprintf(buf, size, "%s%s", kind, text);
        break;
    case GEN_IPADD:
        s = gen->d.iPAddress;
        if (ASN1_STRING_length(s) == 4)
            family = AF_INET;
        else if (ASN1_STRING_length(s) == 16)
            family = AF_INET6;
        if (family == 0 || inet_ntop(family, ASN1_STRING_get0_data(s), text, sizeof(text)) == NULL)
            snprintf(text, sizeof(text), "?");
        snprintf(buf, size, "IP:%s", text);
        break;
    default:
        snprintf(buf, size, "other:?");
        break;
    }
    return buf;
}
