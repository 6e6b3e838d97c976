/* SPDX-License-Identifier: MIT */
/* Bandwidth limits (limits.bandwidth): token buckets in bytes per second, one per rule and
 * direction, shared by the flows the rule matches (with "*" for a client, proxy or service: one
 * for each id or name it matches).
 *
 * A limited flow slows down through its HTTP/2 windows, never by dropping or holding bytes
 * beyond them: the bytes of one direction go through a gate (bw_pass) where the relay would
 * have returned their window at once, and the window goes back (|release|) only when every
 * bucket the flow is under has given that many tokens.  The sender then runs out of window and
 * waits; the relay holds no more than one stream window per flow, as always.
 *
 * Fairness: a gate takes tokens in quanta (16 KiB), bucket after bucket.  A bucket that lacks
 * tokens, or that others already wait on, queues the gate; one timer per bucket fires when the
 * head's quantum has accumulated and serves the queue in turn, a served gate going to the back
 * while it still owes bytes.  So the flows under one bucket share it round robin, and a flow
 * under several buckets waits for each of them in turn (what it took from one is kept while it
 * waits for the next). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "relay.h"
#include "tn/bucket.h"
#include "tn/err.h"
#include "tn/log.h"
#include "tn/util.h"

#define QUANTUM      (16 * 1024)
#define MIN_BURST    (64 * 1024)
#define MIN_WAIT     0.001 /* s: a timer sooner than this would only spin */
#define SERVICE_MAX  64
#define RULE_MAX     320 /* "client=ID proxy=ID service=NAME route=CIDR down" */
#define KEY_MAX      (RULE_MAX + 3 * (TN_ID_MAX + 10)) /* and " client=ID" per wildcard */
#define MAX_MATCHERS 4

struct bw_bucket {
    struct relay *relay;
    struct bw_bucket *next;
    char rule[RULE_MAX]; /* the rule's matchers and the direction: found again after a SIGHUP */
    char key[KEY_MAX];   /* and, for a wildcard, whose bucket it is */
    struct tn_bucket tb;
    struct bw_gate *head, *tail; /* gates waiting for tokens, in turn */
    ev_timer timer;              /* runs while some gate waits */
    size_t refs;                 /* gates under it */
    size_t nwaiting;
    uint64_t released; /* bytes let on */
};

struct bw_gate {
    struct relay *relay;
    void (*release)(void *arg, size_t n);
    void *arg;
    size_t owed;               /* passed, not yet released */
    size_t quantum;            /* being acquired; 0 between quanta */
    size_t got;                /* buckets[0, got) gave |quantum| already */
    struct bw_bucket *waiting; /* the bucket whose queue it is on, or NULL */
    struct bw_gate *qnext;
    size_t n;
    struct bw_bucket *buckets[];
};

static const char *
dir_name(bool is_up)
{
    return is_up ? "up" : "down";
}

/* The rule's matchers and the direction, as text: a bucket's name and identity. */
static void
rule_key(const struct bw_rule *r, bool is_up, char *buf, size_t len)
{
    char net[TN_CIDR_STRLEN];
    int n = 0;

    buf[0] = '\0';
    if (r->client != NULL)
        n += snprintf(buf + n, len - (size_t)n, "client=%s ", r->client);
    if (r->proxy != NULL)
        n += snprintf(buf + n, len - (size_t)n, "proxy=%s ", r->proxy);
    if (r->service != NULL)
        n += snprintf(buf + n, len - (size_t)n, "service=%s ", r->service);
    if (r->route.ip.family != 0)
        n += snprintf(buf + n, len - (size_t)n, "route=%s ",
                      tn_cidr_format(&r->route, net, sizeof(net)));
    snprintf(buf + n, len - (size_t)n, "%s", dir_name(is_up));
}

static int64_t
rule_rate(const struct bw_rule *r, bool is_up)
{
    return is_up ? r->up : r->down;
}

static double
rule_burst(const struct bw_rule *r, int64_t rate)
{
    if (r->burst != 0)
        return (double)r->burst;
    return rate / 10 > MIN_BURST ? (double)(rate / 10) : MIN_BURST;
}

