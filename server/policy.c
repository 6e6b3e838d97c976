/* SPDX-License-Identifier: MIT */
/* The relay's policy: which proxy ids may announce which networks (proxies:), and which client
 * ids may reach which networks and ports (access:).  Either list left empty allows everything,
 * which suits a single-team deployment; a relay shared between teams should set both. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay.h"
#include "tn/err.h"
#include "tn/log.h"

/* Parses "22 80 443 8000-8100" (spaces or commas).  Returns 0 or TN_ERR_CONFIG (printed). */
static int
parse_ports(struct access_rule *a)
{
    const char *s = a->ports;
    struct port_range *grown;
    char *end;
    long lo, hi;

    while (*(s += strspn(s, " ,\t")) != '\0') {
        lo = hi = strtol(s, &end, 10);
        if (end != s && *end == '-')
            hi = strtol(end + 1, &end, 10);
        if (end == s || (*end != '\0' && strchr(" ,\t", *end) == NULL) || lo < 1 || hi > 65535 ||
            lo > hi) {
            fprintf(stderr,
                    "server: access rule for '%s': ports: '%s' is not a list of ports "
                    "and ranges (e.g. \"22 80 8000-8100\")\n",
                    a->client, a->ports);
            return TN_ERR_CONFIG;
        }
        if ((grown = realloc(a->ranges, (a->nranges + 1) * sizeof(*grown))) == NULL)
            return -ENOMEM;
        a->ranges = grown;
        a->ranges[a->nranges++] = (struct port_range){ (uint16_t)lo, (uint16_t)hi };
        s = end;
    }
    return 0;
}

int
policy_init(struct relay_config *cfg)
{
    struct access_rule *rules = cfg->access.v;
    size_t i;
    int r;

    for (i = 0; i < cfg->access.n; i++) {
        if (rules[i].ports != NULL && (r = parse_ports(&rules[i])) != 0)
            return r;
    }
    if (cfg->proxies.n == 0)
        tn_log_warnx("no proxies: list in the configuration: any proxy may announce any network");
    else
        tn_log_info("%zu proxy rules, %zu access rules", cfg->proxies.n, cfg->access.n);
    return 0;
}

void
policy_fini(struct relay_config *cfg)
{
    struct access_rule *rules = cfg->access.v;
    size_t i;

    for (i = 0; i < cfg->access.n; i++) {
        free(rules[i].ranges);
        rules[i].ranges = NULL;
        rules[i].nranges = 0;
    }
}

/* True when |inner| lies wholly inside |outer|. */
static bool
cidr_within(const struct tn_cidr *outer, const struct tn_cidr *inner)
{
    return outer->prefix <= inner->prefix && tn_cidr_contains(outer, &inner->ip);
}

bool
policy_may_announce(const struct relay_config *cfg, const char *id, const struct tn_cidr *net,
                    char *why, size_t whylen)
{
    const struct proxy_rule *rules = cfg->proxies.v;
    char s[TN_CIDR_STRLEN];
    bool is_known = false;
    size_t i, j;

    if (cfg->proxies.n == 0)
        return true;
    for (i = 0; i < cfg->proxies.n; i++) {
        if (strcmp(rules[i].id, id) != 0)
            continue;
        is_known = true;
        for (j = 0; j < rules[i].networks.n; j++) {
            if (cidr_within(&rules[i].networks.v[j], net))
                return true;
        }
    }
    if (!is_known)
        snprintf(why, whylen, "proxy id '%s' is not in the relay's proxies list", id);
    else
        snprintf(why, whylen, "proxy '%s' may not announce %s", id,
                 tn_cidr_format(net, s, sizeof(s)));
    return false;
}

bool
policy_may_reach(const struct relay_config *cfg, const char *id, const struct tn_ip *dst,
                 unsigned port)
{
    const struct access_rule *rules = cfg->access.v;
    size_t i, j;

    if (cfg->access.n == 0)
        return true;
    for (i = 0; i < cfg->access.n; i++) {
        const struct access_rule *a = &rules[i];
        bool is_in = false;

        if (strcmp(a->client, "*") != 0 && strcmp(a->client, id) != 0)
            continue;
        for (j = 0; j < a->networks.n && !is_in; j++)
            is_in = tn_cidr_contains(&a->networks.v[j], dst);
        if (!is_in)
            continue;
        if (a->nranges == 0)
            return true;
        for (j = 0; j < a->nranges; j++) {
            if (port >= a->ranges[j].lo && port <= a->ranges[j].hi)
                return true;
        }
    }
    return false;
}
