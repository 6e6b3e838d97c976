/* SPDX-License-Identifier: MIT */
/* proxy: runs inside a remote network, connects out to the relay, and dials the targets of
 * client flows, only inside the network it serves. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "httplog.h"
#include "proxy.h"
#include "tn/addr.h"
#include "tn/busypoll.h"
#include "tn/conf.h"
#include "tn/err.h"
#include "tn/log.h"
#include "tn/names.h"
#include "tn/proc.h"
#include "tn/util.h"

static const struct tn_conf_key network_keys[] = {
    { .key = "cidr",
      .type = TN_CONF_CIDR,
      .offset = offsetof(struct proxy_net, real),
      .is_required = true },
    { .key = "virtual_cidr", .type = TN_CONF_CIDR, .offset = offsetof(struct proxy_net, virt) },
    { 0 },
};

static const struct tn_conf_key service_keys[] = {
    { .key = "name", .type = TN_CONF_STR, .offset = offsetof(struct proxy_service, name) },
    { .key = "target", .type = TN_CONF_HOSTPORT, .offset = offsetof(struct proxy_service, target) },
    { .key = "public_port",
      .type = TN_CONF_INT,
      .offset = offsetof(struct proxy_service, public_port),
      .max = 65535 },
    /* The mapping list's names: [{"local_port": 8000, "remote_port": 60001}]. */
    { .key = "local_port",
      .type = TN_CONF_INT,
      .offset = offsetof(struct proxy_service, local_port),
      .min = 1,
      .max = 65535 },
    { .key = "remote_port",
      .type = TN_CONF_INT,
      .offset = offsetof(struct proxy_service, public_port),
      .max = 65535 },
    { .key = "http", .type = TN_CONF_BOOL, .offset = offsetof(struct proxy_service, http) },
    { .key = "http.host", .type = TN_CONF_STR, .offset = offsetof(struct proxy_service, host) },
    { 0 },
};

static const char *const service_flag_fields[] = { "public_port", "target", NULL };

