/* SPDX-License-Identifier: MIT */
/* What the relay shows operators on its admin listener: /metrics (the relay's gauges are
 * computed from the sessions when scraped), /readyz, /api/v1/status (JSON) and the dashboard
 * page that polls it. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "relay.h"
#include "tn/admin.h"
#include "tn/err.h"
#include "tn/log.h"
#include "tn/metrics.h"
#include "tn/util.h"

/* The dashboard page (dashboard.html, embedded at build time by cmake/Embed.cmake). */
extern const char relay_dashboard_html[];
extern const size_t relay_dashboard_html_len;

static struct tn_metric m_sessions = {
    .name = "tunnel_sessions",
    .help = "Connections of authenticated clients and proxies, by role.",
    .type = TN_METRIC_GAUGE,
    .labels = { "role" },
};
struct tn_metric relay_metric_sessions_total = {
    .name = "tunnel_sessions_total",
    .help = "Connections of clients and proxies accepted since the start, by role.",
    .type = TN_METRIC_COUNTER,
    .labels = { "role" },
};
struct tn_metric relay_metric_public_conns = {
    .name = "tunnel_public_connections_total",
    .help = "Connections to published services (public ports, HTTP hosts), by service.",
    .type = TN_METRIC_COUNTER,
    .labels = { "service" },
};
static struct tn_metric m_proxies = {
    .name = "tunnel_proxies",
    .help = "Proxies registered now (replicas counted one by one).",
    .type = TN_METRIC_GAUGE,
};
static struct tn_metric m_routes = {
    .name = "tunnel_routes",
    .help = "Networks in the routing table.",
    .type = TN_METRIC_GAUGE,
};

static bool
cidr_equal(const struct tn_cidr *a, const struct tn_cidr *b)
{
    return a->prefix == b->prefix && tn_cidr_overlaps(a, b);
}

static bool
is_routed(const struct proxy *px)
{
    return px != NULL && !px->has_left;
}

/* Whether |net| is announced by a routed proxy of a session before |upto|, or earlier by the
 * same proxy: each route counts once. */
static bool
is_seen(const struct relay *relay, const struct session *upto, const struct proxy *self,
        size_t self_i, const struct tn_cidr *net)
{
    const struct session *s;
    size_t i;

    for (s = relay->sessions; s != NULL && s != upto; s = s->next) {
        if (!is_routed(s->proxy))
            continue;
        for (i = 0; i < s->proxy->nnets; i++) {
            if (cidr_equal(&s->proxy->nets[i].addressed, net))
                return true;
        }
    }
    for (i = 0; i < self_i; i++) {
        if (cidr_equal(&self->nets[i].addressed, net))
            return true;
    }
    return false;
}

static void
collect(struct tn_metric *m, void *arg)
{
    struct relay *relay = arg;
    const struct session *s;
    int64_t clients = 0, proxies = 0, routed = 0, routes = 0;
    size_t i;

    (void)m;
    for (s = relay->sessions; s != NULL; s = s->next) {
        enum tn_role role = tn_h2_peer(s->h2)->role;

        clients += role == TN_ROLE_CLIENT;
        proxies += role == TN_ROLE_PROXY;
        if (!is_routed(s->proxy))
            continue;
        routed++;
        for (i = 0; i < s->proxy->nnets; i++)
            routes += !is_seen(relay, s, s->proxy, i, &s->proxy->nets[i].addressed);
    }
    tn_metric_at(&m_sessions, "client", NULL)->value = clients;
    tn_metric_at(&m_sessions, "proxy", NULL)->value = proxies;
    tn_metric_at(&m_proxies, NULL, NULL)->value = routed;
    tn_metric_at(&m_routes, NULL, NULL)->value = routes;
}

static void
json_cidr(struct tn_admin_reply *r, const struct tn_cidr *c)
{
    char net[TN_CIDR_STRLEN];

    tn_admin_json_str(r, tn_cidr_format(c, net, sizeof(net)));
}

