/* SPDX-License-Identifier: MIT */
/* Per-identity limits on client flows: how many one client identity may have open (over all
 * its sessions) and how fast it may open new ones (a token bucket).  Identities are
 * certificates of the deployment's CA, so the table grows only with the deployment. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "relay.h"
#include "tn/hash.h"
#include "tn/log.h"

#define IDENT_BUCKETS 1024
#define LOG_EVERY     1.0 /* seconds: refusals of one identity are logged at most this often */

struct ident {
    struct ident *next;
    char id[TN_ID_MAX + 1];
    uint64_t active;     /* flows admitted and not yet freed */
    double tokens;       /* of the rate limit's bucket */
    ev_tstamp refilled;  /* when |tokens| was last brought up to date */
    ev_tstamp logged;    /* the last refusal logged */
    uint64_t suppressed; /* refusals since, not logged */
};

static struct ident *
ident_get(struct relay *relay, const char *id)
{
    size_t b = tn_hash_bytes(id, strlen(id)) % IDENT_BUCKETS;
    struct ident *e;

    if (relay->idents == NULL &&
        (relay->idents = calloc(IDENT_BUCKETS, sizeof(*relay->idents))) == NULL)
        return NULL;
    for (e = relay->idents[b]; e != NULL; e = e->next)
        if (strcmp(e->id, id) == 0)
            return e;
    if ((e = calloc(1, sizeof(*e))) == NULL)
        return NULL;
    snprintf(e->id, sizeof(e->id), "%s", id);
    e->tokens = -1; /* full at first use */
    e->next = relay->idents[b];
    relay->idents[b] = e;
    return e;
}

/* Logs a refusal of |e|'s flow, at most once per LOG_EVERY (with how many were not logged). */
static void
refusal_log(struct relay *relay, struct ident *e, const char *why)
{
    ev_tstamp now = ev_now(relay->loop);

    if (now - e->logged < LOG_EVERY) {
        e->suppressed++;
        return;
    }
    tn_log_warnx("client %s: flow refused: %s (limits; %" PRIu64 " more refused since the last "
                 "report)",
                 e->id, why, e->suppressed);
    e->logged = now;
    e->suppressed = 0;
}

struct ident *
limits_admit(struct relay *relay, const char *client_id, char *why, size_t whylen)
{
    const struct relay_limits *lim = &relay->cfg->limits;
    ev_tstamp now = ev_now(relay->loop);
    struct ident *e;
    double burst;

    if ((e = ident_get(relay, client_id)) == NULL) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    if (lim->flows_per_client > 0 && e->active >= (uint64_t)lim->flows_per_client) {
        snprintf(why, whylen,
                 "%" PRIu64 " flows open, the most one client may have "
                 "(limits.flows_per_client)",
                 e->active);
        refusal_log(relay, e, why);
        return NULL;
    }
    if (lim->flow_rate > 0) {
        burst = lim->flow_burst > 0 ? (double)lim->flow_burst : (double)lim->flow_rate;
        if (e->tokens < 0)
            e->tokens = burst;
        else
            e->tokens += (now - e->refilled) * (double)lim->flow_rate;
        if (e->tokens > burst)
            e->tokens = burst;
        e->refilled = now;
        if (e->tokens < 1.0) {
            snprintf(why, whylen, "more than %" PRId64 " new flows per second (limits.flow_rate)",
                     lim->flow_rate);
            refusal_log(relay, e, why);
            return NULL;
        }
        e->tokens -= 1.0;
    }
    e->active++;
    return e;
}

void
limits_release(struct ident *e)
{
    if (e != NULL && e->active > 0)
        e->active--;
}

void
limits_free_all(struct relay *relay)
{
    struct ident *e;
    size_t b;

    for (b = 0; relay->idents != NULL && b < IDENT_BUCKETS; b++) {
        while ((e = relay->idents[b]) != NULL) {
            relay->idents[b] = e->next;
            free(e);
        }
    }
    free(relay->idents);
    relay->idents = NULL;
}