static const struct tn_conf_key keys[] = {
    { .key = "server_addr",
      .flag = "server",
      .type = TN_CONF_HOSTPORT_LIST,
      .offset = offsetof(struct proxy_config, server_addr),
      .metavar = "HOST:PORT",
      .help = "the relay; several: a session to each, so any can route here (YAML: also "
              "servers)",
      .is_required = true },
    { .key = "servers",
      .type = TN_CONF_HOSTPORT_LIST,
      .offset = offsetof(struct proxy_config, server_addr),
      .help = "the same as server_addr, as a list" },
    { .key = "proxy_id",
      .flag = "proxy-id",
      .type = TN_CONF_STR,
      .offset = offsetof(struct proxy_config, proxy_id),
      .metavar = "ID",
      .help = "this proxy's id; must equal its certificate's (default: the certificate's)" },
    { .key = "managed_cidr",
      .flag = "managed-cidr",
      .type = TN_CONF_CIDR,
      .offset = offsetof(struct proxy_config, managed_cidr),
      .metavar = "CIDR",
      .help = "the network this proxy serves and may dial into (or use networks:)" },
    { .key = "virtual_cidr",
      .flag = "virtual-cidr",
      .type = TN_CONF_CIDR,
      .offset = offsetof(struct proxy_config, virtual_cidr),
      .metavar = "CIDR",
      .help = "range clients address that network by (same size; host bits kept)" },
    { .key = "networks",
      .flag = "network",
      .type = TN_CONF_LIST,
      .offset = offsetof(struct proxy_config, networks),
      .metavar = "cidr=CIDR[,virtual_cidr=CIDR]",
      .help = "one more network served, as managed_cidr and virtual_cidr",
      .sub = network_keys,
      .elem_size = sizeof(struct proxy_net) },
    { .key = "expose",
      .flag = "expose",
      .type = TN_CONF_LIST,
      .offset = offsetof(struct proxy_config, expose),
      .metavar = "PUBLIC_PORT:HOST:PORT",
      .help = "publish the service at HOST:PORT on the relay's PUBLIC_PORT (0: any free one); "
              "or name=N,target=HOST:PORT,public_port=P,http=true,http.host=NAME",
      .sub = service_keys,
      .elem_size = sizeof(struct proxy_service),
      .flag_fields = service_flag_fields,
      .is_top_list = true },
    { .key = "token",
      .flag = "token",
      .type = TN_CONF_STR,
      .offset = offsetof(struct proxy_config, token),
      .metavar = "SECRET",
      .help = "register with this bearer token instead of a certificate (give --tls-ca and "
              "--proxy-id, no --tls-cert)" },
    { .key = "dial_timeout",
      .flag = "dial-timeout",
      .type = TN_CONF_DURATION,
      .offset = offsetof(struct proxy_config, dial_timeout_ms),
      .def = "10s",
      .metavar = "DURATION",
      .help = "give up dialing a target after this long",
      .min = 1,
      .max = 3600000 },
    { .key = "accept_pool",
      .flag = "accept-pool",
      .type = TN_CONF_INT,
      .offset = offsetof(struct proxy_config, accept_pool),
      .def = "16",
      .metavar = "N",
      .help = "idle Accept streams kept open for new flows",
      .min = 1,
      .max = 4096 },
    TN_OPTS_FLOW_TIMEOUTS(struct proxy_config, idle_timeout, drain_timeout, "30s"),
    TN_OPTS_HEARTBEAT(struct proxy_config, heartbeat_interval, heartbeat_timeout),
    TN_OPTS_RECONNECT(struct proxy_config, reconnect),
    TN_OPTS_TLS(struct proxy_config, tls, "proxy"),
    TN_OPTS_SERVER_NAME(struct proxy_config, tls),
    TN_OPTS_LOG(struct proxy_config, log),
    TN_OPTS_LOG_ROTATION(struct proxy_config, log),
    TN_OPTS_ADMIN(struct proxy_config, admin_listen),
    TN_OPTS_WINDOWS(struct proxy_config, stream_window, connection_window),
    TN_OPTS_BUSY_POLL(struct proxy_config, busy_poll_us),
    { 0 },
};

static const struct tn_cli cli = {
    .prog = "proxy",
    .summary = "The tunnel proxy: serves a network to clients through the relay.",
    .keys = keys,
};

/* Checks the services to publish: names unique (a missing one is its target).  A target that is
 * an address is parsed now; a name is looked up for each connection, off the loop, so that it
 * follows its DNS and a reload never waits for a resolver.  Returns 0 or TN_ERR_CONFIG
 * (printed). */
static int
services_prepare(struct proxy_config *cfg)
{
    struct proxy_service *svc = cfg->expose.v;
    struct tn_ip ip;
    unsigned port;
    size_t i, j;

    for (i = 0; i < cfg->expose.n; i++) {
        if ((svc[i].target == NULL) == (svc[i].local_port == 0)) {
            fprintf(stderr, "proxy: expose: give each service a target (HOST:PORT) or a "
                            "local_port, not both\n");
            return TN_ERR_CONFIG;
        }
        if (svc[i].target == NULL &&
            asprintf(&svc[i].target, "127.0.0.1:%" PRId64, svc[i].local_port) < 0)
            return -ENOMEM;
        if (svc[i].name == NULL && (svc[i].name = strdup(svc[i].target)) == NULL)
            return -ENOMEM;
        if (!tn_service_name_valid(svc[i].name)) {
            fprintf(stderr,
                    "proxy: expose: the name '%s' is not 1-%d printable characters without "
                    "spaces\n",
                    svc[i].name, TN_SERVICE_NAME_MAX);
            return TN_ERR_CONFIG;
        }
        if (svc[i].host != NULL) {
            char *c;

            for (c = svc[i].host; *c != '\0'; c++) /* Host and SNI names know no case */
                *c = (char)tolower((unsigned char)*c);
            if (!tn_host_name_valid(svc[i].host)) {
                fprintf(stderr,
                        "proxy: expose '%s': http.host '%s' is not a host name (letters, "
                        "digits, '-' and '.')\n",
                        svc[i].name, svc[i].host);
                return TN_ERR_CONFIG;
            }
        }
        for (j = 0; j < i; j++) {
            if (strcmp(svc[i].name, svc[j].name) == 0) {
                fprintf(stderr, "proxy: expose: the name '%s' is used twice\n", svc[i].name);
                return TN_ERR_CONFIG;
            }
        }
        if (svc[i].http && (svc[i].stats = calloc(1, sizeof(*svc[i].stats))) == NULL)
            return -ENOMEM;
        /* An address now; anything else the configuration let through as HOST:PORT (a name,
         * or ":PORT" for loopback) is looked up for each connection (addrlen 0). */
        if (tn_addr_parse_ip(svc[i].target, &ip, &port) == 0)
            svc[i].addrlen = tn_addr_from_ip(&ip, port, &svc[i].addr);
    }
    return 0;
}

