/* SPDX-License-Identifier: MIT */
/* Public ports: a service next to a proxy (a web app on 127.0.0.1:3000) published on a port of
 * the relay, ngrok style, with no open port on the proxy's side.
 *
 *   public user ──TCP──▶ relay public port ══ idle Accept stream ══▶ proxy ──TCP──▶ service
 *
 * A proxy names its services in its Hello; the relay opens a listening socket for each (the
 * port asked for, or a free one of public_ports) and answers the ports in its Welcome.  The
 * relay's own services: list publishes targets inside a proxy's networks the same way.  Each
 * public connection takes an idle Accept stream of one of the replicas serving the port
 * (rendezvous hashing of its 4-tuple), so it costs no extra round trip: Open, then the user's
 * bytes, go out at once.  When the last replica leaves, the port stops accepting and closes
 * after public_grace; connections that arrive meanwhile wait in the backlog for a replica that
 * comes back in time. */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "relay.h"
#include "tn/addr.h"
#include "tn/admin.h"
#include "tn/err.h"
#include "tn/hash.h"
#include "tn/log.h"
#include "tn/metrics.h"
#include "tn/names.h"
#include "tn/pipe.h"
#include "tn/util.h"

#define MAX_TRIES 4 /* replicas tried for one public connection */

struct exposure {
    struct relay *relay;
    struct exposure *next;
    char owner[TN_ID_MAX + 1]; /* the proxy id that holds the port */
    char name[TN_SERVICE_NAME_MAX + 1];
    char target[256];
    char host[TN_HOST_NAME_MAX + 1]; /* HTTP Host / TLS SNI name it is routed by, or "" */
    bool is_relay_service;           /* from services:: the Open carries |target_ip| */
    struct tn_ip target_ip;
    unsigned target_port;
    uint16_t port;               /* 0: reached by |host| only */
    int fd;                      /* its listening socket, -1 without a port */
    char listen[TN_ADDR_STRLEN]; /* where it listens ("" without a port): public_addr may
                                  * change by SIGHUP while it stays open */
    struct tn_listener listener;
    bool is_listening;
    struct proxy **replicas;
    size_t n;
    ev_timer grace;
    uint64_t conns; /* public connections since the port opened */
};

/* One public connection. */
struct xconn {
    struct tn_pipe pipe;
    struct relay *relay;
    struct waiter wait; /* for an Accept stream of the replica chosen */
    uint16_t port;      /* its exposure is found again by port or host: it may close */
    char host[TN_HOST_NAME_MAX + 1];
    int fd;     /* until the pipe takes it */
    char *head; /* bytes read before (an HTTP request head), sent after Open */
    size_t head_len;
    SSL *ssl; /* the user's TLS session (the HTTPS routing port), or NULL */
    uint64_t id;
    Tunnel__V1__Endpoint src_ep, dst_ep;
    struct tn_ip src_ip, dst_ip;
    uint64_t tried[MAX_TRIES];
    size_t ntried;
    ev_timer wait_timer;
    char src[TN_ADDR_STRLEN];
    char proxy_id[TN_ID_MAX + 1];
    char service[TN_SERVICE_NAME_MAX + 1]; /* once started */
    ev_tstamp started;
    char why[128];
    struct bw_gate *bw_up, *bw_down; /* bandwidth limits; NULL: none */
    /* The replica chosen.  From xconn_start until its stream goes (xconn_on_stream_gone), its
     * session is alive: its counters are ours to update.  NULL after that. */
    struct proxy *proxy;
    bool is_started;
    struct tn_flow_metrics metrics;
};

static struct exposure *
exposure_by_port(struct relay *relay, unsigned port)
{
    struct exposure *x;

    for (x = relay->exposures; x != NULL; x = x->next) {
        if (x->port == port)
            return x;
    }
    return NULL;
}

/* Whether another service than |owner|'s |name| holds |port| (filling |why| with whose it is). */
static bool
port_held(struct relay *relay, unsigned port, const char *owner, const char *name, char *why,
          size_t whylen)
{
    const struct exposure *x = exposure_by_port(relay, port);

    if (x == NULL || (strcmp(x->owner, owner) == 0 && strcmp(x->name, name) == 0))
        return false;
    snprintf(why, whylen, "port %u is held by proxy '%s' (service '%s')", port, x->owner, x->name);
    return true;
}

static struct exposure *
exposure_by_host_name(struct relay *relay, const char *host)
{
    struct exposure *x;

    for (x = relay->exposures; x != NULL; x = x->next) {
        if (x->host[0] != '\0' && strcmp(x->host, host) == 0)
            return x;
    }
    return NULL;
}

