/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the YAML configuration loader (libtn/conf.c) with a table holding every
 * key type the programs use, nested sections and a list of records. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tn/cidr.h"
#include "tn/conf.h"
#include "tn/link.h"
#include "tn/opts.h"
#include "tn/tls.h"

struct rec {
    char *id;
    struct tn_cidr_list networks;
    char *ports;
};

struct cfg {
    struct tn_str_list servers;
    char *listen;
    int64_t n, dur, size, iv, to, sw, cw;
    bool flag;
    int level;
    struct tn_cidr one;
    struct tn_cidr_list cidrs;
    struct tn_tls_conf tls;
    struct tn_log_conf log;
    struct tn_link_conf reconnect;
    struct tn_conf_list recs;
};

static const char *const colours[] = { "red", "green", "blue", NULL };

static const struct tn_conf_key rec_keys[] = {
    { .key = "id", .type = TN_CONF_STR, .offset = offsetof(struct rec, id), .is_required = true },
    { .key = "networks",
      .type = TN_CONF_CIDR_LIST,
      .offset = offsetof(struct rec, networks),
      .is_required = true },
    { .key = "ports", .type = TN_CONF_STR, .offset = offsetof(struct rec, ports) },
    { 0 },
};

static const struct tn_conf_key keys[] = {
    { .key = "server_addr",
      .type = TN_CONF_HOSTPORT_LIST,
      .offset = offsetof(struct cfg, servers) },
    { .key = "listen", .type = TN_CONF_HOSTPORT, .offset = offsetof(struct cfg, listen) },
    { .key = "n", .type = TN_CONF_INT, .offset = offsetof(struct cfg, n), .min = -5, .max = 1000 },
    { .key = "a.b.dur",
      .type = TN_CONF_DURATION,
      .offset = offsetof(struct cfg, dur),
      .max = 3600000 },
    { .key = "a.size", .type = TN_CONF_SIZE, .offset = offsetof(struct cfg, size), .min = 1 },
    { .key = "flag", .type = TN_CONF_BOOL, .offset = offsetof(struct cfg, flag) },
    { .key = "colour",
      .type = TN_CONF_ENUM,
      .offset = offsetof(struct cfg, level),
      .choices = colours },
    { .key = "one", .type = TN_CONF_CIDR, .offset = offsetof(struct cfg, one) },
    { .key = "cidrs", .type = TN_CONF_CIDR_LIST, .offset = offsetof(struct cfg, cidrs) },
    { .key = "recs",
      .type = TN_CONF_LIST,
      .offset = offsetof(struct cfg, recs),
      .sub = rec_keys,
      .elem_size = sizeof(struct rec) },
    TN_OPTS_TLS(struct cfg, tls, "program"),
    TN_OPTS_LOG(struct cfg, log),
    TN_OPTS_WINDOWS(struct cfg, sw, cw),
    TN_OPTS_HEARTBEAT(struct cfg, iv, to),
    TN_OPTS_RECONNECT(struct cfg, reconnect),
    { 0 },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cfg c;

    memset(&c, 0, sizeof(c));
    tn_conf_load_string(keys, &c, "fuzz.yaml", (const char *)data, size);
    tn_conf_fini(keys, &c);
    return 0;
}
