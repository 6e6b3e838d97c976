/* SPDX-License-Identifier: MIT */
/* The relay's internal types: sessions (one TLS connection each), registered proxies, the
 * routing table, and flows joining a client's Connect stream to a proxy's Accept stream. */
#ifndef RELAY_H
#define RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "tn/buf.h"
#include "tn/cidr.h"
#include "tn/grpc.h"
#include "tn/h2.h"
#include "tn/listener.h"
#include "tn/opts.h"
#include "tn/tls.h"

struct ev_loop;
struct tn_lpm;
struct rflow;

struct relay_config {
    char *listen_addr;
    struct tn_tls_conf tls;
    struct tn_log_conf log;
    int64_t stream_window, connection_window;
    int64_t max_streams;
};

struct relay {
    struct ev_loop *loop;
    SSL_CTX *tls;
    const struct relay_config *cfg;
    struct tn_h2_settings h2;
    struct tn_lpm *routes;    /* network as clients address it -> struct route */
    struct session *sessions; /* every live connection */
    struct tn_listener listener;
};

struct session {
    struct relay *relay;
    struct tn_h2 *h2;
    struct session *prev, *next;
    struct proxy *proxy; /* set once a proxy registered on this session */
};

/* An Accept stream of a proxy, waiting for a flow. */
struct accept_slot {
    struct proxy *proxy;
    struct tn_h2_stream *stream;
    struct accept_slot *next, *prev;
};

struct proxy_net {
    struct tn_cidr addressed; /* what clients use: the virtual range, or the real one */
    struct tn_cidr real;
};

struct proxy {
    struct session *session;
    char id[TN_ID_MAX + 1];
    struct tn_h2_stream *control; /* the Register stream */
    struct proxy_net *nets;
    size_t nnets;
    struct accept_slot *idle;         /* idle Accept streams */
    struct rflow *queue, *queue_tail; /* flows waiting for an Accept stream */
    uint64_t flows;                   /* flows bound to this proxy since it registered */
};

struct route {
    struct tn_cidr net;
    struct proxy **proxies; /* replicas serving |net| */
    size_t n;
};

/* session.c */
void session_accept(struct relay *relay, int fd);
void session_close_all(struct relay *relay);
/* Takes an idle Accept stream of |px|, or returns NULL when none is idle. */
struct tn_h2_stream *proxy_take_stream(struct proxy *px);

/* route.c */
int route_add(struct relay *relay, struct proxy *px, const struct tn_cidr *net);
void route_remove(struct relay *relay, struct proxy *px, const struct tn_cidr *net);
/* The proxy that serves |dst| for flow |flow_id|: highest rendezvous weight among the
 * replicas of the longest matching network, or NULL. */
struct proxy *route_pick(struct relay *relay, const struct tn_ip *dst, uint64_t flow_id);
void route_free_all(struct relay *relay);

/* flow.c */
/* Takes a client's Connect stream. */
void rflow_start(struct session *s, struct tn_h2_stream *stream);
/* Gives a queued flow the Accept stream |stream| of its proxy.  Returns false when the flow
 * failed (and is freed). */
bool rflow_bind(struct rflow *f, struct tn_h2_stream *stream);
/* Routes again a queued flow whose proxy went away (another replica may serve it), or refuses
 * it. */
void rflow_reroute(struct rflow *f);
struct rflow *rflow_queue_next(struct rflow *f);

#endif