/* The exposure a public connection belongs to, if it is still there. */
static struct exposure *
xconn_exposure(const struct xconn *c)
{
    return c->port != 0 ? exposure_by_port(c->relay, c->port)
                        : exposure_by_host_name(c->relay, c->host);
}

static struct exposure *
exposure_by_name(struct relay *relay, const char *owner, const char *name)
{
    struct exposure *x;

    for (x = relay->exposures; x != NULL; x = x->next) {
        if (strcmp(x->owner, owner) == 0 && strcmp(x->name, name) == 0)
            return x;
    }
    return NULL;
}

/* ---- public connections ------------------------------------------------------------------- */

static void
xconn_free(struct xconn *c)
{
    ev_timer_stop(c->relay->loop, &c->wait_timer);
    proxy_unwait(&c->wait);
    bw_gate_free(c->bw_up);
    bw_gate_free(c->bw_down);
    if (c->fd >= 0)
        tn_addr_close_reset(c->fd);
    SSL_free(c->ssl);
    free(c->head);
    free(c);
}

/* The flow.end event of a public connection (in the audit file too), as flow.c writes a
 * client's: "public" stands for the client, the service for the destination. */
static void
xconn_log_end(const struct xconn *c, const char *reason, enum tn_log_level level)
{
    const char *proxy = c->proxy_id[0] != '\0' ? c->proxy_id : "-";
    const char *service = c->service[0] != '\0' ? c->service : "-";
    char msg[1024], fields[1024], port[8];

    if (!tn_log_enabled(level) && !tn_log_audit_enabled())
        return;
    snprintf(port, sizeof(port), "%u", c->port);
    snprintf(msg, sizeof(msg),
             "client=public %s -> service %s (%s %s) proxy=%s up=%" PRIu64 " down=%" PRIu64 " %s",
             c->src, service, c->port != 0 ? "port" : "host", c->port != 0 ? port : c->host, proxy,
             c->pipe.bytes_up, c->pipe.bytes_down, reason != NULL ? reason : "closed");
    snprintf(fields, sizeof(fields),
             "client=public src=%s service=%s port=%u host=%s proxy=%s up=%" PRIu64 " down=%" PRIu64
             " duration_ms=%.0f result=%s reason=\"%s\"",
             c->src, service, c->port, c->host[0] != '\0' ? c->host : "-", proxy, c->pipe.bytes_up,
             c->pipe.bytes_down, c->is_started ? (ev_now(c->relay->loop) - c->started) * 1e3 : 0.0,
             tn_metric_flow_result(reason), reason != NULL ? reason : "closed");
    tn_log_event(level, "flow.end", c->id, msg, fields);
}

/* It ends before its stream: a warning, as the user was refused. */
static void
xconn_fail(struct xconn *c, const char *why)
{
    const struct exposure *x = xconn_exposure(c);

    if (c->service[0] == '\0' && x != NULL)
        snprintf(c->service, sizeof(c->service), "%s", x->name);
    xconn_log_end(c, why, TN_LOG_WARN);
    xconn_free(c);
}

static int
xconn_on_frame(struct tn_pipe *p, Tunnel__V1__Frame *fr)
{
    struct xconn *c = tn_container_of(p, struct xconn, pipe);

    return tn_pipe_check_opened(p, fr, c->why, sizeof(c->why));
}

/* A public connection is a flow of its proxy: counted as the client's flows are (flow.c). */
static void
xconn_on_bytes(struct tn_pipe *p, bool is_up, const uint8_t *data, size_t n)
{
    struct xconn *c = tn_container_of(p, struct xconn, pipe);

    (void)data;
    if (c->proxy != NULL)
        *(is_up ? &c->proxy->bytes_up : &c->proxy->bytes_down) += n;
    tn_flow_metrics_add(&c->metrics, is_up ? n : 0, is_up ? 0 : n);
}

/* The pipe may outlive its stream (what it holds still goes to the user), and the proxy its
 * session with it: let go of the proxy now. */
static void
xconn_on_stream_gone(struct tn_pipe *p)
{
    struct xconn *c = tn_container_of(p, struct xconn, pipe);

    if (c->is_started && c->proxy != NULL)
        c->proxy->active--;
    c->proxy = NULL;
}

static void
xconn_on_close(struct tn_pipe *p, const char *reason)
{
    struct xconn *c = tn_container_of(p, struct xconn, pipe);

    if (c->is_started) {
        xconn_on_stream_gone(p);
        tn_metric_flow_ended(reason);
    }
    xconn_log_end(c, reason, reason != NULL ? TN_LOG_INFO : TN_LOG_DEBUG);
    xconn_free(c);
}

