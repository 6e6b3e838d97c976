/* SPDX-License-Identifier: MIT */
/* The modules of certs-tool: the deployment's CA, leaf certificates and their files on disk. */
#ifndef CT_CERTS_H
#define CT_CERTS_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Unless said otherwise, every function here reports its own error on stderr (one line,
 * "certs-tool: ...", naming the file or option at fault) and returns 0 or -1.
 */

struct GENERAL_NAME_st;
struct asn1_string_st;
struct evp_pkey_st;
struct x509_st;

enum ct_role {
    CT_ROLE_SERVER,
    CT_ROLE_CLIENT,
    CT_ROLE_PROXY,
    CT_ROLE_COUNT
};

#define CT_ID_MAX    64    /* an id is 1-64 characters of [A-Za-z0-9._-] */
#define CT_NAMES_MAX 32    /* extra DNS names, and extra IP addresses, per certificate */
#define CT_DAYS_MAX  36500 /* validity bound; keeps notAfter far below year 9999 */
#define CT_LEAF_DAYS 365
#define CT_CA_DAYS   3650
#define CT_CA_CN     "tunnel CA" /* then a random tag: each CA its own subject */
/* Certificates start and CRLs are dated this much before now: a verifier whose clock is a
 * little behind still takes them. */
#define CT_CLOCK_SKEW_SECONDS (5 * 60)
#define CT_URI_SCHEME         "tunnel://"
#define CT_PATH_MAX           4096
#define CT_TIME_STR_MAX       32

/* Extra subjectAltNames, as given on the command line (borrowed, already validated). */
struct ct_names {
    const char *dns[CT_NAMES_MAX];
    size_t n_dns;
    const char *ip[CT_NAMES_MAX];
    size_t n_ip;
};

/* What a leaf certificate should say. */
struct ct_leaf_req {
    enum ct_role role;
    const char *id;
    const struct ct_names *names; /* may be NULL */
    int days;
};

/* A loaded CA; both members are owned (ct_ca_fini frees them). */
struct ct_ca {
    struct x509_st *cert;
    struct evp_pkey_st *key;
};

/* err.c: one-line messages on stderr prefixed "certs-tool: " (|ct_prog|: another program using
 * these modules names itself).  ct_err_ssl appends
 * ": <reason>" from OpenSSL's error queue, then clears the queue. */
