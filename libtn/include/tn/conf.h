/* SPDX-License-Identifier: MIT */
/* Table-driven configuration: one table of keys per program fills one struct from built-in
 * defaults, then a YAML or JSON file (--config), then environment variables (TUNNEL_KEY), then
 * command-line flags, each overriding the last. */
#ifndef TN_CONF_H
#define TN_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum tn_conf_type {
    TN_CONF_STR,       /* char *, owned by the struct (freed by tn_conf_fini) */
    TN_CONF_HOSTPORT,  /* char *, "host:port", "[v6]:port" or ":port"; port 1-65535 */
    TN_CONF_INT,       /* int64_t within [min, max] */
    TN_CONF_BOOL,      /* bool; a flag without a value sets it; YAML true/false; when keys
                        * "NAME.x" exist too, a YAML mapping for it sets it and loads them */
    TN_CONF_ENUM,      /* int: index into |choices| */
    TN_CONF_DURATION,  /* int64_t milliseconds: "250ms", "10s", "2m", "1h"; a bare number is s */
    TN_CONF_SIZE,      /* int64_t bytes: "64KiB", "1MiB", "16MiB"; a bare number is bytes */
    TN_CONF_CIDR,      /* struct tn_cidr; ip.family == 0 while unset */
    TN_CONF_CIDR_LIST, /* struct tn_cidr_list; YAML scalar or sequence; the flag repeats; one
                        * value may hold several CIDRs separated by commas or spaces */
    TN_CONF_HOSTPORT_LIST, /* struct tn_str_list of HOSTPORTs; YAML scalar or sequence; the
                            * flag repeats (the first replaces) */
    TN_CONF_LIST,          /* struct tn_conf_list of |sub| records: a YAML list of mappings; the
                            * flag takes "key=value,key=value" (a list key may repeat) and repeats */
};

struct tn_conf_key {
    const char *key;  /* YAML path: "listen_port", "tls.cert_file" */
    const char *flag; /* long flag without dashes ("tls-cert"), or NULL */
    enum tn_conf_type type;
    size_t offset;              /* offsetof() into the program's config struct */
    const char *def;            /* default as it would be written in YAML, or NULL */
    const char *metavar;        /* shown in --help: "ADDR:PORT", "FILE" */
    const char *help;           /* one line for --help */
    int64_t min, max;           /* INT bounds (0, 0: none); DURATION (ms) and SIZE bounds
                                 * each apply when non-zero */
    const char *const *choices; /* TN_CONF_ENUM: NULL-terminated names */
    bool is_required;           /* tn_cli_parse fails unless the file or a flag sets it */
    /* TN_CONF_STR: an empty value means "none" (kept as ""), not "the default" as for the
     * others (status_socket: "" turns the socket off). */
    bool is_empty_none;
    const struct tn_conf_key *sub; /* TN_CONF_LIST: the keys of one record, relative names */
    size_t elem_size;              /* TN_CONF_LIST: sizeof one record */
    /* TN_CONF_LIST, optional: a flag value without '=' is split at ':' into these keys of
     * |sub| (NULL-terminated), the last taking the rest: "10000:127.0.0.1:3000". */
    const char *const *flag_fields;
    /* TN_CONF_LIST, optional: a file whose top level is a list (not a mapping) fills this key,
     * so that a JSON list of records is a config file of its own. */
    bool is_top_list;
};

struct tn_str_list {
    char **v;
    size_t n;
};

/* The records of a TN_CONF_LIST key, each |elem_size| bytes, filled from its |sub| table. */
struct tn_conf_list {
    void *v;
    size_t n;
};

/* A program's command line: the keys plus what --help and --version print. */
struct tn_cli {
    const char *prog;               /* "client" */
    const char *summary;            /* one line under the usage line */
    const struct tn_conf_key *keys; /* terminated by an entry with key == NULL */
};

#define TN_CLI_EXIT 1 /* tn_cli_parse handled --help or --version: exit 0 */

/* Fills |cfg| (zeroed by the caller) from the table's defaults, then the YAML file named by
 * --config (or -c), then the environment (TUNNEL_ and the key in capitals, '.' as '_'; a list's
 * entries separated by ';'), then every other flag: "--name value", "--name=value", and "--name"
 * alone for booleans (or "--name=false").  The first flag of a CIDR_LIST replaces the list, later
 * ones append.  Also handles
 * --help (usage from the table, to stdout) and --version.  Errors name their source
 * ("client.yaml:7:3: listen_port: '70000' is not a port (1-65535)", "client: --listen-port: ...")
 * and are printed to stderr; so is a required key left unset.  Returns 0 to go on (free |cfg| later
 * with tn_conf_fini), TN_CLI_EXIT, or TN_ERR_CONFIG; on anything but 0, |cfg| has already been
 * released with tn_conf_fini. */
int tn_cli_parse(const struct tn_cli *cli, void *cfg, int argc, char **argv);

/* Applies a YAML document to |cfg| (defaults are not applied).  |name| is used in errors.
 * Unknown keys, duplicate keys, wrong types and out-of-range values are errors; an empty document
 * sets nothing.  Returns 0 or TN_ERR_CONFIG (reported on stderr); after an error |cfg| may hold
 * part of the document, which tn_conf_fini frees. */
int tn_conf_load_string(const struct tn_conf_key *keys, void *cfg, const char *name,
                        const char *text, size_t len);
/* tn_conf_load_string, reporting its error to |err| instead of stderr (a program's API reads
 * JSON requests with its configuration tables). */
int tn_conf_load_errors(const struct tn_conf_key *keys, void *cfg, const char *name,
                        const char *text, size_t len, FILE *err);
int tn_conf_load_file(const struct tn_conf_key *keys, void *cfg, const char *path);

/* Applies every default of the table.  Returns 0 or TN_ERR_CONFIG (a bad default is a bug). */
int tn_conf_defaults(const struct tn_conf_key *keys, void *cfg);

/* Frees what the table's keys own in |cfg| (strings, lists) and zeroes those fields. */
void tn_conf_fini(const struct tn_conf_key *keys, void *cfg);

#endif
