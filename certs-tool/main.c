/* SPDX-License-Identifier: MIT */
/* certs-tool: makes the deployment's CA and the certificates of server, clients and proxies. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certs.h"

#define EXIT_USAGE 2

static const char usage_text[] =
    "Usage: certs-tool [init] [--out DIR] [--server-id ID] [--client-id ID] [--proxy-id ID]\n"
    "                  [--server-dns NAME]... [--server-ip ADDR]... [--days N] [--ca-days N]\n"
    "                  [--force]\n"
    "  or:  certs-tool issue --role ROLE --id ID [--dns NAME]... [--ip ADDR]... [--days N]\n"
    "                  [--ca DIR] [--out DIR] [--force]\n"
    "  or:  certs-tool revoke CERT [--ca DIR] [--crl FILE] [--days N]\n"
    "  or:  certs-tool show FILE\n"
    "  or:  certs-tool --help | --version\n"
    "Makes the deployment's CA and the certificates of the relay, clients and proxies.\n"
    "\n"
    "init (the default) fills DIR with ca/, server/, client/ and proxy/, each holding cert.pem\n"
    "and key.pem.  An existing CA is reused and existing certificates are kept, so a rerun\n"
    "only adds what is missing.\n"
    "  --out DIR          directory to fill (default: certs)\n"
    "  --server-id ID     id of the server (relay) certificate (default: relay)\n"
    "  --client-id ID     id of the client certificate (default: client-1)\n"
    "  --proxy-id ID      id of the proxy certificate (default: proxy-1)\n"
    "  --server-dns NAME  add a DNS name to the server certificate (repeatable)\n"
    "  --server-ip ADDR   add an IP address to the server certificate (repeatable)\n"
    "  --days N           validity of new certificates in days (default: 365)\n"
    "  --ca-days N        validity of a new CA in days (default: 3650)\n"
    "  --force            replace existing certificates (never the CA)\n"
    "\n"
    "issue makes one certificate signed by an existing CA.\n"
    "  --role ROLE        server, client or proxy\n"
    "  --id ID            1-64 characters of A-Z a-z 0-9 . _ -\n"
    "  --dns NAME         add a DNS name (repeatable)\n"
    "  --ip ADDR          add an IPv4 or IPv6 address (repeatable)\n"
    "  --days N           validity in days (default: 365)\n"
    "  --ca DIR           directory of the CA's cert.pem and key.pem (default: certs/ca)\n"
    "  --out DIR          where to write cert.pem and key.pem (default: certs/ROLE-ID)\n"
    "  --force            replace a certificate already in --out\n"
    "\n"
    "revoke adds the certificate in file CERT to the CA's certificate revocation list\n"
    "and signs the list again (relays read it with tls: {crl_file}, again on SIGHUP).\n"
    "  --ca DIR           directory of the CA (default: certs/ca)\n"
    "  --crl FILE         the CRL to update or create (default: DIR/crl.pem)\n"
    "  --days N           the CRL's validity: renew it before, or its CA's certificates are "
    "refused\n"
    "                     (default: 365)\n"
    "\n"
    "show prints the role, id, subject, issuer, serial, validity, names and SHA-256\n"
    "fingerprint of a PEM certificate.\n"
    "\n"
    "Every certificate names its holder with the URI tunnel://ROLE/ID (and CN=ID); server\n"
    "certificates also carry DNS:localhost, IP:127.0.0.1 and IP:::1.  A server certificate\n"
    "with no other name is bound to no host: clients and proxies without --server-name trust\n"
    "it by the CA and its role.  Keys are ECDSA P-256, PKCS#8 PEM, mode 0600.  Exit status:\n"
    "0 done, 1 error, 2 usage error.\n";

/* Everything any subcommand accepts; strings are borrowed from argv. */
struct args {
    const char *out, *ca, *role, *id, *days, *ca_days, *crl;
    const char *ids[CT_ROLE_COUNT];
    struct ct_names names;
    bool is_forced, is_help, is_version;
    const char *pos[1];
    size_t n_pos;
};

enum opt_kind {
    OPT_STR,  /* const char * at |offset| */
    OPT_FLAG, /* bool at |offset| */
    OPT_DNS,  /* appended to |names| */
    OPT_IP,   /* appended to |names| */
};

struct opt {
    const char *name;
    enum opt_kind kind;
    size_t offset;
};

#define FIELD(f) offsetof(struct args, f)

