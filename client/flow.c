/* SPDX-License-Identifier: MIT */
/* An intercepted connection: its original destination from SO_ORIGINAL_DST, one Connect stream
 * to the relay, and bytes both ways.  Data may follow Open before the relay answers; a refusal
 * resets the application's connection so it sees an error, never an empty success. */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "tn/addr.h"
#include "tn/err.h"
#include "tn/hash.h"
#include "tn/log.h"
#include "tn/metrics.h"
#include "tn/pipe.h"
#include "tn/util.h"

#define PATH_CONNECT "/tunnel.v1.Relay/Connect"

#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80 /* linux/netfilter_ipv4.h, which clashes with netinet/in.h */
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80 /* linux/netfilter_ipv6/ip6_tables.h */
#endif

struct flow {
    struct tn_pipe pipe;
    struct client *c;
    uint64_t id;
    char src[TN_ADDR_STRLEN], dst[TN_ADDR_STRLEN];
    char proxy[TN_ID_MAX + 1];
    char why[96];
    ev_tstamp started;
    struct tn_flow_metrics metrics;
};

static int
pipe_on_frame(struct tn_pipe *p, Tunnel__V1__Frame *fr)
{
    struct flow *f = tn_container_of(p, struct flow, pipe);
    int r;

    if (fr->kind_case == TUNNEL__V1__FRAME__KIND_OPENED) {
        snprintf(f->proxy, sizeof(f->proxy), "%s", fr->opened->proxy_id);
        if (f->proxy[0] != '\0')
            tn_flow_metrics_bind(&f->metrics, NULL, f->proxy);
    }
    if ((r = tn_pipe_check_opened(p, fr, f->why, sizeof(f->why))) != 0)
        return r;
    tn_metric_observe(&tn_metric_flow_open, tn_metric_at(&tn_metric_flow_open, NULL, NULL),
                      ev_now(f->c->loop) - f->started);
    return 0;
}

static void
pipe_on_close(struct tn_pipe *p, const char *reason)
{
    struct flow *f = tn_container_of(p, struct flow, pipe);

    tn_log(reason != NULL ? TN_LOG_INFO : TN_LOG_DEBUG,
           "flow=%016" PRIx64 " %s -> %s proxy=%s up=%" PRIu64 " down=%" PRIu64 " %s", f->id,
           f->src, f->dst, f->proxy[0] != '\0' ? f->proxy : "-", p->bytes_up, p->bytes_down,
           reason != NULL ? reason : "closed");
    tn_flow_metrics_add(&f->metrics, p->bytes_up, p->bytes_down);
    tn_metric_flow_ended(reason);
    client_flow_ended(f->c);
    free(f);
}

static const struct tn_pipe_ops flow_pipe_ops = {
    .on_frame = pipe_on_frame,
    .on_close = pipe_on_close,
};

void
client_bind_route(const struct client *c, struct tn_flow_metrics *fm, const struct tn_ip *dst)
{
    const struct tn_cidr_list *nets = &c->cfg->target_cidr;
    const struct tn_cidr *best = NULL;
    char label[TN_CIDR_STRLEN];
    size_t i;

    for (i = 0; i < nets->n; i++) {
        if (tn_cidr_contains(&nets->v[i], dst) &&
            (best == NULL || nets->v[i].prefix > best->prefix))
            best = &nets->v[i];
    }
    tn_flow_metrics_bind(fm, best != NULL ? tn_cidr_format(best, label, sizeof(label)) : "-", NULL);
}

