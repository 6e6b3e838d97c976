/* SPDX-License-Identifier: MIT */
/* client: intercepts TCP to the configured networks (iptables REDIRECT to a local listener,
 * SO_ORIGINAL_DST for the real destination) and carries each connection to the relay as one
 * HTTP/2 stream over mutual TLS. */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "client.h"
#include "tn/addr.h"
#include "tn/busypoll.h"
#include "tn/conf.h"
#include "tn/err.h"
#include "tn/log.h"
#include "tn/proc.h"
#include "tn/tls.h"
#include "tn/util.h"

static const struct tn_conf_key keys[] = {
    { .key = "server_addr",
      .flag = "server",
      .type = TN_CONF_HOSTPORT_LIST,
      .offset = offsetof(struct client_config, server_addr),
      .metavar = "HOST:PORT",
      .help = "the relay; several: one is used, the next when it fails (YAML: also servers)" },
    { .key = "servers",
      .type = TN_CONF_HOSTPORT_LIST,
      .offset = offsetof(struct client_config, server_addr),
      .help = "the same as server_addr, as a list" },
    { .key = "target_cidr",
      .flag = "cidr",
      .type = TN_CONF_CIDR_LIST,
      .offset = offsetof(struct client_config, target_cidr),
      .metavar = "CIDR",
      .help = "a network to intercept" },
    { .key = "exclude",
      .flag = "exclude",
      .type = TN_CONF_CIDR_LIST,
      .offset = offsetof(struct client_config, exclude),
      .metavar = "CIDR",
      .help = "a range to keep local even inside an intercepted network" },
    { .key = "user",
      .flag = "user",
      .type = TN_CONF_STR,
      .offset = offsetof(struct client_config, user),
      .metavar = "NAME",
      .help = "once set up, run as this user (with CAP_NET_ADMIN and CAP_NET_RAW only, as "
              "always)" },
    { .key = "fail_closed",
      .flag = "fail-closed",
      .type = TN_CONF_BOOL,
      .offset = offsetof(struct client_config, is_fail_closed),
      .def = "false",
      .help = "reject traffic to the networks whenever the tunnel does not carry it, even after "
              "exit (until --cleanup)" },
    { .key = "cleanup",
      .flag = "cleanup",
      .type = TN_CONF_BOOL,
      .offset = offsetof(struct client_config, is_cleanup),
      .def = "false",
      .help = "remove every rule of ours, fail-closed ones too, and exit" },
    { .key = "udp",
      .flag = "udp",
      .type = TN_CONF_BOOL,
      .offset = offsetof(struct client_config, is_udp),
      .def = "true",
      .help = "also carry UDP and ICMP echo (ping) to the networks, through NFQUEUE" },
    { .key = "nfqueue",
      .flag = "nfqueue",
      .type = TN_CONF_INT,
      .offset = offsetof(struct client_config, nfqueue),
      .def = "9999",
      .metavar = "N",
      .help = "the netfilter queue number UDP and ICMP are taken from",
      .min = 0,
      .max = 65535 },
    { .key = "udp_idle_timeout",
      .flag = "udp-idle-timeout",
      .type = TN_CONF_DURATION,
      .offset = offsetof(struct client_config, udp_idle_timeout),
      .def = "60s",
      .metavar = "DURATION",
      .help = "close a UDP or ICMP flow that moved no datagram for this long",
      .min = 100,
      .max = 86400000 },
    { .key = "udp_max_flows",
      .flag = "udp-max-flows",
      .type = TN_CONF_INT,
      .offset = offsetof(struct client_config, udp_max_flows),
      .def = "4096",
      .metavar = "N",
      .help = "UDP and ICMP flows open at once; a new one beyond ends the one silent longest",
      .min = 1,
      .max = 1000000 },
    { .key = "gateway",
      .flag = "gateway",
      .type = TN_CONF_BOOL,
      .offset = offsetof(struct client_config, is_gateway),
      .def = "false",
      .help = "also carry what this host forwards (a LAN routed through it): PREROUTING rules, "
              "and the listener on every address" },
    { .key = "listen_port",
      .flag = "listen-port",
      .type = TN_CONF_INT,
      .offset = offsetof(struct client_config, listen_port),
      .def = "9999",
      .metavar = "PORT",
      .help = "local port intercepted connections are redirected to",
      .min = 1,
      .max = 65535 },
    TN_OPTS_FLOW_TIMEOUTS(struct client_config, idle_timeout, drain_timeout, "10s"),
    TN_OPTS_HEARTBEAT(struct client_config, heartbeat_interval, heartbeat_timeout),
    TN_OPTS_RECONNECT(struct client_config, reconnect),
    TN_OPTS_TLS(struct client_config, tls, "client"),
    TN_OPTS_SERVER_NAME(struct client_config, tls),
    TN_OPTS_LOG(struct client_config, log),
    TN_OPTS_LOG_ROTATION(struct client_config, log),
    TN_OPTS_ADMIN(struct client_config, admin_listen),
    { .key = "status_socket",
      .flag = "status-socket",
      .type = TN_CONF_STR,
      .offset = offsetof(struct client_config, status_socket),
      .def = "/run/tunnel-client.sock",
      .metavar = "PATH",
      .is_empty_none = true,
      .help = "unix socket that 'client status' reads (\"\": none)" },
    TN_OPTS_WINDOWS(struct client_config, stream_window, connection_window),
    TN_OPTS_BUSY_POLL(struct client_config, busy_poll_us),
    { 0 },
};