static const struct opt init_opts[] = {
    { .name = "--out", .kind = OPT_STR, .offset = FIELD(out) },
    { .name = "--server-id", .kind = OPT_STR, .offset = FIELD(ids[CT_ROLE_SERVER]) },
    { .name = "--client-id", .kind = OPT_STR, .offset = FIELD(ids[CT_ROLE_CLIENT]) },
    { .name = "--proxy-id", .kind = OPT_STR, .offset = FIELD(ids[CT_ROLE_PROXY]) },
    { .name = "--server-dns", .kind = OPT_DNS },
    { .name = "--server-ip", .kind = OPT_IP },
    { .name = "--days", .kind = OPT_STR, .offset = FIELD(days) },
    { .name = "--ca-days", .kind = OPT_STR, .offset = FIELD(ca_days) },
    { .name = "--force", .kind = OPT_FLAG, .offset = FIELD(is_forced) },
    { .name = "--help", .kind = OPT_FLAG, .offset = FIELD(is_help) },
    { .name = "-h", .kind = OPT_FLAG, .offset = FIELD(is_help) },
    { .name = "--version", .kind = OPT_FLAG, .offset = FIELD(is_version) },
    { .name = NULL },
};

static const struct opt issue_opts[] = {
    { .name = "--role", .kind = OPT_STR, .offset = FIELD(role) },
    { .name = "--id", .kind = OPT_STR, .offset = FIELD(id) },
    { .name = "--dns", .kind = OPT_DNS },
    { .name = "--ip", .kind = OPT_IP },
    { .name = "--days", .kind = OPT_STR, .offset = FIELD(days) },
    { .name = "--ca", .kind = OPT_STR, .offset = FIELD(ca) },
    { .name = "--out", .kind = OPT_STR, .offset = FIELD(out) },
    { .name = "--force", .kind = OPT_FLAG, .offset = FIELD(is_forced) },
    { .name = "--help", .kind = OPT_FLAG, .offset = FIELD(is_help) },
    { .name = "-h", .kind = OPT_FLAG, .offset = FIELD(is_help) },
    { .name = "--version", .kind = OPT_FLAG, .offset = FIELD(is_version) },
    { .name = NULL },
};

static const struct opt revoke_opts[] = {
    { .name = "--ca", .kind = OPT_STR, .offset = FIELD(ca) },
    { .name = "--crl", .kind = OPT_STR, .offset = FIELD(crl) },
    { .name = "--days", .kind = OPT_STR, .offset = FIELD(days) },
    { .name = "--help", .kind = OPT_FLAG, .offset = FIELD(is_help) },
    { .name = "-h", .kind = OPT_FLAG, .offset = FIELD(is_help) },
    { .name = "--version", .kind = OPT_FLAG, .offset = FIELD(is_version) },
    { .name = NULL },
};

static const struct opt show_opts[] = {
    { .name = "--help", .kind = OPT_FLAG, .offset = FIELD(is_help) },
    { .name = "-h", .kind = OPT_FLAG, .offset = FIELD(is_help) },
    { .name = "--version", .kind = OPT_FLAG, .offset = FIELD(is_version) },
    { .name = NULL },
};

struct cmd {
    const char *name;
    const struct opt *opts;
    size_t n_pos; /* positional arguments it takes */
    int (*run)(struct args *a);
};

