/* SPDX-License-Identifier: MIT */
/* A proxy flow: an idle Accept stream until the relay sends Open, then a dial to the target
 * (only inside the networks this proxy serves), Opened back, and bytes both ways. */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "httplog.h"
#include "proxy.h"
#include "tn/addr.h"
#include "tn/err.h"
#include "tn/log.h"
#include "tn/lookup.h"
#include "tn/metrics.h"
#include "tn/names.h"
#include "tn/packet.h"
#include "tn/pipe.h"
#include "tn/util.h"

#define PATH_ACCEPT "/tunnel.v1.Relay/Accept"

/* Target names looked up at once for public connections: glibc runs a few lookups at a time
 * and queues the rest without bound, so a mute resolver and many connections would grow it. */
#define TARGET_LOOKUPS_MAX 64

/* A published service's target name being looked up for one connection. */
struct target_lookup {
    struct tn_lookup *pending;
    struct sockaddr_storage addr;
    socklen_t len;
};

struct pflow {
    struct tn_pipe pipe;
    struct proxy *px;
    struct uplink *up;  /* the relay session it came on */
    struct tn_h2 *conn; /* the connection its stream is on */
    ev_io connecting;
    ev_timer dial_timer;
    int dial_fd;
    bool has_open;
    int protocol; /* TUNNEL__V1__PROTOCOL__* */
    int family;
    unsigned echo_id; /* ICMP: the application's echo identifier (the source port in Open) */
    uint64_t id;
    char client[TN_ID_MAX + 1];
    char dst[TN_ADDR_STRLEN + 64]; /* the real target */
    struct proxy_service *service; /* a public connection to this published service */
    struct http_watch *http;       /* its HTTP log, when the service asks for one */
    struct target_lookup *lookup;  /* its target's name being looked up, or NULL */
    ev_tstamp started;             /* when Open came */
    struct tn_flow_metrics metrics;
};

static int pflow_open_service(struct pflow *f, const Tunnel__V1__Open *open);
static void pflow_look_up_target(struct pflow *f);
static void pflow_dial(struct pflow *f, const struct sockaddr_storage *ss, socklen_t len);
static const struct tn_pipe_ops pflow_http_pipe_ops;

static void
pflow_stop_dial(struct pflow *f)
{
    if (f->lookup != NULL) {
        tn_lookup_cancel(f->lookup->pending);
        free(f->lookup);
        f->lookup = NULL;
    }
    ev_io_stop(f->px->loop, &f->connecting);
    ev_timer_stop(f->px->loop, &f->dial_timer);
    if (f->dial_fd >= 0) {
        close(f->dial_fd);
        f->dial_fd = -1;
    }
}

static void
pipe_on_close(struct tn_pipe *p, const char *reason)
{
    struct pflow *f = tn_container_of(p, struct pflow, pipe);

    pflow_stop_dial(f);
    free(f->http);
    if (!f->has_open) {
        /* An idle stream went away: the relay is leaving, or reset it.  One of a connection
         * already replaced was counted in no pool. */
        if (f->conn == f->up->link.h2) {
            f->up->idle--;
            uplink_refill_later(f->up);
        }
    } else {
        if (p->is_datagram) {
            f->px->dgram_flows--;
            tn_log(reason != NULL ? TN_LOG_INFO : TN_LOG_DEBUG,
                   "flow=%016" PRIx64 " client=%s -> %s %s datagrams up=%" PRIu64 " down=%" PRIu64
                   " dropped=%" PRIu64 " %s",
                   f->id, f->client, f->dst,
                   f->protocol == TUNNEL__V1__PROTOCOL__PROTOCOL_UDP ? "udp" : "icmp",
                   p->dgrams_down, p->dgrams_up, p->dgrams_dropped,
                   reason != NULL ? reason : "closed");
        } else {
            tn_log(reason != NULL ? TN_LOG_INFO : TN_LOG_DEBUG,
                   "flow=%016" PRIx64 " client=%s -> %s up=%" PRIu64 " down=%" PRIu64 " %s", f->id,
                   f->client, f->dst, p->bytes_down, p->bytes_up,
                   reason != NULL ? reason : "closed");
        }
        /* Up is towards the target: what the pipe wrote to its socket. */
        tn_flow_metrics_add(&f->metrics, p->bytes_down, p->bytes_up);
        tn_metric_flow_ended(reason);
        proxy_flow_ended(f->px);
    }
    free(f);
}

