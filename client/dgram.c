/* SPDX-License-Identifier: MIT */
/* UDP and ICMP echo: packets to the intercepted networks come from NFQUEUE (libmnl), are
 * dropped there once their payload is taken, and travel as one Data message per datagram on a
 * Connect stream per flow (keyed by protocol and addresses: the 5-tuple, or the echo
 * identifier).  Replies go back to the application through a raw socket, with the original
 * destination as their source.  A flow closes after udp_idle_timeout of silence. */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <libnetfilter_queue/linux_nfnetlink_queue.h>
#include <nghttp2/nghttp2.h>

#include "client.h"
#include "tn/addr.h"
#include "tn/buf.h"
#include "tn/busypoll.h"
#include "tn/err.h"
#include "tn/grpc.h"
#include "tn/hash.h"
#include "tn/log.h"
#include "tn/metrics.h"
#include "tn/pipe.h"
#include "tn/util.h"

#ifndef NF_DROP
#define NF_DROP 0 /* linux/netfilter.h, which clashes with netinet/in.h */
#endif

#define PATH_CONNECT  "/tunnel.v1.Relay/Connect"
#define NL_BUF        (TN_PKT_MAX + 4096) /* one queued packet and its attributes */
#define CTL_BUF       8192                /* a configuration or verdict message */
#define QUEUE_MAXLEN  4096                /* packets the kernel holds for us */
#define NL_RCVBUF     (8 * 1024 * 1024)
#define READS_PER_RUN 256       /* netlink reads per wakeup: other watchers get their turn */
#define OUT_HIGH      (1 << 20) /* a flow's queue toward the relay: drop above this */
#define CLOSE_GRACE   5.0       /* after END_STREAM, how long the peer has to end too */
#define WARN_EVERY    10.0      /* seconds between two warnings about dropped packets */

struct dflow {
    struct dflow *next;          /* in its bucket */
    struct dflow *older, *newer; /* by last_active, while in the table */
    struct client *c;
    struct tn_h2_stream *stream; /* NULL once closed */
    struct tn_grpc_reader grd;
    struct tn_pkt key; /* protocol, addresses, ports (payload unused) */
    uint64_t id;
    ev_timer idle;
    ev_tstamp last_active;
    bool is_closing; /* END_STREAM sent: no new datagram joins it */
    int depth;       /* > 0 while our stream callback runs */
    bool is_dead;    /* free once the callback returns */
    uint8_t *dgram;  /* a reply that came in several pieces */
    size_t dgram_len;
    uint64_t up, down, dropped;     /* datagrams */
    uint64_t bytes_up, bytes_down;  /* their payloads, for the metrics */
    struct tn_flow_metrics metrics; /* its network's and its proxy's series */
    char src[TN_ADDR_STRLEN], dst[TN_ADDR_STRLEN];
    char proxy[TN_ID_MAX + 1];
    const char *reason;
    char why[96];
};

static const char *
proto_name(int proto)
{
    return proto == IPPROTO_UDP ? "udp" : "icmp";
}

static bool
key_equal(const struct tn_pkt *a, const struct tn_pkt *b)
{
    return a->proto == b->proto && a->sport == b->sport && a->dport == b->dport &&
           a->src.family == b->src.family && memcmp(a->src.bytes, b->src.bytes, 16) == 0 &&
           memcmp(a->dst.bytes, b->dst.bytes, 16) == 0;
}

static struct dflow **
bucket_of(struct dgram *d, uint64_t id)
{
    return &d->buckets[id % DGRAM_BUCKETS];
}

static void
lru_unlink(struct dgram *d, struct dflow *f)
{
    if (f->older == NULL && d->oldest != f)
        return; /* not in the list */
    *(f->older != NULL ? &f->older->newer : &d->oldest) = f->newer;
    *(f->newer != NULL ? &f->newer->older : &d->newest) = f->older;
    f->older = f->newer = NULL;
}

/* |f| moved a datagram: it is the newest, the last to be ended at udp_max_flows. */
static void
dflow_touch(struct dflow *f)
{
    struct dgram *d = &f->c->dgram;

    f->last_active = ev_now(f->c->loop);
    if (d->newest == f)
        return;
    lru_unlink(d, f);
    f->older = d->newest;
    *(d->newest != NULL ? &d->newest->newer : &d->oldest) = f;
    d->newest = f;
}

