/* SPDX-License-Identifier: MIT */
/* Leaf certificates: the identity tunnel://ROLE/ID that the relay reads, and `issue`. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certs.h"

#define DNS_NAME_MAX  253
#define DNS_LABEL_MAX 63

static const char *const role_names[CT_ROLE_COUNT] = {
    [CT_ROLE_SERVER] = "server",
    [CT_ROLE_CLIENT] = "client",
    [CT_ROLE_PROXY] = "proxy",
};

/* Every server certificate also serves local health checks and same-host setups. */
static const char *const server_default_dns[] = { "localhost" };
static const char *const server_default_ip[] = { "127.0.0.1", "::1" };

const char *
ct_role_name(enum ct_role role)
{
    return role_names[role];
}

int
ct_role_parse(const char *opt, const char *s, enum ct_role *out)
{
    int k;

    for (k = 0; k < CT_ROLE_COUNT; k++) {
        if (strcmp(s, role_names[k]) == 0) {
            *out = (enum ct_role)k;
            return 0;
        }
    }
    ct_err("%s: '%s' is not a role (server, client or proxy)", opt, s);
    return -1;
}

bool
ct_id_is_valid(const char *s, size_t len)
{
    size_t i;

    if (len == 0 || len > CT_ID_MAX)
        return false;
    for (i = 0; i < len; i++) {
        char c = s[i];

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

int
ct_id_check(const char *opt, const char *s)
{
    if (!ct_id_is_valid(s, strlen(s))) {
        ct_err("%s: '%s' is not a valid id (1-%d characters of A-Z a-z 0-9 . _ -)", opt, s,
               CT_ID_MAX);
        return -1;
    }
    return 0;
}

/* A host name of letters, digits and hyphens, dot-separated, optionally starting with a
 * wildcard label "*.". */
static bool
dns_name_is_valid(const char *s)
{
    size_t len = strlen(s), label = 0, i;

    if (len == 0 || len > DNS_NAME_MAX)
        return false;
    if (strncmp(s, "*.", 2) == 0)
        s += 2;
    for (i = 0;; i++) {
        char c = s[i];

        if (c == '.' || c == '\0') {
            if (label == 0 || label > DNS_LABEL_MAX || s[i - 1] == '-')
                return false;
            if (c == '\0')
                return true;
            label = 0;
        } else if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   (c == '-' && label > 0)) {
            label++;
        } else {
            return false;
        }
    }
}

int
ct_names_add_dns(struct ct_names *names, const char *opt, const char *s)
{
    unsigned char buf[16];

    /* A verifier matches an address only against an IP SAN: as a DNS name it never fits. */
    if (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1) {
        ct_err("%s: '%s' is an IP address: give it with %s", opt, s,
               strcmp(opt, "--server-dns") == 0 ? "--server-ip" : "--ip");
        return -1;
    }
    if (!dns_name_is_valid(s)) {
        ct_err("%s: '%s' is not a DNS name", opt, s);
        return -1;
    }
    if (names->n_dns == CT_NAMES_MAX) {
        ct_err("%s: more than %d DNS names", opt, CT_NAMES_MAX);
        return -1;
    }
    names->dns[names->n_dns++] = s;
    return 0;
}

int
ct_names_add_ip(struct ct_names *names, const char *opt, const char *s)
{
    unsigned char buf[16];

    if (inet_pton(AF_INET, s, buf) != 1 && inet_pton(AF_INET6, s, buf) != 1) {
        ct_err("%s: '%s' is not an IPv4 or IPv6 address", opt, s);
        return -1;
    }
    if (names->n_ip == CT_NAMES_MAX) {
        ct_err("%s: more than %d IP addresses", opt, CT_NAMES_MAX);
        return -1;
    }
    names->ip[names->n_ip++] = s;
    return 0;
}

/* Appends one name to |gens| unless an equal one is there already.  |s| was validated. */
static int
gens_add(GENERAL_NAMES *gens, int type, const char *s)
{
    GENERAL_NAME *gen = NULL;
    ASN1_STRING *value = NULL;
    unsigned char ip[16];
    int i, ip_len = 0, r = -1;

    if (type == GEN_IPADD) {
        if (inet_pton(AF_INET, s, ip) == 1)
            ip_len = 4;
        else if (inet_pton(AF_INET6, s, ip) == 1)
            ip_len = 16;
        if ((value = ASN1_OCTET_STRING_new()) == NULL || ip_len == 0 ||
            ASN1_OCTET_STRING_set(value, ip, ip_len) != 1)
            goto out;
    } else if ((value = ASN1_IA5STRING_new()) == NULL || ASN1_STRING_set(value, s, -1) != 1) {
        goto out;
    }
    if ((gen = GENERAL_NAME_new()) == NULL)
        goto out;
    GENERAL_NAME_set0_value(gen, type, value);
    value = NULL; /* transferred */
    for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        if (GENERAL_NAME_cmp(sk_GENERAL_NAME_value(gens, i), gen) == 0) {
            r = 0;
            goto out;
        }
    }
    if (sk_GENERAL_NAME_push(gens, gen) == 0)
        goto out;
    gen = NULL; /* transferred */
    r = 0;
out:
    if (r != 0)
        ct_err_ssl("cannot add the name '%s'", s);
    ASN1_STRING_free(value);
    GENERAL_NAME_free(gen);
    return r;
}

