/* SPDX-License-Identifier: MIT */
/* A relay flow joins a client's Connect stream (cs) to a proxy's Accept stream (ps).
 *
 *   client                relay                          proxy
 *     Connect: Open  --->  route, bind idle Accept  --->  Open (with client id)
 *                    <---  Opened (with proxy id)  <---   Opened
 *     Data...       <-->   copied as opaque bytes   <-->  Data...
 *     END_STREAM     --->  trailers (status 0)      --->
 *     trailers       <---                           <---  END_STREAM
 *
 * Only Open and Opened are decoded.  Until the flow is open, the client's bytes are also kept
 * (|replay|): when the chosen replica refuses, times out or goes away before Opened, the next
 * replica in rendezvous order gets the Open and those bytes, and the application never knows.
 * Flow control: a stream's window goes back to its sender only once the other stream took the
 * bytes (on_sent), so a slow reader slows its own writer; a flow under a bandwidth limit gets it
 * back at the limit's pace (bandwidth.c). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>
#include <nghttp2/nghttp2.h>

#include "relay.h"
#include "tn/addr.h"
#include "tn/err.h"
#include "tn/log.h"
#include "tn/metrics.h"
#include "tn/pipe.h"
#include "tn/util.h"

#define MAX_TRIES         8    /* replicas tried for one flow */
#define AWAITING_OPEN_MAX 4096 /* Connect streams of one session without their Open yet */

struct rflow {
    struct session *awaiting_in; /* counted in its awaiting_open until the Open comes */
    struct relay *relay;
    struct proxy *proxy; /* waiting on it, or bound to one of its streams */
    struct waiter wait;  /* for an idle Accept stream of |proxy| */
    struct tn_h2_stream *cs, *ps;
    struct tn_grpc_reader crd, prd; /* first message of each side */
    Tunnel__V1__Open *open;         /* the client's Open, once read */
    bool is_open;                   /* a proxy's Opened (ok) went to the client */
    bool is_client_ended;           /* client END_STREAM seen */
    struct tn_buf replay;           /* client bytes after Open, kept until the flow is open */
    size_t replay_credited;         /* of which the client already got its window back */
    size_t cs_own, ps_own;          /* bytes we queued ourselves on cs / ps (no window to give) */
    uint64_t tried[MAX_TRIES];      /* serials of the proxies tried */
    size_t ntried;
    char last_failure[96];
    Tunnel__V1__OpenResult last_result; /* of the last replica tried (its Opened, or ours) */
    uint64_t id, up, down;              /* payload bytes each way */
    char client_id[TN_ID_MAX + 1];      /* copied: the client's session may go before the flow */
    struct ident *ident;                /* counted against its identity's limits (limits.c) */
    char proxy_id[TN_ID_MAX + 1];
    char src[TN_ADDR_STRLEN], dst[TN_ADDR_STRLEN];
    ev_timer open_timer; /* the client's Open, then each proxy's Opened, must come in time */
    ev_tstamp started;
    struct tn_flow_metrics metrics;            /* bytes by route and proxy */
    struct tn_grpc_meter meter_up, meter_down; /* payload in what we forward */
    struct bw_gate *bw_up, *bw_down;           /* bandwidth limits once open; NULL: none */
};

static const struct tn_h2_stream_ops cs_ops, ps_ops;
static int prd_on_data(void *arg, const uint8_t *p, size_t n);
static int prd_on_frame(void *arg, Tunnel__V1__Frame *fr);

/* Lets go of the proxy stream (resetting it when |code| is not 0) and of its proxy. */
static void
unbind(struct rflow *f, uint32_t code)
{
    if (f->ps != NULL)
        tn_h2_stream_detach(f->ps, code);
    f->ps = NULL;
    f->ps_own = 0;
    if (f->proxy != NULL && f->wait.proxy == NULL)
        f->proxy->active--;
    proxy_unwait(&f->wait);
    f->proxy = NULL;
}

