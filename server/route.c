/* SPDX-License-Identifier: MIT */
/* Routing: longest-prefix match over the networks that proxies announce, then rendezvous
 * (highest-random-weight) hashing of the flow id across the replicas of that network, so a
 * flow's choice is stable and a departing proxy moves only its own flows. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "relay.h"
#include "tn/hash.h"
#include "tn/log.h"
#include "tn/lpm.h"
#include "tn/util.h"

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

static bool
is_skipped(const struct proxy *px, const uint64_t *skip, size_t nskip)
{
    size_t i;

    for (i = 0; i < nskip; i++) {
        if (skip[i] == px->serial)
            return true;
    }
    return false;
}

struct proxy *
route_pick(struct relay *relay, const struct tn_ip *dst, uint64_t flow_id, const uint64_t *skip,
           size_t nskip)
{
    void *found[16];
    struct proxy *best = NULL;
    uint64_t best_w = 0, w;
    size_t nroutes, r, i;

    /* Longest match first; a covering route serves when every proxy of a longer one is out. */
    nroutes = tn_lpm_lookup_all(relay->routes, dst, found, TN_ARRAY_LEN(found));
    if (nroutes > TN_ARRAY_LEN(found))
        nroutes = TN_ARRAY_LEN(found);
    for (r = 0; r < nroutes && best == NULL; r++) {
        const struct route *rt = found[r];

        for (i = 0; i < rt->n; i++) {
            if (is_skipped(rt->proxies[i], skip, nskip))
                continue;
            w = tn_hash_hrw(flow_id, rt->proxies[i]->hrw_key);
            if (best == NULL || w > best_w) {
                best = rt->proxies[i];
                best_w = w;
            }
        }
    }
    return best;
}

void
route_dump(struct relay *relay)
{
    const struct session *s;
    char net[TN_CIDR_STRLEN], real[TN_CIDR_STRLEN];
    size_t i, nproxies = 0;

    tn_log_info("status: routes (network as clients address it -> real network: proxy, that "
                "proxy's flows now / total, all its networks together)");
    for (s = relay->sessions; s != NULL; s = s->next) {
        const struct proxy *px = s->proxy;

        if (px == NULL || px->has_left)
            continue;
        nproxies++;
        for (i = 0; i < px->nnets; i++) {
            tn_log_info("status:   %s -> %s: %s#%" PRIu64 " (%s) %" PRIu64 " / %" PRIu64,
                        tn_cidr_format(&px->nets[i].addressed, net, sizeof(net)),
                        tn_cidr_format(&px->nets[i].real, real, sizeof(real)), px->id, px->serial,
                        tn_h2_peer_addr(px->session->h2), px->active, px->flows);
        }
    }
    tn_log_info("status: %zu proxies", nproxies);
}

void
route_free_all(struct relay *relay)
{
    tn_lpm_free(relay->routes);
    relay->routes = NULL;
}
