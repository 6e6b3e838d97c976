/* SPDX-License-Identifier: MIT */
/* The metrics registry and its Prometheus text rendering (exposition format 0.0.4). */
#include "tn/metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tn/log.h"

const double tn_metric_latency_buckets[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                             0.25,  0.5,    1,     2.5,  5,     10 };
const size_t tn_metric_latency_nbuckets = sizeof(tn_metric_latency_buckets) / sizeof(double);

struct tn_metric tn_metric_reconnects = {
    .name = "tunnel_reconnects_total",
    .help = "Connections to a relay made again after one was lost or sent GOAWAY.",
    .type = TN_METRIC_COUNTER,
};
struct tn_metric tn_metric_heartbeats = {
    .name = "tunnel_heartbeats_total",
    .help = "HTTP/2 PINGs sent to a silent peer, and PINGs left unanswered (timeout).",
    .type = TN_METRIC_COUNTER,
    .labels = { "result" },
};
struct tn_metric tn_metric_limit_hits = {
    .name = "tunnel_limit_hits_total",
    .help = "Times a limit refused or paused something (open_files: accepting paused; "
            "connection_memory: a connection's buffered bytes hit their cap).",
    .type = TN_METRIC_COUNTER,
    .labels = { "limit" },
};
struct tn_metric tn_metric_busy_polls = {
    .name = "tunnel_busy_polls_total",
    .help = "Polls after a message (busy_poll_us), by how they ended (message: the next one was "
            "read without sleeping; timeout: none came in the window; contended: another task "
            "needed the CPU).",
    .type = TN_METRIC_COUNTER,
    .labels = { "end" },
};

struct tn_metric tn_metric_flows_active = {
    .name = "tunnel_flows_active",
    .help = "Flows open now.",
    .type = TN_METRIC_GAUGE,
};
struct tn_metric tn_metric_flows = {
    .name = "tunnel_flows_total",
    .help = "Flows ended, by result (ok: both directions ended cleanly).",
    .type = TN_METRIC_COUNTER,
    .labels = { "result" },
};
struct tn_metric tn_metric_flow_open = {
    .name = "tunnel_flow_open_seconds",
    .help = "Time from a flow's start to the proxy's answer (Opened).",
    .type = TN_METRIC_HISTOGRAM,
    .buckets = tn_metric_latency_buckets,
    .nbuckets = sizeof(tn_metric_latency_buckets) / sizeof(double),
};
struct tn_metric tn_metric_route_bytes = {
    .name = "tunnel_route_bytes_total",
    .help = "Payload bytes carried, by route (network as clients address it) and direction (up: "
            "client to target).",
    .type = TN_METRIC_COUNTER,
    .labels = { "route", "direction" },
};
struct tn_metric tn_metric_proxy_bytes = {
    .name = "tunnel_proxy_bytes_total",
    .help = "Payload bytes carried, by proxy id and direction (up: client to target).",
    .type = TN_METRIC_COUNTER,
    .labels = { "proxy", "direction" },
};

static const char *const flow_results[] = { "ok",      "no_route",    "forbidden",
                                            "refused", "unreachable", "timeout",
                                            "idle",    "reset",       "error" };

static struct tn_metric *registry, **registry_tail = &registry;
static struct tn_metric_series spare; /* when even "other" cannot be allocated */

/* How many "other" series a family may have (one per value of its second label). */
#define OTHER_MAX 8

void
tn_metrics_register(struct tn_metric *m)
{
    if (m->is_registered)
        return;
    m->is_registered = 1;
    m->next = NULL;
    *registry_tail = m;
    registry_tail = &m->next;
}