static bool
is_wild(const char *want)
{
    return want != NULL && strcmp(want, "*") == 0;
}

static bool
same(const char *want, const char *have)
{
    return want == NULL || (have != NULL && (is_wild(want) || strcmp(want, have) == 0));
}

/* The bucket of rule |r| (named |rule|) for |f|: one for the rule, or with a wildcard one for
 * each client, proxy or service it matches. */
static void
bucket_key(const struct bw_rule *r, const char *rule, const struct bw_flow *f, char *buf,
           size_t len)
{
    int n = snprintf(buf, len, "%s", rule);

    if (is_wild(r->client))
        n += snprintf(buf + n, len - (size_t)n, " client=%s", f->client);
    if (is_wild(r->proxy))
        n += snprintf(buf + n, len - (size_t)n, " proxy=%s", f->proxy);
    if (is_wild(r->service))
        snprintf(buf + n, len - (size_t)n, " service=%s", f->service);
}

static bool
rule_matches(const struct bw_rule *r, const struct bw_flow *f)
{
    return same(r->client, f->client) && same(r->proxy, f->proxy) && same(r->service, f->service) &&
           (r->route.ip.family == 0 || (f->dst != NULL && tn_cidr_contains(&r->route, f->dst)));
}

int
bandwidth_check(const struct relay_config *cfg)
{
    const struct bw_rule *rules = cfg->bandwidth.v;
    char key[RULE_MAX], other[RULE_MAX];
    size_t i, j;

    for (i = 0; i < cfg->bandwidth.n; i++) {
        const struct bw_rule *r = &rules[i];

        if (r->client == NULL && r->proxy == NULL && r->service == NULL &&
            r->route.ip.family == 0) {
            fprintf(stderr,
                    "server: limits.bandwidth: rule %zu names none of client, proxy, "
                    "service, route: it would match nothing\n",
                    i + 1);
            return TN_ERR_CONFIG;
        }
        if ((r->client != NULL && strlen(r->client) > TN_ID_MAX) ||
            (r->proxy != NULL && strlen(r->proxy) > TN_ID_MAX) ||
            (r->service != NULL && strlen(r->service) > SERVICE_MAX)) {
            fprintf(stderr,
                    "server: limits.bandwidth: rule %zu: an id or service name is longer "
                    "than 64 characters\n",
                    i + 1);
            return TN_ERR_CONFIG;
        }
        rule_key(r, true, key, sizeof(key));
        if (r->up == 0 && r->down == 0) {
            fprintf(stderr, "server: limits.bandwidth: rule %zu (%.*s) sets neither up nor down\n",
                    i + 1, (int)(strlen(key) - 3), key);
            return TN_ERR_CONFIG;
        }
        for (j = 0; j < i; j++) {
            rule_key(&rules[j], true, other, sizeof(other));
            if (strcmp(key, other) == 0) {
                fprintf(stderr, "server: limits.bandwidth: rules %zu and %zu are both for %.*s\n",
                        j + 1, i + 1, (int)(strlen(key) - 3), key);
                return TN_ERR_CONFIG;
            }
        }
    }
    return 0;
}

/* ---- buckets ------------------------------------------------------------------------------ */

static void bucket_serve(struct bw_bucket *b);

static void
bucket_on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    bucket_serve(tn_container_of(w, struct bw_bucket, timer));
}

/* Arms the timer for the moment the head's quantum is there, or stops it when none waits. */
static void
bucket_schedule(struct bw_bucket *b)
{
    struct ev_loop *loop = b->relay->loop;
    double wait;

    if (b->head == NULL) {
        ev_timer_stop(loop, &b->timer);
        return;
    }
    wait = tn_bucket_delay(&b->tb, b->head->quantum, ev_now(loop));
    b->timer.repeat = wait > MIN_WAIT ? wait : MIN_WAIT;
    ev_timer_again(loop, &b->timer);
}

static void
bucket_enqueue(struct bw_bucket *b, struct bw_gate *g)
{
    g->waiting = b;
    g->qnext = NULL;
    if (b->tail != NULL)
        b->tail->qnext = g;
    else
        b->head = g;
    b->tail = g;
    b->nwaiting++;
    if (b->head == g)
        bucket_schedule(b);
}