/* The audit line: one per flow (flow.end), also in the audit file when there is one. */
static void
rflow_log_end(const struct rflow *f, const char *reason)
{
    enum tn_log_level level = reason != NULL ? TN_LOG_INFO : TN_LOG_DEBUG;
    const char *proxy = f->proxy_id[0] != '\0' ? f->proxy_id : "-";
    char msg[512], fields[512];

    if (!tn_log_enabled(level) && !tn_log_audit_enabled())
        return;
    snprintf(msg, sizeof(msg), "client=%s %s -> %s proxy=%s up=%" PRIu64 " down=%" PRIu64 " %s",
             f->client_id, f->src, f->dst, proxy, f->up, f->down,
             reason != NULL ? reason : "closed");
    snprintf(fields, sizeof(fields),
             "client=%s src=%s dst=%s proxy=%s up=%" PRIu64 " down=%" PRIu64
             " duration_ms=%.0f result=%s reason=\"%s\"",
             f->client_id, f->src, f->dst, proxy, f->up, f->down,
             (ev_now(f->relay->loop) - f->started) * 1e3, tn_metric_flow_result(reason),
             reason != NULL ? reason : "closed");
    tn_log_event(level, "flow.end", f->id, msg, fields);
}

/* The Open came, or never will. */
static void
rflow_opened_or_gone(struct rflow *f)
{
    if (f->awaiting_in != NULL)
        f->awaiting_in->awaiting_open--;
    f->awaiting_in = NULL;
}

static void
rflow_free(struct rflow *f, const char *reason)
{
    rflow_opened_or_gone(f);
    ev_timer_stop(f->relay->loop, &f->open_timer);
    limits_release(f->ident);
    bw_gate_free(f->bw_up);
    bw_gate_free(f->bw_down);
    unbind(f, NGHTTP2_CANCEL);
    if (f->cs != NULL)
        tn_h2_stream_detach(f->cs, NGHTTP2_CANCEL);
    tn_metric_flow_ended(reason);
    if (f->open != NULL) {
        rflow_log_end(f, reason);
        tunnel__v1__open__free_unpacked(f->open, NULL);
    }
    tn_grpc_reader_fini(&f->crd);
    tn_grpc_reader_fini(&f->prd);
    tn_buf_fini(&f->replay);
    free(f);
}

/* Queues a message of ours on |s|; |own| counts its bytes so no window is returned for them. */
static int
send_frame(struct tn_h2_stream *s, size_t *own, const Tunnel__V1__Frame *fr)
{
    struct tn_buf *out = tn_h2_stream_out(s);
    size_t before = tn_buf_len(out);
    int r;

    if ((r = tn_grpc_append(out, &fr->base)) != 0)
        return r;
    *own += tn_buf_len(out) - before;
    tn_h2_stream_resume(s);
    return 0;
}

/* Answers the client with Opened{result} and ends its stream: the flow is over. */
static void
rflow_refuse(struct rflow *f, Tunnel__V1__OpenResult result, int status, const char *why)
{
    Tunnel__V1__Frame fr = TUNNEL__V1__FRAME__INIT;
    Tunnel__V1__Opened opened = TUNNEL__V1__OPENED__INIT;

    opened.result = result;
    opened.reason = TN_UNCONST(why);
    opened.proxy_id = f->proxy_id;
    fr.kind_case = TUNNEL__V1__FRAME__KIND_OPENED;
    fr.opened = &opened;
    if (f->cs != NULL) {
        send_frame(f->cs, &f->cs_own, &fr);
        tn_h2_stream_finish(f->cs, status, why);
        tn_h2_stream_detach(f->cs, 0); /* Opened and trailers still leave */
        f->cs = NULL;
    }
    rflow_free(f, why);
}

/* Gives the flow the Accept stream |ps| of its proxy.  Returns false when the flow failed (and
 * is freed). */
