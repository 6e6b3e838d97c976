/* SPDX-License-Identifier: MIT */
/* `certs-tool init`: the default layout DIR/{ca,server,client,proxy}, completed on rerun. */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certs.h"

enum action {
    ACT_CREATE,
    ACT_KEEP,
    ACT_REPLACE
};

/* Whether the certificate in leaf directory |dir| is the one |req| asks for (of |ca|, its role
 * and id) and has expired: then a rerun issues it anew; anything else that does not fit is
 * refused by ct_leaf_check. */
static bool
leaf_expired(const struct ct_ca *ca, const struct ct_leaf_req *req, const char *dir)
{
    char path[CT_PATH_MAX], id[CT_ID_MAX + 1];
    enum ct_role role;
    X509 *cert = NULL;
    bool is_expired;

    if (ct_path(path, dir, "cert.pem") != 0 || ct_cert_load(&cert, path) != 0)
        return false; /* ct_leaf_check says why */
    is_expired = X509_check_issued(ca->cert, cert) == X509_V_OK &&
                 X509_verify(cert, ca->key) == 1 && ct_cert_identity(cert, &role, id) == 0 &&
                 role == req->role && strcmp(id, req->id) == 0 &&
                 X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0;
    ERR_clear_error();
    X509_free(cert);
    return is_expired;
}

/* Decides what to do with the leaf directory |dir| before anything is written, so that a
 * refusal leaves the tree as it was.  |ca| is NULL when the CA is still to be made. */
static int
plan_leaf(enum action *out, const struct ct_ca *ca, const struct ct_leaf_req *req, const char *dir,
          bool is_forced)
{
    enum ct_pair_state state;

    *out = ACT_CREATE;
    if (ct_pair_state(dir, &state) != 0)
        return -1;
    if (state == CT_PAIR_NONE)
        return 0;
    if (is_forced) {
        *out = ACT_REPLACE;
        return 0;
    }
    if (state != CT_PAIR_BOTH) {
        ct_err("%s has %s but no %s; use --force to replace it", dir,
               state == CT_PAIR_CERT_ONLY ? "cert.pem" : "key.pem",
               state == CT_PAIR_CERT_ONLY ? "key.pem" : "cert.pem");
        return -1;
    }
    if (ca == NULL) {
        ct_err("%s holds a certificate from another CA (the CA is about to be made); use "
               "--force to replace it",
               dir);
        return -1;
    }
    if (leaf_expired(ca, req, dir)) {
        *out = ACT_REPLACE; /* renewed: what a rerun is for */
        return 0;
    }
    if (ct_leaf_check(ca, req, dir) != 0)
        return -1;
    *out = ACT_KEEP;
    return 0;
}

int
ct_init(const struct ct_init_opts *opts)
{
    char ca_dir[CT_PATH_MAX], dirs[CT_ROLE_COUNT][CT_PATH_MAX];
    struct ct_leaf_req reqs[CT_ROLE_COUNT];
    enum action acts[CT_ROLE_COUNT];
    enum ct_pair_state ca_state;
    struct ct_ca ca = { 0 };
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    int k, r = -1;

    if (ct_path(ca_dir, opts->out, "ca") != 0 || ct_pair_state(ca_dir, &ca_state) != 0)
        goto out;
    if (ca_state == CT_PAIR_CERT_ONLY || ca_state == CT_PAIR_KEY_ONLY) {
        /* Never made anew on our own: every certificate it signed would stop working. */
        ct_err("%s has %s but no %s; restore it, or remove %s to start a new CA", ca_dir,
               ca_state == CT_PAIR_CERT_ONLY ? "cert.pem" : "key.pem",
               ca_state == CT_PAIR_CERT_ONLY ? "key.pem" : "cert.pem", opts->out);
        goto out;
    }
    if (ca_state == CT_PAIR_BOTH && ct_ca_load(&ca, ca_dir) != 0)
        goto out;
    for (k = 0; k < CT_ROLE_COUNT; k++) {
        reqs[k] = (struct ct_leaf_req){
            .role = (enum ct_role)k,
            .id = opts->ids[k],
            .names = k == CT_ROLE_SERVER ? opts->server_names : NULL,
            .days = opts->days,
        };
        if (ct_path(dirs[k], opts->out, ct_role_name((enum ct_role)k)) != 0 ||
            plan_leaf(&acts[k], ca.cert != NULL ? &ca : NULL, &reqs[k], dirs[k], opts->is_forced) !=
                0)
            goto out;
    }

    if (ca.cert == NULL) {
        if (ct_ca_create(&ca, ca_dir, opts->ca_days) != 0)
            goto out;
        ct_print_pair("created", ca_dir, ca.cert);
    } else {
        ct_print_pair("kept", ca_dir, ca.cert);
    }
    for (k = 0; k < CT_ROLE_COUNT; k++) {
        if (acts[k] == ACT_KEEP) {
            char path[CT_PATH_MAX];

            if (ct_path(path, dirs[k], "cert.pem") != 0 || ct_cert_load(&cert, path) != 0)
                goto out;
            ct_print_pair("kept", dirs[k], cert);
        } else {
            if (ct_leaf_make(&cert, &key, &ca, &reqs[k]) != 0 || ct_mkdirs(dirs[k]) != 0 ||
                ct_pair_write(dirs[k], cert, key) != 0)
                goto out;
            ct_print_pair(acts[k] == ACT_CREATE ? "created" : "replaced", dirs[k], cert);
        }
        X509_free(cert);
        cert = NULL;
        EVP_PKEY_free(key);
        key = NULL;
    }
    r = 0;
out:
    X509_free(cert);
    EVP_PKEY_free(key);
    ct_ca_fini(&ca);
    return r;
}