static struct bw_gate *
bucket_dequeue(struct bw_bucket *b)
{
    struct bw_gate *g = b->head;

    b->head = g->qnext;
    if (b->head == NULL)
        b->tail = NULL;
    b->nwaiting--;
    g->waiting = NULL;
    g->qnext = NULL;
    return g;
}

static void
bucket_unqueue(struct bw_bucket *b, struct bw_gate *g)
{
    struct bw_gate **pp, *prev = NULL;

    for (pp = &b->head; *pp != NULL; prev = *pp, pp = &(*pp)->qnext) {
        if (*pp == g) {
            *pp = g->qnext;
            if (b->tail == g)
                b->tail = prev;
            b->nwaiting--;
            break;
        }
    }
    g->waiting = NULL;
    g->qnext = NULL;
}

/* The bucket of |key|, shared with the flows already under it, or a new one (full). */
static struct bw_bucket *
bucket_get(struct relay *relay, const char *rule, const char *key, int64_t rate, double burst)
{
    struct bw_bucket *b;

    for (b = relay->buckets; b != NULL; b = b->next) {
        if (strcmp(b->key, key) == 0)
            break;
    }
    if (b == NULL) {
        if ((b = calloc(1, sizeof(*b))) == NULL)
            return NULL;
        b->relay = relay;
        snprintf(b->rule, sizeof(b->rule), "%s", rule);
        snprintf(b->key, sizeof(b->key), "%s", key);
        tn_bucket_init(&b->tb, (double)rate, burst, ev_now(relay->loop));
        ev_init(&b->timer, bucket_on_timer);
        b->next = relay->buckets;
        relay->buckets = b;
    }
    b->refs++;
    return b;
}

static void
bucket_put(struct bw_bucket *b)
{
    struct bw_bucket **pp;

    if (--b->refs > 0)
        return;
    for (pp = &b->relay->buckets; *pp != b; pp = &(*pp)->next)
        ;
    *pp = b->next;
    ev_timer_stop(b->relay->loop, &b->timer);
    free(b);
}

/* ---- gates -------------------------------------------------------------------------------- */

/* Moves |g| on: acquires each quantum bucket by bucket and releases it, until nothing is owed or
 * a bucket lacks tokens or has others waiting before |g| (then |g| queues there).  |is_turn|:
 * |g| just left the queue of buckets[got] as its head, with the tokens there. */
static void
gate_advance(struct bw_gate *g, bool is_turn)
{
    double now = ev_now(g->relay->loop);
    struct bw_bucket *b;
    size_t q, i;

    while (g->owed > 0) {
        if (g->quantum == 0) {
            g->quantum = g->owed < QUANTUM ? g->owed : QUANTUM;
            g->got = 0;
        }
        while (g->got < g->n) {
            b = g->buckets[g->got];
            if ((!is_turn && b->head != NULL) || !tn_bucket_take(&b->tb, g->quantum, now)) {
                bucket_enqueue(b, g);
                return;
            }
            is_turn = false;
            g->got++;
        }
        q = g->quantum;
        g->quantum = 0;
        g->owed -= q;
        for (i = 0; i < g->n; i++)
            g->buckets[i]->released += q;
        g->release(g->arg, q);
    }
}

/* The timer: serves the waiting gates in turn while the tokens last. */
static void
bucket_serve(struct bw_bucket *b)
{
    double now = ev_now(b->relay->loop);

    while (b->head != NULL &&
           (b->tb.rate == 0 || tn_bucket_level(&b->tb, now) >= (double)b->head->quantum))
        gate_advance(bucket_dequeue(b), true);
    bucket_schedule(b);
}