static void
pflow_refuse(struct pflow *f, Tunnel__V1__OpenResult result, const char *why)
{
    Tunnel__V1__Frame fr = TUNNEL__V1__FRAME__INIT;
    Tunnel__V1__Opened opened = TUNNEL__V1__OPENED__INIT;

    opened.result = result;
    opened.reason = TN_UNCONST(why);
    fr.kind_case = TUNNEL__V1__FRAME__KIND_OPENED;
    fr.opened = &opened;
    pflow_stop_dial(f);
    tn_pipe_refuse(&f->pipe, &fr, why);
}

static void
pflow_dialed(struct pflow *f, int err)
{
    Tunnel__V1__Frame fr = TUNNEL__V1__FRAME__INIT;
    Tunnel__V1__Opened opened = TUNNEL__V1__OPENED__INIT;
    int fd = f->dial_fd;

    if (err != 0) {
        pflow_refuse(f,
                     err == -ECONNREFUSED ? TUNNEL__V1__OPEN_RESULT__OPEN_RESULT_REFUSED
                     : err == -ETIMEDOUT  ? TUNNEL__V1__OPEN_RESULT__OPEN_RESULT_TIMEOUT
                                          : TUNNEL__V1__OPEN_RESULT__OPEN_RESULT_UNREACHABLE,
                     strerror(-err));
        return;
    }
    ev_io_stop(f->px->loop, &f->connecting);
    ev_timer_stop(f->px->loop, &f->dial_timer);
    f->dial_fd = -1; /* transferred to the pipe below */
    opened.result = TUNNEL__V1__OPEN_RESULT__OPEN_RESULT_OK;
    fr.kind_case = TUNNEL__V1__FRAME__KIND_OPENED;
    fr.opened = &opened;
    if (tn_pipe_send(&f->pipe, &fr) != 0) {
        close(fd);
        tn_pipe_abort(&f->pipe, "out of memory");
        return;
    }
    tn_metric_observe(&tn_metric_flow_open, tn_metric_at(&tn_metric_flow_open, NULL, NULL),
                      ev_time() - f->started);
    f->pipe.idle_timeout = (double)f->px->cfg->idle_timeout / 1e3;
    tn_pipe_attach(&f->pipe, fd, false);
}

static void
pflow_on_connecting(struct ev_loop *loop, ev_io *w, int revents)
{
    struct pflow *f = tn_container_of(w, struct pflow, connecting);

    (void)loop;
    (void)revents;
    pflow_dialed(f, tn_addr_connect_result(f->dial_fd));
}

static void
pflow_on_dial_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct pflow *f = tn_container_of(w, struct pflow, dial_timer);

    (void)loop;
    (void)revents;
    pflow_dialed(f, -ETIMEDOUT);
}

/* A raw ICMP socket (the fallback when unprivileged ICMP sockets are not allowed) reads every
 * ICMP message from the target, with the IPv4 header in front: carry only the echo replies to
 * this flow's identifier, without that header. */
static bool
pflow_raw_icmp_in(struct tn_pipe *p, const uint8_t **data, size_t *n)
{
    const struct pflow *f = tn_container_of(p, struct pflow, pipe);
    size_t hl = 0;

    if (f->family == AF_INET) {
        if (*n < 20 || (hl = (size_t)((*data)[0] & 0x0f) * 4) < 20)
            return false;
    }
    if (*n < hl + 8 || (*data)[hl] != (f->family == AF_INET ? ICMP_ECHOREPLY : 129) ||
        ((unsigned)(*data)[hl + 4] << 8 | (*data)[hl + 5]) != f->echo_id)
        return false;
    *data += hl;
    *n -= hl;
    return true;
}

/* What a raw ICMP socket sends goes out as it is: only echo requests, never a redirect or an
 * unreachable forged from the proxy's address (an ICMP socket allows nothing else either). */
