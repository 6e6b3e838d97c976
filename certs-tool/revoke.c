/* SPDX-License-Identifier: MIT */
/* `certs-tool revoke`: adds a certificate to the CA's certificate revocation list. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certs.h"

/* Reads the CRLs at |path|: |ca|'s into |mine| (none when there is no file), the other CAs'
 * into |others| (a file may hold one CRL per CA, SECURITY.md), to be written back as they
 * are.  A block that is no readable CRL makes it refuse the file: rewriting it would lose
 * what follows. */
static int
crl_load(STACK_OF(X509_CRL) *mine, STACK_OF(X509_CRL) *others, const char *path,
         const struct ct_ca *ca)
{
    X509_CRL *crl;
    unsigned long e;
    FILE *f;
    int n = 0;

    if ((f = fopen(path, "re")) == NULL) {
        if (errno == ENOENT)
            return 0;
        ct_err("%s: %s", path, strerror(errno));
        return -1;
    }
    while ((crl = PEM_read_X509_CRL(f, NULL, NULL, NULL)) != NULL) {
        bool is_ours =
            X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca->cert)) == 0 &&
            X509_CRL_verify(crl, ca->key) == 1;

        n++;
        if (sk_X509_CRL_push(is_ours ? mine : others, crl) == 0) {
            X509_CRL_free(crl);
            fclose(f);
            ct_err("%s: out of memory", path);
            return -1;
        }
    }
    fclose(f);
    e = ERR_peek_last_error();
    if (n == 0 || ERR_GET_LIB(e) != ERR_LIB_PEM || ERR_GET_REASON(e) != PEM_R_NO_START_LINE) {
        ct_err_ssl("%s: CRL #%d is not a readable PEM CRL; the file is left as it is", path, n + 1);
        return -1;
    }
    ERR_clear_error(); /* the end of the file */
    return 0;
}

/* Writes |crl| to |path| through a temporary file of its own, so that a relay reading it on
 * SIGHUP never sees half of it. */