static const struct tn_cli cli = {
    .prog = "client",
    .summary = "The tunnel client: carries connections to the given networks through the "
               "relay (needs root or CAP_NET_ADMIN).  'client status [--status-socket PATH]' "
               "asks a running client what it is doing.",
    .keys = keys,
};

static void
client_stop(struct client *c, int status)
{
    c->status = status;
    ev_break(c->loop, EVBREAK_ALL);
}

static int
relay_on_up(struct tn_link *l, struct tn_h2 *h2)
{
    struct client *c = tn_container_of(l, struct client, link);
    struct nf_rules rules = {
        .cidrs = &c->cfg->target_cidr,
        .excludes = &c->cfg->exclude,
        .relays = c->relay_addrs,
        .nrelays = c->nrelay_addrs,
        .port = (unsigned)c->cfg->listen_port,
        .queue = c->dgram.nl != NULL ? (int)c->dgram.queue : -1,
        .is_gateway = c->cfg->is_gateway,
    };
    char nets[256] = "", net[TN_CIDR_STRLEN];
    size_t i;

    if (c->has_rules) {
        tn_log_info("relay %s is back: intercepting again", tn_h2_peer_addr(h2));
        return 0;
    }
    if (nf_rules_install(&rules) != 0) {
        client_stop(c, 1);
        return TN_ERR_CONFIG;
    }
    c->has_rules = true;
    for (i = 0; i < c->cfg->target_cidr.n; i++) {
        tn_cidr_format(&c->cfg->target_cidr.v[i], net, sizeof(net));
        snprintf(nets + strlen(nets), sizeof(nets) - strlen(nets), "%s%s", i ? " " : "", net);
    }
    tn_log_info("ready: intercepting %s through relay %s (%s)", nets, tn_h2_peer_addr(h2),
                tn_h2_peer(h2)->id);
    return 0;
}

static void
relay_on_down(struct tn_link *l, const char *reason, bool is_lost)
{
    (void)l;
    if (is_lost)
        tn_log_warnx("relay connection lost (%s): new connections are reset until it is back",
                     reason);
    else
        tn_log_info("relay connection replaced (%s): open flows finish on it, new connections "
                    "are reset until the next one is up",
                    reason);
}

static void
relay_on_give_up(struct tn_link *l, const char *reason)
{
    struct client *c = tn_container_of(l, struct client, link);

    tn_log(TN_LOG_ERR, "giving up on relay %s: %s", l->hostport, reason);
    client_stop(c, 1);
}