static void
status_proxy(struct tn_admin_reply *r, const struct proxy *px)
{
    size_t i;

    tn_admin_printf(r, "{\"id\":");
    tn_admin_json_str(r, px->id);
    tn_admin_printf(r, ",\"serial\":%" PRIu64 ",\"address\":", px->serial);
    tn_admin_json_str(r, tn_h2_peer_addr(px->session->h2));
    tn_admin_printf(r, ",\"networks\":[");
    for (i = 0; i < px->nnets; i++) {
        tn_admin_printf(r, "%s{\"network\":", i > 0 ? "," : "");
        json_cidr(r, &px->nets[i].addressed);
        tn_admin_printf(r, ",\"real\":");
        json_cidr(r, &px->nets[i].real);
        tn_admin_printf(r, "}");
    }
    tn_admin_printf(
        r,
        "],\"flows_active\":%" PRIu64 ",\"flows_total\":%" PRIu64 ",\"bytes_up\":%" PRIu64
        ",\"bytes_down\":%" PRIu64 ",\"throughput_up\":%.0f,\"throughput_down\":%.0f}",
        px->active, px->flows, px->bytes_up, px->bytes_down, px->rate_up, px->rate_down);
}

/* A route's bytes so far in one direction: 0 before any, since looking must not make a
 * series (nor, past the metrics' series cap, show the "other" total as this route's). */
static int64_t
route_bytes(const char *route, const char *direction)
{
    struct tn_metric_series *s = tn_metric_find(&tn_metric_route_bytes, route, direction);

    return s != NULL ? s->value : 0;
}

/* Every route: a network and the proxies serving it. */
static void
status_routes(struct tn_admin_reply *r, const struct relay *relay)
{
    const struct session *s, *t;
    char label[TN_CIDR_STRLEN];
    size_t i, j, n = 0, np;

    for (s = relay->sessions; s != NULL; s = s->next) {
        if (!is_routed(s->proxy))
            continue;
        for (i = 0; i < s->proxy->nnets; i++) {
            const struct tn_cidr *net = &s->proxy->nets[i].addressed;

            if (is_seen(relay, s, s->proxy, i, net))
                continue;
            tn_cidr_format(net, label, sizeof(label));
            tn_admin_printf(r, "%s{\"network\":", n++ > 0 ? "," : "");
            tn_admin_json_str(r, label);
            tn_admin_printf(r, ",\"proxies\":[");
            np = 0;
            for (t = s; t != NULL; t = t->next) {
                if (!is_routed(t->proxy))
                    continue;
                for (j = 0; j < t->proxy->nnets; j++) {
                    if (!cidr_equal(&t->proxy->nets[j].addressed, net))
                        continue;
                    tn_admin_printf(r, "%s", np++ > 0 ? "," : "");
                    tn_admin_json_str(r, t->proxy->id);
                    break;
                }
            }
            tn_admin_printf(r, "],\"bytes_up\":%" PRId64 ",\"bytes_down\":%" PRId64 "}",
                            route_bytes(label, "up"), route_bytes(label, "down"));
        }
    }
}

#define SAMPLE_PERIOD 2.0 /* seconds */

/* Each proxy's throughput (bytes/s) over the last period, for the status API. */
static void
on_sample(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct relay *relay = tn_container_of(w, struct relay, sample);
    struct session *s;

    (void)loop;
    (void)revents;
    for (s = relay->sessions; s != NULL; s = s->next) {
        struct proxy *px = s->proxy;

        if (px == NULL)
            continue;
        px->rate_up = (double)(px->bytes_up - px->sampled_up) / SAMPLE_PERIOD;
        px->rate_down = (double)(px->bytes_down - px->sampled_down) / SAMPLE_PERIOD;
        px->sampled_up = px->bytes_up;
        px->sampled_down = px->bytes_down;
    }
}