static bool
rflow_bind(struct rflow *f, struct tn_h2_stream *ps)
{
    Tunnel__V1__Frame fr = TUNNEL__V1__FRAME__INIT;
    Tunnel__V1__Open open = *f->open;
    struct tn_buf *out = tn_h2_stream_out(ps);
    size_t n = tn_buf_len(&f->replay), got;
    uint8_t *dst;

    f->ps = ps;
    f->proxy->active++;
    tn_h2_stream_bind(ps, &ps_ops, f);
    /* The proxy learns who the client is from the relay, never from the client. */
    open.client_id = f->client_id;
    fr.kind_case = TUNNEL__V1__FRAME__KIND_OPEN;
    fr.open = &open;
    if (send_frame(ps, &f->ps_own, &fr) != 0 ||
        (n > 0 && (dst = tn_buf_reserve(out, n, &got)) == NULL)) {
        rflow_free(f, "out of memory");
        return false;
    }
    if (n > 0) {
        tn_buf_copy(&f->replay, dst, n);
        tn_buf_commit(out, n);
        f->ps_own += f->replay_credited; /* sent to an earlier replica: window already back */
    }
    ev_timer_again(f->relay->loop, &f->open_timer);
    tn_h2_stream_resume(ps);
    if (f->is_client_ended)
        tn_h2_stream_finish(ps, TN_GRPC_OK, NULL);
    return true;
}

/* Points the flow's byte counters at its proxy and at the route it takes: the longest of the
 * proxy's networks holding the destination. */
static void
rflow_bind_metrics(struct rflow *f, const struct proxy *px, const struct tn_ip *dst)
{
    const struct tn_cidr *best = NULL;
    char net[TN_CIDR_STRLEN];
    size_t i;

    for (i = 0; i < px->nnets; i++) {
        if (tn_cidr_contains(&px->nets[i].addressed, dst) &&
            (best == NULL || px->nets[i].addressed.prefix > best->prefix))
            best = &px->nets[i].addressed;
    }
    tn_flow_metrics_bind(&f->metrics, best != NULL ? tn_cidr_format(best, net, sizeof(net)) : "-",
                         px->id);
}

/* Picks the next proxy for the flow, then binds one of its idle Accept streams or queues for
 * one.  Returns false when the flow was refused (and freed). */
static bool
rflow_dispatch(struct rflow *f)
{
    struct tn_h2_stream *ps;
    struct proxy *px = NULL;
    struct tn_ip dst;
    char why[160];

    tn_endpoint_ip(f->open->dst, &dst); /* checked by rflow_route */
    if (f->ntried < MAX_TRIES)
        px = route_pick(f->relay, &dst, f->id, f->tried, f->ntried);
    if (px == NULL) {
        if (f->ntried == 0)
            snprintf(why, sizeof(why), "no route");
        else
            snprintf(why, sizeof(why), "%zu %s failed, the last: %s", f->ntried,
                     f->ntried == 1 ? "proxy" : "proxies", f->last_failure);
        /* The last replica's result: what the application learns (refused, timeout...). */
        rflow_refuse(f,
                     f->ntried == 0 ? TUNNEL__V1__OPEN_RESULT__OPEN_RESULT_NO_ROUTE
                     : f->last_result != TUNNEL__V1__OPEN_RESULT__OPEN_RESULT_OK
                         ? f->last_result
                         : TUNNEL__V1__OPEN_RESULT__OPEN_RESULT_UNREACHABLE,
                     f->ntried == 0 ? TN_GRPC_NOT_FOUND : TN_GRPC_UNAVAILABLE, why);
        return false;
    }
    f->tried[f->ntried++] = px->serial;
    snprintf(f->proxy_id, sizeof(f->proxy_id), "%s", px->id);
    rflow_bind_metrics(f, px, &dst);
    px->flows++;
    f->proxy = px;
    if ((ps = proxy_take_stream(px)) != NULL)
        return rflow_bind(f, ps);
    proxy_wait(px, &f->wait);
    ev_timer_again(f->relay->loop, &f->open_timer);
    return true;
}

/* The attempt with the current proxy failed before Opened: try the next replica. */
static void
rflow_retry(struct rflow *f, Tunnel__V1__OpenResult result, const char *why)
{
    tn_log_debug("flow=%016" PRIx64 " proxy %s failed (%s): trying the next", f->id, f->proxy_id,
                 why);
    snprintf(f->last_failure, sizeof(f->last_failure), "%s: %s", f->proxy_id, why);
    f->last_result = result;
    unbind(f, NGHTTP2_CANCEL);
    tn_grpc_reader_fini(&f->prd);
    tn_grpc_reader_init(&f->prd, prd_on_data, prd_on_frame, f);
    f->prd.max_msg = (size_t)f->relay->cfg->limits.max_message;
    rflow_dispatch(f);
}