void
tn_metrics_register_common(void)
{
    tn_metrics_register(&tn_metric_reconnects);
    tn_metrics_register(&tn_metric_heartbeats);
    tn_metrics_register(&tn_metric_limit_hits);
    tn_metrics_register(&tn_metric_busy_polls);
    tn_metrics_register(&tn_metric_flows_active);
    tn_metrics_register(&tn_metric_flows);
    tn_metrics_register(&tn_metric_flow_open);
    tn_metrics_register(&tn_metric_route_bytes);
    tn_metrics_register(&tn_metric_proxy_bytes);
    for (size_t i = 0; i < sizeof(flow_results) / sizeof(flow_results[0]); i++)
        tn_metric_at(&tn_metric_flows, flow_results[i], NULL);
    tn_metric_at(&tn_metric_flow_open, NULL, NULL);
    /* Counters that exist before their first event, so that a dashboard sees zeros. */
    tn_metric_at(&tn_metric_heartbeats, "sent", NULL);
    tn_metric_at(&tn_metric_heartbeats, "timeout", NULL);
    tn_metric_at(&tn_metric_limit_hits, "open_files", NULL);
    tn_metric_at(&tn_metric_limit_hits, "connection_memory", NULL);
}

const char *
tn_metric_flow_result(const char *reason)
{
    static const struct {
        const char *word, *result;
    } words[] = {
        /* First the cause (a refused dial), then what came of it (unreachable); any case. */
        { "no route to host", "unreachable" }, /* EHOSTUNREACH: the target, not a route */
        { "no route", "no_route" },
        { "forbidden", "forbidden" },
        { "outside", "forbidden" },
        { "refused", "refused" },
        { "idle", "idle" },
        { "time", "timeout" },
        { "no Open", "timeout" },
        { "unreachable", "unreachable" },
        { "resolve", "unreachable" }, /* a target's name that does not resolve */
        { "reset", "reset" },
        { "connection ended", "reset" }, /* the flow's connection went: it was reset */
    };

    const char *last;
    size_t i;

    if (reason == NULL)
        return "ok";
    /* The relay's summary of failed replicas: the last one's reason says what happened. */
    if ((last = strstr(reason, "the last: ")) != NULL)
        reason = last + strlen("the last: ");
    for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (strcasestr(reason, words[i].word) != NULL)
            return words[i].result;
    }
    return "error";
}

void
tn_metric_flow_started(void)
{
    tn_metric_at(&tn_metric_flows_active, NULL, NULL)->value++;
}

void
tn_metric_flow_ended(const char *reason)
{
    tn_metric_at(&tn_metric_flows_active, NULL, NULL)->value--;
    tn_metric_at(&tn_metric_flows, tn_metric_flow_result(reason), NULL)->value++;
}

void
tn_metrics_log_summary(double uptime)
{
    const struct tn_metric_series *s;
    int64_t up = 0, down = 0, flows = 0;
    char errors[512] = "", fields[768];
    size_t n = 0;

    for (s = tn_metric_route_bytes.series; s != NULL; s = s->next) {
        if (strcmp(s->values[1], "up") == 0)
            up += s->value;
        else
            down += s->value;
    }
    for (s = tn_metric_flows.series; s != NULL; s = s->next) {
        flows += s->value;
        if (s->value == 0 || strcmp(s->values[0], "ok") == 0 || n >= sizeof(errors) - 1)
            continue;
        n += (size_t)snprintf(errors + n, sizeof(errors) - n, " %s=%" PRId64, s->values[0],
                              s->value);
    }
    snprintf(fields, sizeof(fields),
             "uptime_s=%.0f flows=%" PRId64 " active=%" PRId64 " bytes_up=%" PRId64
             " bytes_down=%" PRId64 " errors=\"%s\"",
             uptime, flows, tn_metric_at(&tn_metric_flows_active, NULL, NULL)->value, up, down,
             n > 0 ? errors + 1 : "none");
    tn_log_event(TN_LOG_INFO, "exit.summary", 0, NULL, fields);
}

void
tn_flow_metrics_bind(struct tn_flow_metrics *fm, const char *route, const char *proxy)
{
    if (route != NULL) {
        fm->route_up = tn_metric_at(&tn_metric_route_bytes, route, "up");
        fm->route_down = tn_metric_at(&tn_metric_route_bytes, route, "down");
    }
    if (proxy != NULL) {
        fm->proxy_up = tn_metric_at(&tn_metric_proxy_bytes, proxy, "up");
        fm->proxy_down = tn_metric_at(&tn_metric_proxy_bytes, proxy, "down");
    }
}