static bool
pflow_raw_icmp_out(struct tn_pipe *p, const uint8_t *data, size_t n)
{
    const struct pflow *f = tn_container_of(p, struct pflow, pipe);

    return tn_icmp_is_echo_request(f->family, data, n);
}

static const struct tn_pipe_ops pflow_pipe_ops, pflow_raw_icmp_ops;

/* UDP and ICMP echo: a connected datagram socket, ready at once.  For ICMP an unprivileged
 * ICMP socket (net.ipv4.ping_group_range), else a raw one.  Returns the socket or -errno. */
static int
pflow_dial_dgram(struct pflow *f, const struct sockaddr_storage *ss, socklen_t len)
{
    int type = SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, fd, proto = 0;

    if (f->protocol == TUNNEL__V1__PROTOCOL__PROTOCOL_ICMP)
        proto = ss->ss_family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6;
    if ((fd = socket(ss->ss_family, type, proto)) < 0 && proto != 0 &&
        (errno == EACCES || errno == EPERM)) {
        tn_log_debug("flow=%016" PRIx64 ": ICMP sockets not allowed here "
                     "(net.ipv4.ping_group_range): a raw socket instead",
                     f->id);
        if ((fd = socket(ss->ss_family, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, proto)) >= 0)
            f->pipe.ops = &pflow_raw_icmp_ops;
    }
    if (fd < 0)
        return -errno;
    if (connect(fd, (const struct sockaddr *)ss, len) < 0) {
        int err = -errno;

        close(fd);
        return err;
    }
    f->pipe.is_datagram = true;
    return fd;
}

/* Where |dst| really is: mapped from a virtual range, and only inside our networks.  |*net|
 * becomes the network as clients address it. */
static int
pflow_target(const struct proxy *px, const struct tn_ip *dst, struct tn_ip *real,
             const struct tn_cidr **net)
{
    const struct proxy_net *n;
    size_t i;

    for (i = 0; i < px->nnets; i++) {
        n = &px->nets[i];
        if (n->virt.ip.family != 0 && tn_cidr_contains(&n->virt, dst)) {
            *net = &n->virt;
            return tn_cidr_map(&n->virt, &n->real, dst, real);
        }
        if (n->virt.ip.family == 0 && tn_cidr_contains(&n->real, dst)) {
            *net = &n->real;
            *real = *dst;
            return 0;
        }
    }
    return TN_ERR_AUTH;
}