static void
dflow_unlink(struct dflow *f)
{
    struct dflow **pp;

    for (pp = bucket_of(&f->c->dgram, f->id); *pp != NULL; pp = &(*pp)->next) {
        if (*pp == f) {
            *pp = f->next;
            f->c->dgram.nflows--;
            lru_unlink(&f->c->dgram, f);
            return;
        }
    }
}

static void
dflow_free(struct dflow *f)
{
    tn_log(f->reason != NULL ? TN_LOG_INFO : TN_LOG_DEBUG,
           "flow=%016" PRIx64 " %s -> %s %s proxy=%s datagrams up=%" PRIu64 " down=%" PRIu64
           " dropped=%" PRIu64 " %s",
           f->id, f->src, f->dst, proto_name(f->key.proto), f->proxy[0] != '\0' ? f->proxy : "-",
           f->up, f->down, f->dropped, f->reason != NULL ? f->reason : "closed");
    tn_flow_metrics_add(&f->metrics, f->bytes_up, f->bytes_down);
    tn_metric_flow_ended(f->reason);
    ev_timer_stop(f->c->loop, &f->idle);
    tn_grpc_reader_fini(&f->grd);
    free(f->dgram);
    free(f);
}

/* Ends |f| now: out of the table, stream reset.  |reason| NULL: a clean end. */
static void
dflow_end(struct dflow *f, const char *reason)
{
    if (f->is_dead)
        return;
    dflow_unlink(f);
    f->is_closing = true;
    f->is_dead = true;
    if (f->reason == NULL)
        f->reason = reason;
    if (f->stream != NULL) {
        tn_h2_stream_detach(f->stream, reason != NULL ? NGHTTP2_CANCEL : 0);
        f->stream = NULL;
    }
    if (f->depth == 0)
        dflow_free(f);
}

/* Idle: the flow ends with END_STREAM (the proxy then ends its side), and is reset if the
 * peer has not ended within CLOSE_GRACE. */
static void
dflow_on_idle(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct dflow *f = tn_container_of(w, struct dflow, idle);
    ev_tstamp left = f->last_active + (double)f->c->cfg->udp_idle_timeout / 1e3 - ev_now(loop);

    (void)revents;
    if (f->is_closing) {
        dflow_end(f, "the peer did not end the flow");
        return;
    }
    if (left > 0) {
        w->repeat = left;
        ev_timer_again(loop, w);
        return;
    }
    f->is_closing = true; /* a new datagram makes a new flow */
    if (f->stream == NULL) {
        dflow_end(f, NULL);
        return;
    }
    tn_h2_stream_finish(f->stream, 0, NULL);
    w->repeat = CLOSE_GRACE;
    ev_timer_again(loop, w);
}

/* The MTU of the route to |to| (an IPv4 address), or 0. */
static size_t
route_mtu4(const struct sockaddr *to, socklen_t tolen)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), mtu = 0;
    socklen_t len = sizeof(mtu);

    if (fd >= 0 &&
        (connect(fd, to, tolen) != 0 || getsockopt(fd, IPPROTO_IP, IP_MTU, &mtu, &len) != 0))
        mtu = 0;
    if (fd >= 0)
        close(fd);
    return mtu > 0 ? (size_t)mtu : 0;
}

/* Sends IPv4 packet |pkt| in fragments that fit the route's MTU: a header-included raw socket
 * does not fragment what is larger (EMSGSIZE), which in gateway mode is any reply larger than
 * the link to the host behind.  Returns 0 or -1. */
static int
inject_fragments(int fd, const uint8_t *pkt, size_t len, const struct sockaddr *to, socklen_t tolen)
{
    static uint8_t frag[TN_PKT_MAX];
    static unsigned id;
    size_t mtu = route_mtu4(to, tolen), off = 0, n;

    if (mtu == 0 || mtu >= len)
        return -1;
    id = (id + 1) & 0xffff;
    while ((n = tn_pkt_fragment4(pkt, len, mtu, id, &off, frag)) > 0) {
        if (sendto(fd, frag, n, 0, to, tolen) < 0)
            return -1;
    }
    return 0;
}

