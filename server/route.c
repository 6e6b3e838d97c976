/* SPDX-License-Identifier: MIT */
/* Routing: longest-prefix match over the networks that proxies announce, then rendezvous
 * (highest-random-weight) hashing of the flow id across the replicas of that network, so a
 * flow's choice is stable and a departing proxy moves only its own flows. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "relay.h"
#include "tn/log.h"
#include "tn/lpm.h"

static uint64_t
mix64(uint64_t x)
{
    /* splitmix64's finaliser: every input bit affects every output bit. */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static uint64_t
id_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */

    for (; *s != '\0'; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
    return h;
}

int
route_add(struct relay *relay, struct proxy *px, const struct tn_cidr *net)
{
    struct route *rt = tn_lpm_get(relay->routes, net);
    struct proxy **v;
    int r;

    if (rt == NULL) {
        if ((rt = calloc(1, sizeof(*rt))) == NULL)
            return -ENOMEM;
        rt->net = *net;
        if ((r = tn_lpm_insert(relay->routes, net, rt)) != 0) {
            free(rt);
            return r;
        }
    }
    if ((v = realloc(rt->proxies, (rt->n + 1) * sizeof(*v))) == NULL)
        return -ENOMEM;
    rt->proxies = v;
    rt->proxies[rt->n++] = px;
    return 0;
}

void
route_remove(struct relay *relay, struct proxy *px, const struct tn_cidr *net)
{
    struct route *rt = tn_lpm_get(relay->routes, net);
    size_t i;

    if (rt == NULL)
        return;
    for (i = 0; i < rt->n; i++) {
        if (rt->proxies[i] == px) {
            rt->proxies[i] = rt->proxies[--rt->n];
            break;
        }
    }
    if (rt->n == 0) {
        tn_lpm_remove(relay->routes, net);
        free(rt->proxies);
        free(rt);
    }
}

struct proxy *
route_pick(struct relay *relay, const struct tn_ip *dst, uint64_t flow_id)
{
    struct route *rt = tn_lpm_lookup(relay->routes, dst);
    struct proxy *best = NULL;
    uint64_t best_w = 0, w;
    size_t i;

    if (rt == NULL)
        return NULL;
    for (i = 0; i < rt->n; i++) {
        w = mix64(flow_id ^ id_hash(rt->proxies[i]->id));
        if (best == NULL || w > best_w) {
            best = rt->proxies[i];
            best_w = w;
        }
    }
    return best;
}

void
route_free_all(struct relay *relay)
{
    tn_lpm_free(relay->routes);
    relay->routes = NULL;
}