/* Whether two configurations publish the same services. */
static bool
services_same(const struct proxy_config *a, const struct proxy_config *b)
{
    const struct proxy_service *x = a->expose.v, *y = b->expose.v;
    size_t i;

    if (a->expose.n != b->expose.n)
        return false;
    for (i = 0; i < a->expose.n; i++) {
        if (!tn_str_same(x[i].name, y[i].name) || !tn_str_same(x[i].target, y[i].target) ||
            !tn_str_same(x[i].host, y[i].host) || x[i].public_port != y[i].public_port ||
            x[i].http != y[i].http)
            return false;
    }
    return true;
}

/* A token stands for the certificate: without one, the proxy needs none.  Returns true. */
static bool
tls_prepare(struct proxy_config *cfg)
{
    cfg->tls.may_go_without_cert = cfg->token != NULL;
    return true;
}

/* The id this proxy registers with when its TLS context is |tls|: |configured| (proxy_id, or
 * NULL) with a token; with a certificate, the id in it, which the relay insists on, so a
 * |configured| one must be the same.  Returns it (the certificate's in |me|) or NULL (logged;
 * NULL too when neither has one). */
static const char *
proxy_id_of(SSL_CTX *tls, const char *configured, struct tn_identity *me)
{
    if (tn_tls_ctx_identity(tls, me) != 0)
        return configured; /* a token stands for the certificate */
    if (configured != NULL && strcmp(configured, me->id) != 0) {
        tn_log(TN_LOG_ERR,
               "proxy_id '%s' is not the id in the certificate ('%s'), and the relay takes only "
               "that one: leave proxy_id out, or issue the certificate with --id %s",
               configured, me->id, configured);
        return NULL;
    }
    return me->id;
}

/* On reload: the new certificate and proxy_id must agree, as at start, and name the proxy
 * this one runs as (|running|): the relay knows it by that id, and a new one takes a
 * restart. */
static bool
reload_id_ok(SSL_CTX *tls, const struct proxy_config *fresh, const char *running)
{
    struct tn_identity me;
    const char *id;

    if (tn_tls_ctx_identity(tls, &me) != 0 && fresh->proxy_id == NULL) {
        tn_log(TN_LOG_ERR, "without a certificate, give --token and --proxy-id");
        return false;
    }
    if ((id = proxy_id_of(tls, fresh->proxy_id, &me)) == NULL)
        return false;
    if (strcmp(id, running) != 0) {
        tn_log(TN_LOG_ERR,
               "the new certificate or proxy_id names this proxy '%s', and it runs as '%s': a "
               "new id takes a restart",
               id, running);
        return false;
    }
    return true;
}

/* On exit: the counts of each service with an HTTP log. */
static void
services_summary(const struct proxy_config *cfg, double uptime)
{
    const struct proxy_service *svc = cfg->expose.v;
    size_t i;

    for (i = 0; i < cfg->expose.n; i++) {
        if (svc[i].stats != NULL)
            http_stats_summary(svc[i].stats, svc[i].name, uptime);
    }
}

