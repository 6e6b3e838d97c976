/* SPDX-License-Identifier: MIT */
/* What the client shows: its admin listener (/metrics, /healthz, /readyz, /status), the local
 * status socket that 'client status' reads, and the summary it logs when it stops. */
#include <inttypes.h>
#include <string.h>

#include "client.h"
#include "tn/admin.h"
#include "tn/err.h"
#include "tn/log.h"
#include "tn/metrics.h"

static struct tn_metric m_rules = {
    .name = "tunnel_rules",
    .help = "Networks the client intercepts now (its redirect rules installed).",
    .type = TN_METRIC_GAUGE,
};
static struct tn_metric m_relay = {
    .name = "tunnel_relay_connected",
    .help = "1 while the connection to the relay is up.",
    .type = TN_METRIC_GAUGE,
};

static void
collect(struct tn_metric *m, void *arg)
{
    const struct client *c = arg;

    (void)m;
    tn_metric_at(&m_rules, NULL, NULL)->value = c->has_rules ? (int64_t)c->cfg->target_cidr.n : 0;
    tn_metric_at(&m_relay, NULL, NULL)->value = c->link.is_up;
}

static int64_t
bytes(const char *direction)
{
    const struct tn_metric_series *s;
    int64_t n = 0;

    for (s = tn_metric_route_bytes.series; s != NULL; s = s->next)
        n += strcmp(s->values[1], direction) == 0 ? s->value : 0;
    return n;
}

/* What 'client status' prints. */
static void
serve_status(void *arg, const char *query, struct tn_admin_reply *r)
{
    const struct client *c = arg;
    char net[TN_CIDR_STRLEN];
    size_t i;

    (void)query;
    if (c->link.is_up && c->link.h2 != NULL)
        tn_admin_printf(r, "relay:        connected to %s (%s)\n", tn_h2_peer_addr(c->link.h2),
                        tn_h2_peer(c->link.h2)->id);
    else
        tn_admin_printf(r, "relay:        disconnected (%s; %" PRId64 " failed attempts)\n",
                        c->link.hostport != NULL ? c->link.hostport : "-", c->link.failures);
    tn_admin_printf(r, "intercepting:");
    for (i = 0; i < c->cfg->target_cidr.n; i++)
        tn_admin_printf(r, " %s", tn_cidr_format(&c->cfg->target_cidr.v[i], net, sizeof(net)));
    tn_admin_printf(r, "%s\n", c->has_rules ? "" : " (rules not installed yet)");
    tn_admin_printf(r, "flows:        %" PRIu64 " active, %" PRIu64 " since start%s\n", c->active,
                    c->flows, c->is_draining ? " (draining)" : "");
    tn_admin_printf(r, "bytes:        %" PRId64 " up, %" PRId64 " down (flows ended)\n",
                    bytes("up"), bytes("down"));
    tn_admin_printf(r, "uptime:       %.0f s\n", ev_now(c->loop) - c->started);
}

static bool
is_ready(void *arg)
{
    const struct client *c = arg;

    return c->link.is_up && c->has_rules && !c->is_draining;
}

int
client_obs_start(struct client *c)
{
    static struct tn_admin_route routes[] = {
        { "/status", serve_status, NULL },
        { NULL, NULL, NULL },
    };
    char where[300];

    tn_metrics_register_common();
    tn_metrics_register(&m_rules);
    tn_metrics_register(&m_relay);
    m_rules.collect = collect;
    m_rules.collect_arg = c;
    routes[0].arg = c;
    c->started = ev_now(c->loop);
    c->admin.is_ready = c->status_admin.is_ready = is_ready;
    c->admin.ready_arg = c->status_admin.ready_arg = c;
    if (c->cfg->admin_listen != NULL) {
        if (tn_admin_start(&c->admin, c->loop, c->cfg->admin_listen, routes) != 0)
            return TN_ERR_CONFIG;
        tn_log_info("admin listener on %s: /metrics /healthz /readyz /status",
                    c->cfg->admin_listen);
    }
    /* The status socket is a convenience: without it the client still works. */
    if (c->cfg->status_socket != NULL && c->cfg->status_socket[0] != '\0') {
        snprintf(where, sizeof(where), "unix:%s", c->cfg->status_socket);
        if (tn_admin_start(&c->status_admin, c->loop, where, routes) != 0)
            tn_log_warnx("no status socket: 'client status' will not answer");
    }
    return 0;
}

void
client_obs_stop(struct client *c)
{
    if (c->loop != NULL && c->started > 0)
        tn_metrics_log_summary(ev_now(c->loop) - c->started);
    tn_admin_stop(&c->admin);
    tn_admin_stop(&c->status_admin);
    tn_metrics_free();
}

int
client_status(const char *socket_path)
{
    struct tn_buf out;
    char where[300], why[256], chunk[4096];
    size_t n;
    int status;

    if (socket_path == NULL || socket_path[0] == '\0') {
        fprintf(stderr, "client status: no status socket (status_socket is \"\")\n");
        return 1;
    }
    snprintf(where, sizeof(where), "unix:%s", socket_path);
    tn_buf_init(&out);
    if ((status = tn_admin_get(where, "/status", &out, why, sizeof(why))) != 200) {
        if (status < 0)
            fprintf(stderr, "client status: %s (is the client running?)\n", why);
        else
            fprintf(stderr, "client status: HTTP %d\n", status);
        tn_buf_fini(&out);
        return 1;
    }
    while ((n = tn_buf_copy(&out, (uint8_t *)chunk, sizeof(chunk))) > 0) {
        fwrite(chunk, 1, n, stdout);
        tn_buf_consume(&out, n);
    }
    tn_buf_fini(&out);
    return 0;
}
