/* SPDX-License-Identifier: MIT */
/* server: the relay.  Authenticates clients and proxies by certificate, routes each client flow
 * to a proxy serving its destination, and copies the bytes between them. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "relay.h"
#include "secopts.h"
#include "tn/addr.h"
#include "tn/busypoll.h"
#include "tn/conf.h"
#include "tn/err.h"
#include "tn/listener.h"
#include "tn/log.h"
#include "tn/lpm.h"
#include "tn/proc.h"
#include "tn/util.h"

const struct tn_conf_key relay_proxy_rule_keys[] = {
    { .key = "id",
      .type = TN_CONF_STR,
      .offset = offsetof(struct proxy_rule, id),
      .is_required = true },
    { .key = "networks",
      .type = TN_CONF_CIDR_LIST,
      .offset = offsetof(struct proxy_rule, networks) },
    { .key = "public_ports",
      .type = TN_CONF_STR,
      .offset = offsetof(struct proxy_rule, public_ports) },
    { 0 },
};

static const struct tn_conf_key token_rule_keys[] = {
    { .key = "proxy",
      .type = TN_CONF_STR,
      .offset = offsetof(struct token_rule, proxy),
      .is_required = true },
    { .key = "token",
      .type = TN_CONF_STR,
      .offset = offsetof(struct token_rule, token),
      .is_required = true },
    { 0 },
};

static const struct tn_conf_key https_cert_keys[] = {
    { .key = "cert_file",
      .type = TN_CONF_STR,
      .offset = offsetof(struct https_cert, cert_file),
      .is_required = true },
    { .key = "key_file",
      .type = TN_CONF_STR,
      .offset = offsetof(struct https_cert, key_file),
      .is_required = true },
    { 0 },
};

const struct tn_conf_key relay_service_rule_keys[] = {
    { .key = "proxy",
      .type = TN_CONF_STR,
      .offset = offsetof(struct service_rule, proxy),
      .is_required = true },
    { .key = "name",
      .type = TN_CONF_STR,
      .offset = offsetof(struct service_rule, name),
      .is_required = true },
    { .key = "public_port",
      .type = TN_CONF_INT,
      .offset = offsetof(struct service_rule, public_port),
      .min = 1,
      .max = 65535,
      .is_required = true },
    { .key = "target",
      .type = TN_CONF_HOSTPORT,
      .offset = offsetof(struct service_rule, target),
      .is_required = true },
    { 0 },
};

static const struct tn_conf_key access_rule_keys[] = {
    { .key = "client",
      .type = TN_CONF_STR,
      .offset = offsetof(struct access_rule, client),
      .is_required = true },
    { .key = "networks",
      .type = TN_CONF_CIDR_LIST,
      .offset = offsetof(struct access_rule, networks),
      .is_required = true },
    { .key = "ports", .type = TN_CONF_STR, .offset = offsetof(struct access_rule, ports) },
    { 0 },
};

static const struct tn_conf_key bw_rule_keys[] = {
    { .key = "client", .type = TN_CONF_STR, .offset = offsetof(struct bw_rule, client) },
    { .key = "proxy", .type = TN_CONF_STR, .offset = offsetof(struct bw_rule, proxy) },
    { .key = "service", .type = TN_CONF_STR, .offset = offsetof(struct bw_rule, service) },
    { .key = "route", .type = TN_CONF_CIDR, .offset = offsetof(struct bw_rule, route) },
    { .key = "up", .type = TN_CONF_SIZE, .offset = offsetof(struct bw_rule, up), .min = 1000 },
    { .key = "down", .type = TN_CONF_SIZE, .offset = offsetof(struct bw_rule, down), .min = 1000 },
    { .key = "burst",
      .type = TN_CONF_SIZE,
      .offset = offsetof(struct bw_rule, burst),
      .min = 16384,
      .max = INT64_C(1) << 32 },
    { 0 },
};

static const struct tn_conf_key keys[] = {
    { .key = "listen_addr",
      .flag = "listen",
      .type = TN_CONF_HOSTPORT,
      .offset = offsetof(struct relay_config, listen_addr),
      .def = ":8081",
      .metavar = "ADDR:PORT",
      .help = "where clients and proxies connect (TLS, HTTP/2)" },
    { .key = "proxies",
      .flag = "allow-proxy",
      .type = TN_CONF_LIST,
      .offset = offsetof(struct relay_config, proxies),
      .metavar = "id=ID,networks=CIDR[,public_ports=P]",
      .help = "proxy ID may announce networks within these and publish these ports (none "
              "given: any proxy, anything)",
      .sub = relay_proxy_rule_keys,
      .elem_size = sizeof(struct proxy_rule) },
    { .key = "access",
      .flag = "allow-client",
      .type = TN_CONF_LIST,
      .offset = offsetof(struct relay_config, access),
      .metavar = "client=ID|*,networks=CIDR[,ports=P]",
      .help = "client ID may reach these networks (and ports: \"22 80 8000-8100\"); none "
              "given: every client everywhere",
      .sub = access_rule_keys,
      .elem_size = sizeof(struct access_rule) },
    { .key = "public_addr",
      .flag = "public-addr",
      .type = TN_CONF_STR,
      .offset = offsetof(struct relay_config, public_addr),
      .def = "0.0.0.0",
      .metavar = "HOST",
      .help = "the address public ports listen on (::, with the default net.ipv6.bindv6only, is "
              "IPv6 and IPv4)" },
    { .key = "public_ports",
      .flag = "public-ports",
      .type = TN_CONF_STR,
      .offset = offsetof(struct relay_config, public_ports),
      .metavar = "PORTS",
      .help = "ports proxies may publish services on (\"10000-10100\"); none: publishing is off" },
    { .key = "http_listen",
      .flag = "http-listen",
      .type = TN_CONF_HOSTPORT,
      .offset = offsetof(struct relay_config, http_listen),
      .metavar = "ADDR:PORT",
      .help = "an HTTP port whose requests go to the service published for their Host" },
    { .key = "https_listen",
      .flag = "https-listen",
      .type = TN_CONF_HOSTPORT,
      .offset = offsetof(struct relay_config, https_listen),
      .metavar = "ADDR:PORT",
      .help = "an HTTPS port: TLS ends here with the https_certs certificate for the SNI name, "
              "which names the service" },
    { .key = "https_certs",
      .flag = "https-cert",
      .type = TN_CONF_LIST,
      .offset = offsetof(struct relay_config, https_certs),
      .metavar = "cert_file=FILE,key_file=FILE",
      .help = "a certificate (PEM chain) and key for https_listen, chosen by the names it holds",
      .sub = https_cert_keys,
      .elem_size = sizeof(struct https_cert) },
    { .key = "public_grace",
      .flag = "public-grace",
      .type = TN_CONF_DURATION,
      .offset = offsetof(struct relay_config, public_grace),
      .def = "10s",
      .metavar = "DURATION",
      .help = "a public port waits this long for its proxy to come back before it closes",
      .max = 3600000 },
    { .key = "services",
      .flag = "service",
      .type = TN_CONF_LIST,
      .offset = offsetof(struct relay_config, services),
      .metavar = "proxy=ID,name=NAME,public_port=PORT,target=IP:PORT",
      .help = "publish TARGET (inside proxy ID's networks) on public port PORT while ID is "
              "connected",
      .sub = relay_service_rule_keys,
      .elem_size = sizeof(struct service_rule) },
    { .key = "tokens",
      .flag = "token",
      .type = TN_CONF_LIST,
      .offset = offsetof(struct relay_config, tokens),
      .metavar = "proxy=ID,token=SECRET",
      .help = "a proxy without a certificate may register as ID with this bearer token",
      .sub = token_rule_keys,
      .elem_size = sizeof(struct token_rule) },
    { .key = "open_timeout",
      .flag = "open-timeout",
      .type = TN_CONF_DURATION,
      .offset = offsetof(struct relay_config, open_timeout),
      .def = "15s",
      .metavar = "DURATION",
      .help = "a proxy must answer a flow's Open this fast, or the next replica is tried",
      .min = 100,
      .max = 3600000 },
    { .key = "drain_timeout",
      .flag = "drain-timeout",
      .type = TN_CONF_DURATION,
      .offset = offsetof(struct relay_config, drain_timeout),
      .def = "30s",
      .metavar = "DURATION",
      .help = "on SIGTERM, let open flows finish this long (0: stop at once)",
      .max = 3600000 },
    TN_OPTS_HEARTBEAT(struct relay_config, heartbeat_interval, heartbeat_timeout),
    TN_OPTS_TLS(struct relay_config, tls, "relay"),
    TN_OPTS_LOG(struct relay_config, log),
    TN_OPTS_LOG_ROTATION(struct relay_config, log),
    TN_OPTS_ADMIN(struct relay_config, admin_listen),
    { .key = "admin.token",
      .flag = "admin-token",
      .type = TN_CONF_STR,
      .offset = offsetof(struct relay_config, admin_token),
      .metavar = "SECRET",
      .help = "bearer token of the management API (/api/v1/manage/...) on the admin listener "
              "(none: the API is off)" },
    { .key = "audit.output",
      .flag = "audit-output",
      .type = TN_CONF_STR,
      .offset = offsetof(struct relay_config, audit_output),
      .metavar = "FILE",
      .help = "also append each flow's flow.end line (JSON) to this file" },
    TN_OPTS_WINDOWS(struct relay_config, stream_window, connection_window),
    TN_OPTS_BUSY_POLL(struct relay_config, busy_poll_us),
    { .key = "limits.max_streams",
      .flag = "max-streams",
      .type = TN_CONF_INT,
      .offset = offsetof(struct relay_config, max_streams),
      .def = "65536",
      .metavar = "N",
      .help = "concurrent streams (flows) per connection",
      .min = 1,
      .max = 1000000 },
    RELAY_OPTS_LIMITS(struct relay_config, limits),
    RELAY_OPTS_REVOKED(struct relay_config, revoked),
    RELAY_OPTS_BOOTSTRAP(struct relay_config, bootstrap, state_dir),
    { .key = "limits.bandwidth",
      .flag = "bandwidth",
      .type = TN_CONF_LIST,
      .offset = offsetof(struct relay_config, bandwidth),
      .metavar = "client=ID|proxy=ID|service=NAME|route=CIDR,up=RATE,down=RATE[,burst=SIZE]",
      .help = "the flows matching every key given share RATE bytes per second each way (20MB: "
              "20 000 000; \"*\" for an id or name: one bucket each)",
      .sub = bw_rule_keys,
      .elem_size = sizeof(struct bw_rule) },
    { 0 },
};

static const struct tn_cli cli = {
    .prog = "server",
    .summary = "The tunnel relay: clients and proxies connect here with mutual TLS.",
    .keys = keys,
};

static void
on_connection(struct tn_listener *l, int fd)
{
    session_accept(tn_container_of(l, struct relay, listener), fd);
}

static void
on_http_connection(struct tn_listener *l, int fd)
{
    http_route_accept(tn_container_of(l, struct relay, http_listener), fd, false);
}

static void
on_https_connection(struct tn_listener *l, int fd)
{
    http_route_accept(tn_container_of(l, struct relay, https_listener), fd, true);
}

/* Opens an HTTP routing port.  Returns 0 or an error (logged). */
static int
route_listen(struct relay *relay, struct tn_listener *l, const char *hostport, tn_listener_cb cb)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    int fd;

    if ((fd = tn_addr_resolve(hostport, true, &ss, &sslen)) != 0)
        return fd == TN_ERR_PARSE ? TN_ERR_CONFIG : fd; /* a resolver down is worth a retry */
    if ((fd = tn_addr_listen((struct sockaddr *)&ss, sslen, 1024)) < 0) {
        tn_log(TN_LOG_ERR, "listen on %s: %s", hostport, tn_strerror(fd));
        return fd;
    }
    tn_listener_start(l, relay->loop, fd, cb);
    tn_log_info("routing HTTP%s requests by %s on %s", cb == on_https_connection ? "S" : "",
                cb == on_https_connection ? "SNI" : "Host", hostport);
    return 0;
}