static const struct tn_pipe_ops xconn_pipe_ops = {
    .on_frame = xconn_on_frame,
    .on_bytes = xconn_on_bytes,
    .on_stream_gone = xconn_on_stream_gone,
    .on_close = xconn_on_close,
    .is_peer_proxy = true,
};

/* Bandwidth limits: the user's bytes are read at the pace of the up buckets, and the window of
 * the bytes written to the user goes back at the pace of the down buckets. */
static bool
xconn_on_read(struct tn_pipe *p, size_t n)
{
    struct xconn *c = tn_container_of(p, struct xconn, pipe);

    if (c->bw_up == NULL)
        return true;
    bw_pass(c->bw_up, n);
    return bw_owed(c->bw_up) == 0;
}

static void
xconn_on_written(struct tn_pipe *p, size_t n)
{
    struct xconn *c = tn_container_of(p, struct xconn, pipe);

    if (c->bw_down != NULL)
        bw_pass(c->bw_down, n);
    else
        tn_h2_stream_consume(p->stream, n);
}

static const struct tn_pipe_throttle xconn_throttle = {
    .on_read = xconn_on_read,
    .on_written = xconn_on_written,
};

static void
xconn_release_up(void *arg, size_t n)
{
    struct xconn *c = arg;

    (void)n;
    if (bw_owed(c->bw_up) == 0)
        tn_pipe_read_resume(&c->pipe);
}

static void
xconn_release_down(void *arg, size_t n)
{
    struct xconn *c = arg;

    if (c->pipe.stream != NULL)
        tn_h2_stream_consume(c->pipe.stream, n);
}

/* Puts the connection under the bandwidth limits that match it. */
static void
xconn_limit(struct xconn *c, const struct exposure *x)
{
    struct bw_flow bw = { .proxy = c->proxy_id,
                          .service = x->name,
                          .dst = x->is_relay_service ? &x->target_ip : NULL };

    c->bw_up = bw_gate_new(c->relay, &bw, true, xconn_release_up, c);
    c->bw_down = bw_gate_new(c->relay, &bw, false, xconn_release_down, c);
    if (c->bw_up != NULL || c->bw_down != NULL)
        c->pipe.throttle = &xconn_throttle;
    if (c->bw_down != NULL && c->pipe.stream != NULL)
        tn_h2_stream_set_paced(c->pipe.stream);
}

/* The connection has its Accept stream: Open goes out, then the user's bytes, at once. */
static void
xconn_start(struct xconn *c, struct tn_h2_stream *stream)
{
    Tunnel__V1__Frame fr = TUNNEL__V1__FRAME__INIT;
    Tunnel__V1__Open open = TUNNEL__V1__OPEN__INIT;
    Tunnel__V1__Frame data = TUNNEL__V1__FRAME__INIT;
    struct exposure *x = xconn_exposure(c);
    char label[8 + TN_SERVICE_NAME_MAX + 1];
    int fd = c->fd;

    ev_timer_stop(c->relay->loop, &c->wait_timer);
    tn_pipe_init(&c->pipe, c->relay->loop, &xconn_pipe_ops);
    tn_pipe_bind(&c->pipe, stream);
    open.flow_id = c->id;
    open.client_id = TN_UNCONST("public"); /* no certificate: someone on a public port */
    open.protocol = TUNNEL__V1__PROTOCOL__PROTOCOL_TCP;
    open.src = &c->src_ep;
    open.dst = &c->dst_ep;
    if (x != NULL && x->is_relay_service) {
        tn_endpoint_set(&c->dst_ep, &x->target_ip, x->target_port);
    } else if (x != NULL) {
        open.service = x->name;
    }
    if (x != NULL)
        xconn_limit(c, x);
    fr.kind_case = TUNNEL__V1__FRAME__KIND_OPEN;
    fr.open = &open;
    data.kind_case = TUNNEL__V1__FRAME__KIND_DATA;
    data.data.data = (uint8_t *)c->head;
    data.data.len = c->head_len;
    c->fd = -1; /* the pipe's from here on */
    tn_pipe_attach_tls(&c->pipe, fd, c->ssl);
    c->ssl = NULL;
    c->is_started = true;
    c->started = ev_now(c->relay->loop);
    c->proxy->active++;
    tn_metric_flow_started();
    snprintf(c->service, sizeof(c->service), "%s", x != NULL ? x->name : "-");
    snprintf(label, sizeof(label), "service:%s", c->service);
    tn_flow_metrics_bind(&c->metrics, label, c->proxy->id);
    c->pipe.bytes_up += c->head_len;
    xconn_on_bytes(&c->pipe, true, (const uint8_t *)c->head, c->head_len);
    if (x == NULL || tn_pipe_send(&c->pipe, &fr) != 0 ||
        (c->head_len > 0 && tn_pipe_send(&c->pipe, &data) != 0))
        tn_pipe_abort(&c->pipe, x == NULL ? "the service is gone" : "out of memory");
}

