/* SPDX-License-Identifier: MIT */
/* The proxy's uplinks, one session per relay: Register (Hello -> Welcome), then a pool of idle
 * Accept streams that the relay binds flows to without a round trip.  With several relays the
 * proxy holds a session to each, so that any of them can route to it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>
#include <nghttp2/nghttp2.h>

#include "proxy.h"
#include "tn/addr.h"
#include "tn/buf.h"
#include "tn/err.h"
#include "tn/grpc.h"
#include "tn/log.h"
#include "tn/util.h"

#define PATH_REGISTER "/tunnel.v1.Relay/Register"

static void
proxy_stop(struct proxy *px, int status)
{
    if (px->is_stopping)
        return;
    px->status = status;
    ev_break(px->loop, EVBREAK_ALL);
}

void
uplink_refill(struct uplink *up)
{
    while (up->is_registered && !up->px->is_stopping && up->idle < up->px->cfg->accept_pool) {
        if (pflow_open(up) != 0)
            return;
        up->idle++;
    }
}

static void
uplink_on_refill(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    uplink_refill(tn_container_of(w, struct uplink, refill));
}

void
uplink_refill_later(struct uplink *up)
{
    if (up->px->is_stopping || up->link.h2 == NULL || ev_is_active(&up->refill))
        return;
    ev_timer_set(&up->refill, 1.0, 0);
    ev_timer_start(up->px->loop, &up->refill);
}

/* Tells what the relay published: "tcp://relay:10000 -> 127.0.0.1:3000", or why not. */
static void
report_published(struct uplink *up, const Tunnel__V1__Welcome *w)
{
    const struct proxy_service *svc = up->px->cfg->expose.v;
    char host[256], port[16];
    const char *target;
    size_t i, j;

    if (tn_addr_split(up->link.hostport, host, sizeof(host), port, sizeof(port)) != 0)
        snprintf(host, sizeof(host), "%s", up->link.hostport);
    for (i = 0; i < w->n_published; i++) {
        const Tunnel__V1__Published *pub = w->published[i];

        target = "a target of the relay's services:";
        for (j = 0; j < up->px->cfg->expose.n; j++) {
            if (strcmp(svc[j].name, pub->name) == 0)
                target = svc[j].target;
        }
        if (pub->public_port != 0) /* an IPv6 host in brackets, as a URL has it */
            tn_log_info("published %s: tcp://%s%s%s:%u -> %s", pub->name,
                        strchr(host, ':') != NULL ? "[" : "", host,
                        strchr(host, ':') != NULL ? "]" : "", pub->public_port, target);
        if (pub->host[0] != '\0')
            tn_log_info("published %s: http://%s (the relay's HTTP port) -> %s", pub->name,
                        pub->host, target);
        if (pub->error[0] != '\0')
            tn_log(TN_LOG_ERR, "relay %s refused to publish %s: %s", up->link.hostport, pub->name,
                   pub->error);
    }
}

/* Gathers the Welcome.  Returns 1 once it is whole (in up->welcome), 0 for more, or an
 * error. */
static int
welcome_gather(struct uplink *up, const uint8_t *p, size_t n)
{
    uint32_t len;

    if (up->welcome_len + n > TN_GRPC_MSG_MAX)
        return TN_ERR_PROTO;
    if (up->welcome == NULL && (up->welcome = malloc(TN_GRPC_MSG_MAX)) == NULL)
        return -ENOMEM;
    memcpy(up->welcome + up->welcome_len, p, n);
    up->welcome_len += n;
    if (up->welcome_len < TN_GRPC_HDR)
        return 0;
    len = (uint32_t)up->welcome[1] << 24 | (uint32_t)up->welcome[2] << 16 |
          (uint32_t)up->welcome[3] << 8 | up->welcome[4];
    if (up->welcome[0] != 0 || len > TN_GRPC_MSG_MAX - TN_GRPC_HDR)
        return TN_ERR_PROTO;
    return up->welcome_len >= TN_GRPC_HDR + len;
}