static void
route_listen_stop(struct relay *relay, struct tn_listener *l)
{
    if (l->io.fd <= 0)
        return;
    tn_listener_stop(l, relay->loop);
    close(l->io.fd);
    l->io.fd = -1;
}

static void
on_status(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)revents;
    route_dump(w->data);
    expose_dump(w->data);
    bandwidth_dump(w->data);
}

/* SIGHUP: reads the configuration again and applies what can change under way: the policy
 * (proxies:, access:), certificates, keys, the CRL and the revoked serials (for new
 * connections), the admin token, the HTTPS routing port's certificates, timeouts, heartbeats,
 * bandwidth limits (open flows follow a changed rate), the relay's services (their ports open and
 * close for the proxies connected) and logging (the log file is reopened, for logrotate).
 * Established flows are untouched; a proxy whose announcements are no longer allowed is drained; a
 * session whose peer's certificate is now revoked is closed.  A configuration with an error changes
 * nothing. */
static void
on_reload(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct relay *relay = w->data;
    struct relay_config fresh = { 0 }, *cfg = relay->cfg;
    SSL_CTX *tls = NULL, **https = NULL;
    size_t nhttps = 0;
    struct tn_log_capture cap;
    int r;

    (void)revents;
    tn_log_info("SIGHUP: reading the configuration again");
    tn_log_stderr_begin(&cap);
    r = tn_cli_parse(&cli, &fresh, relay->argc, relay->argv);
    tn_log_stderr_end(&cap, "reload");
    if (r != 0) {
        tn_log_warnx("reload: the configuration has errors: nothing changed");
        return;
    }
    tn_log_stderr_begin(&cap);
    r = bootstrap_apply(&fresh, false) != 0 || policy_init(&fresh) != 0 ||
        bandwidth_check(&fresh) != 0 || trust_ctx_new(&tls, &fresh) != 0 ||
        https_reload(relay, &fresh, &https, &nhttps) != 0;
    tn_log_stderr_end(&cap, "reload");
    if (r != 0) {
        tn_log_warnx("reload: the new policy or certificates are not usable: nothing changed");
        SSL_CTX_free(tls);
        policy_fini(&fresh);
        tn_conf_fini(keys, &fresh);
        return;
    }
    if (strcmp(fresh.listen_addr, cfg->listen_addr) != 0 ||
        fresh.stream_window != cfg->stream_window ||
        fresh.connection_window != cfg->connection_window || fresh.max_streams != cfg->max_streams)
        tn_log_warnx("reload: listen_addr and limits take effect after a restart");
    if (!tn_str_same(fresh.admin_listen, cfg->admin_listen) ||
        !tn_str_same(fresh.audit_output, cfg->audit_output) ||
        !tn_str_same(fresh.http_listen, cfg->http_listen) ||
        !tn_str_same(fresh.https_listen, cfg->https_listen))
        tn_log_warnx("reload: admin.listen, audit.output, http_listen and https_listen take "
                     "effect after a restart");
    if (strcmp(fresh.public_addr, cfg->public_addr) != 0)
        tn_log_warnx("reload: public_addr %s applies to the public ports opened from now on; "
                     "those open keep listening on %s until they close",
                     fresh.public_addr, cfg->public_addr);
    TN_SWAP(cfg->proxies, fresh.proxies);
    TN_SWAP(cfg->access, fresh.access);
    TN_SWAP(cfg->tokens, fresh.tokens);
    TN_SWAP(cfg->services, fresh.services);
    TN_SWAP(cfg->bandwidth, fresh.bandwidth);
    TN_SWAP(cfg->public_ports, fresh.public_ports);
    TN_SWAP(cfg->public_set, fresh.public_set);
    TN_SWAP(cfg->public_addr, fresh.public_addr);
    cfg->public_grace = fresh.public_grace;
    TN_SWAP(cfg->tls, fresh.tls);
    TN_SWAP(cfg->revoked, fresh.revoked);
    TN_SWAP(cfg->admin_token, fresh.admin_token);
    if (https != NULL) {
        TN_SWAP(cfg->https_certs, fresh.https_certs);
        https_swap(relay, https, nhttps);
    }
    TN_SWAP(cfg->log, fresh.log);
    cfg->open_timeout = fresh.open_timeout;
    cfg->drain_timeout = fresh.drain_timeout;
    cfg->heartbeat_interval = fresh.heartbeat_interval;
    cfg->heartbeat_timeout = fresh.heartbeat_timeout;
    cfg->busy_poll_us = fresh.busy_poll_us;
    tn_busypoll_configure(loop, cfg->busy_poll_us);
    relay->h2.ping_interval = (double)cfg->heartbeat_interval / 1e3;
    relay->h2.ping_timeout = (double)cfg->heartbeat_timeout / 1e3;
    cfg->limits = fresh.limits;
    relay->h2.handshake_timeout = (double)cfg->limits.handshake_timeout / 1e3;
    relay->h2.max_header_list = (uint32_t)cfg->limits.max_header_list;
    relay->h2.is_cert_required = cfg->tokens.n == 0;
    SSL_CTX_free(relay->tls); /* connections hold their own reference */
    relay->tls = tls;
    tn_opts_log_open("server", &cfg->log);
    policy_fini(&fresh); /* what it holds now is the old configuration's */
    tn_conf_fini(keys, &fresh);
    session_recheck_policy(relay);
    expose_services_reloaded(relay);
    trust_recheck(relay);
    bandwidth_reload(relay);
    tn_log_info("reload: done (%zu proxy rules, %zu access rules)", cfg->proxies.n, cfg->access.n);
}