static int
pipe_on_frame(struct tn_pipe *p, Tunnel__V1__Frame *fr)
{
    struct pflow *f = tn_container_of(p, struct pflow, pipe);
    const Tunnel__V1__Endpoint *ep;
    struct sockaddr_storage ss;
    const struct tn_cidr *net = NULL;
    char label[TN_CIDR_STRLEN];
    struct tn_ip dst, real;
    socklen_t len;
    int fd;

    if (fr->kind_case != TUNNEL__V1__FRAME__KIND_OPEN || f->has_open) {
        p->abort_reason = "unexpected message from relay";
        return TN_ERR_PROTO;
    }
    f->has_open = true;
    if (f->conn == f->up->link.h2)
        f->up->idle--;
    f->px->flows++;
    f->px->active++;
    f->started = ev_time(); /* not the loop's cached time: a dial may end in this turn */
    tn_metric_flow_started();
    uplink_refill(f->up); /* replace this stream in the pool at once */
    f->id = fr->open->flow_id;
    snprintf(f->client, sizeof(f->client), "%s", fr->open->client_id);
    f->protocol = fr->open->protocol;
    f->echo_id = fr->open->src != NULL ? fr->open->src->port : 0;
    if (fr->open->service[0] != '\0')
        return pflow_open_service(f, fr->open);
    ep = fr->open->dst;
    if (tn_open_dst(fr->open, &dst) != 0) {
        p->abort_reason = "bad destination in Open";
        return TN_ERR_PROTO;
    }
    f->family = dst.family;
    len = tn_addr_from_ip(&dst, ep->port, &ss);
    tn_addr_format((struct sockaddr *)&ss, f->dst, sizeof(f->dst));
    /* Defence in depth: whatever the relay asks, never dial outside our own networks. */
    if (pflow_target(f->px, &dst, &real, &net) != 0) {
        tn_log_warnx("flow=%016" PRIx64 " client=%s: %s is outside this proxy's networks", f->id,
                     f->client, f->dst);
        pflow_refuse(f, TUNNEL__V1__OPEN_RESULT__OPEN_RESULT_FORBIDDEN,
                     "destination outside the proxy's networks");
        return 0;
    }
    tn_flow_metrics_bind(&f->metrics, tn_cidr_format(net, label, sizeof(label)), NULL);
    len = tn_addr_from_ip(&real, ep->port, &ss);
    tn_addr_format((struct sockaddr *)&ss, f->dst, sizeof(f->dst));
    if (f->protocol != TUNNEL__V1__PROTOCOL__PROTOCOL_TCP) {
        if (f->px->dgram_flows >= f->px->dgram_max) {
            static struct tn_log_rate rate;

            tn_log_rated(&rate, TN_LOG_WARN,
                         "flow=%016" PRIx64 " client=%s -> %s: %" PRIu64
                         " UDP and ICMP flows open, half the open files: refused",
                         f->id, f->client, f->dst, f->px->dgram_flows);
            pflow_refuse(f, TUNNEL__V1__OPEN_RESULT__OPEN_RESULT_FORBIDDEN,
                         "too many datagram flows at the proxy");
            return 0;
        }
        if ((fd = pflow_dial_dgram(f, &ss, len)) >= 0) {
            f->dial_fd = fd;
            f->px->dgram_flows++;
        }
        pflow_dialed(f, fd < 0 ? fd : 0);
        return 0;
    }
    pflow_dial(f, &ss, len);
    return 0;
}

/* A public connection to one of our published services: dial the target we configured for it,
 * whatever the Open's destination says. */
static int
pflow_open_service(struct pflow *f, const Tunnel__V1__Open *open)
{
    struct proxy_service *svc = f->px->cfg->expose.v;
    struct sockaddr_storage ss;
    char from[TN_ADDR_STRLEN], label[8 + TN_SERVICE_NAME_MAX + 1];
    struct tn_ip src;
    size_t i;

    for (i = 0; i < f->px->cfg->expose.n && strcmp(svc[i].name, open->service) != 0; i++)
        ;
    if (i == f->px->cfg->expose.n) {
        tn_log_warnx("flow=%016" PRIx64 ": no service named '%.64s' here", f->id, open->service);
        pflow_refuse(f, TUNNEL__V1__OPEN_RESULT__OPEN_RESULT_FORBIDDEN, "no such service");
        return 0;
    }
    f->service = &svc[i];
    snprintf(label, sizeof(label), "service:%s", svc[i].name);
    tn_flow_metrics_bind(&f->metrics, label, NULL);
    if (svc[i].stats != NULL && (f->http = malloc(sizeof(*f->http))) != NULL) {
        http_watch_init(f->http, svc[i].stats, svc[i].name, f->px->loop);
        f->pipe.ops = &pflow_http_pipe_ops;
    }
    snprintf(f->dst, sizeof(f->dst), "%s", svc[i].target);
    if (tn_endpoint_ip(open->src, &src) == 0) {
        tn_addr_from_ip(&src, open->src->port, &ss);
        tn_addr_format((struct sockaddr *)&ss, from, sizeof(from));
        snprintf(f->client, sizeof(f->client), "public:%.57s", from);
    }
    if (svc[i].addrlen > 0)
        pflow_dial(f, &svc[i].addr, svc[i].addrlen);
    else
        pflow_look_up_target(f);
    return 0;
}

static void
pflow_on_target(void *arg, int n)
{
    struct pflow *f = arg;
    struct target_lookup *t = f->lookup;
    struct sockaddr_storage ss = t->addr;
    socklen_t len = t->len;

    f->lookup = NULL;
    free(t);
    ev_timer_stop(f->px->loop, &f->dial_timer);
    if (n <= 0) {
        pflow_refuse(f, TUNNEL__V1__OPEN_RESULT__OPEN_RESULT_UNREACHABLE,
                     n == -EAGAIN ? "the target's name cannot be resolved now"
                                  : "the target's name does not resolve");
        return;
    }
    pflow_dial(f, &ss, len);
}