/* A reply for the application: an IP packet from the original destination, injected. */
static void
dflow_inject(struct dflow *f, const uint8_t *data, size_t n)
{
    static uint8_t pkt[TN_PKT_MAX];
    struct sockaddr_storage ss;
    socklen_t sslen;
    size_t len;
    int fd = f->key.src.family == AF_INET ? f->c->dgram.raw4 : f->c->dgram.raw6;

    if (f->key.proto == IPPROTO_UDP)
        len = tn_pkt_build_udp(pkt, sizeof(pkt), &f->key.dst, f->key.dport, &f->key.src,
                               f->key.sport, data, n);
    else if (n > 0 && data[0] == (f->key.proto == IPPROTO_ICMP ? 0 : 129)) /* echo replies only */
        len = tn_pkt_build_icmp(pkt, sizeof(pkt), &f->key.dst, &f->key.src, data, n, f->key.sport);
    else
        len = 0;
    sslen = tn_addr_from_ip(&f->key.src, 0, &ss);
    if (len == 0 || fd < 0 ||
        (sendto(fd, pkt, len, 0, (struct sockaddr *)&ss, sslen) < 0 &&
         (errno != EMSGSIZE || f->key.src.family != AF_INET ||
          inject_fragments(fd, pkt, len, (struct sockaddr *)&ss, sslen) != 0))) {
        f->dropped++;
        return;
    }
    f->down++;
    f->bytes_down += n;
}

static int
grpc_on_data(void *arg, const uint8_t *data, size_t n)
{
    struct dflow *f = arg;
    uint8_t *grown;

    if (f->is_dead)
        return TN_GRPC_PAUSE;
    if (!f->grd.is_msg_end || f->dgram_len > 0) {
        if (f->dgram_len + n > 65535) {
            f->reason = "datagram too large";
            return TN_ERR_LIMIT;
        }
        if ((grown = realloc(f->dgram, f->dgram_len + n)) == NULL)
            return -ENOMEM;
        f->dgram = grown;
        memcpy(f->dgram + f->dgram_len, data, n);
        f->dgram_len += n;
        if (!f->grd.is_msg_end)
            return 0;
        data = f->dgram;
        n = f->dgram_len;
        f->dgram_len = 0;
    }
    dflow_inject(f, data, n);
    return 0;
}

static int
grpc_on_frame(void *arg, Tunnel__V1__Frame *fr)
{
    struct dflow *f = arg;
    const Tunnel__V1__Opened *o = fr->opened;

    if (fr->kind_case != TUNNEL__V1__FRAME__KIND_OPENED) {
        f->reason = "unexpected message from relay";
        return TN_ERR_PROTO;
    }
    snprintf(f->proxy, sizeof(f->proxy), "%s", o->proxy_id);
    if (f->proxy[0] != '\0')
        tn_flow_metrics_bind(&f->metrics, NULL, f->proxy);
    if (o->result != TUNNEL__V1__OPEN_RESULT__OPEN_RESULT_OK) {
        snprintf(f->why, sizeof(f->why), "%s%s%.64s", tn_open_result_name(o->result),
                 o->reason[0] != '\0' ? ": " : "", o->reason);
        f->reason = f->why;
        return TN_ERR_NO_ROUTE;
    }
    return 0;
}

static int
stream_on_data(void *owner, const uint8_t *data, size_t n)
{
    struct dflow *f = owner;
    size_t used;
    int r;

    if (!f->is_dead)
        dflow_touch(f);
    f->depth++;
    r = tn_grpc_reader_feed(&f->grd, data, n, &used);
    f->depth--;
    if (f->stream != NULL)
        tn_h2_stream_consume(f->stream, n); /* replies never wait: they are sent or dropped */
    if (f->is_dead) {                       /* ended while the reader ran: detached already */
        dflow_free(f);
        return 0;
    }
    if (r == TN_ERR_NO_ROUTE && f->stream != NULL) {
        /* Refused: the flow stays, without a stream, so that its next datagrams are dropped
         * here rather than each asking again; it ends when idle, and the next one retries. */
        tn_h2_stream_detach(f->stream, NGHTTP2_CANCEL);
        f->stream = NULL;
        return 0;
    }
    if (r != 0 && r != TN_GRPC_PAUSE) {
        dflow_end(f, f->reason != NULL ? f->reason : "bad message from relay");
        return r;
    }
    return 0;
}

static void
stream_on_end(void *owner, int grpc_status, const char *grpc_message)
{
    struct dflow *f = owner;

    if (grpc_status != 0) {
        snprintf(f->why, sizeof(f->why), "ended by the relay: %.64s",
                 grpc_message != NULL ? grpc_message : "");
        dflow_end(f, f->reason != NULL ? f->reason : f->why);
        return;
    }
    if (!f->is_closing) { /* the peer ended: so do we, the flow is over */
        f->is_closing = true;
        tn_h2_stream_finish(f->stream, 0, NULL);
    }
}