static void
on_drain_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    tn_log_warnx("drain deadline reached: closing what is left");
    ev_break(loop, EVBREAK_ALL);
}

/* The first SIGTERM or SIGINT drains: GOAWAY to everyone, no new connections, proxies out of
 * the routes, open flows finish within drain_timeout.  A second one stops at once. */
static void
on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct relay *relay = w->data;

    (void)revents;
    if (relay->is_draining || relay->sessions == NULL || relay->cfg->drain_timeout == 0) {
        tn_log_info("signal %d: stopping", w->signum);
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    tn_log_info("signal %d: draining for up to %.1f s (again to stop at once)", w->signum,
                (double)relay->cfg->drain_timeout / 1e3);
    relay->is_draining = true;
    /* Closed, not just unwatched: new connections are refused at once and go elsewhere. */
    tn_listener_stop(&relay->listener, loop);
    close(relay->listener.io.fd);
    relay->listener.io.fd = -1;
    route_listen_stop(relay, &relay->http_listener);
    route_listen_stop(relay, &relay->https_listener);
    ev_timer_init(&relay->drain_deadline, on_drain_deadline,
                  (double)relay->cfg->drain_timeout / 1e3, 0);
    ev_timer_start(loop, &relay->drain_deadline);
    session_drain_all(relay);
}

