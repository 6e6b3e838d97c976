/* SPDX-License-Identifier: MIT */
/* The deployment CA: made once, then loaded and checked before it signs anything. */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certs.h"

int
ct_ca_create(struct ct_ca *ca, const char *dir, int days)
{
    unsigned char tag[4];
    char cn[sizeof(CT_CA_CN) + 2 * sizeof(tag) + 1];
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    int r = -1;

    memset(ca, 0, sizeof(*ca));
    /* Two CAs trusted side by side (a rotation) must differ by name: verifiers find a
     * certificate's CA and CRL by its issuer name. */
    if (RAND_bytes(tag, sizeof(tag)) != 1) {
        ct_err_ssl("cannot make the CA's name");
        goto out;
    }
    snprintf(cn, sizeof(cn), "%s %02x%02x%02x%02x", CT_CA_CN, tag[0], tag[1], tag[2], tag[3]);
    if (ct_key_new(&key) != 0 || ct_cert_new(&cert, cn, key, days) != 0)
        goto out;
    /* pathlen:0: verifiers refuse any intermediate CA below this one, even one it signed by
     * mistake; it signs leaves only. */
    if (ct_cert_add_ext(cert, cert, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") != 0 ||
        ct_cert_add_ext(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign") != 0 ||
        ct_cert_add_ext(cert, cert, NID_subject_key_identifier, "hash") != 0 ||
        ct_cert_sign(cert, cert, key) != 0)
        goto out;
    if (ct_mkdirs(dir) != 0 || ct_pair_write(dir, cert, key) != 0)
        goto out;
    ca->cert = cert;
    cert = NULL; /* transferred */
    ca->key = key;
    key = NULL; /* transferred */
    r = 0;
out:
    X509_free(cert);
    EVP_PKEY_free(key);
    return r;
}

int
ct_ca_load(struct ct_ca *ca, const char *dir)
{
    char cert_path[CT_PATH_MAX], key_path[CT_PATH_MAX], when[CT_TIME_STR_MAX];
    enum ct_pair_state state;
    int r = -1;

    memset(ca, 0, sizeof(*ca));
    if (ct_path(cert_path, dir, "cert.pem") != 0 || ct_path(key_path, dir, "key.pem") != 0 ||
        ct_pair_state(dir, &state) != 0)
        goto out;
    if (state == CT_PAIR_NONE) {
        ct_err("%s: no CA there (cert.pem and key.pem are missing); run 'certs-tool init' or "
               "give --ca",
               dir);
        goto out;
    }
    if (ct_cert_load(&ca->cert, cert_path) != 0)
        goto out;
    if (!ct_cert_is_ca(ca->cert) || (X509_get_key_usage(ca->cert) & KU_KEY_CERT_SIGN) == 0) {
        ct_err("%s is not a CA certificate (it lacks CA:TRUE or keyCertSign)", cert_path);
        goto out;
    }
    if (X509_cmp_current_time(X509_get0_notBefore(ca->cert)) >= 0) {
        ct_err("%s: the CA is not valid before %s (is this machine's clock right?)", cert_path,
               ct_time_str(X509_get0_notBefore(ca->cert), when));
        goto out;
    }
    if (X509_cmp_current_time(X509_get0_notAfter(ca->cert)) <= 0) {
        ct_err("%s: the CA expired %s", cert_path, ct_time_str(X509_get0_notAfter(ca->cert), when));
        goto out;
    }
    if (ct_key_load(&ca->key, key_path) != 0)
        goto out;
    if (X509_check_private_key(ca->cert, ca->key) != 1) {
        ct_err_ssl("%s does not belong to %s", key_path, cert_path);
        goto out;
    }
    r = 0;
out:
    if (r != 0)
        ct_ca_fini(ca);
    return r;
}

void
ct_ca_fini(struct ct_ca *ca)
{
    X509_free(ca->cert);
    EVP_PKEY_free(ca->key);
    memset(ca, 0, sizeof(*ca));
}