static void
stream_on_sent(void *owner, size_t n)
{
    (void)owner;
    (void)n;
}

static void
stream_on_close(void *owner, uint32_t error_code)
{
    struct dflow *f = owner;

    f->stream = NULL;
    dflow_end(f, error_code == 0                        ? NULL
                 : f->reason != NULL                    ? f->reason
                 : error_code == TN_H2_CONNECTION_ENDED ? "relay connection ended"
                                                        : "reset by relay");
}

static const struct tn_h2_stream_ops dflow_stream_ops = {
    .on_data = stream_on_data,
    .on_end = stream_on_end,
    .on_sent = stream_on_sent,
    .on_close = stream_on_close,
};

/* A new flow for |pkt|: its stream and Open.  Returns NULL when it cannot be made. */
static struct dflow *
dflow_new(struct client *c, const struct tn_pkt *pkt, uint64_t id)
{
    Tunnel__V1__Frame fr = TUNNEL__V1__FRAME__INIT;
    Tunnel__V1__Open open = TUNNEL__V1__OPEN__INIT;
    Tunnel__V1__Endpoint esrc = TUNNEL__V1__ENDPOINT__INIT, edst = TUNNEL__V1__ENDPOINT__INIT;
    struct sockaddr_storage ss;
    struct dflow *f;

    if (c->link.h2 == NULL || !c->link.is_up || c->is_draining ||
        (f = calloc(1, sizeof(*f))) == NULL)
        return NULL;
    f->c = c;
    f->key = *pkt;
    f->key.payload = NULL;
    f->key.len = 0;
    f->id = id;
    tn_grpc_reader_init(&f->grd, grpc_on_data, grpc_on_frame, f);
    tn_addr_from_ip(&pkt->src, pkt->sport, &ss);
    tn_addr_format((struct sockaddr *)&ss, f->src, sizeof(f->src));
    tn_addr_from_ip(&pkt->dst, pkt->dport, &ss);
    tn_addr_format((struct sockaddr *)&ss, f->dst, sizeof(f->dst));
    if ((f->stream = tn_h2_stream_open(c->link.h2, PATH_CONNECT, &dflow_stream_ops, f)) == NULL) {
        free(f);
        return NULL;
    }
    tn_endpoint_set(&esrc, &f->key.src, pkt->sport);
    tn_endpoint_set(&edst, &f->key.dst, pkt->dport);
    open.flow_id = id;
    open.protocol = pkt->proto == IPPROTO_UDP ? TUNNEL__V1__PROTOCOL__PROTOCOL_UDP
                                              : TUNNEL__V1__PROTOCOL__PROTOCOL_ICMP;
    open.src = &esrc;
    open.dst = &edst;
    fr.kind_case = TUNNEL__V1__FRAME__KIND_OPEN;
    fr.open = &open;
    if (tn_grpc_append(tn_h2_stream_out(f->stream), &fr.base) != 0) {
        tn_h2_stream_detach(f->stream, NGHTTP2_CANCEL);
        free(f);
        return NULL;
    }
    f->next = *bucket_of(&c->dgram, id);
    *bucket_of(&c->dgram, id) = f;
    c->dgram.nflows++;
    c->dgram.flows++;
    tn_metric_flow_started();
    client_bind_route(c, &f->metrics, &pkt->dst);
    dflow_touch(f);
    if (c->dgram.nflows > (uint64_t)c->cfg->udp_max_flows) {
        static struct tn_log_rate rate;

        tn_log_rated(&rate, TN_LOG_WARN,
                     "%" PRId64 " UDP and ICMP flows open (udp_max_flows): the one silent longest "
                     "ends for a new one",
                     c->cfg->udp_max_flows);
        dflow_end(c->dgram.oldest, "ended for a newer flow (udp_max_flows)");
    }
    ev_init(&f->idle, dflow_on_idle);
    f->idle.repeat = (double)c->cfg->udp_idle_timeout / 1e3;
    ev_timer_again(c->loop, &f->idle);
    tn_log_debug("flow=%016" PRIx64 " %s -> %s %s: open", id, f->src, f->dst,
                 proto_name(pkt->proto));
    return f;
}

