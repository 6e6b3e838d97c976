/* SPDX-License-Identifier: MIT */
/* --bootstrap: on a relay's first start without certificates, a CA and the relay's own
 * certificate in the state directory (with certs-tool's code), and what to do next. */
#include <arpa/inet.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/x509.h>

#include "certs.h"
#include "relay.h"
#include "tn/addr.h"
#include "tn/err.h"
#include "tn/log.h"

#define RELAY_ID "relay"

/* The names the new certificate carries besides localhost, 127.0.0.1 and ::1: the listening
 * address when it is a specific one, and this host's name.  |names| borrows static storage. */
static void
bootstrap_names(const struct relay_config *cfg, struct ct_names *names)
{
    static char ip[256], hostname[256];
    char port[8];
    struct in6_addr a;
    size_t i;

    if (tn_addr_split(cfg->listen_addr, ip, sizeof(ip), port, sizeof(port)) == 0 &&
        strcmp(ip, "0.0.0.0") != 0 && strcmp(ip, "::") != 0 && strcmp(ip, "127.0.0.1") != 0 &&
        strcmp(ip, "::1") != 0 &&
        (inet_pton(AF_INET, ip, &a) == 1 || inet_pton(AF_INET6, ip, &a) == 1))
        ct_names_add_ip(names, "listen_addr", ip);
    if (gethostname(hostname, sizeof(hostname) - 1) != 0 || strcmp(hostname, "localhost") == 0)
        return;
    for (i = 0; hostname[i] != '\0'; i++) {
        char c = hostname[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.'))
            return; /* not a DNS name: leave it out */
    }
    if (i > 0)
        ct_names_add_dns(names, "hostname", hostname);
}

static void
print_file(const char *path)
{
    char buf[4096];
    size_t n;
    FILE *f = fopen(path, "re");

    while (f != NULL && (n = fread(buf, 1, sizeof(buf), f)) > 0)
        fwrite(buf, 1, n, stdout);
    if (f != NULL)
        fclose(f);
}

/* Whether the relay's certificate that an earlier start made in |dir| has expired (said
 * so): bootstrap then issues a new one, as it made the first. */
static bool
relay_cert_expired(const char *dir)
{
    char path[CT_PATH_MAX], when[CT_TIME_STR_MAX];
    X509 *cert = NULL;
    bool is_expired;

    if (ct_path(path, dir, "cert.pem") != 0 || ct_cert_load(&cert, path) != 0)
        return false; /* the TLS context says what is wrong with it */
    is_expired = X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0;
    if (is_expired)
        tn_log_warnx("bootstrap: the relay's certificate %s expired on %s: issuing a new one", path,
                     ct_time_str(X509_get0_notAfter(cert), when));
    X509_free(cert);
    return is_expired;
}

/* Makes what is missing in |state| (a CA, the relay's certificate) and prints the next steps. */
static int
bootstrap_create(const struct relay_config *cfg, const char *state)
{
    char ca_dir[CT_PATH_MAX], srv_dir[CT_PATH_MAX], ca_cert[CT_PATH_MAX], abs[PATH_MAX];
    enum ct_pair_state ca_st, srv_st;
    struct ct_names names = { 0 };
    struct ct_leaf_req req = { .role = CT_ROLE_SERVER, .id = RELAY_ID, .days = CT_LEAF_DAYS };
    struct ct_ca ca = { 0 };
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    size_t i;
    int r = -1;

    ct_prog = "server: bootstrap";
    if (ct_path(ca_dir, state, "ca") != 0 || ct_path(srv_dir, state, "server") != 0 ||
        ct_path(ca_cert, ca_dir, "cert.pem") != 0 || ct_pair_state(ca_dir, &ca_st) != 0 ||
        ct_pair_state(srv_dir, &srv_st) != 0)
        return -1;
    if (ca_st == CT_PAIR_BOTH && srv_st == CT_PAIR_BOTH) {
        if (!relay_cert_expired(srv_dir)) {
            tn_log_info("bootstrap: using the CA and certificate made earlier in %s", state);
            return 0;
        }
        srv_st = CT_PAIR_NONE; /* made anew below, with the same CA */
    }
    if (ca_st != CT_PAIR_NONE && ca_st != CT_PAIR_BOTH) {
        tn_log(TN_LOG_ERR,
               "bootstrap: %s holds half a CA (cert.pem or key.pem alone): restore "
               "it, or remove %s to start anew",
               ca_dir, state);
        return -1;
    }
    if (srv_st != CT_PAIR_NONE) {
        tn_log(TN_LOG_ERR,
               "bootstrap: %s holds a certificate without its CA, or half a pair: "
               "remove %s to start anew",
               srv_dir, state);
        return -1;
    }
    bootstrap_names(cfg, &names);
    req.names = &names;
    if (ct_mkdirs(state) != 0 ||
        (ca_st == CT_PAIR_NONE ? ct_ca_create(&ca, ca_dir, CT_CA_DAYS) : ct_ca_load(&ca, ca_dir)) !=
            0 ||
        ct_leaf_make(&cert, &key, &ca, &req) != 0 || ct_mkdirs(srv_dir) != 0 ||
        ct_pair_write(srv_dir, cert, key) != 0)
        goto out;
    if (realpath(state, abs) == NULL)
        snprintf(abs, sizeof(abs), "%s", state);
    printf("relay bootstrap: %s in %s\n",
           ca_st == CT_PAIR_NONE ? "created a CA and the relay's certificate"
                                 : "created the relay's certificate with the CA",
           abs);
    printf("\nThe CA certificate: every client and proxy needs it (tls.ca_file, --tls-ca):\n\n");
    print_file(ca_cert);
    printf("\nIssue a client's and a proxy's certificate with this CA (its key stays in %s/ca):\n\n"
           "  certs-tool issue --role client --id client-1 --ca %s/ca --out client-1\n"
           "  certs-tool issue --role proxy --id proxy-1 --ca %s/ca --out proxy-1\n",
           abs, abs, abs);
    printf("\nThe relay's certificate names localhost, 127.0.0.1, ::1");
    for (i = 0; i < names.n_ip; i++)
        printf(", %s", names.ip[i]);
    for (i = 0; i < names.n_dns; i++)
        printf(", %s", names.dns[i]);
    printf(".  Clients and proxies check the name they dial: for another one, give them\n"
           "--server-name with one of these, or issue the relay's certificate again:\n\n"
           "  certs-tool issue --role server --id %s --dns NAME --ca %s/ca --out %s/server "
           "--force\n\n",
           RELAY_ID, abs, abs);
    fflush(stdout);
    tn_log_info("bootstrap: CA and certificate created in %s", abs);
    r = 0;
out:
    X509_free(cert);
    EVP_PKEY_free(key);
    ct_ca_fini(&ca);
    return r;
}

/* Sets *|field| to |dir|/|name| unless it is set already. */
static int
default_path(char **field, const char *dir, const char *name)
{
    char path[CT_PATH_MAX];

    if (*field != NULL)
        return 0;
    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path) ||
        (*field = strdup(path)) == NULL) {
        tn_log(TN_LOG_ERR, "bootstrap: state_dir %s: path too long or out of memory", dir);
        return TN_ERR_CONFIG;
    }
    return 0;
}

int
bootstrap_apply(struct relay_config *cfg, bool may_create)
{
    struct tn_tls_conf *t = &cfg->tls;

    if (!cfg->bootstrap)
        return 0;
    if (t->cert_file != NULL || t->key_file != NULL || t->ca_file != NULL) {
        if (may_create)
            tn_log_warnx("bootstrap: the TLS files are given (tls.cert_file...): nothing to make");
        return 0;
    }
    if (default_path(&t->cert_file, cfg->state_dir, "server/cert.pem") != 0 ||
        default_path(&t->key_file, cfg->state_dir, "server/key.pem") != 0 ||
        default_path(&t->ca_file, cfg->state_dir, "ca/cert.pem") != 0)
        return TN_ERR_CONFIG;
    if (may_create && bootstrap_create(cfg, cfg->state_dir) != 0)
        return TN_ERR_TLS;
    return 0;
}
