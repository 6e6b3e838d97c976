/* SPDX-License-Identifier: MIT */
/* The proxy's session with the relay: Register (Hello -> Welcome), then a pool of idle Accept
 * streams that the relay binds flows to without a round trip. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "proxy.h"
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
link_refill(struct proxy *px)
{
    while (px->is_registered && !px->is_stopping && px->idle < px->cfg->accept_pool) {
        if (pflow_open(px) != 0)
            return;
        px->idle++;
    }
}

static void
link_on_refill(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct proxy *px = tn_container_of(w, struct proxy, refill);

    (void)loop;
    (void)revents;
    link_refill(px);
}

void
link_refill_later(struct proxy *px)
{
    if (px->is_stopping || px->link.h2 == NULL || ev_is_active(&px->refill))
        return;
    ev_timer_init(&px->refill, link_on_refill, 1.0, 0);
    ev_timer_start(px->loop, &px->refill);
}

static int
control_on_data(void *owner, const uint8_t *p, size_t n)
{
    struct proxy *px = owner;
    char a[TN_CIDR_STRLEN], b[TN_CIDR_STRLEN];
    size_t i;

    (void)p;
    tn_h2_stream_consume(px->control, n);
    if (px->is_registered)
        return 0;
    /* The Welcome carries nothing we need yet: its arrival is the acceptance. */
    px->is_registered = true;
    for (i = 0; i < px->nnets; i++) {
        const struct proxy_net *net = &px->nets[i];

        tn_log_info(
            "registered with relay %s as %s: %s -> %s", px->cfg->server_addr, px->cfg->proxy_id,
            tn_cidr_format(net->virt.ip.family != 0 ? &net->virt : &net->real, a, sizeof(a)),
            tn_cidr_format(&net->real, b, sizeof(b)));
    }
    link_refill(px);
    return 0;
}

static void
control_on_end(void *owner, int grpc_status, const char *grpc_message)
{
    struct proxy *px = owner;

    if (grpc_status != 0) {
        /* The relay's policy or our identity: reconnecting would only be refused again. */
        tn_log(TN_LOG_ERR, "relay refused registration: %s (grpc-status %d)",
               grpc_message[0] != '\0' ? grpc_message : "no reason given", grpc_status);
        proxy_stop(px, 1);
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
    struct proxy *px = owner;

    px->control = NULL;
    px->is_registered = false;
    /* Reset alone, on a connection that stays up: start over on a new one. */
    if (error_code != 0 && !px->is_stopping && px->link.is_up && px->link.h2 != NULL) {
        tn_log_warnx("relay reset the registration (HTTP/2 error %u): reconnecting", error_code);
        tn_h2_close(px->link.h2, "registration reset");
    }
}

static const struct tn_h2_stream_ops control_ops = {
    .on_data = control_on_data,
    .on_end = control_on_end,
    .on_sent = control_on_sent,
    .on_close = control_on_close,
};

static int
link_on_up(struct tn_link *l, struct tn_h2 *h2)
{
    struct proxy *px = tn_container_of(l, struct proxy, link);
    Tunnel__V1__Hello hello = TUNNEL__V1__HELLO__INIT;
    Tunnel__V1__Network *nets = NULL, **netp = NULL;
    char(*text)[2][TN_CIDR_STRLEN] = NULL;
    size_t i;
    int r = -ENOMEM;

    if ((nets = calloc(px->nnets, sizeof(*nets))) == NULL ||
        (netp = calloc(px->nnets, sizeof(*netp))) == NULL ||
        (text = calloc(px->nnets, sizeof(*text))) == NULL)
        goto out;
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
    if ((px->control = tn_h2_stream_open(h2, PATH_REGISTER, &control_ops, px)) == NULL ||
        tn_grpc_append(tn_h2_stream_out(px->control), &hello.base) != 0)
        goto out;
    tn_h2_stream_finish(px->control, 0, NULL); /* Register takes one Hello */
    r = 0;
out:
    free(text);
    free(netp);
    free(nets);
    return r;
}

static void
link_on_down(struct tn_link *l, const char *reason)
{
    struct proxy *px = tn_container_of(l, struct proxy, link);

    tn_log_warnx("relay connection lost: %s", reason);
    if (px->control != NULL) { /* a draining connection's: the next one registers anew */
        tn_h2_stream_detach(px->control, 0);
        px->control = NULL;
    }
    px->is_registered = false;
    ev_timer_stop(px->loop, &px->refill);
}

static void
link_on_give_up(struct tn_link *l, const char *reason)
{
    struct proxy *px = tn_container_of(l, struct proxy, link);

    tn_log(TN_LOG_ERR, "giving up on relay %s: %s", px->cfg->server_addr, reason);
    proxy_stop(px, 1);
}

static const struct tn_link_ops link_ops = {
    .on_up = link_on_up,
    .on_down = link_on_down,
    .on_give_up = link_on_give_up,
};

void
link_start(struct proxy *px, const struct tn_h2_settings *settings)
{
    tn_link_start(&px->link, px->loop, px->tls, px->cfg->server_addr, settings, &px->cfg->reconnect,
                  &link_ops, px);
}