static const struct tn_link_ops relay_ops = {
    .on_up = relay_on_up,
    .on_down = relay_on_down,
    .on_give_up = relay_on_give_up,
};

static void
on_connection(struct tn_listener *l, int fd)
{
    flow_accept(tn_container_of(l, struct client, listener), fd);
}

static void
on_connection6(struct tn_listener *l, int fd)
{
    flow_accept(tn_container_of(l, struct client, listener6), fd);
}

void
client_flow_ended(struct client *c)
{
    c->active--;
    if (c->is_draining && c->active == 0) {
        tn_log_info("drained: every flow is done");
        client_stop(c, 0);
    }
}

static void
on_drain_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct client *c = tn_container_of(w, struct client, drain_deadline);

    (void)loop;
    (void)revents;
    tn_log_warnx("drain deadline reached: resetting %" PRIu64 " flows", c->active);
    client_stop(c, 0);
}

/* On reload, before the configuration changes: opens the IPv6 listener when |fresh| adds the
 * first IPv6 network, and puts |fresh|'s networks in the rules (|rules| has the rest).  When
 * they cannot go in, the old rules are put back and false returned (logged): nothing changed.
 * Should the old ones fail too, nothing would be intercepted while the client says it is: it
 * stops (exit status 1) and systemd starts it again. */
static bool
reload_rules(struct client *c, const struct client_config *fresh, struct nf_rules *rules)
{
    const struct client_config *cfg = c->cfg;
    bool is_new6 = false;

    if (c->lfd6 < 0 && client_has_family(&fresh->target_cidr, AF_INET6)) {
        if ((c->lfd6 = client_listen(AF_INET6, cfg->is_gateway, (unsigned)cfg->listen_port)) < 0) {
            c->lfd6 = -1;
            tn_log_warnx("reload: no IPv6 listener for the IPv6 networks: nothing changed");
            return false;
        }
        tn_listener_start(&c->listener6, c->loop, c->lfd6, on_connection6);
        is_new6 = true;
    }
    rules->port = (unsigned)cfg->listen_port;
    if (!c->has_rules || c->is_draining)
        return true; /* installed when the relay is reached; a drain has removed them */
    rules->cidrs = &fresh->target_cidr;
    rules->excludes = &fresh->exclude;
    if (nf_rules_install(rules) == 0)
        return true;
    if (is_new6) { /* nothing changed: nor does the IPv6 listener stay */
        tn_listener_stop(&c->listener6, c->loop);
        close(c->lfd6);
        c->lfd6 = -1;
    }
    rules->cidrs = &cfg->target_cidr;
    rules->excludes = &cfg->exclude;
    if (nf_rules_install(rules) != 0) {
        tn_log(TN_LOG_ERR, "reload: neither the new nor the old rules could be installed: "
                           "nothing is intercepted, stopping");
        c->has_rules = false;
        client_stop(c, 1);
        return false;
    }
    tn_log_warnx("reload: the new networks' rules could not be installed: nothing changed");
    return false;
}

/* SIGHUP: reads the configuration again and applies what can change under way: the networks
 * (the rules are replaced atomically), fail-closed, certificates and keys (for the next
 * connection), timeouts and logging (the log file is reopened).  Open flows are untouched; a
 * configuration with an error changes nothing. */