/* Parses |s| as a number of days into |*out|; the error names |opt| and quotes |s|. */
static int
parse_days(const char *opt, const char *s, int *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0 || v < 1 || v > CT_DAYS_MAX) {
        ct_err("%s: '%s' is not a number of days (1-%d)", opt, s, CT_DAYS_MAX);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int
cmd_init(struct args *a)
{
    static const char *const default_ids[CT_ROLE_COUNT] = {
        [CT_ROLE_SERVER] = "relay",
        [CT_ROLE_CLIENT] = "client-1",
        [CT_ROLE_PROXY] = "proxy-1",
    };
    static const char *const id_opts[CT_ROLE_COUNT] = {
        [CT_ROLE_SERVER] = "--server-id",
        [CT_ROLE_CLIENT] = "--client-id",
        [CT_ROLE_PROXY] = "--proxy-id",
    };
    struct ct_init_opts o = {
        .out = a->out != NULL ? a->out : "certs",
        .server_names = &a->names,
        .days = CT_LEAF_DAYS,
        .ca_days = CT_CA_DAYS,
        .is_forced = a->is_forced,
    };
    int k;

    for (k = 0; k < CT_ROLE_COUNT; k++) {
        o.ids[k] = a->ids[k] != NULL ? a->ids[k] : default_ids[k];
        if (ct_id_check(id_opts[k], o.ids[k]) != 0)
            return EXIT_FAILURE;
    }
    if ((a->days != NULL && parse_days("--days", a->days, &o.days) != 0) ||
        (a->ca_days != NULL && parse_days("--ca-days", a->ca_days, &o.ca_days) != 0))
        return EXIT_FAILURE;
    return ct_init(&o) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

static int
cmd_issue(struct args *a)
{
    struct ct_leaf_req req = { .names = &a->names, .days = CT_LEAF_DAYS };

    if (a->role == NULL || a->id == NULL) {
        ct_err("issue needs --role and --id; see --help");
        return EXIT_USAGE;
    }
    if (ct_role_parse("--role", a->role, &req.role) != 0 || ct_id_check("--id", a->id) != 0 ||
        (a->days != NULL && parse_days("--days", a->days, &req.days) != 0))
        return EXIT_FAILURE;
    req.id = a->id;
    return ct_issue(a->ca != NULL ? a->ca : "certs/ca", a->out, &req, a->is_forced) == 0
               ? EXIT_SUCCESS
               : EXIT_FAILURE;
}

static int
cmd_revoke(struct args *a)
{
    int days = CT_LEAF_DAYS;

    if (a->days != NULL && parse_days("--days", a->days, &days) != 0)
        return EXIT_FAILURE;
    return ct_revoke(a->ca != NULL ? a->ca : "certs/ca", a->crl, a->pos[0], days) == 0
               ? EXIT_SUCCESS
               : EXIT_FAILURE;
}

static int
cmd_show(struct args *a)
{
    return ct_show(a->pos[0]) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

static const struct cmd cmds[] = {
    { .name = "init", .opts = init_opts, .n_pos = 0, .run = cmd_init },
    { .name = "issue", .opts = issue_opts, .n_pos = 0, .run = cmd_issue },
    { .name = "revoke", .opts = revoke_opts, .n_pos = 1, .run = cmd_revoke },
    { .name = "show", .opts = show_opts, .n_pos = 1, .run = cmd_show },
};

static const struct opt *
find_opt(const struct opt *opts, const char *arg, size_t len)
{
    for (; opts->name != NULL; opts++)
        if (strlen(opts->name) == len && strncmp(opts->name, arg, len) == 0)
            return opts;
    return NULL;
}

/* Fills |a| from |argv| for |cmd|: "--name VALUE", "--name=VALUE", flags, positional
 * arguments and "--".  Returns 0, EXIT_FAILURE for a bad value, or EXIT_USAGE; stops early,
 * returning 0, at --help or --version. */
static int
parse(const struct cmd *cmd, int argc, char **argv, struct args *a)
{
    bool is_opts_done = false;
    int i;

    for (i = 0; i < argc; i++) {
        const char *arg = argv[i], *eq, *value;
        const struct opt *o;
        size_t len;

        if (is_opts_done || arg[0] != '-' || arg[1] == '\0') {
            if (a->n_pos == cmd->n_pos) {
                ct_err("unexpected argument '%s'; see --help", arg);
                return EXIT_USAGE;
            }
            a->pos[a->n_pos++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            is_opts_done = true;
            continue;
        }
        eq = strchr(arg, '=');
        len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
        if ((o = find_opt(cmd->opts, arg, len)) == NULL) {
            ct_err("unknown option '%.*s' for %s; see --help", (int)len, arg, cmd->name);
            return EXIT_USAGE;
        }
        if (o->kind == OPT_FLAG) {
            if (eq != NULL) {
                ct_err("option %s takes no value; see --help", o->name);
                return EXIT_USAGE;
            }
            *(bool *)((char *)a + o->offset) = true;
            if (a->is_help || a->is_version)
                return 0;
            continue;
        }
        if (eq != NULL)
            value = eq + 1;
        else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0)
            value = argv[++i];
        else
            value = NULL;
        if (value == NULL || value[0] == '\0') {
            ct_err("option %s needs a value; see --help", o->name);
            return EXIT_USAGE;
        }
        switch (o->kind) {
        case OPT_STR:
            *(const char **)((char *)a + o->offset) = value;
            break;
        case OPT_DNS:
            if (ct_names_add_dns(&a->names, o->name, value) != 0)
                return EXIT_FAILURE;
            break;
        case OPT_IP:
            if (ct_names_add_ip(&a->names, o->name, value) != 0)
                return EXIT_FAILURE;
            break;
        case OPT_FLAG:
            break;
        }
    }
    if (a->n_pos < cmd->n_pos) {
        ct_err("%s needs a FILE; see --help", cmd->name);
        return EXIT_USAGE;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    const struct cmd *cmd = &cmds[0];
    struct args a = { 0 };
    int first = 1, r;
    size_t k;

    /* A first argument that is not an option names the subcommand; options alone mean init. */
    if (argc > 1 && argv[1][0] != '-') {
        for (k = 0; k < sizeof(cmds) / sizeof(cmds[0]); k++)
            if (strcmp(argv[1], cmds[k].name) == 0)
                break;
        if (k == sizeof(cmds) / sizeof(cmds[0])) {
            ct_err("unknown command '%s'; see --help", argv[1]);
            return EXIT_USAGE;
        }
        cmd = &cmds[k];
        first = 2;
    }
    if ((r = parse(cmd, argc - first, argv + first, &a)) != 0)
        return r;
    if (a.is_help) {
        fputs(usage_text, stdout);
        r = EXIT_SUCCESS;
    } else if (a.is_version) {
        printf("certs-tool %s\n", TN_VERSION);
        r = EXIT_SUCCESS;
    } else {
        r = cmd->run(&a);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        ct_err("cannot write to stdout: %s", strerror(errno));
        return EXIT_FAILURE;
    }
    return r;
}