/* One datagram of |f|, as one Data message. */
static void
dflow_send(struct dflow *f, const uint8_t *data, size_t n)
{
    struct tn_buf *out;
    size_t avail;
    uint8_t *dst;

    if (f->stream == NULL) { /* refused: dropped until the flow is idle */
        f->dropped++;
        return;
    }
    out = tn_h2_stream_out(f->stream);
    if (tn_buf_len(out) > OUT_HIGH ||
        (dst = tn_buf_reserve(out, TN_GRPC_DATA_PFX + n, &avail)) == NULL) {
        f->dropped++;
        return;
    }
    tn_grpc_data_prefix(dst, n);
    memcpy(dst + TN_GRPC_DATA_PFX, data, n);
    tn_buf_commit(out, TN_GRPC_DATA_PFX + n);
    tn_h2_stream_resume(f->stream);
    f->up++;
    f->bytes_up += n;
    dflow_touch(f);
}

/* Says that a packet was not carried (the caller counted it), at most once per WARN_EVERY for
 * each |kind| (a TN_PKT_* reason, or TN_PKT_OK for "no relay connection"). */
static void
dgram_warn(struct dgram *d, struct ev_loop *loop, int kind, const char *why)
{
    uint64_t total = d->no_relay;
    int i;

    if (d->last_warn[kind] > 0 && ev_now(loop) - d->last_warn[kind] < WARN_EVERY)
        return;
    d->last_warn[kind] = ev_now(loop);
    for (i = 1; i < TN_PKT_NREASONS; i++)
        total += d->rejected[i];
    tn_log_warnx("packet not carried (%s); so far: %" PRIu64 " (truncated %" PRIu64
                 ", bad header %" PRIu64 ", bad length %" PRIu64 ", fragment %" PRIu64
                 ", unsupported %" PRIu64 ", no relay %" PRIu64 ")",
                 why, total, d->rejected[TN_PKT_TRUNCATED], d->rejected[TN_PKT_BAD_HEADER],
                 d->rejected[TN_PKT_BAD_LENGTH], d->rejected[TN_PKT_FRAGMENT],
                 d->rejected[TN_PKT_UNSUPPORTED], d->no_relay);
}

/* One packet from the queue: carried or counted; its verdict is DROP either way. */
static void
dgram_packet(struct client *c, const uint8_t *p, size_t n)
{
    struct dgram *d = &c->dgram;
    struct tn_pkt pkt;
    struct dflow *f;
    uint64_t id;
    int r;

    if ((r = tn_pkt_parse(p, n, &pkt)) != TN_PKT_OK) {
        d->rejected[r]++;
        dgram_warn(d, c->loop, r, tn_pkt_reason(r));
        return;
    }
    id = tn_flow_id(pkt.proto, &pkt.src, pkt.sport, &pkt.dst, pkt.dport);
    for (f = *bucket_of(d, id); f != NULL && (f->is_closing || !key_equal(&f->key, &pkt));
         f = f->next)
        ;
    if (f == NULL && (f = dflow_new(c, &pkt, id)) == NULL) {
        d->no_relay++;
        dgram_warn(d, c->loop, TN_PKT_OK, "no relay connection");
        return;
    }
    dflow_send(f, pkt.payload, pkt.len);
}

static int
queue_on_msg(const struct nlmsghdr *nlh, void *arg)
{
    struct client *c = arg;
    struct nlattr *attr[NFQA_MAX + 1] = { 0 };
    const struct nfqnl_msg_packet_hdr *ph;

    if (nfq_nlmsg_parse(nlh, attr) < 0 || attr[NFQA_PACKET_HDR] == NULL)
        return MNL_CB_OK;
    ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
    c->dgram.last_id = ntohl(ph->packet_id);
    c->dgram.has_verdict = true;
    if (attr[NFQA_CAP_LEN] != NULL) { /* cut by the kernel, which copies at most 65531 bytes */
        char why[80];

        snprintf(why, sizeof(why), "%" PRIu32 " bytes, more than a netfilter queue carries",
                 ntohl(mnl_attr_get_u32(attr[NFQA_CAP_LEN])));
        c->dgram.rejected[TN_PKT_TRUNCATED]++;
        dgram_warn(&c->dgram, c->loop, TN_PKT_TRUNCATED, why);
        return MNL_CB_OK;
    }
    if (attr[NFQA_PAYLOAD] != NULL)
        dgram_packet(c, mnl_attr_get_payload(attr[NFQA_PAYLOAD]),
                     mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]));
    return MNL_CB_OK;
}

/* Sends one configuration or verdict message.  Returns 0 or -errno. */
static int
queue_send(struct dgram *d, struct nlmsghdr *nlh)
{
    return mnl_socket_sendto(d->nl, nlh, nlh->nlmsg_len) < 0 ? -errno : 0;
}

