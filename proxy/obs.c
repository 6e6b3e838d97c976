/* SPDX-License-Identifier: MIT */
/* What the proxy shows: its admin listener (/metrics, /healthz, /readyz) and the summary it
 * logs when it stops. */
#include "proxy.h"
#include "tn/admin.h"
#include "tn/err.h"
#include "tn/log.h"
#include "tn/metrics.h"

static struct tn_metric m_relays = {
    .name = "tunnel_relays_registered",
    .help = "Relays this proxy is registered with now.",
    .type = TN_METRIC_GAUGE,
};
static struct tn_metric m_networks = {
    .name = "tunnel_networks",
    .help = "Networks this proxy serves.",
    .type = TN_METRIC_GAUGE,
};

static int64_t
registered(const struct proxy *px)
{
    int64_t n = 0;
    size_t i;

    for (i = 0; i < px->nuplinks; i++)
        n += px->uplinks[i].is_registered;
    return n;
}

static void
collect(struct tn_metric *m, void *arg)
{
    const struct proxy *px = arg;

    (void)m;
    tn_metric_at(&m_relays, NULL, NULL)->value = registered(px);
    tn_metric_at(&m_networks, NULL, NULL)->value = (int64_t)px->nnets;
}

/* Ready when at least one relay routes flows here. */
static bool
is_ready(void *arg)
{
    const struct proxy *px = arg;

    return !px->is_stopping && registered(px) > 0;
}

int
proxy_obs_start(struct proxy *px)
{
    tn_metrics_register_common();
    tn_metrics_register(&m_relays);
    tn_metrics_register(&m_networks);
    m_relays.collect = collect;
    m_relays.collect_arg = px;
    px->started = ev_now(px->loop);
    if (px->cfg->admin_listen == NULL)
        return 0;
    px->admin.is_ready = is_ready;
    px->admin.ready_arg = px;
    if (tn_admin_start(&px->admin, px->loop, px->cfg->admin_listen, NULL) != 0)
        return TN_ERR_CONFIG;
    tn_log_info("admin listener on %s: /metrics /healthz /readyz", px->cfg->admin_listen);
    return 0;
}

void
proxy_obs_stop(struct proxy *px)
{
    if (px->loop != NULL && px->started > 0)
        tn_metrics_log_summary(ev_now(px->loop) - px->started);
    tn_admin_stop(&px->admin);
    tn_metrics_free();
}