static int
crl_write(const char *path, STACK_OF(X509_CRL) *others, X509_CRL *crl)
{
    char tmp[CT_PATH_MAX];
    FILE *f = NULL;
    int fd, n;

    n = snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        ct_err("%s: path too long", path);
        return -1;
    }
    if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0 || fchmod(fd, 0644) != 0 ||
        (f = fdopen(fd, "w")) == NULL) {
        ct_err("%s: %s", tmp, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        return -1;
    }
    for (int i = 0; i < sk_X509_CRL_num(others); i++) {
        if (PEM_write_X509_CRL(f, sk_X509_CRL_value(others, i)) != 1)
            crl = NULL;
    }
    if (crl == NULL || PEM_write_X509_CRL(f, crl) != 1 || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        ct_err_ssl("%s: cannot write the CRL", tmp);
        fclose(f);
        unlink(tmp);
        return -1;
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        ct_err("%s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* Holds the directory of the CRL at |crl_path| locked (flock, until |*fd| is closed) so that
 * revocations into it run one after the other, whichever CA they are of (a file may hold two
 * CAs' CRLs): each reads what the one before wrote. */
static int
crl_lock(const char *crl_path, int *fd)
{
    char dir[CT_PATH_MAX];
    const char *slash = strrchr(crl_path, '/');

    snprintf(dir, sizeof(dir), "%.*s", slash != NULL ? (int)(slash - crl_path) + 1 : 1,
             slash != NULL ? crl_path : ".");
    if ((*fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || flock(*fd, LOCK_EX) != 0) {
        ct_err("%s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* A new CRL of |ca| valid for |days| days holding the entries of |mine| (its CRLs in the file,
 * if any) and |serial|. */
static X509_CRL *
crl_make(const struct ct_ca *ca, STACK_OF(X509_CRL) *mine, ASN1_INTEGER *serial, int days,
         bool *is_new)
{
    X509_CRL *crl = X509_CRL_new();
    X509_REVOKED *rev = NULL, *have;
    ASN1_TIME *now = ASN1_TIME_new(), *next = ASN1_TIME_new();
    int i, j;
    X509_EXTENSION *akid = NULL;
    X509V3_CTX x3;

    *is_new = true;
    /* Dated a little back, as certificates are, for verifiers whose clock is behind; the
     * authority key identifier tells two CAs' CRLs apart, however they are named. */
    if (crl == NULL || now == NULL || next == NULL ||
        X509_CRL_set_version(crl, X509_CRL_VERSION_2) != 1 ||
        X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->cert)) != 1 ||
        X509_gmtime_adj(now, -CT_CLOCK_SKEW_SECONDS) == NULL ||
        X509_time_adj_ex(next, days, 0, NULL) == NULL || X509_CRL_set1_lastUpdate(crl, now) != 1 ||
        X509_CRL_set1_nextUpdate(crl, next) != 1)
        goto fail;
    X509V3_set_ctx(&x3, ca->cert, NULL, NULL, crl, 0);
    if ((akid = X509V3_EXT_conf_nid(NULL, &x3, NID_authority_key_identifier, "keyid:always")) ==
            NULL ||
        X509_CRL_add_ext(crl, akid, -1) != 1)
        goto fail;
    X509_EXTENSION_free(akid);
    akid = NULL;
    /* Every entry of every CRL of this CA in the file, once: the new one replaces them all. */
    for (j = 0; j < sk_X509_CRL_num(mine); j++) {
        STACK_OF(X509_REVOKED) *prev = X509_CRL_get_REVOKED(sk_X509_CRL_value(mine, j));

        for (i = 0; i < sk_X509_REVOKED_num(prev); i++) {
            X509_REVOKED *r = sk_X509_REVOKED_value(prev, i);

            if (ASN1_INTEGER_cmp(X509_REVOKED_get0_serialNumber(r), serial) == 0)
                *is_new = false;
            if (X509_CRL_get0_by_serial(crl, &have, X509_REVOKED_get0_serialNumber(r)) == 1)
                continue;
            if ((rev = X509_REVOKED_dup(r)) == NULL || X509_CRL_add0_revoked(crl, rev) != 1)
                goto fail;
            rev = NULL; /* transferred */
        }
    }
    if (*is_new) {
        if ((rev = X509_REVOKED_new()) == NULL || X509_REVOKED_set_serialNumber(rev, serial) != 1 ||
            X509_REVOKED_set_revocationDate(rev, now) != 1 || X509_CRL_add0_revoked(crl, rev) != 1)
            goto fail;
        rev = NULL; /* transferred */
    }
    if (X509_CRL_sort(crl) != 1 || X509_CRL_sign(crl, ca->key, EVP_sha256()) == 0)
        goto fail;
    ASN1_TIME_free(now);
    ASN1_TIME_free(next);
    return crl;
fail:
    ct_err_ssl("cannot make the CRL");
    X509_EXTENSION_free(akid);
    X509_REVOKED_free(rev);
    X509_CRL_free(crl);
    ASN1_TIME_free(now);
    ASN1_TIME_free(next);
    return NULL;
}

int
ct_revoke(const char *ca_dir, const char *crl_path, const char *cert_path, int days)
{
    char path[CT_PATH_MAX], id[CT_ID_MAX + 1], when[CT_TIME_STR_MAX];
    struct ct_ca ca = { 0 };
    X509_CRL *crl = NULL;
    STACK_OF(X509_CRL) *mine = NULL, *others = NULL;
    X509 *cert = NULL;
    enum ct_role role;
    BIGNUM *bn = NULL;
    char *hex = NULL;
    bool is_new;
    int lock = -1, r = -1;

    if (crl_path == NULL) {
        if (ct_path(path, ca_dir, "crl.pem") != 0)
            return -1;
        crl_path = path;
    }
    if (ct_ca_load(&ca, ca_dir) != 0 || ct_cert_load(&cert, cert_path) != 0)
        goto out;
    if (X509_NAME_cmp(X509_get_issuer_name(cert), X509_get_subject_name(ca.cert)) != 0 ||
        X509_verify(cert, ca.key) != 1) {
        ct_err_ssl("%s was not issued by the CA in %s", cert_path, ca_dir);
        goto out;
    }
    if (ct_cert_is_ca(cert)) {
        ct_err("%s is a CA certificate: a CA's own CRL cannot revoke it (to retire a CA, make a "
               "new one and take the old one out of tls.ca_file)",
               cert_path);
        goto out;
    }
    if ((mine = sk_X509_CRL_new_null()) == NULL || (others = sk_X509_CRL_new_null()) == NULL ||
        crl_lock(crl_path, &lock) != 0 || crl_load(mine, others, crl_path, &ca) != 0 ||
        (crl = crl_make(&ca, mine, X509_get_serialNumber(cert), days, &is_new)) == NULL ||
        crl_write(crl_path, others, crl) != 0)
        goto out;
    bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    hex = bn != NULL ? BN_bn2hex(bn) : NULL;
    if (ct_cert_identity(cert, &role, id) != 0)
        snprintf(id, sizeof(id), "?");
    printf("%s serial %s (%s) in %s, %d entries, next update due %s\n",
           is_new ? "revoked" : "already revoked:", hex != NULL ? hex : "?", id, crl_path,
           sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)),
           ct_time_str(X509_CRL_get0_nextUpdate(crl), when));
    printf("give it to the relay (tls: {crl_file: %s}) and send it SIGHUP\n", crl_path);
    r = 0;
out:
    if (lock >= 0)
        close(lock);
    OPENSSL_free(hex);
    BN_free(bn);
    X509_CRL_free(crl);
    sk_X509_CRL_pop_free(mine, X509_CRL_free);
    sk_X509_CRL_pop_free(others, X509_CRL_free);
    X509_free(cert);
    ct_ca_fini(&ca);
    return r;
}