/* Frees what services_prepare allocated beside the table's fields. */
static void
services_fini(struct proxy_config *cfg)
{
    struct proxy_service *svc = cfg->expose.v;
    size_t i;

    for (i = 0; i < cfg->expose.n; i++) {
        free(svc[i].stats);
        svc[i].stats = NULL;
    }
}

/* Gathers every network served (the list, then the flags' one) into |px| and checks what the
 * table cannot: that there is one, and that each virtual range fits its real one.  Returns 0
 * or TN_ERR_CONFIG (printed). */
static int
networks_gather(struct proxy *px, struct proxy_config *cfg)
{
    const struct proxy_net *list = cfg->networks.v;
    char a[TN_CIDR_STRLEN], b[TN_CIDR_STRLEN];
    size_t i, n = cfg->networks.n + (cfg->managed_cidr.ip.family != 0);

    if (n == 0 && cfg->expose.n == 0) {
        fprintf(stderr, "proxy: give the network to serve (--managed-cidr, --network) or a "
                        "service to publish (--expose)\n");
        return TN_ERR_CONFIG;
    }
    if (n == 0)
        return services_prepare(cfg);
    if (cfg->managed_cidr.ip.family == 0 && cfg->virtual_cidr.ip.family != 0) {
        fprintf(stderr, "proxy: virtual_cidr needs managed_cidr\n");
        return TN_ERR_CONFIG;
    }
    if ((px->nets = calloc(n, sizeof(*px->nets))) == NULL)
        return -ENOMEM;
    for (i = 0; i < cfg->networks.n; i++)
        px->nets[px->nnets++] = list[i];
    if (cfg->managed_cidr.ip.family != 0)
        px->nets[px->nnets++] = (struct proxy_net){ cfg->managed_cidr, cfg->virtual_cidr };
    for (i = 0; i < px->nnets; i++) {
        const struct proxy_net *net = &px->nets[i];

        if (net->virt.ip.family != 0 && net->virt.ip.family != net->real.ip.family) {
            fprintf(stderr, "proxy: virtual network %s and network %s must be of one family\n",
                    tn_cidr_format(&net->virt, a, sizeof(a)),
                    tn_cidr_format(&net->real, b, sizeof(b)));
            return TN_ERR_CONFIG;
        }
        if (net->virt.ip.family != 0 && net->virt.prefix != net->real.prefix) {
            fprintf(stderr, "proxy: virtual network %s must be the same size as %s\n",
                    tn_cidr_format(&net->virt, a, sizeof(a)),
                    tn_cidr_format(&net->real, b, sizeof(b)));
            return TN_ERR_CONFIG;
        }
        /* A link-local target needs an interface to be dialled, which a CIDR cannot give. */
        if (net->real.ip.family == AF_INET6 && net->real.ip.bytes[0] == 0xfe &&
            (net->real.ip.bytes[1] & 0xc0) == 0x80) {
            fprintf(stderr,
                    "proxy: network %s is link-local (fe80::/10): its hosts cannot be "
                    "dialled without an interface; serve a routed range\n",
                    tn_cidr_format(&net->real, b, sizeof(b)));
            return TN_ERR_CONFIG;
        }
    }
    return services_prepare(cfg);
}

void
proxy_flow_ended(struct proxy *px)
{
    px->active--;
    if (px->is_stopping && px->active == 0) {
        tn_log_info("drained: every flow is done");
        ev_break(px->loop, EVBREAK_ALL);
    }
}

static void
on_drain_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct proxy *px = tn_container_of(w, struct proxy, drain_deadline);

    (void)revents;
    tn_log_warnx("drain deadline reached: resetting %" PRIu64 " flows", px->active);
    ev_break(loop, EVBREAK_ALL);
}

/* SIGHUP: reads the configuration again; the networks, certificates, timeouts and logging
 * change under way.  Every relay session starts over on a new connection (a new Hello, the new
 * certificate) while open flows finish on the old one.  An error changes nothing. */