static void
serve_status(void *arg, const char *query, struct tn_admin_reply *r)
{
    struct relay *relay = arg;
    const struct session *s;
    size_t n = 0;

    (void)query;
    r->type = "application/json";
    tn_admin_printf(r,
                    "{\"version\":\"%s\",\"uptime_seconds\":%.0f,\"draining\":%s,"
                    "\"flows\":{\"active\":%" PRId64 "},\"proxies\":[",
                    TN_VERSION, ev_now(relay->loop) - relay->started,
                    relay->is_draining ? "true" : "false",
                    tn_metric_at(&tn_metric_flows_active, NULL, NULL)->value);
    for (s = relay->sessions; s != NULL; s = s->next) {
        if (!is_routed(s->proxy))
            continue;
        tn_admin_printf(r, "%s", n++ > 0 ? "," : "");
        status_proxy(r, s->proxy);
    }
    tn_admin_printf(r, "],\"clients\":[");
    n = 0;
    for (s = relay->sessions; s != NULL; s = s->next) {
        if (tn_h2_peer(s->h2)->role != TN_ROLE_CLIENT)
            continue;
        tn_admin_printf(r, "%s{\"id\":", n++ > 0 ? "," : "");
        tn_admin_json_str(r, tn_h2_peer(s->h2)->id);
        tn_admin_printf(r, ",\"address\":");
        tn_admin_json_str(r, tn_h2_peer_addr(s->h2));
        tn_admin_printf(r, "}");
    }
    tn_admin_printf(r, "],\"routes\":[");
    status_routes(r, relay);
    tn_admin_printf(r, "],\"exposures\":[");
    expose_status(relay, r);
    tn_admin_printf(r, "]}\n");
}

static void
serve_dashboard(void *arg, const char *query, struct tn_admin_reply *r)
{
    (void)arg;
    (void)query;
    r->type = "text/html; charset=utf-8";
    tn_admin_write(r, relay_dashboard_html, relay_dashboard_html_len);
}

static bool
is_ready(void *arg)
{
    const struct relay *relay = arg;

    return !relay->is_draining;
}

int
relay_obs_start(struct relay *relay)
{
    static struct tn_admin_route routes[] = {
        { "/api/v1/status", serve_status, NULL },
        { "/", serve_dashboard, NULL },
        { NULL, NULL, NULL },
    };
    int r;

    tn_metrics_register_common();
    tn_metrics_register(&m_sessions);
    tn_metrics_register(&relay_metric_sessions_total);
    tn_metrics_register(&relay_metric_public_conns);
    tn_metrics_register(&m_proxies);
    tn_metrics_register(&m_routes);
    tn_metric_at(&relay_metric_sessions_total, "client", NULL);
    tn_metric_at(&relay_metric_sessions_total, "proxy", NULL);
    m_sessions.collect = collect;
    m_sessions.collect_arg = relay;
    relay->started = ev_now(relay->loop);
    if (relay->cfg->audit_output != NULL &&
        (r = tn_log_audit_open(relay->cfg->audit_output)) != 0) {
        tn_log(TN_LOG_ERR, "audit output %s: %s", relay->cfg->audit_output, tn_strerror(r));
        return TN_ERR_CONFIG;
    }
    if (relay->cfg->admin_listen == NULL)
        return 0;
    routes[0].arg = routes[1].arg = relay;
    ev_timer_init(&relay->sample, on_sample, SAMPLE_PERIOD, SAMPLE_PERIOD);
    ev_timer_start(relay->loop, &relay->sample);
    relay->admin.is_ready = is_ready;
    relay->admin.ready_arg = relay;
    manage_start(relay);
    if ((r = tn_admin_start(&relay->admin, relay->loop, relay->cfg->admin_listen, routes)) != 0)
        return r == TN_ERR_CONFIG ? TN_ERR_CONFIG : -1; /* a port in use: worth a retry */
    tn_log_info("admin listener on %s: /metrics /healthz /readyz /api/v1/status /",
                relay->cfg->admin_listen);
    return 0;
}

void
relay_obs_stop(struct relay *relay)
{
    if (relay->loop != NULL)
        ev_timer_stop(relay->loop, &relay->sample);
    tn_admin_stop(&relay->admin);
    tn_metrics_free();
}