void
flow_accept(struct client *c, int fd)
{
    Tunnel__V1__Frame fr = TUNNEL__V1__FRAME__INIT;
    Tunnel__V1__Open open = TUNNEL__V1__OPEN__INIT;
    Tunnel__V1__Endpoint esrc = TUNNEL__V1__ENDPOINT__INIT, edst = TUNNEL__V1__ENDPOINT__INIT;
    struct sockaddr_storage src, dst, self;
    socklen_t slen = sizeof(src), dlen = sizeof(dst), selflen = sizeof(self);
    struct tn_ip sip, dip, selfip;
    unsigned sport, dport, selfport;
    struct flow *f;

    if (getpeername(fd, (struct sockaddr *)&src, &slen) < 0 ||
        (src.ss_family == AF_INET6 ? getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &dst, &dlen)
                                   : getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst, &dlen)) < 0 ||
        tn_addr_to_ip((struct sockaddr *)&src, &sip, &sport) != 0 ||
        tn_addr_to_ip((struct sockaddr *)&dst, &dip, &dport) != 0 ||
        /* not redirected: someone connected to our port itself (only then is the original
         * destination port ours, so only then is our own address worth asking for) */
        (dport == (unsigned)c->cfg->listen_port &&
         (getsockname(fd, (struct sockaddr *)&self, &selflen) < 0 ||
          (tn_addr_to_ip((struct sockaddr *)&self, &selfip, &selfport) == 0 && selfport == dport &&
           memcmp(&selfip, &dip, sizeof(dip)) == 0)))) {
        static struct tn_log_rate rate; /* in gateway mode any host of the LAN can do it */

        tn_log_rated(&rate, TN_LOG_WARN,
                     "accepted a connection without an original destination "
                     "(not redirected by our rules): reset");
        tn_addr_close_reset(fd);
        return;
    }
    if (c->link.h2 == NULL || !c->link.is_up || c->is_draining ||
        (f = calloc(1, sizeof(*f))) == NULL) {
        tn_addr_close_reset(fd); /* no relay: fail at once rather than hang */
        return;
    }
    f->c = c;
    f->id = tn_flow_id(IPPROTO_TCP, &sip, sport, &dip, dport);
    tn_addr_format((struct sockaddr *)&src, f->src, sizeof(f->src));
    tn_addr_format((struct sockaddr *)&dst, f->dst, sizeof(f->dst));
    tn_pipe_init(&f->pipe, c->loop, &flow_pipe_ops);
    tn_endpoint_set(&esrc, &sip, sport);
    tn_endpoint_set(&edst, &dip, dport);
    open.flow_id = f->id;
    open.protocol = TUNNEL__V1__PROTOCOL__PROTOCOL_TCP;
    open.src = &esrc;
    open.dst = &edst;
    fr.kind_case = TUNNEL__V1__FRAME__KIND_OPEN;
    fr.open = &open;
    if (tn_pipe_open(&f->pipe, c->link.h2, PATH_CONNECT) != 0) {
        tn_addr_close_reset(fd);
        free(f);
        return;
    }
    c->active++; /* from here on the flow ends through pipe_on_close */
    f->started = ev_now(c->loop);
    tn_metric_flow_started();
    client_bind_route(c, &f->metrics, &dip);
    f->pipe.idle_timeout = (double)c->cfg->idle_timeout / 1e3;
    tn_pipe_attach(&f->pipe, fd, true); /* its first read comes after this: Open goes first */
    if (tn_pipe_send(&f->pipe, &fr) != 0) {
        tn_pipe_abort(&f->pipe, "out of memory");
        return;
    }
    c->flows++;
    tn_log_debug("flow=%016" PRIx64 " %s -> %s: open", f->id, f->src, f->dst);
}

int
client_listen(int af, bool is_any, unsigned port)
{
    struct sockaddr_storage ss = { 0 };
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    char where[TN_ADDR_STRLEN];
    socklen_t len;
    int fd, one = 1;

    if (af == AF_INET) {
        sin->sin_family = AF_INET;
        sin->sin_addr.s_addr = htonl(is_any ? INADDR_ANY : INADDR_LOOPBACK);
        sin->sin_port = htons((uint16_t)port);
        len = sizeof(*sin);
    } else {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_addr = is_any ? in6addr_any : in6addr_loopback;
        sin6->sin6_port = htons((uint16_t)port);
        len = sizeof(*sin6);
    }
    tn_addr_format((struct sockaddr *)&ss, where, sizeof(where));
    if ((fd = socket(af, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) >= 0)
        tn_addr_tcp_options(fd); /* for the accepted connections */
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        (af == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
        bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 1024) < 0) {
        tn_log(TN_LOG_ERR, "listen on %s%s: %s", where,
               af == AF_INET6 ? " (IPv6 networks need IPv6 on the host's loopback)" : "",
               strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

bool
client_has_family(const struct tn_cidr_list *l, int af)
{
    size_t i;

    for (i = 0; i < l->n; i++) {
        if (l->v[i].ip.family == af)
            return true;
    }
    return false;
}