static void
xconn_on_stream(struct waiter *w, struct tn_h2_stream *stream)
{
    xconn_start(tn_container_of(w, struct xconn, wait), stream);
}

/* Picks the replica for the connection and takes one of its idle Accept streams, or waits for
 * one.  Frees the connection when no replica is left. */
static void
xconn_dispatch(struct xconn *c)
{
    struct exposure *x = xconn_exposure(c);
    struct proxy *best = NULL;
    struct tn_h2_stream *stream;
    uint64_t w, best_w = 0;
    size_t i, j;

    for (i = 0; x != NULL && i < x->n && c->ntried < MAX_TRIES; i++) {
        for (j = 0; j < c->ntried && c->tried[j] != x->replicas[i]->serial; j++)
            ;
        if (j < c->ntried)
            continue;
        w = tn_hash_hrw(c->id, x->replicas[i]->hrw_key);
        if (best == NULL || w > best_w) {
            best = x->replicas[i];
            best_w = w;
        }
    }
    if (best == NULL) {
        xconn_fail(c, "no proxy serves this port now");
        return;
    }
    c->tried[c->ntried++] = best->serial;
    c->proxy = best;
    snprintf(c->proxy_id, sizeof(c->proxy_id), "%s", best->id);
    best->flows++;
    if (c->ntried == 1) { /* a connection, not a retry */
        x->conns++;
        tn_metric_at(&relay_metric_public_conns, x->name, NULL)->value++;
    }
    if ((stream = proxy_take_stream(best)) != NULL) {
        xconn_start(c, stream);
        return;
    }
    proxy_wait(best, &c->wait);
    ev_timer_again(c->relay->loop, &c->wait_timer);
}

static void
xconn_reroute(struct waiter *w)
{
    xconn_dispatch(tn_container_of(w, struct xconn, wait));
}

static void
xconn_on_wait_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct xconn *c = tn_container_of(w, struct xconn, wait_timer);

    (void)loop;
    (void)revents;
    xconn_fail(c, "the proxy had no stream free in time");
}

static void
endpoint_of(const struct sockaddr_storage *ss, struct tn_ip *ip, Tunnel__V1__Endpoint *ep)
{
    unsigned port = 0;

    tn_addr_to_ip((const struct sockaddr *)ss, ip, &port);
    tn_endpoint_set(ep, ip, port);
}

/* A public connection for the exposure of |port| or |host|: routed at once. */
static void
xconn_start_new(struct relay *relay, unsigned port, const char *host, int fd, char *head,
                size_t head_len, SSL *ssl)
{
    struct sockaddr_storage src, dst;
    socklen_t slen = sizeof(src), dlen = sizeof(dst);
    struct xconn *c;

    if (relay->is_draining || (c = calloc(1, sizeof(*c))) == NULL) {
        tn_addr_close_reset(fd);
        SSL_free(ssl);
        free(head);
        return;
    }
    c->ssl = ssl;
    c->relay = relay;
    c->port = (uint16_t)port;
    snprintf(c->host, sizeof(c->host), "%s", host);
    c->fd = fd;
    c->head = head;
    c->head_len = head_len;
    c->wait.bind = xconn_on_stream;
    c->wait.reroute = xconn_reroute;
    ev_init(&c->wait_timer, xconn_on_wait_timeout);
    c->wait_timer.repeat = (double)relay->cfg->open_timeout / 1e3;
    if (getpeername(fd, (struct sockaddr *)&src, &slen) != 0 ||
        getsockname(fd, (struct sockaddr *)&dst, &dlen) != 0) {
        xconn_fail(c, "the connection went away");
        return;
    }
    tn_addr_format((struct sockaddr *)&src, c->src, sizeof(c->src));
    endpoint_of(&src, &c->src_ip, &c->src_ep);
    endpoint_of(&dst, &c->dst_ip, &c->dst_ep);
    c->id = tn_flow_id(IPPROTO_TCP, &c->src_ip, c->src_ep.port, &c->dst_ip, c->dst_ep.port);
    xconn_dispatch(c);
}

static void
on_public_connection(struct tn_listener *l, int fd)
{
    struct exposure *x = tn_container_of(l, struct exposure, listener);

    xconn_start_new(x->relay, x->port, "", fd, NULL, 0, NULL);
}