static void
rflow_on_stream(struct waiter *w, struct tn_h2_stream *ps)
{
    rflow_bind(tn_container_of(w, struct rflow, wait), ps);
}

/* Its proxy left while the flow waited: another replica may serve it. */
static void
rflow_reroute(struct waiter *w)
{
    struct rflow *f = tn_container_of(w, struct rflow, wait);

    f->proxy = NULL;
    snprintf(f->last_failure, sizeof(f->last_failure), "%s: left", f->proxy_id);
    f->last_result = TUNNEL__V1__OPEN_RESULT__OPEN_RESULT_UNREACHABLE;
    rflow_dispatch(f);
}

/* Checks the client's Open against the access rules and routes it.  Returns false when the
 * flow was refused. */
static bool
rflow_route(struct rflow *f)
{
    struct tn_ip dst;
    char why[160];
    int r;

    f->id = f->open->flow_id;
    open_endpoint_format(f->open->src, f->src, sizeof(f->src));
    open_endpoint_format(f->open->dst, f->dst, sizeof(f->dst));
    if ((r = open_check(f->relay->cfg, f->client_id, f->open, &dst)) == TN_ERR_PROTO) {
        rflow_refuse(f, TUNNEL__V1__OPEN_RESULT__OPEN_RESULT_FORBIDDEN, TN_GRPC_UNIMPLEMENTED,
                     "bad destination, protocol or service");
        return false;
    }
    if ((f->ident = limits_admit(f->relay, f->client_id, why, sizeof(why))) == NULL) {
        rflow_refuse(f, TUNNEL__V1__OPEN_RESULT__OPEN_RESULT_FORBIDDEN, TN_GRPC_RESOURCE_EXHAUSTED,
                     why);
        return false;
    }
    if (r != 0) {
        static struct tn_log_rate rate;

        tn_log_rated(&rate, TN_LOG_WARN,
                     "flow=%016" PRIx64 " client=%s %s -> %s: refused by the access rules", f->id,
                     f->client_id, f->src, f->dst);
        rflow_refuse(f, TUNNEL__V1__OPEN_RESULT__OPEN_RESULT_FORBIDDEN, TN_GRPC_PERMISSION_DENIED,
                     "forbidden by the relay's access rules");
        return false;
    }
    return rflow_dispatch(f);
}

static int
crd_on_frame(void *arg, Tunnel__V1__Frame *fr)
{
    struct rflow *f = arg;

    if (fr->kind_case != TUNNEL__V1__FRAME__KIND_OPEN)
        return TN_ERR_PROTO;
    f->open = fr->open;
    fr->open = NULL; /* transferred */
    rflow_opened_or_gone(f);
    fr->kind_case = TUNNEL__V1__FRAME__KIND__NOT_SET;
    return TN_GRPC_PAUSE;
}

static int
crd_on_data(void *arg, const uint8_t *p, size_t n)
{
    (void)arg;
    (void)p;
    (void)n;
    return TN_ERR_PROTO; /* Data before Open */
}

/* Counts the payload of |n| forwarded bytes: the application's bytes, without gRPC framing. */
static void
rflow_count(struct rflow *f, struct tn_grpc_meter *m, uint64_t *total, const uint8_t *p, size_t n,
            bool is_up)
{
    uint64_t k = tn_grpc_meter_feed(m, p, n);

    *total += k;
    tn_flow_metrics_add(&f->metrics, is_up ? k : 0, is_up ? 0 : k);
    if (f->proxy != NULL && f->wait.proxy == NULL)
        *(is_up ? &f->proxy->bytes_up : &f->proxy->bytes_down) += k;
}

/* Client bytes after Open: to the proxy stream, and kept for a retry until the flow is open. */
static int
forward_up(struct rflow *f, const uint8_t *p, size_t n)
{
    if (!f->is_open && tn_buf_append(&f->replay, p, n) != 0)
        return -ENOMEM;
    if (f->ps == NULL)
        return 0;
    if (tn_buf_append(tn_h2_stream_out(f->ps), p, n) != 0)
        return -ENOMEM;
    tn_h2_stream_resume(f->ps);
    return 0;
}