struct bw_gate *
bw_gate_new(struct relay *relay, const struct bw_flow *flow, bool is_up,
            void (*release)(void *arg, size_t n), void *arg)
{
    const struct bw_rule *rules = relay->cfg->bandwidth.v;
    size_t i, n = 0;
    struct bw_gate *g;
    char rule[RULE_MAX], key[KEY_MAX];
    int64_t rate;

    for (i = 0; i < relay->cfg->bandwidth.n; i++)
        n += rule_rate(&rules[i], is_up) != 0 && rule_matches(&rules[i], flow);
    if (n == 0)
        return NULL;
    if ((g = calloc(1, sizeof(*g) + n * sizeof(g->buckets[0]))) == NULL) {
        tn_log_warnx("bandwidth: out of memory: a flow goes unlimited");
        return NULL;
    }
    g->relay = relay;
    g->release = release;
    g->arg = arg;
    for (i = 0; i < relay->cfg->bandwidth.n; i++) {
        if ((rate = rule_rate(&rules[i], is_up)) == 0 || !rule_matches(&rules[i], flow))
            continue;
        rule_key(&rules[i], is_up, rule, sizeof(rule));
        bucket_key(&rules[i], rule, flow, key, sizeof(key));
        if ((g->buckets[g->n] = bucket_get(relay, rule, key, rate, rule_burst(&rules[i], rate))) ==
            NULL) {
            tn_log_warnx("bandwidth: out of memory: a flow goes unlimited");
            bw_gate_free(g);
            return NULL;
        }
        tn_log_debug("bandwidth: a flow of client=%s proxy=%s service=%s is under %s",
                     flow->client != NULL ? flow->client : "-",
                     flow->proxy != NULL ? flow->proxy : "-",
                     flow->service != NULL ? flow->service : "-", key);
        g->n++;
    }
    return g;
}

void
bw_pass(struct bw_gate *g, size_t n)
{
    g->owed += n;
    if (g->waiting == NULL)
        gate_advance(g, false);
}

size_t
bw_owed(const struct bw_gate *g)
{
    return g->owed;
}

void
bw_gate_free(struct bw_gate *g)
{
    struct bw_bucket *b;
    size_t i;

    if (g == NULL)
        return;
    if ((b = g->waiting) != NULL) {
        bool was_head = b->head == g;

        bucket_unqueue(b, g);
        if (was_head)
            bucket_schedule(b);
    }
    for (i = 0; i < g->n; i++)
        bucket_put(g->buckets[i]);
    free(g);
}

/* The rule (and its direction) named |rule|, or NULL when none is now. */
static const struct bw_rule *
rule_of_key(const struct relay_config *cfg, const char *rule, bool *is_up)
{
    const struct bw_rule *rules = cfg->bandwidth.v;
    char k[RULE_MAX];
    size_t i;
    int up;

    for (i = 0; i < cfg->bandwidth.n; i++) {
        for (up = 0; up <= 1; up++) {
            rule_key(&rules[i], up, k, sizeof(k));
            if (strcmp(k, rule) == 0) {
                *is_up = up;
                return &rules[i];
            }
        }
    }
    return NULL;
}

void
bandwidth_reload(struct relay *relay)
{
    double now = ev_now(relay->loop);
    const struct bw_rule *r;
    struct bw_bucket *b;
    int64_t rate;
    bool is_up = false;

    for (b = relay->buckets; b != NULL; b = b->next) {
        r = rule_of_key(relay->cfg, b->rule, &is_up);
        rate = r != NULL ? rule_rate(r, is_up) : 0;
        tn_bucket_set(&b->tb, (double)rate, rate != 0 ? rule_burst(r, rate) : 0, now);
        if (rate != 0)
            tn_log_info("reload: bandwidth %s: %" PRId64 " B/s for its %zu open flows", b->key,
                        rate, b->refs);
        else
            tn_log_info("reload: bandwidth %s: no limit now for its %zu open flows", b->key,
                        b->refs);
    }
    /* A bucket that lost its limit lets its gates through, which may queue them on other
     * buckets: serve each once every rate is set. */
    for (b = relay->buckets; b != NULL; b = b->next)
        bucket_serve(b);
}

void
bandwidth_dump(struct relay *relay)
{
    const struct bw_bucket *b;

    for (b = relay->buckets; b != NULL; b = b->next)
        tn_log_info("status:   bandwidth %s: %.0f B/s, %zu flows, %zu waiting, %" PRIu64
                    " bytes let on",
                    b->key, b->tb.rate, b->refs, b->nwaiting, b->released);
}