int
main(int argc, char **argv)
{
    struct relay_config cfg = { 0 };
    struct relay relay = { 0 };
    struct sockaddr_storage ss;
    socklen_t sslen;
    ev_signal sigint, sigterm, sigusr1, sighup;
    char addr[TN_ADDR_STRLEN];
    int r = 0, fd, status = 1;

    if ((r = tn_cli_parse(&cli, &cfg, argc, argv)) != 0) {
        tn_conf_fini(keys, &cfg);
        return r == TN_CLI_EXIT ? 0 : 2;
    }
    if ((r = tn_opts_log_open("server", &cfg.log)) != 0) {
        r = TN_ERR_CONFIG;
        goto out;
    }
    signal(SIGPIPE, SIG_IGN);
    tn_proc_raise_nofile();
    relay.loop = EV_DEFAULT;
    tn_proc_trim_start(relay.loop);
    relay.cfg = &cfg;
    relay.argc = argc;
    relay.argv = argv;
    relay.h2 = (struct tn_h2_settings){
        .stream_window = (uint32_t)cfg.stream_window,
        .connection_window = (uint32_t)cfg.connection_window,
        .max_streams = (uint32_t)cfg.max_streams,
        .ping_interval = (double)cfg.heartbeat_interval / 1e3,
        .ping_timeout = (double)cfg.heartbeat_timeout / 1e3,
        .handshake_timeout = (double)cfg.limits.handshake_timeout / 1e3,
        .max_header_list = (uint32_t)cfg.limits.max_header_list,
        /* Without tokens a peer without a certificate has nothing to do here. */
        .is_cert_required = cfg.tokens.n == 0,
    };
    if ((r = policy_init(&cfg)) != 0 || (r = bandwidth_check(&cfg)) != 0)
        goto out;
    if ((relay.routes = tn_lpm_new()) == NULL)
        goto out;
    if (bootstrap_apply(&cfg, true) != 0 || (r = trust_ctx_new(&relay.tls, &cfg)) != 0)
        goto out;
    if ((r = tn_addr_resolve(cfg.listen_addr, true, &ss, &sslen)) != 0) {
        if (r == TN_ERR_PARSE)
            r = TN_ERR_CONFIG; /* a name the resolver denies; a resolver down is worth a retry */
        goto out;
    }
    if ((fd = tn_addr_listen((struct sockaddr *)&ss, sslen, 1024)) < 0) {
        tn_log(TN_LOG_ERR, "listen on %s: %s", cfg.listen_addr, tn_strerror(fd));
        goto out;
    }
    tn_listener_start(&relay.listener, relay.loop, fd, on_connection);
    if (cfg.http_listen != NULL &&
        (r = route_listen(&relay, &relay.http_listener, cfg.http_listen, on_http_connection)) != 0)
        goto out;
    if (cfg.https_listen != NULL &&
        ((r = https_init(&relay)) != 0 ||
         (r = route_listen(&relay, &relay.https_listener, cfg.https_listen, on_https_connection)) !=
             0))
        goto out;
    if ((r = relay_obs_start(&relay)) != 0)
        goto out;
    ev_signal_init(&sigint, on_signal, SIGINT);
    ev_signal_init(&sigterm, on_signal, SIGTERM);
    sigint.data = sigterm.data = &relay;
    ev_signal_start(relay.loop, &sigint);
    ev_signal_start(relay.loop, &sigterm);
    ev_signal_init(&sighup, on_reload, SIGHUP);
    sighup.data = &relay;
    ev_signal_start(relay.loop, &sighup);
    ev_signal_init(&sigusr1, on_status, SIGUSR1);
    sigusr1.data = &relay;
    ev_signal_start(relay.loop, &sigusr1);
    tn_busypoll_configure(relay.loop, cfg.busy_poll_us);
    tn_log_info("relay %s listening on %s", TN_VERSION,
                tn_addr_format((struct sockaddr *)&ss, addr, sizeof(addr)));
    ev_run(relay.loop, 0);
    tn_listener_stop(&relay.listener, relay.loop);
    ev_timer_stop(relay.loop, &relay.drain_deadline);
    if (relay.listener.io.fd >= 0)
        close(relay.listener.io.fd);
    session_close_all(&relay);
    expose_close_all(&relay);
    http_close_all(&relay);
    status = 0;
out:
    if (status != 0 && r == TN_ERR_CONFIG)
        status = 2; /* not worth a restart: see the units' RestartPreventExitStatus */
    route_listen_stop(&relay, &relay.http_listener);
    route_listen_stop(&relay, &relay.https_listener);
    https_fini(&relay);
    relay_obs_stop(&relay);
    route_free_all(&relay);
    limits_free_all(&relay);
    policy_fini(&cfg);
    SSL_CTX_free(relay.tls);
    tn_conf_fini(keys, &cfg);
    tn_log_close();
    return status;
}
