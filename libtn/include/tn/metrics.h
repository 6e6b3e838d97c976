/* SPDX-License-Identifier: MIT */
/* A process-wide metrics registry rendered in the Prometheus text exposition format.
 *
 * A family (struct tn_metric) is a counter, a gauge or a histogram with up to two label names.
 * Its series (one per set of label values) are created on first use and kept until
 * tn_metrics_free, so that counters never go back; a hot path looks its series up once (at a
 * flow's start) and then adds to a plain integer.  A family holds at most TN_METRIC_MAX_SERIES
 * series; further values of the first label share a series whose first label says "other"
 * (one per value of the second). */
#ifndef TN_METRICS_H
#define TN_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "tn/buf.h"

#define TN_METRIC_MAX_LABELS 2
#define TN_METRIC_MAX_SERIES 1024

enum tn_metric_type {
    TN_METRIC_COUNTER,
    TN_METRIC_GAUGE,
    TN_METRIC_HISTOGRAM
};

struct tn_metric_series {
    struct tn_metric_series *next;
    char *values[TN_METRIC_MAX_LABELS]; /* label values (NULL past the family's labels) */
    int64_t value;                      /* counter or gauge */
    uint64_t *counts;                   /* histogram: one per bucket, then +Inf */
    double sum;                         /* histogram: sum of observations */
};

struct tn_metric {
    const char *name, *help;
    enum tn_metric_type type;
    const char *labels[TN_METRIC_MAX_LABELS]; /* names; NULL past the last */
    const double *buckets;                    /* histogram: upper bounds, ascending */
    size_t nbuckets;
    /* Called before each rendering: a gauge computed on demand sets its series here. */
    void (*collect)(struct tn_metric *m, void *arg);
    void *collect_arg;
    struct tn_metric_series *series, *other; /* other: past TN_METRIC_MAX_SERIES */
    size_t nseries;
    struct tn_metric *next; /* in the registry */
    int is_registered;
};

/* Bounds for latencies in seconds, 1 ms to 10 s. */
extern const double tn_metric_latency_buckets[];
extern const size_t tn_metric_latency_nbuckets;

/* Adds |m| to the registry (once; again is a no-op), in the order of rendering. */
void tn_metrics_register(struct tn_metric *m);
/* Frees every series of every family and empties the registry. */
void tn_metrics_free(void);

/* The series of |m| with label values |v0| and |v1| (NULL for labels |m| does not have),
 * created on first use.  Never NULL: when memory or the series limit runs out, the series
 * whose first label is "other" is returned (a static one if even that cannot be made). */
struct tn_metric_series *tn_metric_at(struct tn_metric *m, const char *v0, const char *v1);
/* The series of |m| with label values |v0| and |v1|, or NULL: nothing counted under them yet
 * (a reader, such as a status page, that must not create series). */
struct tn_metric_series *tn_metric_find(struct tn_metric *m, const char *v0, const char *v1);

static inline void
tn_metric_add(struct tn_metric_series *s, int64_t n)
{
    s->value += n;
}

/* Counts |v| (a histogram's series). */
void tn_metric_observe(struct tn_metric *m, struct tn_metric_series *s, double v);

/* Appends the exposition text of every registered family to |out|.  Returns 0 or -ENOMEM. */
int tn_metrics_render(struct tn_buf *out);

/* Metrics libtn itself keeps (registered by tn_metrics_register_common). */
extern struct tn_metric tn_metric_reconnects; /* relay connections made again after a loss */
extern struct tn_metric tn_metric_heartbeats; /* {result}: sent, answered, timeout */
extern struct tn_metric tn_metric_limit_hits; /* {limit}: a limit refused or paused something */
extern struct tn_metric tn_metric_busy_polls; /* {end}: message, timeout, contended */
/* Flows (every program): directions are "up" (client to target) and "down". */
extern struct tn_metric tn_metric_flows_active; /* open now */
extern struct tn_metric tn_metric_flows;        /* {result}: ended, by tn_metric_flow_result */
extern struct tn_metric tn_metric_flow_open;    /* seconds from a flow's start to its Opened */
extern struct tn_metric tn_metric_route_bytes;  /* {route, direction} */
extern struct tn_metric tn_metric_proxy_bytes;  /* {proxy, direction} (relay, client) */
void tn_metrics_register_common(void);

/* What one flow adds to: looked up once when its route or proxy is known. */
struct tn_flow_metrics {
    struct tn_metric_series *route_up, *route_down, *proxy_up, *proxy_down;
};

/* Points |fm| at the series of |route| and |proxy| (each may be NULL: left as it is). */
void tn_flow_metrics_bind(struct tn_flow_metrics *fm, const char *route, const char *proxy);

/* Adds a flow's bytes to whichever series |fm| holds. */
static inline void
tn_flow_metrics_add(struct tn_flow_metrics *fm, uint64_t up, uint64_t down)
{
    if (fm->route_up != NULL) {
        fm->route_up->value += (int64_t)up;
        fm->route_down->value += (int64_t)down;
    }
    if (fm->proxy_up != NULL) {
        fm->proxy_up->value += (int64_t)up;
        fm->proxy_down->value += (int64_t)down;
    }
}

/* A flow started (active + 1) or ended with |reason| (NULL: cleanly; active - 1, and
 * flows{result} + 1). */
void tn_metric_flow_started(void);
void tn_metric_flow_ended(const char *reason);
/* Logs what the flow metrics add up to since the start: flows by result, bytes each way,
 * and |uptime| (seconds); for the exit of a program. */
void tn_metrics_log_summary(double uptime);
/* A close reason reduced to a few values fit for a label: ok (NULL), no_route, forbidden,
 * refused, unreachable, timeout, idle, reset, error. */
const char *tn_metric_flow_result(const char *reason);

#endif