bool
expose_by_host(struct relay *relay, const char *host)
{
    const struct exposure *x = exposure_by_host_name(relay, host);

    return x != NULL && x->n > 0;
}

void
expose_connect_host(struct relay *relay, const char *host, int fd, char *head, size_t len, SSL *ssl)
{
    xconn_start_new(relay, 0, host, fd, head, len, ssl);
}

/* ---- public ports ------------------------------------------------------------------------- */

static void
exposure_free(struct exposure *x)
{
    struct exposure **pp;

    for (pp = &x->relay->exposures; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == x) {
            *pp = x->next;
            break;
        }
    }
    tn_listener_stop(&x->listener, x->relay->loop);
    ev_timer_stop(x->relay->loop, &x->grace);
    if (x->fd >= 0)
        close(x->fd);
    free(x->replicas);
    free(x);
}

static void
exposure_on_grace_end(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct exposure *x = tn_container_of(w, struct exposure, grace);

    (void)loop;
    (void)revents;
    tn_log_info("public port %u (%s/%s) closed: no proxy came back", x->port, x->owner, x->name);
    exposure_free(x);
}

/* Opens public port |port| for a new exposure (none for port 0: a service reached by its HTTP
 * host only).  Returns it, or NULL with |why| filled. */
static struct exposure *
exposure_open(struct relay *relay, const char *owner, const char *name, unsigned port, char *why,
              size_t whylen)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    struct exposure *x;
    int fd = -1;

    if (port == 0)
        goto make;
    if (tn_addr_resolve_host(relay->cfg->public_addr, port, true, &ss, &sslen) != 0) {
        snprintf(why, whylen, "public_addr '%.200s' does not resolve", relay->cfg->public_addr);
        return NULL;
    }
    if ((fd = tn_addr_listen((struct sockaddr *)&ss, sslen, 512)) < 0) {
        snprintf(why, whylen, "port %u: %s on the relay", port, tn_strerror(fd));
        return NULL;
    }
make:
    if ((x = calloc(1, sizeof(*x))) == NULL) {
        if (fd >= 0)
            close(fd);
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    x->relay = relay;
    x->fd = fd;
    if (fd >= 0)
        tn_addr_format((struct sockaddr *)&ss, x->listen, sizeof(x->listen));
    x->port = (uint16_t)port;
    snprintf(x->owner, sizeof(x->owner), "%s", owner);
    snprintf(x->name, sizeof(x->name), "%s", name);
    ev_init(&x->grace, exposure_on_grace_end);
    x->next = relay->exposures;
    relay->exposures = x;
    return x;
}

/* Adds |px| as a replica of |x| (opening the port for connections again if it was in its grace
 * period).  Returns 0 or -ENOMEM. */
static int
exposure_join(struct exposure *x, struct proxy *px)
{
    struct exposure **xs;
    struct proxy **ps;

    if ((ps = realloc(x->replicas, (x->n + 1) * sizeof(*ps))) == NULL)
        return -ENOMEM;
    x->replicas = ps;
    if ((xs = realloc(px->exposures, (px->nexposures + 1) * sizeof(*xs))) == NULL)
        return -ENOMEM;
    px->exposures = xs;
    x->replicas[x->n++] = px;
    px->exposures[px->nexposures++] = x;
    ev_timer_stop(x->relay->loop, &x->grace);
    if (!x->is_listening && x->fd >= 0) {
        tn_listener_start(&x->listener, x->relay->loop, x->fd, on_public_connection);
        x->is_listening = true;
    }
    tn_log_info("proxy %s#%" PRIu64 " serves public port %u%s%s: %s (%s)", px->id, px->serial,
                x->port, x->host[0] != '\0' ? " and host " : "", x->host, x->name, x->target);
    return 0;
}

/* A free port of public_ports that |px| may publish, opened.  NULL with |why| when none. */
static struct exposure *
exposure_open_free(struct relay *relay, const struct proxy *px, const char *name, char *why,
                   size_t whylen)
{
    const struct port_set *set = &relay->cfg->public_set;
    struct exposure *x;
    char ignored[160];
    size_t i;
    unsigned port;

    for (i = 0; i < set->n; i++) {
        for (port = set->v[i].lo; port <= set->v[i].hi; port++) {
            if (exposure_by_port(relay, port) == NULL &&
                policy_may_publish(relay->cfg, px->id, port, ignored, sizeof(ignored)) &&
                (x = exposure_open(relay, px->id, name, port, ignored, sizeof(ignored))) != NULL)
                return x;
        }
    }
    snprintf(why, whylen, "no free port in the relay's public_ports (%s) for proxy '%s'",
             relay->cfg->public_ports != NULL ? relay->cfg->public_ports : "none", px->id);
    return NULL;
}