/* The service's target is a name: looked up now, for this connection, without waiting on the
 * loop; the dial timeout bounds the lookup too. */
static void
pflow_look_up_target(struct pflow *f)
{
    int n;

    if (tn_lookup_in_flight() >= TARGET_LOOKUPS_MAX) {
        pflow_refuse(f, TUNNEL__V1__OPEN_RESULT__OPEN_RESULT_UNREACHABLE,
                     "too many names being looked up (is the resolver slow?)");
        return;
    }
    if ((f->lookup = calloc(1, sizeof(*f->lookup))) == NULL) {
        pflow_refuse(f, TUNNEL__V1__OPEN_RESULT__OPEN_RESULT_UNREACHABLE, "out of memory");
        return;
    }
    n = tn_lookup_start(f->px->loop, f->service->target, true, &f->lookup->addr, &f->lookup->len, 1,
                        pflow_on_target, f, &f->lookup->pending);
    if (n != TN_LOOKUP_PENDING) {
        pflow_on_target(f, n);
        return;
    }
    ev_timer_set(&f->dial_timer, (double)f->px->cfg->dial_timeout_ms / 1e3, 0);
    ev_timer_start(f->px->loop, &f->dial_timer);
}

/* Starts the non-blocking dial of |ss|. */
static void
pflow_dial(struct pflow *f, const struct sockaddr_storage *ss, socklen_t len)
{
    int fd;

    if ((fd = tn_addr_connect((const struct sockaddr *)ss, len)) < 0) {
        pflow_dialed(f, fd);
        return;
    }
    f->dial_fd = fd;
    /* Done already: Opened and the first bytes go in this loop turn, with the stream that
     * replaces this one in the pool, instead of after one more poll. */
    if (tn_addr_connect_ended(fd)) {
        pflow_dialed(f, tn_addr_connect_result(fd));
        return;
    }
    ev_io_init(&f->connecting, pflow_on_connecting, fd, EV_WRITE);
    ev_io_start(f->px->loop, &f->connecting);
    ev_timer_init(&f->dial_timer, pflow_on_dial_timeout, (double)f->px->cfg->dial_timeout_ms / 1e3,
                  0);
    ev_timer_start(f->px->loop, &f->dial_timer);
}

static const struct tn_pipe_ops pflow_pipe_ops = {
    .on_frame = pipe_on_frame,
    .on_close = pipe_on_close,
};

/* Bytes read from the service are responses; bytes on their way to it, requests. */
static void
pipe_on_bytes(struct tn_pipe *p, bool is_up, const uint8_t *data, size_t n)
{
    struct pflow *f = tn_container_of(p, struct pflow, pipe);

    http_watch_bytes(f->http, !is_up, data, n);
}

static const struct tn_pipe_ops pflow_http_pipe_ops = {
    .on_frame = pipe_on_frame,
    .on_close = pipe_on_close,
    .on_bytes = pipe_on_bytes,
};

static const struct tn_pipe_ops pflow_raw_icmp_ops = {
    .on_frame = pipe_on_frame,
    .on_close = pipe_on_close,
    .dgram_in = pflow_raw_icmp_in,
    .dgram_out = pflow_raw_icmp_out,
};

int
pflow_open(struct uplink *up)
{
    struct proxy *px = up->px;
    struct pflow *f;

    if (up->link.h2 == NULL || (f = calloc(1, sizeof(*f))) == NULL)
        return -ENOMEM;
    f->px = px;
    f->up = up;
    f->conn = up->link.h2;
    f->dial_fd = -1;
    tn_pipe_init(&f->pipe, px->loop, &pflow_pipe_ops);
    ev_init(&f->connecting, pflow_on_connecting);
    ev_init(&f->dial_timer, pflow_on_dial_timeout);
    if (tn_pipe_open(&f->pipe, up->link.h2, PATH_ACCEPT) != 0) {
        free(f);
        return TN_ERR_H2;
    }
    return 0;
}