static void
on_reload(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct proxy *px = w->data, fresh_px = { 0 };
    struct proxy_config fresh = { 0 }, *cfg = px->cfg;
    struct tn_log_capture cap;
    bool is_bad;
    size_t i;
    SSL_CTX *tls = NULL;

    (void)revents;
    tn_log_info("SIGHUP: reading the configuration again");
    tn_log_stderr_begin(&cap);
    is_bad = tn_cli_parse(&cli, &fresh, px->argc, px->argv) != 0 ||
             networks_gather(&fresh_px, &fresh) != 0 || !tls_prepare(&fresh) ||
             tn_tls_ctx_new(&tls, &fresh.tls, TN_ROLE_PROXY) != 0 ||
             !reload_id_ok(tls, &fresh, cfg->proxy_id);
    tn_log_stderr_end(&cap, "reload");
    if (is_bad) {
        tn_log_warnx("reload: the configuration or certificates have errors: nothing changed");
        SSL_CTX_free(tls);
        free(fresh_px.nets);
        services_fini(&fresh);
        tn_conf_fini(keys, &fresh);
        return;
    }
    for (i = 0; i < fresh.server_addr.n || i < cfg->server_addr.n; i++) {
        if (i >= fresh.server_addr.n || i >= cfg->server_addr.n ||
            strcmp(fresh.server_addr.v[i], cfg->server_addr.v[i]) != 0) {
            tn_log_warnx("reload: the relays take effect after a restart");
            break;
        }
    }
    if (!services_same(&fresh, cfg))
        tn_log_warnx("reload: expose: changes take effect after a restart");
    TN_SWAP(px->nets, fresh_px.nets);
    TN_SWAP(px->nnets, fresh_px.nnets);
    TN_SWAP(cfg->networks, fresh.networks);
    TN_SWAP(cfg->managed_cidr, fresh.managed_cidr);
    TN_SWAP(cfg->virtual_cidr, fresh.virtual_cidr);
    TN_SWAP(cfg->tls, fresh.tls);
    TN_SWAP(cfg->token, fresh.token); /* the Hello of the new sessions carries it */
    px->settings.server_name = cfg->tls.server_name;
    TN_SWAP(cfg->log, fresh.log);
    cfg->dial_timeout_ms = fresh.dial_timeout_ms;
    cfg->accept_pool = fresh.accept_pool;
    cfg->idle_timeout = fresh.idle_timeout;
    cfg->drain_timeout = fresh.drain_timeout;
    cfg->reconnect = fresh.reconnect;
    cfg->busy_poll_us = fresh.busy_poll_us;
    tn_busypoll_configure(loop, cfg->busy_poll_us);
    px->settings.ping_interval = (double)fresh.heartbeat_interval / 1e3;
    px->settings.ping_timeout = (double)fresh.heartbeat_timeout / 1e3;
    SSL_CTX_free(px->tls); /* open connections hold their own reference */
    px->tls = tls;
    tn_opts_log_open("proxy", &cfg->log);
    free(fresh_px.nets); /* the old list */
    services_fini(&fresh);
    tn_conf_fini(keys, &fresh);
    uplinks_renew(px);
    tn_log_info("reload: done (%zu networks)", px->nnets);
}

void
proxy_leave(struct proxy *px, int status, const char *why)
{
    if (status > px->status)
        px->status = status;
    if (px->is_stopping)
        return;
    px->is_stopping = true;
    if (px->active == 0 || px->cfg->drain_timeout == 0) {
        tn_log_info("%s: stopping", why);
        ev_break(px->loop, EVBREAK_ALL);
        return;
    }
    tn_log_info("%s: leaving the relay; %" PRIu64 " flows have %.1f s to finish", why, px->active,
                (double)px->cfg->drain_timeout / 1e3);
    uplinks_drain(px);
    ev_timer_init(&px->drain_deadline, on_drain_deadline, (double)px->cfg->drain_timeout / 1e3, 0);
    ev_timer_start(px->loop, &px->drain_deadline);
}