static void
on_reload(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct client *c = w->data;
    struct client_config fresh = { 0 }, *cfg = c->cfg;
    struct nf_rules rules = {
        .relays = c->relay_addrs,
        .nrelays = c->nrelay_addrs,
        .queue = c->dgram.nl != NULL ? (int)c->dgram.queue : -1,
        .is_gateway = cfg->is_gateway,
    };
    SSL_CTX *tls = NULL;
    struct tn_log_capture cap;
    size_t i;
    int r;

    (void)revents;
    tn_log_info("SIGHUP: reading the configuration again");
    tn_log_stderr_begin(&cap);
    r = tn_cli_parse(&cli, &fresh, c->argc, c->argv);
    if (r == 0 && fresh.target_cidr.n == 0)
        fprintf(stderr, "client: no network to intercept (target_cidr, --cidr)\n");
    tn_log_stderr_end(&cap, "reload");
    if (r != 0 || fresh.target_cidr.n == 0) {
        tn_log_warnx("reload: the configuration has errors: nothing changed%s%s%s",
                     cfg->user != NULL ? " (since --user, the files must be readable by '" : "",
                     cfg->user != NULL ? cfg->user : "", cfg->user != NULL ? "')" : "");
        tn_conf_fini(keys, &fresh);
        return;
    }
    tn_log_stderr_begin(&cap);
    r = tn_tls_ctx_new(&tls, &fresh.tls, TN_ROLE_CLIENT);
    tn_log_stderr_end(&cap, "reload");
    if (r != 0) {
        tn_log_warnx("reload: the new certificates are not usable: nothing changed");
        tn_conf_fini(keys, &fresh);
        return;
    }
    if (fresh.listen_port != cfg->listen_port || fresh.server_addr.n != cfg->server_addr.n ||
        fresh.is_udp != cfg->is_udp || fresh.nfqueue != cfg->nfqueue ||
        fresh.is_gateway != cfg->is_gateway)
        tn_log_warnx("reload: listen_port, udp, nfqueue, gateway and the relays take effect "
                     "after a restart");
    for (i = 0; i < fresh.server_addr.n && i < cfg->server_addr.n; i++) {
        if (strcmp(fresh.server_addr.v[i], cfg->server_addr.v[i]) != 0)
            tn_log_warnx("reload: the relays take effect after a restart");
    }
    /* The new networks' rules go in before anything changes: a failure keeps the old. */
    if (!reload_rules(c, &fresh, &rules)) {
        SSL_CTX_free(tls);
        tn_conf_fini(keys, &fresh);
        return;
    }
    TN_SWAP(cfg->target_cidr, fresh.target_cidr);
    TN_SWAP(cfg->exclude, fresh.exclude);
    TN_SWAP(cfg->tls, fresh.tls);
    TN_SWAP(cfg->log, fresh.log);
    cfg->is_fail_closed = fresh.is_fail_closed;
    cfg->idle_timeout = fresh.idle_timeout;
    cfg->udp_idle_timeout = fresh.udp_idle_timeout;
    cfg->udp_max_flows = fresh.udp_max_flows;
    cfg->drain_timeout = fresh.drain_timeout;
    cfg->reconnect = fresh.reconnect;
    cfg->busy_poll_us = fresh.busy_poll_us;
    tn_busypoll_configure(loop, cfg->busy_poll_us);
    c->link.conf = fresh.reconnect;
    c->link.settings.ping_interval = (double)fresh.heartbeat_interval / 1e3;
    c->link.settings.ping_timeout = (double)fresh.heartbeat_timeout / 1e3;
    SSL_CTX_free(c->tls); /* the open connection holds its own reference */
    c->tls = c->link.tls = tls;
    tn_link_set_server_name(&c->link, cfg->tls.server_name); /* for the next connection */
    tn_opts_log_open("client", &cfg->log);
    rules.cidrs = &cfg->target_cidr;
    rules.excludes = &cfg->exclude;
    if (cfg->is_fail_closed ? nf_fail_closed_install(&rules) : nf_fail_closed_remove()) {
        tn_log(TN_LOG_ERR, "reload: the fail-closed rules could not be %s",
               cfg->is_fail_closed ? "installed" : "removed");
    }
    tn_conf_fini(keys, &fresh); /* what it holds now is the old configuration's */
    tn_log_info("reload: done");
}

/* The first SIGTERM or SIGINT drains: new connections are reset at once and the open flows get
 * drain_timeout to finish; the rules go at the end, since removing the last NAT rule can take
 * the redirection from connections already under way.  A second signal stops at once. */