/* The subjectAltNames |req| asks for: the identity URI first, then DNS names, then IPs. */
static int
req_names(GENERAL_NAMES **out, const struct ct_leaf_req *req)
{
    char uri[sizeof(CT_URI_SCHEME) + 16 + CT_ID_MAX];
    GENERAL_NAMES *gens = NULL;
    size_t i;
    int r = -1;

    *out = NULL;
    if ((gens = GENERAL_NAMES_new()) == NULL) {
        ct_err_ssl("cannot make subjectAltNames");
        goto out;
    }
    snprintf(uri, sizeof(uri), "%s%s/%s", CT_URI_SCHEME, ct_role_name(req->role), req->id);
    if (gens_add(gens, GEN_URI, uri) != 0)
        goto out;
    if (req->role == CT_ROLE_SERVER) {
        for (i = 0; i < sizeof(server_default_dns) / sizeof(server_default_dns[0]); i++)
            if (gens_add(gens, GEN_DNS, server_default_dns[i]) != 0)
                goto out;
    }
    for (i = 0; req->names != NULL && i < req->names->n_dns; i++)
        if (gens_add(gens, GEN_DNS, req->names->dns[i]) != 0)
            goto out;
    if (req->role == CT_ROLE_SERVER) {
        for (i = 0; i < sizeof(server_default_ip) / sizeof(server_default_ip[0]); i++)
            if (gens_add(gens, GEN_IPADD, server_default_ip[i]) != 0)
                goto out;
    }
    for (i = 0; req->names != NULL && i < req->names->n_ip; i++)
        if (gens_add(gens, GEN_IPADD, req->names->ip[i]) != 0)
            goto out;
    *out = gens;
    gens = NULL; /* transferred */
    r = 0;
out:
    GENERAL_NAMES_free(gens);
    return r;
}