static void
series_free(struct tn_metric_series *s)
{
    size_t i;

    if (s == NULL)
        return;
    for (i = 0; i < TN_METRIC_MAX_LABELS; i++)
        free(s->values[i]);
    free(s->counts);
    free(s);
}

void
tn_metrics_free(void)
{
    struct tn_metric *m, *next;
    struct tn_metric_series *s, *sn;

    for (m = registry; m != NULL; m = next) {
        next = m->next;
        for (s = m->series; s != NULL; s = sn) {
            sn = s->next;
            series_free(s);
        }
        for (s = m->other; s != NULL; s = sn) {
            sn = s->next;
            series_free(s);
        }
        m->series = m->other = NULL;
        m->nseries = 0;
        m->next = NULL;
        m->is_registered = 0;
    }
    registry = NULL;
    registry_tail = &registry;
}

static size_t
nlabels(const struct tn_metric *m)
{
    size_t n = 0;

    while (n < TN_METRIC_MAX_LABELS && m->labels[n] != NULL)
        n++;
    return n;
}

static struct tn_metric_series *
series_new(const struct tn_metric *m, const char *const *values)
{
    struct tn_metric_series *s;
    size_t i;

    if ((s = calloc(1, sizeof(*s))) == NULL)
        return NULL;
    for (i = 0; i < nlabels(m); i++) {
        if ((s->values[i] = strdup(values[i] != NULL ? values[i] : "")) == NULL)
            goto fail;
    }
    if (m->type == TN_METRIC_HISTOGRAM &&
        (s->counts = calloc(m->nbuckets + 1, sizeof(*s->counts))) == NULL)
        goto fail;
    return s;
fail:
    series_free(s);
    return NULL;
}

/* The series of |m| in list |head| whose labels are |values|, or NULL; |*tail| is where a new
 * one goes and |*count| how many the list holds. */
static struct tn_metric_series *
series_find(const struct tn_metric *m, struct tn_metric_series **head, const char *const *values,
            struct tn_metric_series ***tail, size_t *count)
{
    struct tn_metric_series *s, **pp;
    size_t i, n = nlabels(m);

    *count = 0;
    for (pp = head; (s = *pp) != NULL; pp = &s->next, ++*count) {
        for (i = 0; i < n; i++) {
            if (strcmp(s->values[i], values[i] != NULL ? values[i] : "") != 0)
                break;
        }
        if (i == n)
            return s;
    }
    *tail = pp;
    return NULL;
}

struct tn_metric_series *
tn_metric_find(struct tn_metric *m, const char *v0, const char *v1)
{
    const char *values[TN_METRIC_MAX_LABELS] = { v0, v1 };
    struct tn_metric_series **tail;
    size_t count;

    return series_find(m, &m->series, values, &tail, &count);
}

struct tn_metric_series *
tn_metric_at(struct tn_metric *m, const char *v0, const char *v1)
{
    const char *values[TN_METRIC_MAX_LABELS] = { v0, v1 };
    /* Past the cap the first label says "other"; the second (a direction, a result: a few
     * values) is kept, so that a split such as up/down survives. */
    const char *other[TN_METRIC_MAX_LABELS] = { "other", v1 };
    struct tn_metric_series *s, **tail;
    size_t count;

    if ((s = series_find(m, &m->series, values, &tail, &count)) != NULL)
        return s;
    if (m->nseries < TN_METRIC_MAX_SERIES && (s = series_new(m, values)) != NULL) {
        *tail = s; /* appended: series render in the order they first appeared */
        m->nseries++;
        return s;
    }
    if ((s = series_find(m, &m->other, other, &tail, &count)) != NULL)
        return s;
    if (count < OTHER_MAX && (s = series_new(m, other)) != NULL) {
        *tail = s;
        return s;
    }
    return &spare; /* counted nowhere rather than under another label */
}

void
tn_metric_observe(struct tn_metric *m, struct tn_metric_series *s, double v)
{
    size_t i;

    if (s->counts == NULL)
        return; /* the spare series */
    for (i = 0; i < m->nbuckets && v > m->buckets[i]; i++)
        ;
    s->counts[i]++; /* cumulated when rendered */
    s->sum += v;
}