extern const char *ct_prog;
void ct_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void ct_err_ssl(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void ct_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* cert.c: building blocks shared by the CA and the leaves. */

/* A new ECDSA P-256 key in |*out|. */
int ct_key_new(struct evp_pkey_st **out);

/* An unsigned X.509 v3 certificate for |key| in |*out|: subject CN=|cn|, a random positive
 * 128-bit serial, valid from five minutes ago (clock skew) for |days| days. */
int ct_cert_new(struct x509_st **out, const char *cn, struct evp_pkey_st *key, int days);

/* Adds the extension |nid| written in openssl.cnf syntax (|value|, e.g. "critical,CA:FALSE").
 * |issuer| is the signing certificate (|cert| itself when self-signed). */
int ct_cert_add_ext(struct x509_st *cert, struct x509_st *issuer, int nid, const char *value);

/* Sets the issuer name from |issuer| (|cert| itself when self-signed) and signs with
 * |issuer_key| and SHA-256. */
int ct_cert_sign(struct x509_st *cert, struct x509_st *issuer, struct evp_pkey_st *issuer_key);

/* Reads the identity from |cert|: its one URI SAN "tunnel://ROLE/ID", whose ID must also be
 * the subject CN.  Returns 0 and fills |*role| and |id| (CT_ID_MAX + 1 bytes), -ENOENT when
 * |cert| has no tunnel URI, or -EINVAL when it is malformed, repeated or disagrees with the
 * CN.  Reports nothing. */
int ct_cert_identity(struct x509_st *cert, enum ct_role *role, char *id);

/* Whether |cert| says CA:TRUE in a basicConstraints extension. */
bool ct_cert_is_ca(struct x509_st *cert);

/* Formats |t| as "2025-01-31T12:00:00Z" into |buf| (CT_TIME_STR_MAX bytes); "?" when |t| is
 * unreadable.  Returns |buf|.  Reports nothing. */
char *ct_time_str(const struct asn1_string_st *t, char *buf);

/* Formats one GENERAL_NAME as "DNS:name", "IP:addr" or "URI:uri" into |buf| of |size| bytes.
 * Returns |buf|.  Reports nothing. */
char *ct_general_name_str(const struct GENERAL_NAME_st *gen, char *buf, size_t size);

/* issue.c: leaf certificates and the checks on their inputs. */

/* "server", "client" or "proxy". */
const char *ct_role_name(enum ct_role role);

/* Parses a role name; the error names |opt| and quotes |s|. */
int ct_role_parse(const char *opt, const char *s, enum ct_role *out);

/* Whether the |len| bytes at |s| form an id (1-64 characters of [A-Za-z0-9._-]).  Reports
 * nothing. */
bool ct_id_is_valid(const char *s, size_t len);

/* Checks an id (1-64 characters of [A-Za-z0-9._-]); the error names |opt| and quotes |s|. */
int ct_id_check(const char *opt, const char *s);

/* Checks a DNS name or an IP address and appends it to |names| (borrowed); the error names
 * |opt| and quotes |s|. */
int ct_names_add_dns(struct ct_names *names, const char *opt, const char *s);
int ct_names_add_ip(struct ct_names *names, const char *opt, const char *s);

/* Makes a new key and a certificate for |req| signed by |ca|, in |*cert_out| and
 * |*key_out| (both owned by the caller).  Server certificates also get DNS:localhost,
 * IP:127.0.0.1 and IP:::1.  Warns when the certificate would outlive the CA. */
int ct_leaf_make(struct x509_st **cert_out, struct evp_pkey_st **key_out, const struct ct_ca *ca,
                 const struct ct_leaf_req *req);

/* Checks that the pair already in |dir| serves |req|: issued by |ca|, not expired, key
 * matching, identity tunnel://ROLE/ID and every requested name present.  Returns 0, or -1
 * after reporting why not (ending "; use --force to replace it"). */
int ct_leaf_check(const struct ct_ca *ca, const struct ct_leaf_req *req, const char *dir);

/* `certs-tool issue`: loads the CA in |ca_dir| and writes one leaf for |req| to |out_dir|
 * (NULL: certs/ROLE-ID); a pair already there is replaced only if |is_forced|. */
int ct_issue(const char *ca_dir, const char *out_dir, const struct ct_leaf_req *req,
             bool is_forced);

/* ca.c: the deployment CA (CN "tunnel CA" and a random tag, CA:TRUE, pathlen:0). */

/* Makes a new CA valid for |days| days, writes it to |dir| (created if needed) and leaves it
 * loaded in |ca| (zeroed first). */
int ct_ca_create(struct ct_ca *ca, const char *dir, int days);

/* Loads the CA in |dir| into |ca| (zeroed first, and again on failure), refusing a
 * certificate that is not a CA or has expired, and a key that does not match it.  Warns when
 * key.pem is open to other users. */
int ct_ca_load(struct ct_ca *ca, const char *dir);

/* Frees what |ca| holds and zeroes it; a zeroed |ca| is fine. */
void ct_ca_fini(struct ct_ca *ca);

/* init.c: `certs-tool init`, the default layout. */
struct ct_init_opts {
    const char *out;                /* DIR, holding ca/ server/ client/ proxy/ */
    const char *ids[CT_ROLE_COUNT]; /* id per role */
    const struct ct_names *server_names;
    int days, ca_days;
    bool is_forced; /* replace existing leaves (never the CA) */
};

/* Creates what is missing under |opts->out|, reusing an existing CA, and prints one line per
 * directory ("created", "kept" or "replaced") to stdout.  Checks every existing directory
 * before writing anything. */
int ct_init(const struct ct_init_opts *opts);

/* store.c: files.  cert.pem (mode 0644) and key.pem (PKCS#8, mode 0600) in one directory. */

enum ct_pair_state {
    CT_PAIR_NONE,
    CT_PAIR_BOTH,
    CT_PAIR_CERT_ONLY,
    CT_PAIR_KEY_ONLY
};

/* Joins |dir| and |name| into |buf| (CT_PATH_MAX bytes). */
int ct_path(char *buf, const char *dir, const char *name);

/* Which of cert.pem and key.pem exist in |dir| (a missing |dir| has neither). */
int ct_pair_state(const char *dir, enum ct_pair_state *out);

/* Creates |dir| and its missing parents (mode 0755 before the umask). */
int ct_mkdirs(const char *dir);

/* Writes |cert| and |key| to |dir|/cert.pem and |dir|/key.pem, replacing existing ones.  Each
 * file is written and synced under a temporary name first; the key is never readable by
 * others, not even briefly.  On failure neither file of a new pair is left behind. */
int ct_pair_write(const char *dir, struct x509_st *cert, struct evp_pkey_st *key);

/* Reads one PEM certificate or one unencrypted PEM private key from |path| into |*out|. */
int ct_cert_load(struct x509_st **out, const char *path);
int ct_key_load(struct evp_pkey_st **out, const char *path);

/* Whether |a| and |b| name the same existing directory.  Reports nothing. */
bool ct_same_dir(const char *a, const char *b);

/* revoke.c */

/* `certs-tool revoke`: adds the certificate in |cert_path| (issued by the CA in |ca_dir|) to
 * the CA's CRL at |crl_path| (NULL: |ca_dir|/crl.pem), made anew if missing, and signs it
 * again valid for |days| days.  Prints what it did. */
int ct_revoke(const char *ca_dir, const char *crl_path, const char *cert_path, int days);

/* show.c */

/* Prints role, id, subject, issuer, serial, validity, SANs and SHA-256 fingerprint of the
 * certificate in |path| to stdout. */
int ct_show(const char *path);

/* Prints "VERB DIR: IDENTITY, expires TIME" for a pair written or kept in |dir|. */
void ct_print_pair(const char *verb, const char *dir, struct x509_st *cert);

#endif