int
ct_leaf_make(X509 **cert_out, EVP_PKEY **key_out, const struct ct_ca *ca,
             const struct ct_leaf_req *req)
{
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    GENERAL_NAMES *gens = NULL;
    char ca_end[CT_TIME_STR_MAX];
    int r = -1;

    *cert_out = NULL;
    *key_out = NULL;
    if (req_names(&gens, req) != 0 || ct_key_new(&key) != 0 ||
        ct_cert_new(&cert, req->id, key, req->days) != 0)
        goto out;
    if (ct_cert_add_ext(cert, ca->cert, NID_basic_constraints, "critical,CA:FALSE") != 0 ||
        ct_cert_add_ext(cert, ca->cert, NID_key_usage, "critical,digitalSignature") != 0 ||
        ct_cert_add_ext(cert, ca->cert, NID_ext_key_usage,
                        req->role == CT_ROLE_SERVER ? "serverAuth" : "clientAuth") != 0 ||
        ct_cert_add_ext(cert, ca->cert, NID_subject_key_identifier, "hash") != 0 ||
        ct_cert_add_ext(cert, ca->cert, NID_authority_key_identifier, "keyid:always") != 0)
        goto out;
    /* Built as GENERAL_NAMES rather than from an openssl.cnf string, so that no name can
     * smuggle in a second entry with a comma. */
    if (X509_add1_ext_i2d(cert, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1) {
        ct_err_ssl("cannot add subjectAltName");
        goto out;
    }
    if (ct_cert_sign(cert, ca->cert, ca->key) != 0)
        goto out;
    if (ASN1_TIME_compare(X509_get0_notAfter(cert), X509_get0_notAfter(ca->cert)) > 0)
        ct_warn("%s/%s outlives the CA, which expires %s", ct_role_name(req->role), req->id,
                ct_time_str(X509_get0_notAfter(ca->cert), ca_end));
    *cert_out = cert;
    cert = NULL; /* transferred */
    *key_out = key;
    key = NULL; /* transferred */
    r = 0;
out:
    GENERAL_NAMES_free(gens);
    X509_free(cert);
    EVP_PKEY_free(key);
    return r;
}

/* Whether |have| holds a name equal to |want|. */
static bool
gens_contain(const GENERAL_NAMES *have, GENERAL_NAME *want)
{
    int i;

    for (i = 0; i < sk_GENERAL_NAME_num(have); i++)
        if (GENERAL_NAME_cmp(sk_GENERAL_NAME_value(have, i), want) == 0)
            return true;
    return false;
}

int
ct_leaf_check(const struct ct_ca *ca, const struct ct_leaf_req *req, const char *dir)
{
    char path[CT_PATH_MAX], id[CT_ID_MAX + 1], when[CT_TIME_STR_MAX], name[CT_PATH_MAX];
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    GENERAL_NAMES *want = NULL, *have = NULL;
    enum ct_role role;
    int i, q, r = -1;

    if (ct_path(path, dir, "cert.pem") != 0 || ct_cert_load(&cert, path) != 0)
        goto out;
    if (X509_check_issued(ca->cert, cert) != X509_V_OK || X509_verify(cert, ca->key) != 1) {
        ERR_clear_error();
        ct_err("%s was not issued by this CA; use --force to replace it", path);
        goto out;
    }
    if (X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0) {
        ct_err("%s expired %s; use --force to replace it", path,
               ct_time_str(X509_get0_notAfter(cert), when));
        goto out;
    }
    if (X509_cmp_current_time(X509_get0_notBefore(cert)) >= 0) {
        ct_err("%s is not valid before %s; use --force to replace it", path,
               ct_time_str(X509_get0_notBefore(cert), when));
        goto out;
    }
    if ((q = ct_cert_identity(cert, &role, id)) != 0) {
        ct_err("%s has %s tunnel:// identity; use --force to replace it", path,
               q == -ENOENT ? "no" : "a malformed");
        goto out;
    }
    if (role != req->role || strcmp(id, req->id) != 0) {
        ct_err("%s is for %s%s/%s, not %s%s/%s; use --force to replace it", path, CT_URI_SCHEME,
               ct_role_name(role), id, CT_URI_SCHEME, ct_role_name(req->role), req->id);
        goto out;
    }
    if (req_names(&want, req) != 0)
        goto out;
    have = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    for (i = 0; i < sk_GENERAL_NAME_num(want); i++) {
        if (!gens_contain(have, sk_GENERAL_NAME_value(want, i))) {
            ct_err("%s lacks %s; use --force to replace it", path,
                   ct_general_name_str(sk_GENERAL_NAME_value(want, i), name, sizeof(name)));
            goto out;
        }
    }
    if (ct_path(path, dir, "key.pem") != 0 || ct_key_load(&key, path) != 0)
        goto out;
    if (X509_check_private_key(cert, key) != 1) {
        ERR_clear_error();
        ct_err("%s does not match cert.pem; use --force to replace it", path);
        goto out;
    }
    r = 0;
out:
    GENERAL_NAMES_free(want);
    GENERAL_NAMES_free(have);
    X509_free(cert);
    EVP_PKEY_free(key);
    return r;
}

int
ct_issue(const char *ca_dir, const char *out_dir, const struct ct_leaf_req *req, bool is_forced)
{
    struct ct_ca ca = { 0 };
    char dir[CT_PATH_MAX];
    enum ct_pair_state state;
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    int r = -1;

    if (out_dir == NULL) {
        snprintf(dir, sizeof(dir), "certs/%s-%s", ct_role_name(req->role), req->id);
        out_dir = dir;
    }
    if (ct_ca_load(&ca, ca_dir) != 0)
        goto out;
    if (ct_same_dir(out_dir, ca_dir)) {
        ct_err("%s is the CA directory; choose another --out", out_dir);
        goto out;
    }
    if (ct_pair_state(out_dir, &state) != 0)
        goto out;
    if (state != CT_PAIR_NONE && !is_forced) {
        ct_err("%s already holds a certificate or key; use --force to replace it", out_dir);
        goto out;
    }
    if (ct_leaf_make(&cert, &key, &ca, req) != 0 || ct_mkdirs(out_dir) != 0 ||
        ct_pair_write(out_dir, cert, key) != 0)
        goto out;
    ct_print_pair(state == CT_PAIR_NONE ? "created" : "replaced", out_dir, cert);
    r = 0;
out:
    ct_ca_fini(&ca);
    X509_free(cert);
    EVP_PKEY_free(key);
    return r;
}