/* Rendering. */

struct out {
    struct tn_buf *b;
    int err;
};

static void __attribute__((format(printf, 2, 3))) out_printf(struct out *o, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line)) {
        o->err = o->err != 0 ? o->err : -EOVERFLOW;
        return;
    }
    if (tn_buf_append(o->b, line, (size_t)n) != 0)
        o->err = -ENOMEM;
}

/* A label value or help text, escaped as the format asks (\\, \n, and \" in label values). */
static void
out_escaped(struct out *o, const char *s, bool is_label)
{
    const char *run = s;

    for (; *s != '\0'; s++) {
        const char *esc = *s == '\\'              ? "\\\\"
                          : *s == '\n'            ? "\\n"
                          : *s == '"' && is_label ? "\\\""
                                                  : NULL;

        if (esc == NULL)
            continue;
        if (s > run && tn_buf_append(o->b, run, (size_t)(s - run)) != 0)
            o->err = -ENOMEM;
        if (tn_buf_append(o->b, esc, strlen(esc)) != 0)
            o->err = -ENOMEM;
        run = s + 1;
    }
    if (s > run && tn_buf_append(o->b, run, (size_t)(s - run)) != 0)
        o->err = -ENOMEM;
}

/* {a="x",b="y"} with |extra| (le="...") last; nothing when there is no label at all. */
static void
out_labels(struct out *o, const struct tn_metric *m, const struct tn_metric_series *s,
           const char *extra)
{
    size_t i, n = nlabels(m);

    if (n == 0 && extra == NULL)
        return;
    out_printf(o, "{");
    for (i = 0; i < n; i++) {
        out_printf(o, "%s%s=\"", i > 0 ? "," : "", m->labels[i]);
        out_escaped(o, s->values[i], true);
        out_printf(o, "\"");
    }
    if (extra != NULL)
        out_printf(o, "%s%s", n > 0 ? "," : "", extra);
    out_printf(o, "}");
}

static void
render_series(struct out *o, const struct tn_metric *m, const struct tn_metric_series *s)
{
    char le[48];
    uint64_t cum = 0;
    size_t i;

    if (m->type != TN_METRIC_HISTOGRAM) {
        out_printf(o, "%s", m->name);
        out_labels(o, m, s, NULL);
        out_printf(o, " %" PRId64 "\n", s->value);
        return;
    }
    for (i = 0; i <= m->nbuckets; i++) {
        cum += s->counts[i];
        if (i < m->nbuckets)
            snprintf(le, sizeof(le), "le=\"%g\"", m->buckets[i]);
        else
            snprintf(le, sizeof(le), "le=\"+Inf\"");
        out_printf(o, "%s_bucket", m->name);
        out_labels(o, m, s, le);
        out_printf(o, " %" PRIu64 "\n", cum);
    }
    out_printf(o, "%s_sum", m->name);
    out_labels(o, m, s, NULL);
    out_printf(o, " %.9g\n", s->sum);
    out_printf(o, "%s_count", m->name);
    out_labels(o, m, s, NULL);
    out_printf(o, " %" PRIu64 "\n", cum);
}

int
tn_metrics_render(struct tn_buf *out)
{
    static const char *const types[] = { "counter", "gauge", "histogram" };
    struct out o = { out, 0 };
    struct tn_metric *m;
    struct tn_metric_series *s;

    for (m = registry; m != NULL; m = m->next) {
        if (m->collect != NULL)
            m->collect(m, m->collect_arg);
        out_printf(&o, "# HELP %s ", m->name);
        out_escaped(&o, m->help, false);
        out_printf(&o, "\n# TYPE %s %s\n", m->name, types[m->type]);
        if (nlabels(m) == 0 && m->series == NULL)
            tn_metric_at(m, NULL, NULL); /* an unlabelled family always shows its value */
        for (s = m->series; s != NULL; s = s->next)
            render_series(&o, m, s);
        for (s = m->other; s != NULL; s = s->next)
            render_series(&o, m, s);
    }
    return o.err;
}