/* Publishes one service for |px|: joins the exposure of the same name (a replica, or the
 * proxy back within the grace period) or opens a port.  Returns the exposure, or NULL with
 * |why| filled. */
static struct exposure *
publish(struct proxy *px, const Tunnel__V1__Service *svc, char *why, size_t whylen)
{
    const char *name = svc->name, *host = svc->host;
    unsigned port = svc->public_port;
    struct relay *relay = px->session->relay;
    struct exposure *x;
    size_t i;

    if (host[0] != '\0' && !tn_host_name_valid(host)) {
        snprintf(why, whylen,
                 "service '%s': '%.64s' is not a host name (lowercase letters, "
                 "digits, '-' and '.')",
                 name, host);
        return NULL;
    }
    if (host[0] != '\0' && relay->cfg->http_listen == NULL && relay->cfg->https_listen == NULL) {
        snprintf(why, whylen,
                 "service '%s': the relay routes no HTTP hosts (no http_listen, https_listen)",
                 name);
        return NULL;
    }
    if (host[0] != '\0' && (x = exposure_by_host_name(relay, host)) != NULL &&
        (strcmp(x->owner, px->id) != 0 || strcmp(x->name, name) != 0)) {
        snprintf(why, whylen, "host %.100s is held by proxy '%s' (service '%s')", host, x->owner,
                 x->name);
        return NULL;
    }

    if (!tn_service_name_valid(name)) {
        snprintf(why, whylen, "service name '%.64s' is not 1-64 printable characters", name);
        return NULL;
    }
    if (port > 65535) {
        snprintf(why, whylen, "service '%s': %u is not a port", name, port);
        return NULL;
    }
    for (i = 0; i < px->nexposures; i++) {
        if (strcmp(px->exposures[i]->name, name) == 0) {
            snprintf(why, whylen, "service '%s' is named twice", name);
            return NULL;
        }
    }
    if ((x = exposure_by_name(relay, px->id, name)) != NULL) {
        if (x->is_relay_service) { /* its target is the relay's, not this service's */
            snprintf(why, whylen,
                     "service '%s' of proxy '%s' is a service of the relay's configuration (port "
                     "%u): name this one otherwise",
                     name, px->id, x->port);
            return NULL;
        }
        if ((port != 0 && port != x->port) || strcmp(host, x->host) != 0) {
            snprintf(why, whylen,
                     "service '%s' of proxy '%s' is already published otherwise (port %u, host "
                     "'%.100s')",
                     name, px->id, x->port, x->host);
            return NULL;
        }
    } else if (port == 0 && host[0] != '\0') {
        x = exposure_open(relay, px->id, name, 0, why, whylen);
    } else if (port == 0) {
        x = exposure_open_free(relay, px, name, why, whylen);
    } else if (port_held(relay, port, px->id, name, why, whylen)) {
        return NULL;
    } else if (policy_may_publish(relay->cfg, px->id, port, why, whylen)) {
        x = exposure_open(relay, px->id, name, port, why, whylen);
    }
    if (x != NULL) {
        snprintf(x->host, sizeof(x->host), "%s", host);
        if (x->target[0] == '\0')
            snprintf(x->target, sizeof(x->target), "%.200s", svc->target);
    }
    if (x != NULL && exposure_join(x, px) != 0) {
        snprintf(why, whylen, "out of memory");
        if (x->n == 0)
            exposure_free(x);
        return NULL;
    }
    return x;
}

/* Publishes relay service |r| for |px| (a replica joins the port).  Returns the exposure, or
 * NULL with |why| filled (and logged). */
static struct exposure *
publish_relay_service(struct proxy *px, const struct service_rule *r, char *why, size_t whylen)
{
    struct relay *relay = px->session->relay;
    struct exposure *x = exposure_by_name(relay, px->id, r->name);
    size_t i;

    if (x != NULL && (!x->is_relay_service || x->port != (unsigned)r->public_port)) {
        snprintf(why, whylen, "service '%s' of proxy '%s' is already published otherwise (port %u)",
                 r->name, px->id, x->port);
        x = NULL;
    } else if (x != NULL) {
        for (i = 0; i < x->n; i++) {
            if (x->replicas[i] == px)
                return x; /* published already: once is enough */
        }
    } else if (port_held(relay, (unsigned)r->public_port, px->id, r->name, why, whylen)) {
        x = NULL;
    } else if ((x = exposure_open(relay, px->id, r->name, (unsigned)r->public_port, why, whylen)) !=
               NULL) {
        x->is_relay_service = true;
        snprintf(x->target, sizeof(x->target), "%s", r->target);
        if (tn_addr_parse_ip(r->target, &x->target_ip, &x->target_port) != 0) {
            snprintf(why, whylen, "target '%.200s' is not an address", r->target);
            exposure_free(x);
            x = NULL;
        }
    }
    if (x != NULL && exposure_join(x, px) != 0) {
        snprintf(why, whylen, "out of memory");
        if (x->n == 0)
            exposure_free(x);
        x = NULL;
    }
    if (x == NULL)
        tn_log_warnx("proxy %s: relay service '%s' on port %" PRId64 " refused: %s", px->id,
                     r->name, r->public_port, why);
    return x;
}

