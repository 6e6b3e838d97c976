/* SPDX-License-Identifier: MIT */
/* The relay's policy: which proxy ids may announce which networks (proxies:), and which client
 * ids may reach which networks and ports (access:).  Either list left empty allows everything,
 * which suits a single-team deployment; a relay shared between teams should set both. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay.h"
#include "tn/addr.h"
#include "tn/err.h"
#include "tn/log.h"
#include "tn/names.h"

int
policy_parse_ports(const char *s, struct port_set *set, const char *what)
{
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
                    "server: %s: '%s' is not a list of ports and ranges (e.g. \"22 80 "
                    "8000-8100\")\n",
                    what, s);
            return TN_ERR_CONFIG;
        }
        if ((grown = realloc(set->v, (set->n + 1) * sizeof(*grown))) == NULL)
            return -ENOMEM;
        set->v = grown;
        set->v[set->n++] = (struct port_range){ (uint16_t)lo, (uint16_t)hi };
        s = end;
    }
    return 0;
}

bool
port_set_has(const struct port_set *set, unsigned port)
{
    size_t i;

    for (i = 0; i < set->n; i++) {
        if (port >= set->v[i].lo && port <= set->v[i].hi)
            return true;
    }
    return false;
}

static void
port_set_fini(struct port_set *set)
{
    free(set->v);
    set->v = NULL;
    set->n = 0;
}

int
policy_check_service(const struct service_rule *rules, size_t n, const struct service_rule *r,
                     char *why, size_t whylen)
{
    struct tn_ip ip;
    unsigned port;
    size_t i;

    if (!tn_service_name_valid(r->name)) {
        snprintf(why, whylen,
                 "service name '%.64s' is not 1-%d printable characters without spaces", r->name,
                 TN_SERVICE_NAME_MAX);
        return TN_ERR_PARSE;
    }
    /* The proxy dials addresses in its networks: a name would have to be looked up here, by a
     * resolver that knows nothing of the proxy's LAN, on the loop every flow shares. */
    if (tn_addr_parse_ip(r->target, &ip, &port) != 0) {
        snprintf(why, whylen,
                 "service '%.64s': target '%.200s' is not IP:PORT (an address in the proxy's "
                 "networks, not a name)",
                 r->name, r->target);
        return TN_ERR_PARSE;
    }
    for (i = 0; i < n; i++) {
        if (strcmp(rules[i].proxy, r->proxy) == 0 && strcmp(rules[i].name, r->name) == 0) {
            snprintf(why, whylen, "proxy '%.64s' already has a service '%.64s'", r->proxy, r->name);
            return TN_ERR_CONFIG;
        }
        if (rules[i].public_port == r->public_port) {
            snprintf(why, whylen,
                     "public port %" PRId64 " is already service '%.64s' of proxy '%.64s'",
                     r->public_port, rules[i].name, rules[i].proxy);
            return TN_ERR_CONFIG;
        }
    }
    return 0;
}

/* A bearer token shorter than this is refused: guessable. */
#define TOKEN_MIN 16

