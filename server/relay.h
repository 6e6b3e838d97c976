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
struct ident;
struct rflow;
struct reg;

/* proxies: [{id, networks}]: what a proxy id may announce. */
struct proxy_rule {
    char *id;
    struct tn_cidr_list networks;
};

struct port_range {
    uint16_t lo, hi;
};

/* access: [{client, networks, ports}]: which client ids may reach what. */
struct access_rule {
    char *client; /* an id, or "*" */
    struct tn_cidr_list networks;
    char *ports; /* "22 80 8000-8100"; NULL: every port */
    struct port_range *ranges;
    size_t nranges;
};

/* revoked: [{serial, note}]: certificates refused although the CA signed them. */
struct revoked_rule {
    char *serial; /* hexadecimal, as certs-tool show prints it */
    char *note;   /* why (logged), or NULL */
};

/* limits: {...}: what one peer may make the relay hold or do (limits.c). */
struct relay_limits {
    int64_t handshake_timeout; /* ms a TLS handshake may take */
    int64_t max_header_list;   /* bytes of a request's headers */
    int64_t max_message;       /* bytes of a decoded message: Open, Opened, Hello */
    int64_t flows_per_client;  /* open flows of one client identity (0: no limit) */
    int64_t flow_rate;         /* new flows per second per client identity (0: no limit) */
    int64_t flow_burst;        /* ... of which this many at once (0: one second's worth) */
};

struct relay_config {
    char *listen_addr;
    struct tn_tls_conf tls;
    struct tn_log_conf log;
    int64_t stream_window, connection_window;
    int64_t max_streams;
    int64_t heartbeat_interval, heartbeat_timeout;
    int64_t open_timeout;
    int64_t drain_timeout;
    struct relay_limits limits;  /* limits.*: see limits.c */
    struct tn_conf_list proxies; /* of struct proxy_rule; empty: any proxy, any network */
    struct tn_conf_list access;  /* of struct access_rule; empty: every client, everywhere */
    struct tn_conf_list revoked; /* of struct revoked_rule */
    bool bootstrap;              /* tls.bootstrap: make a CA and our certificate if missing */
    char *state_dir;             /* tls.state_dir: where */
};

struct relay {
    struct ev_loop *loop;
    bool is_draining; /* SIGTERM: no new sessions or flows, open ones finish */
    ev_timer drain_deadline;
    uint64_t serials; /* the last proxy registration's serial */
    SSL_CTX *tls;
    struct relay_config *cfg;
    int argc; /* to read the configuration again on SIGHUP */
    char **argv;
    struct tn_h2_settings h2;
    struct tn_lpm *routes;    /* network as clients address it -> struct route */
    struct session *sessions; /* every live connection */
    struct tn_listener listener;
    struct ident **idents; /* per client identity: flows and rate (limits.c) */
};

struct session {
    struct relay *relay;
    struct tn_h2 *h2;
    struct session *prev, *next;
    bool is_draining;    /* GOAWAY sent or received: open flows finish, nothing new starts */
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
    uint64_t serial;     /* unique per registration: replicas may share an id */
    uint64_t hrw_key;    /* its rendezvous identity: hash of id and serial */
    struct reg *control; /* the Register stream's state */
    struct proxy_net *nets;
    size_t nnets;
    struct accept_slot *idle;         /* idle Accept streams */
    struct rflow *queue, *queue_tail; /* flows waiting for an Accept stream */
    uint64_t flows;                   /* flows sent to this proxy since it registered */
    uint64_t active;                  /* flows bound to it now */
    bool has_left;                    /* out of the routes: its session is going */
};

struct route {
    struct tn_cidr net;
    struct proxy **proxies; /* replicas serving |net| */
    size_t n;
};

/* session.c */
void session_accept(struct relay *relay, int fd);
void session_close_all(struct relay *relay);
/* Drains the sessions of proxies whose announcements the policy no longer allows. */
void session_recheck_policy(struct relay *relay);
/* Starts the graceful close of every session (GOAWAY; proxies' routes go).  The loop ends when
 * the last session is gone. */
void session_drain_all(struct relay *relay);
/* Takes an idle Accept stream of |px|, or returns NULL when none is idle. */
struct tn_h2_stream *proxy_take_stream(struct proxy *px);

/* route.c */
int route_add(struct relay *relay, struct proxy *px, const struct tn_cidr *net);
void route_remove(struct relay *relay, struct proxy *px, const struct tn_cidr *net);
/* The proxy for flow |flow_id| to |dst| among those whose serials |skip| does not hold: the
 * longest matching network that has one, and in it the replica of highest rendezvous weight.
 * NULL when none is left. */
struct proxy *route_pick(struct relay *relay, const struct tn_ip *dst, uint64_t flow_id,
                         const uint64_t *skip, size_t nskip);
void route_free_all(struct relay *relay);
/* Logs the routing table: networks, their proxies, flows. */
void route_dump(struct relay *relay);

/* policy.c */
/* Checks and prepares the policy of the configuration.  Returns 0 or TN_ERR_CONFIG (printed). */
int policy_init(struct relay_config *cfg);
void policy_fini(struct relay_config *cfg);
/* May proxy |id| announce |net| (as clients address it)?  Fills |why| when not. */
bool policy_may_announce(const struct relay_config *cfg, const char *id, const struct tn_cidr *net,
                         char *why, size_t whylen);
/* May client |id| reach |dst| port |port|? */
bool policy_may_reach(const struct relay_config *cfg, const char *id, const struct tn_ip *dst,
                      unsigned port);

/* bootstrap.c */
/* With tls.bootstrap and no TLS files given: points them into the state directory and, when
 * |may_create|, makes a CA and the relay's certificate there if missing (printing the CA
 * certificate and the certs-tool commands for a client and a proxy).  Returns 0 or an error
 * (logged). */
int bootstrap_apply(struct relay_config *cfg, bool may_create);

/* limits.c */
/* Admits a new flow of client |client_id| under limits.flows_per_client and limits.flow_rate:
 * returns its identity's entry (give it to limits_release when the flow ends), or NULL with
 * |why| filled (the refusal is logged, at most once a second per identity). */
struct ident *limits_admit(struct relay *relay, const char *client_id, char *why, size_t whylen);
void limits_release(struct ident *e);
void limits_free_all(struct relay *relay);

/* trust.c */
/* A TLS context for the relay from |cfg|: certificates, CA, CRL and revoked serials.  Returns
 * 0 or TN_ERR_TLS / TN_ERR_CONFIG (logged). */
int trust_ctx_new(SSL_CTX **out, const struct relay_config *cfg);
/* After a reload: closes the sessions whose peer's certificate |relay->tls| now revokes. */
void trust_recheck(struct relay *relay);

/* open.c: a client's Open, checked before it is routed (pure). */
/* The address of |ep|.  Returns 0, or TN_ERR_PROTO when it has none or no port. */
int open_endpoint_ip(const Tunnel__V1__Endpoint *ep, struct tn_ip *ip);
/* "1.2.3.4:80", "[::1]:80" or "?" into |buf|. */
void open_endpoint_format(const Tunnel__V1__Endpoint *ep, char *buf, size_t len);
/* Checks |open| of client |client_id|: a TCP flow to an address and port (TN_ERR_PROTO if not)
 * that the access rules of |cfg| let it reach (TN_ERR_AUTH if not).  Fills |dst|. */
int open_check(const struct relay_config *cfg, const char *client_id, const Tunnel__V1__Open *open,
               struct tn_ip *dst);

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