/* Publishes the relay's own services: entries for |px|'s id. */
static size_t
publish_relay_services(struct proxy *px, Tunnel__V1__Published **out)
{
    const struct service_rule *rules = px->session->relay->cfg->services.v;
    struct relay *relay = px->session->relay;
    struct exposure *x;
    char why[512];
    size_t i, n = 0;

    for (i = 0; i < relay->cfg->services.n; i++) {
        const struct service_rule *r = &rules[i];

        if (strcmp(r->proxy, px->id) != 0)
            continue;
        x = publish_relay_service(px, r, why, sizeof(why));
        tunnel__v1__published__init(out[n]);
        out[n]->name = strdup(r->name);
        out[n]->public_port = x != NULL ? x->port : 0;
        out[n]->error = strdup(x != NULL ? "" : why);
        n++;
    }
    return n;
}

int
expose_publish_rule(struct relay *relay, const struct service_rule *r, char *why, size_t whylen)
{
    struct session *s;
    int n = 0;

    /* Whether the proxy is connected or not: a port is held by whoever holds it now. */
    if (port_held(relay, (unsigned)r->public_port, r->proxy, r->name, why, whylen))
        return -1;
    snprintf(why, whylen, "proxy '%s' is not connected: the port opens when it registers",
             r->proxy);
    for (s = relay->sessions; s != NULL; s = s->next) {
        if (s->proxy == NULL || s->proxy->has_left || strcmp(s->proxy->id, r->proxy) != 0)
            continue;
        if (publish_relay_service(s->proxy, r, why, whylen) == NULL)
            return -1;
        n++;
    }
    return n;
}

void
expose_services_reloaded(struct relay *relay)
{
    const struct service_rule *rules = relay->cfg->services.v;
    size_t i, n = relay->cfg->services.n;
    struct exposure *x, *next;
    char why[512];

    for (x = relay->exposures; x != NULL; x = next) {
        next = x->next;
        if (!x->is_relay_service)
            continue;
        for (i = 0; i < n; i++) {
            if (strcmp(rules[i].proxy, x->owner) == 0 && strcmp(rules[i].name, x->name) == 0 &&
                rules[i].public_port == x->port && strcmp(rules[i].target, x->target) == 0)
                break;
        }
        if (i == n)
            expose_unpublish(relay, x->owner, x->name);
    }
    for (i = 0; i < n; i++)
        expose_publish_rule(relay, &rules[i], why, sizeof(why)); /* a refusal is logged */
}

bool
expose_unpublish(struct relay *relay, const char *owner, const char *name)
{
    struct exposure *x = exposure_by_name(relay, owner, name);
    size_t i, j;

    if (x == NULL)
        return false;
    for (i = 0; i < x->n; i++) {
        struct proxy *px = x->replicas[i];

        for (j = 0; j < px->nexposures && px->exposures[j] != x; j++)
            ;
        if (j < px->nexposures)
            px->exposures[j] = px->exposures[--px->nexposures];
    }
    x->n = 0;
    tn_log_info("public port %u (%s/%s) closed", x->port, owner, name);
    exposure_free(x);
    return true;
}