int
policy_init(struct relay_config *cfg)
{
    struct access_rule *rules = cfg->access.v;
    struct proxy_rule *prules = cfg->proxies.v;
    const struct token_rule *tokens = cfg->tokens.v;
    char what[128];
    size_t i, j;
    int r;

    for (i = 0; i < cfg->access.n; i++) {
        snprintf(what, sizeof(what), "access rule for '%.64s': ports", rules[i].client);
        if (rules[i].ports != NULL &&
            (r = policy_parse_ports(rules[i].ports, &rules[i].port_set, what)) != 0)
            return r;
    }
    for (i = 0; i < cfg->proxies.n; i++) {
        snprintf(what, sizeof(what), "proxy rule for '%.64s': public_ports", prules[i].id);
        if (prules[i].public_ports != NULL &&
            (r = policy_parse_ports(prules[i].public_ports, &prules[i].ports, what)) != 0)
            return r;
    }
    if (cfg->public_ports != NULL &&
        (r = policy_parse_ports(cfg->public_ports, &cfg->public_set, "public_ports")) != 0)
        return r;
    if (cfg->public_addr != NULL) {
        struct sockaddr_storage ss;
        socklen_t sslen;

        /* as expose.c will, when a proxy publishes a port */
        if (tn_addr_resolve_host(cfg->public_addr, 1, true, &ss, &sslen) != 0) {
            fprintf(stderr, "server: public_addr: '%s' is not an address to listen on\n",
                    cfg->public_addr);
            return TN_ERR_CONFIG;
        }
    }
    for (i = 0; i < cfg->services.n; i++) {
        const struct service_rule *services = cfg->services.v;
        char why[256];

        if (policy_check_service(services, i, &services[i], why, sizeof(why)) != 0) {
            fprintf(stderr, "server: services: %s\n", why);
            return TN_ERR_CONFIG;
        }
    }
    if (cfg->admin_token != NULL && strlen(cfg->admin_token) < TOKEN_MIN) {
        fprintf(stderr, "server: admin.token is shorter than %d characters: too easy to guess\n",
                TOKEN_MIN);
        return TN_ERR_CONFIG;
    }
    for (i = 0; i < cfg->tokens.n; i++) {
        if (strlen(tokens[i].token) < TOKEN_MIN) {
            fprintf(stderr,
                    "server: tokens: the token of proxy '%s' is shorter than %d "
                    "characters: too easy to guess\n",
                    tokens[i].proxy, TOKEN_MIN);
            return TN_ERR_CONFIG;
        }
        for (j = 0; j < i; j++) {
            if (strcmp(tokens[i].token, tokens[j].token) == 0) {
                fprintf(stderr, "server: tokens: proxies '%s' and '%s' have the same token\n",
                        tokens[j].proxy, tokens[i].proxy);
                return TN_ERR_CONFIG;
            }
        }
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
    struct proxy_rule *prules = cfg->proxies.v;
    size_t i;

    for (i = 0; i < cfg->access.n; i++)
        port_set_fini(&rules[i].port_set);
    for (i = 0; i < cfg->proxies.n; i++)
        port_set_fini(&prules[i].ports);
    port_set_fini(&cfg->public_set);
}

/* True when |inner| lies wholly inside |outer|. */
static bool
cidr_within(const struct tn_cidr *outer, const struct tn_cidr *inner)
{
    return outer->prefix <= inner->prefix && tn_cidr_contains(outer, &inner->ip);
}

bool
policy_knows_proxy(const struct relay_config *cfg, const char *id, char *why, size_t whylen)
{
    const struct proxy_rule *rules = cfg->proxies.v;
    size_t i;

    if (cfg->proxies.n == 0)
        return true;
    for (i = 0; i < cfg->proxies.n; i++) {
        if (strcmp(rules[i].id, id) == 0)
            return true;
    }
    snprintf(why, whylen, "proxy id '%s' is not in the relay's proxies list", id);
    return false;
}

bool
policy_may_announce(const struct relay_config *cfg, const char *id, const struct tn_cidr *net,
                    char *why, size_t whylen)
{
    const struct proxy_rule *rules = cfg->proxies.v;
    char s[TN_CIDR_STRLEN];
    size_t i, j;

    if (cfg->proxies.n == 0)
        return true;
    if (!policy_knows_proxy(cfg, id, why, whylen))
        return false;
    for (i = 0; i < cfg->proxies.n; i++) {
        for (j = 0; strcmp(rules[i].id, id) == 0 && j < rules[i].networks.n; j++) {
            if (cidr_within(&rules[i].networks.v[j], net))
                return true;
        }
    }
    snprintf(why, whylen, "proxy '%s' may not announce %s", id, tn_cidr_format(net, s, sizeof(s)));
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
        if (a->port_set.n == 0 || port_set_has(&a->port_set, port))
            return true;
    }
    return false;
}

bool
policy_may_publish(const struct relay_config *cfg, const char *id, unsigned port, char *why,
                   size_t whylen)
{
    const struct proxy_rule *rules = cfg->proxies.v;
    size_t i;

    if (!port_set_has(&cfg->public_set, port)) {
        snprintf(why, whylen, "port %u is outside the relay's public_ports (%s)", port,
                 cfg->public_ports != NULL ? cfg->public_ports : "none");
        return false;
    }
    for (i = 0; i < cfg->proxies.n; i++) {
        if (strcmp(rules[i].id, id) == 0 &&
            (rules[i].ports.n == 0 || port_set_has(&rules[i].ports, port)))
            return true;
    }
    if (cfg->proxies.n == 0)
        return true;
    snprintf(why, whylen, "proxy '%s' may not publish port %u (see the relay's proxies: list)", id,
             port);
    return false;
}

const char *
policy_token_proxy(const struct relay_config *cfg, const char *token)
{
    const struct token_rule *rules = cfg->tokens.v;
    size_t i, n = strlen(token);
    unsigned char diff;

    for (i = 0; i < cfg->tokens.n; i++) {
        const char *t = rules[i].token;
        size_t j, tn = strlen(t);

        /* Compares in time that does not depend on where the first difference is. */
        diff = (unsigned char)(tn != n);
        for (j = 0; j < tn; j++)
            diff |= (unsigned char)(t[j] ^ (j < n ? token[j] : 0));
        if (diff == 0)
            return rules[i].proxy;
    }
    return NULL;
}