static int
cs_on_data(void *owner, const uint8_t *p, size_t n)
{
    struct rflow *f = owner;
    struct tn_h2_stream *cs = f->cs;
    size_t used = 0;
    int r;

    if (f->open == NULL) {
        r = tn_grpc_reader_feed(&f->crd, p, n, &used);
        tn_h2_stream_consume(cs, used); /* the Open is ours: its window goes back now */
        if (r != 0 && r != TN_GRPC_PAUSE) {
            static struct tn_log_rate rate;

            tn_log_rated(&rate, TN_LOG_WARN, "client %s: bad Open: %s%s", f->client_id,
                         tn_strerror(r), r == TN_ERR_LIMIT ? " (limits.max_message)" : "");
            rflow_free(f, "bad Open");
            return r;
        }
        if (f->open == NULL)
            return 0;
        p += used;
        n -= used;
        if (!rflow_route(f)) {
            tn_h2_stream_consume(cs, n); /* pipelined data of a refused flow */
            return 0;
        }
    }
    rflow_count(f, &f->meter_up, &f->up, p, n, true);
    if (n > 0 && forward_up(f, p, n) != 0) {
        rflow_free(f, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

static void
cs_on_end(void *owner, int grpc_status, const char *grpc_message)
{
    struct rflow *f = owner;

    (void)grpc_status;
    (void)grpc_message;
    if (f->open == NULL) { /* its Open was cut short: it can never come now */
        static struct tn_log_rate rate;

        tn_log_rated(&rate, TN_LOG_WARN, "client %s: stream ended before its Open was complete",
                     f->client_id);
        rflow_free(f, "truncated Open");
        return;
    }
    f->is_client_ended = true;
    if (f->ps != NULL)
        tn_h2_stream_finish(f->ps, TN_GRPC_OK, NULL);
}

/* Bytes went out on the client stream: give the proxy stream that much window back. */
static void
cs_on_sent(void *owner, size_t n)
{
    struct rflow *f = owner;
    size_t own = n < f->cs_own ? n : f->cs_own;

    f->cs_own -= own;
    if (f->bw_down != NULL)
        bw_pass(f->bw_down, n - own);
    else if (f->ps != NULL)
        tn_h2_stream_consume(f->ps, n - own);
}

static void
cs_on_close(void *owner, uint32_t error_code)
{
    struct rflow *f = owner;

    f->cs = NULL;
    rflow_opened_or_gone(f); /* its session may go now */
    if (error_code != 0 || f->ps == NULL)
        rflow_free(f, error_code == TN_H2_CONNECTION_ENDED ? "client connection ended"
                      : error_code != 0                    ? "reset by client"
                                                           : NULL);
}

static const struct tn_h2_stream_ops cs_ops = {
    .on_data = cs_on_data,
    .on_end = cs_on_end,
    .on_sent = cs_on_sent,
    .on_close = cs_on_close,
};

/* The proxy's Opened arrived: the flow is open, or this replica failed. */
static int
prd_on_frame(void *arg, Tunnel__V1__Frame *fr)
{
    struct rflow *f = arg;

    if (fr->kind_case != TUNNEL__V1__FRAME__KIND_OPENED)
        return TN_ERR_PROTO;
    if (fr->opened->result != TUNNEL__V1__OPEN_RESULT__OPEN_RESULT_OK) {
        snprintf(f->last_failure, sizeof(f->last_failure), "%.64s", fr->opened->reason);
        f->last_result = fr->opened->result;
        return TN_ERR_NO_ROUTE; /* the caller retries after the reader returns */
    }
    f->is_open = true;
    return TN_GRPC_PAUSE;
}

/* A bandwidth limit let bytes on: their window goes back to the sender. */
static void
rflow_release_up(void *arg, size_t n)
{
    struct rflow *f = arg;

    if (f->cs != NULL)
        tn_h2_stream_consume(f->cs, n);
}

static void
rflow_release_down(void *arg, size_t n)
{
    struct rflow *f = arg;

    if (f->ps != NULL)
        tn_h2_stream_consume(f->ps, n);
}

/* Passes the Opened to the client, naming the proxy by its certificate id, and puts the flow
 * under the bandwidth limits that match it.  Returns false when the flow failed (and is
 * freed). */
static bool
rflow_opened(struct rflow *f)
{
    Tunnel__V1__Frame fr = TUNNEL__V1__FRAME__INIT;
    Tunnel__V1__Opened opened = TUNNEL__V1__OPENED__INIT;
    struct tn_ip dst;
    struct bw_flow bw = { .client = f->client_id, .proxy = f->proxy_id, .dst = &dst };

    ev_timer_stop(f->relay->loop, &f->open_timer);
    tn_metric_observe(&tn_metric_flow_open, tn_metric_at(&tn_metric_flow_open, NULL, NULL),
                      ev_now(f->relay->loop) - f->started);
    tn_buf_fini(&f->replay); /* no retry from here on */
    tn_endpoint_ip(f->open->dst, &dst);
    f->bw_up = bw_gate_new(f->relay, &bw, true, rflow_release_up, f);
    f->bw_down = bw_gate_new(f->relay, &bw, false, rflow_release_down, f);
    if (f->bw_up != NULL && f->cs != NULL)
        tn_h2_stream_set_paced(f->cs);
    if (f->bw_down != NULL && f->ps != NULL)
        tn_h2_stream_set_paced(f->ps);
    opened.result = TUNNEL__V1__OPEN_RESULT__OPEN_RESULT_OK;
    opened.proxy_id = f->proxy_id;
    fr.kind_case = TUNNEL__V1__FRAME__KIND_OPENED;
    fr.opened = &opened;
    if (send_frame(f->cs, &f->cs_own, &fr) != 0) {
        rflow_free(f, "out of memory");
        return false;
    }
    return true;
}

static int
prd_on_data(void *arg, const uint8_t *p, size_t n)
{
    (void)arg;
    (void)p;
    (void)n;
    return TN_ERR_PROTO; /* Data before Opened */
}

static int
ps_on_data(void *owner, const uint8_t *p, size_t n)
{
    struct rflow *f = owner;
    struct tn_h2_stream *ps = f->ps;
    size_t used = 0;
    char why[96];
    int r;

    if (!f->is_open) {
        /* A failed attempt's stream is detached by the retry, which returns its window. */
        r = tn_grpc_reader_feed(&f->prd, p, n, &used);
        if (r == TN_ERR_NO_ROUTE) {
            snprintf(why, sizeof(why), "%s: %.80s", tn_open_result_name(f->last_result),
                     f->last_failure);
            rflow_retry(f, f->last_result, why);
            return 0;
        }
        if (r != 0 && r != TN_GRPC_PAUSE) {
            static struct tn_log_rate rate;

            tn_log_rated(&rate, TN_LOG_WARN, "proxy %s: bad Opened: %s", f->proxy_id,
                         tn_strerror(r));
            rflow_retry(f, TUNNEL__V1__OPEN_RESULT__OPEN_RESULT_UNREACHABLE, "bad Opened");
            return 0;
        }
        tn_h2_stream_consume(ps, used); /* the Opened is ours */
        if (!f->is_open)
            return 0;
        p += used;
        n -= used;
        if (f->cs != NULL && !rflow_opened(f))
            return 0;
    }
    if (f->cs == NULL || n == 0) {
        tn_h2_stream_consume(ps, n);
        return 0;
    }
    rflow_count(f, &f->meter_down, &f->down, p, n, false);
    if (tn_buf_append(tn_h2_stream_out(f->cs), p, n) != 0) {
        rflow_free(f, "out of memory");
        return -ENOMEM;
    }
    tn_h2_stream_resume(f->cs);
    return 0;
}

static void
ps_on_end(void *owner, int grpc_status, const char *grpc_message)
{
    struct rflow *f = owner;

    (void)grpc_status;
    (void)grpc_message;
    if (!f->is_open) {
        rflow_retry(f, TUNNEL__V1__OPEN_RESULT__OPEN_RESULT_UNREACHABLE,
                    "ended the flow before Opened");
        return;
    }
    if (f->cs != NULL)
        tn_h2_stream_finish(f->cs, TN_GRPC_OK, NULL);
}

/* Bytes went out on the proxy stream: give the client stream that much window back. */
static void
ps_on_sent(void *owner, size_t n)
{
    struct rflow *f = owner;
    size_t own = n < f->ps_own ? n : f->ps_own;

    f->ps_own -= own;
    if (!f->is_open)
        f->replay_credited += n - own;
    if (f->bw_up != NULL)
        bw_pass(f->bw_up, n - own);
    else if (f->cs != NULL)
        tn_h2_stream_consume(f->cs, n - own);
}

static void
ps_on_close(void *owner, uint32_t error_code)
{
    struct rflow *f = owner;

    f->ps = NULL; /* gone: unbind must not detach it */
    if (!f->is_open) {
        rflow_retry(f, TUNNEL__V1__OPEN_RESULT__OPEN_RESULT_UNREACHABLE,
                    error_code == TN_H2_CONNECTION_ENDED ? "its connection ended"
                    : error_code != 0                    ? "reset the flow"
                                                         : "closed the flow");
        return;
    }
    if (error_code != 0)
        rflow_free(f, error_code == TN_H2_CONNECTION_ENDED ? "proxy connection ended"
                                                           : "reset by proxy");
    else if (f->cs == NULL)
        rflow_free(f, NULL);
    else
        unbind(f, 0);
}

static const struct tn_h2_stream_ops ps_ops = {
    .on_data = ps_on_data,
    .on_end = ps_on_end,
    .on_sent = ps_on_sent,
    .on_close = ps_on_close,
};

/* The client's Open, then each attempt's Opened, must come within open_timeout: a client that
 * never sends Open costs nothing for long, and a proxy that never answers is passed over. */
static void
rflow_on_open_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct rflow *f = tn_container_of(w, struct rflow, open_timer);

    (void)loop;
    (void)revents;
    if (f->open == NULL) {
        static struct tn_log_rate rate;

        tn_log_rated(&rate, TN_LOG_WARN, "client %s: no Open in time", f->client_id);
        rflow_free(f, "no Open");
        return;
    }
    rflow_retry(f, TUNNEL__V1__OPEN_RESULT__OPEN_RESULT_TIMEOUT, "no answer in time");
}

void
rflow_start(struct session *s, struct tn_h2_stream *cs)
{
    struct rflow *f;

    /* A client sends its Open with its request: many streams without one are a peer holding
     * the relay's memory without being a flow that limits.flows_per_client counts. */
    if (s->awaiting_open >= AWAITING_OPEN_MAX) {
        static struct tn_log_rate rate;

        tn_log_rated(&rate, TN_LOG_WARN, "client %s: %u streams wait for their Open: refused",
                     session_id(s), s->awaiting_open);
        tn_h2_stream_finish(cs, TN_GRPC_RESOURCE_EXHAUSTED, "too many streams without an Open");
        tn_h2_stream_detach(cs, 0);
        return;
    }
    if ((f = calloc(1, sizeof(*f))) == NULL) {
        tn_h2_stream_finish(cs, TN_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        tn_h2_stream_detach(cs, 0);
        return;
    }
    f->awaiting_in = s;
    s->awaiting_open++;
    f->relay = s->relay;
    f->cs = cs;
    f->wait.bind = rflow_on_stream;
    f->wait.reroute = rflow_reroute;
    f->started = ev_now(f->relay->loop);
    tn_metric_flow_started();
    snprintf(f->client_id, sizeof(f->client_id), "%s", session_id(s));
    tn_buf_init(&f->replay);
    tn_grpc_reader_init(&f->crd, crd_on_data, crd_on_frame, f);
    tn_grpc_reader_init(&f->prd, prd_on_data, prd_on_frame, f);
    f->crd.max_msg = f->prd.max_msg = (size_t)f->relay->cfg->limits.max_message;
    ev_init(&f->open_timer, rflow_on_open_timeout);
    f->open_timer.repeat = (double)f->relay->cfg->open_timeout / 1e3;
    ev_timer_again(f->relay->loop, &f->open_timer);
    tn_h2_stream_bind(cs, &cs_ops, f);
}