static int
control_on_data(void *owner, const uint8_t *p, size_t n)
{
    struct uplink *up = owner;
    struct proxy *px = up->px;
    Tunnel__V1__Welcome *w;
    char a[TN_CIDR_STRLEN], b[TN_CIDR_STRLEN];
    size_t i;
    int r;

    tn_h2_stream_consume(up->control, n);
    if (up->is_registered)
        return 0;
    if ((r = welcome_gather(up, p, n)) == 0)
        return 0;
    w = r == 1 ? tunnel__v1__welcome__unpack(NULL, up->welcome_len - TN_GRPC_HDR,
                                             up->welcome + TN_GRPC_HDR)
               : NULL;
    free(up->welcome);
    up->welcome = NULL;
    up->welcome_len = 0;
    if (w == NULL) {
        tn_log_warnx("relay %s: its Welcome does not decode", up->link.hostport);
        tn_h2_stream_detach(up->control, NGHTTP2_PROTOCOL_ERROR);
        up->control = NULL;
        proxy_stop(px, 1); /* not a relay of ours: reconnecting would not help */
        return TN_ERR_PROTO;
    }
    up->is_registered = true;
    report_published(up, w);
    tunnel__v1__welcome__free_unpacked(w, NULL);
    for (i = 0; i < px->nnets; i++) {
        const struct proxy_net *net = &px->nets[i];

        tn_log_info(
            "registered with relay %s as %s: %s -> %s", up->link.hostport, px->cfg->proxy_id,
            tn_cidr_format(net->virt.ip.family != 0 ? &net->virt : &net->real, a, sizeof(a)),
            tn_cidr_format(&net->real, b, sizeof(b)));
    }
    uplink_refill(up);
    return 0;
}

static void
control_on_end(void *owner, int grpc_status, const char *grpc_message)
{
    struct uplink *up = owner;

    if (grpc_status != 0) {
        /* The relay's policy or our identity: reconnecting would only be refused again.  The
         * flows of an earlier registration (a reload of the relay's policy drained it) may
         * still finish. */
        tn_log(TN_LOG_ERR, "relay refused registration: %s (grpc-status %d, relay %s)",
               grpc_message[0] != '\0' ? grpc_message : "no reason given", grpc_status,
               up->link.hostport);
        proxy_leave(up->px, 1, "registration refused");
        return;
    }
    /* Status 0: the relay is draining; its GOAWAY has the link dialing a new connection. */
    tn_log_info("relay ended the registration: %s",
                grpc_message[0] != '\0' ? grpc_message : "no reason given");
}

static void
control_on_sent(void *owner, size_t n)
{
    (void)owner;
    (void)n;
}

static void
control_on_close(void *owner, uint32_t error_code)
{
    struct uplink *up = owner;

    up->control = NULL;
    up->is_registered = false;
    /* Reset alone, on a connection that stays up: start over on a new one. */
    if (error_code != 0 && error_code != TN_H2_CONNECTION_ENDED && !up->px->is_stopping &&
        up->link.is_up && up->link.h2 != NULL) {
        tn_log_warnx("relay %s reset the registration (HTTP/2 error %u): reconnecting",
                     up->link.hostport, error_code);
        tn_h2_close(up->link.h2, "registration reset");
    }
}

static const struct tn_h2_stream_ops control_ops = {
    .on_data = control_on_data,
    .on_end = control_on_end,
    .on_sent = control_on_sent,
    .on_close = control_on_close,
};

static int
uplink_on_up(struct tn_link *l, struct tn_h2 *h2)
{
    struct uplink *up = tn_container_of(l, struct uplink, link);
    struct proxy *px = up->px;
    Tunnel__V1__Hello hello = TUNNEL__V1__HELLO__INIT;
    Tunnel__V1__Network *nets = NULL, **netp = NULL;
    Tunnel__V1__Service *svcs = NULL, **svcp = NULL;
    const struct proxy_service *conf = px->cfg->expose.v;
    size_t i, nsvc = px->cfg->expose.n;
    char(*text)[2][TN_CIDR_STRLEN] = NULL;
    int r = -ENOMEM;

    if ((nets = calloc(px->nnets + 1, sizeof(*nets))) == NULL ||
        (netp = calloc(px->nnets + 1, sizeof(*netp))) == NULL ||
        (text = calloc(px->nnets + 1, sizeof(*text))) == NULL ||
        (svcs = calloc(nsvc + 1, sizeof(*svcs))) == NULL ||
        (svcp = calloc(nsvc + 1, sizeof(*svcp))) == NULL)
        goto out;
    for (i = 0; i < nsvc; i++) {
        tunnel__v1__service__init(&svcs[i]);
        svcs[i].name = conf[i].name;
        svcs[i].target = conf[i].target;
        svcs[i].public_port = (uint32_t)conf[i].public_port;
        if (conf[i].host != NULL)
            svcs[i].host = conf[i].host;
        svcp[i] = &svcs[i];
    }
    hello.n_services = nsvc;
    hello.services = svcp;
    if (px->cfg->token != NULL)
        hello.token = px->cfg->token;
    for (i = 0; i < px->nnets; i++) {
        tunnel__v1__network__init(&nets[i]);
        nets[i].cidr = tn_cidr_format(&px->nets[i].real, text[i][0], TN_CIDR_STRLEN);
        nets[i].virtual_cidr = px->nets[i].virt.ip.family != 0
                                   ? tn_cidr_format(&px->nets[i].virt, text[i][1], TN_CIDR_STRLEN)
                                   : text[i][1]; /* "" */
        netp[i] = &nets[i];
    }
    hello.proxy_id = px->cfg->proxy_id;
    hello.n_networks = px->nnets;
    hello.networks = netp;
    hello.version = TN_UNCONST(TN_VERSION);
    if ((up->control = tn_h2_stream_open(h2, PATH_REGISTER, &control_ops, up)) == NULL ||
        tn_grpc_append(tn_h2_stream_out(up->control), &hello.base) != 0)
        goto out;
    tn_h2_stream_finish(up->control, 0, NULL); /* Register takes one Hello */
    r = 0;
out:
    free(svcp);
    free(svcs);
    free(text);
    free(netp);
    free(nets);
    return r;
}