static void
on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct client *c = w->data;

    (void)revents;
    if (c->is_draining || c->active == 0 || c->cfg->drain_timeout == 0) {
        tn_log_info("signal %d: removing rules and stopping", w->signum);
        client_stop(c, 0);
        return;
    }
    tn_log_info("signal %d: draining: %" PRIu64 " flows have %.1f s to finish, new ones are reset",
                w->signum, c->active, (double)c->cfg->drain_timeout / 1e3);
    c->is_draining = true;
    ev_timer_init(&c->drain_deadline, on_drain_deadline, (double)c->cfg->drain_timeout / 1e3, 0);
    ev_timer_start(loop, &c->drain_deadline);
}

/* One client per network namespace: its chains have fixed names, so a second client starting
 * would remove the first one's rules.  An abstract unix socket (one namespace of them per
 * network namespace, gone with its process, even after kill -9) says that one runs.  Returns
 * the socket to keep open, or -1 (logged). */
static int
client_claim(void)
{
    static const char name[] = "tunnel-client";
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + sizeof(name) - 1);
    int fd;

    memcpy(sun.sun_path + 1, name, sizeof(name) - 1); /* sun_path[0] = 0: abstract */
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0 &&
        bind(fd, (struct sockaddr *)&sun, len) == 0)
        return fd;
    if (errno == EADDRINUSE)
        tn_log(TN_LOG_ERR, "another client runs in this network namespace: stop it first (its "
                           "rules are not ours to remove)");
    else
        tn_log(TN_LOG_ERR, "cannot claim this network namespace: %s", strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

int
main(int argc, char **argv)
{
    struct client_config cfg = { 0 };
    struct client c = { .lfd6 = -1 };
    struct tn_h2_settings settings;
    ev_signal sigint, sigterm, sighup;
    socklen_t *lens = NULL;
    size_t i;
    int r, lfd = -1, claim = -1;

    if (argc > 1 && strcmp(argv[1], "status") == 0) {
        if ((r = tn_cli_parse(&cli, &cfg, argc - 1, argv + 1)) != 0) {
            tn_conf_fini(keys, &cfg);
            return r == TN_CLI_EXIT ? 0 : 2;
        }
        r = client_status(cfg.status_socket);
        tn_conf_fini(keys, &cfg);
        return r;
    }
    if ((r = tn_cli_parse(&cli, &cfg, argc, argv)) != 0) {
        tn_conf_fini(keys, &cfg);
        return r == TN_CLI_EXIT ? 0 : 2;
    }
    c.status = 2; /* until the configuration is found usable */
    if (tn_opts_log_open("client", &cfg.log) != 0)
        goto out;
    c.status = 1;
    signal(SIGPIPE, SIG_IGN);
    tn_proc_raise_nofile();
    c.loop = EV_DEFAULT;
    tn_proc_trim_start(c.loop);
    c.cfg = &cfg;
    c.argc = argc;
    c.argv = argv;
    if ((claim = client_claim()) < 0)
        goto out;
    if (cfg.is_cleanup) {
        nf_rules_remove();
        nf_fail_closed_remove();
        c.status = 0;
        goto out;
    }
    if (cfg.server_addr.n == 0 || cfg.target_cidr.n == 0) {
        fprintf(stderr, "client: give the relay (--server) and the networks to intercept "
                        "(--cidr); see --help\n");
        c.status = 2;
        goto out;
    }
    if ((r = tn_tls_ctx_new(&c.tls, &cfg.tls, TN_ROLE_CLIENT)) != 0 ||
        (r = privs_check_user(cfg.user)) != 0) {
        if (r == TN_ERR_CONFIG)
            c.status = 2;
        goto out;
    }
    nf_rules_remove(); /* whatever a killed earlier run left */
    if ((lfd = client_listen(AF_INET, cfg.is_gateway, (unsigned)cfg.listen_port)) < 0 ||
        (client_has_family(&cfg.target_cidr, AF_INET6) &&
         (c.lfd6 = client_listen(AF_INET6, cfg.is_gateway, (unsigned)cfg.listen_port)) < 0))
        goto out;
    settings = (struct tn_h2_settings){
        .stream_window = (uint32_t)cfg.stream_window,
        .connection_window = (uint32_t)cfg.connection_window,
        .max_streams = 100,
        .authority = cfg.server_addr.v[0],
        .server_name = cfg.tls.server_name,
        .peer_role = TN_ROLE_SERVER,
        .ping_interval = (double)cfg.heartbeat_interval / 1e3,
        .ping_timeout = (double)cfg.heartbeat_timeout / 1e3,
    };
    /* Resolved once: the rules keep the relays' own addresses out of the tunnel, every one the
     * link may dial (each of a name's addresses). */
    if ((c.relay_addrs =
             calloc(cfg.server_addr.n * TN_ADDR_MAX_PER_NAME, sizeof(*c.relay_addrs))) == NULL ||
        (lens = calloc(TN_ADDR_MAX_PER_NAME, sizeof(*lens))) == NULL)
        goto out;
    for (i = 0; i < cfg.server_addr.n; i++) {
        if ((r = tn_addr_resolve_all(cfg.server_addr.v[i], false, &c.relay_addrs[c.nrelay_addrs],
                                     lens, TN_ADDR_MAX_PER_NAME)) < 0)
            goto out;
        c.nrelay_addrs += (size_t)r;
    }
    if (cfg.is_fail_closed) {
        struct nf_rules rules = {
            .cidrs = &cfg.target_cidr,
            .excludes = &cfg.exclude,
            .relays = c.relay_addrs,
            .nrelays = c.nrelay_addrs,
            .is_gateway = cfg.is_gateway,
        };

        /* From now on, and after we exit, the networks are reached through the tunnel or not
         * at all. */
        if (nf_fail_closed_install(&rules) != 0)
            goto out;
    } else {
        nf_fail_closed_remove(); /* an earlier --fail-closed run's: not wanted now */
    }
    if (cfg.is_udp && dgram_start(&c, (unsigned)cfg.nfqueue) != 0)
        goto out;
    tn_link_start(&c.link, c.loop, c.tls, cfg.server_addr.v, cfg.server_addr.n, &settings,
                  &cfg.reconnect, &relay_ops, &c);
    tn_listener_start(&c.listener, c.loop, lfd, on_connection);
    if (c.lfd6 >= 0)
        tn_listener_start(&c.listener6, c.loop, c.lfd6, on_connection6);
    if (client_obs_start(&c) != 0)
        goto out;
    ev_signal_init(&sigint, on_signal, SIGINT);
    ev_signal_init(&sigterm, on_signal, SIGTERM);
    ev_signal_init(&sighup, on_reload, SIGHUP);
    sigint.data = sigterm.data = sighup.data = &c;
    ev_signal_start(c.loop, &sigint);
    ev_signal_start(c.loop, &sigterm);
    ev_signal_start(c.loop, &sighup);
    if (privs_keep_net(cfg.user) != 0)
        goto out;
    tn_busypoll_configure(c.loop, cfg.busy_poll_us);
    ev_run(c.loop, 0);
    ev_timer_stop(c.loop, &c.drain_deadline);
    tn_listener_stop(&c.listener, c.loop);
    if (c.lfd6 >= 0)
        tn_listener_stop(&c.listener6, c.loop);
out:
    if (c.has_rules)
        nf_rules_remove();
    if (c.dgram.nl != NULL)
        dgram_stop(&c);
    if (cfg.is_fail_closed && !cfg.is_cleanup)
        tn_log_info("fail closed: traffic to the networks stays rejected until the client is back "
                    "or 'client --cleanup' runs");
    tn_link_stop(&c.link);
    client_obs_stop(&c); /* after the flows tn_link_stop ended */
    if (lfd >= 0)
        close(lfd);
    if (c.lfd6 >= 0)
        close(c.lfd6);
    if (claim >= 0)
        close(claim);
    free(c.relay_addrs);
    free(lens);
    SSL_CTX_free(c.tls);
    tn_conf_fini(keys, &cfg);
    tn_log_close();
    return c.status;
}