int
expose_proxy_joined(struct proxy *px, const Tunnel__V1__Hello *hello, Tunnel__V1__Welcome *welcome)
{
    const struct relay_config *cfg = px->session->relay->cfg;
    const struct service_rule *rules = cfg->services.v;
    size_t i, n = hello->n_services;
    struct exposure *x;
    char why[512];

    for (i = 0; i < cfg->services.n; i++)
        n += strcmp(rules[i].proxy, px->id) == 0;
    if (n == 0)
        return 0;
    if ((welcome->published = calloc(n, sizeof(*welcome->published))) == NULL)
        return -ENOMEM;
    for (i = 0; i < n; i++) {
        if ((welcome->published[i] = calloc(1, sizeof(**welcome->published))) == NULL)
            return -ENOMEM;
        welcome->n_published = i + 1;
    }
    for (i = 0; i < hello->n_services; i++) {
        const Tunnel__V1__Service *svc = hello->services[i];
        Tunnel__V1__Published *pub = welcome->published[i];

        tunnel__v1__published__init(pub);
        x = publish(px, svc, why, sizeof(why));
        if (x == NULL)
            tn_log_warnx("proxy %s: service '%.64s' not published: %s", px->id, svc->name, why);
        pub->name = strdup(svc->name);
        pub->public_port = x != NULL ? x->port : 0;
        pub->error = strdup(x != NULL ? "" : why);
        pub->host = strdup(x != NULL ? x->host : "");
    }
    welcome->n_published =
        hello->n_services + publish_relay_services(px, welcome->published + hello->n_services);
    for (i = 0; i < welcome->n_published; i++) {
        if (welcome->published[i]->name == NULL || welcome->published[i]->error == NULL ||
            welcome->published[i]->host == NULL)
            return -ENOMEM;
    }
    return 0;
}

void
expose_welcome_fini(Tunnel__V1__Welcome *welcome)
{
    size_t i;

    for (i = 0; i < welcome->n_published; i++) {
        Tunnel__V1__Published *pub = welcome->published[i];

        if (pub == NULL)
            continue;
        if (pub->name != protobuf_c_empty_string)
            free(pub->name);
        if (pub->error != protobuf_c_empty_string)
            free(pub->error);
        if (pub->host != protobuf_c_empty_string)
            free(pub->host);
        free(pub);
    }
    free(welcome->published);
    welcome->published = NULL;
    welcome->n_published = 0;
}

void
expose_proxy_left(struct proxy *px)
{
    struct relay *relay = px->session->relay;
    size_t i, j;

    for (i = 0; i < px->nexposures; i++) {
        struct exposure *x = px->exposures[i];

        for (j = 0; j < x->n && x->replicas[j] != px; j++)
            ;
        if (j < x->n)
            x->replicas[j] = x->replicas[--x->n];
        if (x->n > 0)
            continue;
        /* Stop accepting: connections wait in the backlog for a proxy that comes back. */
        tn_listener_stop(&x->listener, relay->loop);
        x->is_listening = false;
        if (relay->cfg->public_grace == 0 || relay->is_draining) {
            tn_log_info("public port %u (%s/%s) closed: its last proxy left", x->port, x->owner,
                        x->name);
            exposure_free(x);
        } else {
            ev_timer_set(&x->grace, (double)relay->cfg->public_grace / 1e3, 0);
            ev_timer_start(relay->loop, &x->grace);
        }
    }
    px->nexposures = 0;
}

void
expose_close_all(struct relay *relay)
{
    while (relay->exposures != NULL)
        exposure_free(relay->exposures);
}

void
expose_dump(struct relay *relay)
{
    const struct exposure *x;
    size_t n = 0;

    for (x = relay->exposures; x != NULL; x = x->next, n++)
        tn_log_info("status:   public port %u -> %s/%s (%s): %zu replicas, %" PRIu64
                    " connections, on %s",
                    x->port, x->owner, x->name, x->target, x->n, x->conns,
                    x->port != 0 ? x->listen : x->host);
    tn_log_info("status: %zu public ports", n);
}

void
expose_status(struct relay *relay, struct tn_admin_reply *r)
{
    const struct exposure *x;
    char listen[300];
    size_t i;

    for (x = relay->exposures; x != NULL; x = x->next) {
        if (x->port != 0)
            snprintf(listen, sizeof(listen), "%s", x->listen);
        else
            snprintf(listen, sizeof(listen), "http://%s", x->host);
        tn_admin_printf(r, "%s{\"name\":", x == relay->exposures ? "" : ",");
        tn_admin_json_str(r, x->name);
        tn_admin_printf(r, ",\"proxy\":");
        tn_admin_json_str(r, x->owner);
        tn_admin_printf(r, ",\"listen\":");
        tn_admin_json_str(r, listen);
        tn_admin_printf(r, ",\"port\":%u,\"host\":", x->port);
        tn_admin_json_str(r, x->host);
        tn_admin_printf(r, ",\"target\":");
        tn_admin_json_str(r, x->target);
        tn_admin_printf(r, ",\"replicas\":[");
        for (i = 0; i < x->n; i++)
            tn_admin_printf(r, "%s%" PRIu64, i > 0 ? "," : "", x->replicas[i]->serial);
        tn_admin_printf(r, "],\"connections_total\":%" PRIu64 "}", x->conns);
    }
}