/* The first SIGTERM or SIGINT drains (proxy_leave); a second one stops at once. */
static void
on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct proxy *px = w->data;
    char why[32];

    (void)revents;
    snprintf(why, sizeof(why), "signal %d", w->signum);
    if (px->is_stopping) {
        tn_log_info("%s: stopping", why);
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    proxy_leave(px, 0, why);
}

int
main(int argc, char **argv)
{
    struct proxy_config cfg = { 0 };
    struct proxy px = { 0 };
    struct tn_identity me = { 0 };
    long nofile;
    double started;
    ev_signal sigint, sigterm, sighup;
    int r;

    if ((r = tn_cli_parse(&cli, &cfg, argc, argv)) != 0 || (r = networks_gather(&px, &cfg)) != 0) {
        free(px.nets);
        services_fini(&cfg);
        tn_conf_fini(keys, &cfg);
        return r == TN_CLI_EXIT ? 0 : 2;
    }
    px.status = 2; /* until the configuration is found usable */
    if (tn_opts_log_open("proxy", &cfg.log) != 0)
        goto out;
    px.status = 1;
    signal(SIGPIPE, SIG_IGN);
    nofile = tn_proc_raise_nofile();
    px.dgram_max = nofile > 0 ? (uint64_t)nofile / 2 : 512;
    px.loop = EV_DEFAULT;
    tn_proc_trim_start(px.loop);
    px.cfg = &cfg;
    px.argc = argc;
    px.argv = argv;
    if (!tls_prepare(&cfg))
        goto out;
    if ((r = tn_tls_ctx_new(&px.tls, &cfg.tls, TN_ROLE_PROXY)) != 0) {
        if (r == TN_ERR_CONFIG)
            px.status = 2;
        goto out;
    }
    if (cfg.tls.cert_file == NULL && (cfg.token == NULL || cfg.proxy_id == NULL)) {
        tn_log(TN_LOG_ERR, "without a certificate, give --token and --proxy-id");
        px.status = 2;
        goto out;
    }
    if (proxy_id_of(px.tls, cfg.proxy_id, &me) == NULL) {
        px.status = 2;
        goto out;
    }
    if (cfg.proxy_id == NULL && (cfg.proxy_id = strdup(me.id)) == NULL)
        goto out;
    px.settings = (struct tn_h2_settings){
        .stream_window = (uint32_t)cfg.stream_window,
        .connection_window = (uint32_t)cfg.connection_window,
        .max_streams = 100,
        .peer_role = TN_ROLE_SERVER,
        .server_name = cfg.tls.server_name,
        .ping_interval = (double)cfg.heartbeat_interval / 1e3,
        .ping_timeout = (double)cfg.heartbeat_timeout / 1e3,
    };
    if (uplinks_start(&px) != 0 || proxy_obs_start(&px) != 0)
        goto out;
    ev_signal_init(&sigint, on_signal, SIGINT);
    ev_signal_init(&sigterm, on_signal, SIGTERM);
    ev_signal_init(&sighup, on_reload, SIGHUP);
    sigint.data = sigterm.data = sighup.data = &px;
    ev_signal_start(px.loop, &sighup);
    ev_signal_start(px.loop, &sigint);
    ev_signal_start(px.loop, &sigterm);
    px.status = 0;
    started = ev_time();
    tn_busypoll_configure(px.loop, cfg.busy_poll_us);
    ev_run(px.loop, 0);
    ev_timer_stop(px.loop, &px.drain_deadline);
    services_summary(&cfg, ev_time() - started);
out:
    uplinks_stop(&px);
    proxy_obs_stop(&px); /* after the flows uplinks_stop ended */
    free(px.nets);
    SSL_CTX_free(px.tls);
    services_fini(&cfg);
    tn_conf_fini(keys, &cfg);
    tn_log_close();
    return px.status;
}