static void
uplink_on_down(struct tn_link *l, const char *reason, bool is_lost)
{
    struct uplink *up = tn_container_of(l, struct uplink, link);

    if (is_lost)
        tn_log_warnx("relay %s: connection lost: %s", l->hostport, reason);
    else
        tn_log_info("relay %s: connection replaced (%s): open flows finish on it", l->hostport,
                    reason);
    if (up->control != NULL) { /* a draining connection's: the next one registers anew */
        tn_h2_stream_detach(up->control, 0);
        up->control = NULL;
    }
    up->is_registered = false;
    free(up->welcome);
    up->welcome = NULL;
    up->welcome_len = 0;
    up->idle = 0; /* the pool was that connection's */
    ev_timer_stop(up->px->loop, &up->refill);
}

static void
uplink_on_give_up(struct tn_link *l, const char *reason)
{
    struct uplink *up = tn_container_of(l, struct uplink, link);

    tn_log(TN_LOG_ERR, "giving up on relay %s: %s", l->hostport, reason);
    proxy_stop(up->px, 1);
}

static const struct tn_link_ops uplink_ops = {
    .on_up = uplink_on_up,
    .on_down = uplink_on_down,
    .on_give_up = uplink_on_give_up,
};

int
uplinks_start(struct proxy *px)
{
    const struct tn_str_list *servers = &px->cfg->server_addr;
    size_t i;

    if ((px->uplinks = calloc(servers->n, sizeof(*px->uplinks))) == NULL)
        return -ENOMEM;
    px->nuplinks = servers->n;
    for (i = 0; i < px->nuplinks; i++) {
        struct uplink *up = &px->uplinks[i];

        up->px = px;
        ev_init(&up->refill, uplink_on_refill);
        tn_link_start(&up->link, px->loop, px->tls, &servers->v[i], 1, &px->settings,
                      &px->cfg->reconnect, &uplink_ops, up);
    }
    return 0;
}

size_t
uplinks_drain(struct proxy *px)
{
    size_t i, n = 0;

    for (i = 0; i < px->nuplinks; i++) {
        /* A relay that comes back during the drain must not see us register: it would send
         * flows we no longer take. */
        tn_link_stop_dialing(&px->uplinks[i].link);
        if (px->uplinks[i].link.h2 != NULL) {
            tn_h2_drain(px->uplinks[i].link.h2);
            n++;
        }
    }
    return n;
}

void
uplinks_renew(struct proxy *px)
{
    size_t i;

    if (px->is_stopping) { /* a new session would register again and draw new flows */
        tn_log_info("draining: the relay sessions are not renewed");
        return;
    }
    for (i = 0; i < px->nuplinks; i++) {
        px->uplinks[i].link.tls = px->tls;
        px->uplinks[i].link.conf = px->cfg->reconnect;
        px->uplinks[i].link.settings = px->settings;
        tn_link_set_server_name(&px->uplinks[i].link, px->settings.server_name);
        tn_link_renew(&px->uplinks[i].link);
    }
}

void
uplinks_stop(struct proxy *px)
{
    size_t i;

    for (i = 0; i < px->nuplinks; i++) {
        ev_timer_stop(px->loop, &px->uplinks[i].refill);
        free(px->uplinks[i].welcome);
        tn_link_stop(&px->uplinks[i].link);
    }
    free(px->uplinks);
    px->uplinks = NULL;
    px->nuplinks = 0;
}
