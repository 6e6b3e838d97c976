/* SPDX-License-Identifier: MIT */
/* `certs-tool show`, and the one-line summaries of what init and issue wrote. */
#include <errno.h>
#include <stdio.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certs.h"

#define FIELD "%-12s"

/* Prints |name| as "CN=relay" (RFC 2253 order and escaping). */
static void
print_name(const char *field, const X509_NAME *name)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *text = NULL;
    long len = 0;

    if (bio != NULL && X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0)
        len = BIO_get_mem_data(bio, &text);
    printf(FIELD "%.*s\n", field, (int)len, text != NULL ? text : "");
    BIO_free(bio);
}

static void
print_serial(const X509 *cert)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;

    printf(FIELD "%s\n", "serial:", hex != NULL ? hex : "?");
    OPENSSL_free(hex);
    BN_free(bn);
}

static void
print_fingerprint(const X509 *cert)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0, i;

    printf(FIELD, "sha256:");
    if (X509_digest(cert, EVP_sha256(), md, &len) != 1)
        len = 0;
    for (i = 0; i < len; i++)
        printf("%s%02X", i > 0 ? ":" : "", md[i]);
    printf("%s\n", len == 0 ? "?" : "");
}

int
ct_show(const char *path)
{
    char id[CT_ID_MAX + 1], when[CT_TIME_STR_MAX], name[CT_PATH_MAX];
    GENERAL_NAMES *gens = NULL;
    enum ct_role role;
    X509 *cert = NULL;
    int i, q;

    if (ct_cert_load(&cert, path) != 0)
        return -1;
    q = ct_cert_identity(cert, &role, id);
    if (q == 0)
        printf(FIELD "%s\n" FIELD "%s\n", "role:", ct_role_name(role), "id:", id);
    else if (q == -ENOENT && ct_cert_is_ca(cert))
        printf(FIELD "%s\n" FIELD "%s\n", "role:", "ca", "id:", "-");
    else
        printf(FIELD "%s\n" FIELD "%s\n", "role:", q == -ENOENT ? "-" : "invalid", "id:", "-");
    print_name("subject:", X509_get_subject_name(cert));
    print_name("issuer:", X509_get_issuer_name(cert));
    print_serial(cert);
    printf(FIELD "%s\n", "not-before:", ct_time_str(X509_get0_notBefore(cert), when));
    printf(FIELD "%s\n", "not-after:", ct_time_str(X509_get0_notAfter(cert), when));
    gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    for (i = 0; i < sk_GENERAL_NAME_num(gens); i++)
        printf(FIELD "%s\n",
               "san:", ct_general_name_str(sk_GENERAL_NAME_value(gens, i), name, sizeof(name)));
    print_fingerprint(cert);
    GENERAL_NAMES_free(gens);
    X509_free(cert);
    return 0;
}

void
ct_print_pair(const char *verb, const char *dir, X509 *cert)
{
    char id[CT_ID_MAX + 1], when[CT_TIME_STR_MAX];
    enum ct_role role;

    ct_time_str(X509_get0_notAfter(cert), when);
    if (ct_cert_identity(cert, &role, id) == 0)
        printf("%-8s %s: %s%s/%s, expires %s\n", verb, dir, CT_URI_SCHEME, ct_role_name(role), id,
               when);
    else
        printf("%-8s %s: CA, expires %s\n", verb, dir, when);
}