/* DROP for every packet up to the last one read: one batch verdict per read. */
static void
queue_verdict(struct dgram *d)
{
    char buf[CTL_BUF];
    struct nlmsghdr *nlh;

    if (!d->has_verdict)
        return;
    nlh = nfq_nlmsg_put(buf, NFQNL_MSG_VERDICT_BATCH, d->queue);
    nfq_nlmsg_verdict_put(nlh, (int)d->last_id, NF_DROP);
    if (queue_send(d, nlh) != 0)
        tn_log_warn("NFQUEUE verdict");
    d->has_verdict = false;
}

static void
queue_on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    struct client *c = w->data;
    static char buf[NL_BUF];
    ssize_t n;
    int i;

    (void)revents;
    for (i = 0; i < READS_PER_RUN; i++) {
        if ((n = mnl_socket_recvfrom(c->dgram.nl, buf, sizeof(buf))) < 0) {
            if (errno == ENOBUFS) { /* the kernel dropped some: they are lost, as UDP may be */
                c->dgram.overruns++;
                continue;
            }
            if (errno != EAGAIN && errno != EINTR)
                tn_log_warn("NFQUEUE read");
            break;
        }
        tn_busypoll_note(loop);
        mnl_cb_run(buf, (size_t)n, 0, c->dgram.portid, queue_on_msg, c);
        queue_verdict(&c->dgram);
    }
}

/* A raw socket for replies; our mark keeps them out of our own queue.  Returns it or -1. */
static int
raw_open(int family, unsigned mark)
{
    int fd = socket(family, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_RAW), one = 1;

    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) < 0 ||
        (family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, 36 /* IPV6_HDRINCL */, &one, sizeof(one)) < 0)) {
        close(fd);
        return -1;
    }
    return fd;
}

int
dgram_start(struct client *c, unsigned queue)
{
    struct dgram *d = &c->dgram;
    char buf[CTL_BUF];
    struct nlmsghdr *nlh;
    int size = NL_RCVBUF, one = 1;

    d->queue = queue;
    d->raw4 = d->raw6 = -1;
    if ((d->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_NONBLOCK | SOCK_CLOEXEC)) == NULL ||
        mnl_socket_bind(d->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
        tn_log_warn("NFQUEUE: netlink socket (needs CAP_NET_ADMIN; --udp=false to do without)");
        goto fail;
    }
    d->portid = mnl_socket_get_portid(d->nl);
    setsockopt(mnl_socket_get_fd(d->nl), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size));
    setsockopt(mnl_socket_get_fd(d->nl), SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof(one));
    nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, queue);
    nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_BIND); /* the queue takes both families */
    if (queue_send(d, nlh) != 0) {
        tn_log_warn("NFQUEUE: binding queue %u (another program holds it? see --nfqueue)", queue);
        goto fail;
    }
    nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, queue);
    nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, 0xffff);
    nfq_nlmsg_cfg_put_qmaxlen(nlh, QUEUE_MAXLEN);
    if (queue_send(d, nlh) != 0) {
        tn_log_warn("NFQUEUE: configuring queue %u", queue);
        goto fail;
    }
    if ((d->raw4 = raw_open(AF_INET, CLIENT_MARK)) < 0) {
        tn_log_warn("raw socket for UDP and ICMP replies (needs CAP_NET_RAW)");
        goto fail;
    }
    d->raw6 = raw_open(AF_INET6, CLIENT_MARK); /* optional: IPv6 may be off */
    ev_io_init(&d->io, queue_on_readable, mnl_socket_get_fd(d->nl), EV_READ);
    d->io.data = c;
    ev_io_start(c->loop, &d->io);
    return 0;
fail:
    dgram_stop(c);
    return TN_ERR_CONFIG;
}

void
dgram_stop(struct client *c)
{
    struct dgram *d = &c->dgram;
    struct dflow *f;
    size_t i;

    for (i = 0; i < DGRAM_BUCKETS; i++) {
        while ((f = d->buckets[i]) != NULL)
            dflow_end(f, "client stopping");
    }
    if (d->nl != NULL) {
        ev_io_stop(c->loop, &d->io);
        mnl_socket_close(d->nl);
        d->nl = NULL;
    }
    if (d->raw4 >= 0)
        close(d->raw4);
    if (d->raw6 >= 0)
        close(d->raw6);
    d->raw4 = d->raw6 = -1;
}
