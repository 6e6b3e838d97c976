/* SPDX-License-Identifier: MIT */
/* The relay's internal types: sessions (one TLS connection each), registered proxies, the
 * routing table, and flows joining a client's Connect stream to a proxy's Accept stream. */
#ifndef RELAY_H
#define RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "tn/admin.h"
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
struct exposure;
struct head;
struct tn_metric;
struct bw_bucket;
struct bw_gate;

struct port_range {
    uint16_t lo, hi;
};

/* "22 80 8000-8100", parsed. */
struct port_set {
    struct port_range *v;
    size_t n;
};

/* proxies: [{id, networks, public_ports}]: what a proxy id may announce and publish. */
struct proxy_rule {
    char *id;
    struct tn_cidr_list networks;
    char *public_ports; /* NULL: any port of the relay's public_ports */
    struct port_set ports;
};

/* tokens: [{proxy, token}]: a proxy without a certificate authenticates with a secret. */
struct token_rule {
    char *proxy;
    char *token;
};

/* https_certs: [{cert_file, key_file}]: the names the HTTPS routing port answers for. */
struct https_cert {
    char *cert_file;
    char *key_file;
};

/* services: [{proxy, name, public_port, target}]: a public port the relay's own configuration
 * gives a proxy, to a target inside the proxy's networks. */
struct service_rule {
    char *proxy;
    char *name;
    int64_t public_port;
    char *target;
};

/* access: [{client, networks, ports}]: which client ids may reach what. */
struct access_rule {
    char *client; /* an id, or "*" */
    struct tn_cidr_list networks;
    char *ports; /* "22 80 8000-8100"; NULL: every port */
    struct port_set port_set;
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

/* limits.bandwidth: [{client, proxy, service, route, up, down, burst}]: token buckets in bytes
 * per second, one per rule and direction, shared by every flow the rule matches (all the
 * matchers it names must match).  A flow waits for every rule that matches it. */
struct bw_rule {
    char *client;         /* a client id; "*": each client its own bucket */
    char *proxy;          /* a proxy id: its client flows and its public connections; "*" too */
    char *service;        /* a public port's service name; "*" too */
    struct tn_cidr route; /* the destination network; family 0 when not given */
    int64_t up, down;     /* bytes per second toward the proxy, toward the client; 0: no limit */
    int64_t burst;        /* 0: a tenth of a second at the rate, at least 64 KiB */
};

struct relay_config {
    char *listen_addr;
    struct tn_tls_conf tls;
    struct tn_log_conf log;
    int64_t stream_window, connection_window;
    int64_t busy_poll_us;
    int64_t max_streams;
    int64_t heartbeat_interval, heartbeat_timeout;
    int64_t open_timeout;
    int64_t drain_timeout;
    struct relay_limits limits;      /* limits.*: see limits.c */
    struct tn_conf_list proxies;     /* of struct proxy_rule; empty: any proxy, any network */
    struct tn_conf_list access;      /* of struct access_rule; empty: every client, everywhere */
    struct tn_conf_list revoked;     /* of struct revoked_rule */
    char *public_addr;               /* where public ports listen (host only) */
    char *public_ports;              /* the range proxies may publish on; NULL: none */
    char *http_listen;               /* HTTP requests routed to services by Host; NULL: off */
    char *https_listen;              /* the same over TLS, routed by SNI; NULL: off */
    struct tn_conf_list https_certs; /* of struct https_cert */
    struct port_set public_set;
    int64_t public_grace;          /* a port outlives its last proxy this long (ms) */
    struct tn_conf_list services;  /* of struct service_rule */
    struct tn_conf_list tokens;    /* of struct token_rule */
    char *admin_listen;            /* NULL: no admin listener */
    char *audit_output;            /* NULL: flow.end goes to the log only */
    char *admin_token;             /* the management API's bearer token; NULL: API off */
    bool bootstrap;                /* tls.bootstrap: make a CA and our certificate if missing */
    char *state_dir;               /* tls.state_dir: where */
    struct tn_conf_list bandwidth; /* of struct bw_rule */
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
    struct tn_lpm *routes;             /* network as clients address it -> struct route */
    struct session *sessions;          /* every live connection */
    struct exposure *exposures;        /* every public port, open or in its grace period */
    struct head *heads;                /* new connections whose first bytes are awaited (http.c) */
    struct tn_listener http_listener;  /* http_listen: HTTP requests routed by Host */
    struct tn_listener https_listener; /* https_listen: the same over TLS, by SNI */
    SSL_CTX **https_tls;               /* one per https_certs entry */
    size_t nhttps_tls;
    struct bw_bucket *buckets; /* bandwidth limits that some open flow is under */
    struct tn_listener listener;
    struct tn_admin admin; /* obs.c: metrics, status API, dashboard */
    ev_tstamp started;
    ev_timer sample;       /* obs.c: proxies' throughput */
    struct ident **idents; /* per client identity: flows and rate (limits.c) */
};

struct session {
    struct relay *relay;
    struct tn_h2 *h2;
    struct session *prev, *next;
    bool is_draining;       /* GOAWAY sent or received: open flows finish, nothing new starts */
    struct proxy *proxy;    /* set once a proxy registered on this session */
    bool is_registering;    /* a Register stream is gathering its Hello: one at a time */
    unsigned awaiting_open; /* Connect streams whose Open has not come (flow.c) */
    char token_id[TN_ID_MAX + 1]; /* the proxy id of a token, for a peer without certificate */
    char *token;                  /* that token, to check it again on SIGHUP */
    ev_timer register_deadline;   /* a peer without certificate: register by token, or go */
};

/* Something waiting for an idle Accept stream of a proxy: a client's flow or a public
 * connection. */
struct waiter {
    struct waiter *next;
    struct proxy *proxy; /* the proxy it waits on, NULL when not waiting */
    /* A stream of |proxy| is free: the waiter takes it (it is no longer waiting). */
    void (*bind)(struct waiter *w, struct tn_h2_stream *stream);
    /* |proxy| left before a stream came: route again, or give up. */
    void (*reroute)(struct waiter *w);
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
    struct accept_slot *idle;          /* idle Accept streams */
    struct waiter *queue, *queue_tail; /* waiting for an Accept stream, oldest first */
    struct exposure **exposures;       /* the public ports it serves */
    size_t nexposures;
    uint64_t flows;                /* flows sent to this proxy since it registered */
    uint64_t active;               /* flows bound to it now */
    uint64_t bytes_up, bytes_down; /* payload of its flows (obs.c: throughput from these) */
    uint64_t sampled_up, sampled_down;
    double rate_up, rate_down; /* bytes/s over the last sampling period */
    bool has_left;             /* out of the routes: its session is going */
};

struct route {
    struct tn_cidr net;
    struct proxy **proxies; /* replicas serving |net| */
    size_t n;
};

/* http.c */
/* Takes a new connection on the tunnel port: TLS goes to session_start, plain HTTP gets the
 * health check. */
void session_accept(struct relay *relay, int fd);
/* Takes a new connection on an HTTP routing port (|is_tls|: the HTTPS one). */
void http_route_accept(struct relay *relay, int fd, bool is_tls);
/* Loads https_certs.  Returns 0 or an error (logged). */
int https_init(struct relay *relay);
/* On reload: loads |fresh|'s https_certs into |*out| (|*n|) while the HTTPS port stays open
 * (else sets nothing).  Returns 0 or an error (logged).  https_swap then puts them in place of
 * the old ones. */
int https_reload(struct relay *relay, const struct relay_config *fresh, SSL_CTX ***out, size_t *n);
void https_swap(struct relay *relay, SSL_CTX **v, size_t n);
void https_fini(struct relay *relay);
/* The answer to an HTTP/1.1 request on the tunnel port (GET /healthz: 200, or 503 while
 * draining; anything else: 404). */
const char *health_answer(const struct relay *relay, const char *request);
/* The Host of request head |head|, lowercase and without its port.  Returns 0 or -1. */
int http_host_of(const char *head, char *host, size_t len);
void http_close_all(struct relay *relay);

/* session.c */
/* Starts the TLS session of a new connection. */
void session_start(struct relay *relay, int fd);
void session_close_all(struct relay *relay);
/* Drains the sessions of proxies whose announcements the policy no longer allows. */
void session_recheck_policy(struct relay *relay);
/* Starts the graceful close of every session (GOAWAY; proxies' routes go).  The loop ends when
 * the last session is gone. */
void session_drain_all(struct relay *relay);
/* Closes at once every session of identity |id| (client or proxy).  Returns how many. */
size_t session_close_identity(struct relay *relay, const char *id, const char *reason);
/* Takes an idle Accept stream of |px|, or returns NULL when none is idle. */
struct tn_h2_stream *proxy_take_stream(struct proxy *px);
/* Queues |w| until an Accept stream of |px| is free. */
void proxy_wait(struct proxy *px, struct waiter *w);
/* Takes |w| off its proxy's queue, if it is on one. */
void proxy_unwait(struct waiter *w);
/* The name a session is known by: its certificate's id or its token's. */
const char *session_id(const struct session *s);

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
/* Parses |s| ("22 80 8000-8100", spaces or commas) into |set|; |what| names it in errors.
 * Returns 0 or TN_ERR_CONFIG (printed). */
int policy_parse_ports(const char *s, struct port_set *set, const char *what);
bool port_set_has(const struct port_set *set, unsigned port);
/* Checks and prepares the policy of the configuration.  Returns 0 or TN_ERR_CONFIG (printed). */
int policy_init(struct relay_config *cfg);
/* May relay service |r| stand beside |rules|[0, |n|)?  Its name is valid, and neither its
 * name (for its proxy) nor its port is taken.  Returns 0, TN_ERR_PARSE (a bad name) or
 * TN_ERR_CONFIG (taken) with |why|. */
int policy_check_service(const struct service_rule *rules, size_t n, const struct service_rule *r,
                         char *why, size_t whylen);
void policy_fini(struct relay_config *cfg);
/* Is proxy |id| in the proxies: list (or is the list empty)?  Fills |why| when not. */
bool policy_knows_proxy(const struct relay_config *cfg, const char *id, char *why, size_t whylen);
/* May proxy |id| announce |net| (as clients address it)?  Fills |why| when not. */
bool policy_may_announce(const struct relay_config *cfg, const char *id, const struct tn_cidr *net,
                         char *why, size_t whylen);
/* May client |id| reach |dst| port |port|? */
bool policy_may_reach(const struct relay_config *cfg, const char *id, const struct tn_ip *dst,
                      unsigned port);
/* May proxy |id| publish public port |port|?  Fills |why| when not. */
bool policy_may_publish(const struct relay_config *cfg, const char *id, unsigned port, char *why,
                        size_t whylen);
/* The proxy id that bearer token |token| stands for, or NULL. */
const char *policy_token_proxy(const struct relay_config *cfg, const char *token);

/* main.c: the tables of a proxies: and a services: entry (the management API reads its
 * requests with them). */
extern const struct tn_conf_key relay_proxy_rule_keys[];
extern const struct tn_conf_key relay_service_rule_keys[];

/* manage.c: the management API on the admin listener (admin.token). */
int manage_start(struct relay *relay);

/* expose.c */
/* Publishes the services of |px|'s Hello (and the relay's own services: for it), filling
 * |welcome|'s published list (freed by expose_welcome_fini).  Returns 0 or -ENOMEM. */
int expose_proxy_joined(struct proxy *px, const Tunnel__V1__Hello *hello,
                        Tunnel__V1__Welcome *welcome);
void expose_welcome_fini(Tunnel__V1__Welcome *welcome);
/* |px| serves its public ports no more: each port whose last replica it was closes (after the
 * grace period). */
void expose_proxy_left(struct proxy *px);
void expose_close_all(struct relay *relay);
/* Publishes relay service |r| (added at run time) for every connected replica of its proxy.
 * Returns how many took it (0: none is connected), or -1 with |why| filled. */
int expose_publish_rule(struct relay *relay, const struct service_rule *r, char *why,
                        size_t whylen);
/* After a reload: publishes the services: entries for the proxies connected, and closes the
 * ports of relay services the configuration no longer lists. */
void expose_services_reloaded(struct relay *relay);
/* Closes the public port of service |name| of proxy |owner|.  Returns false when none. */
bool expose_unpublish(struct relay *relay, const char *owner, const char *name);
/* Whether a service is published for HTTP host |host| (lowercase). */
bool expose_by_host(struct relay *relay, const char *host);
/* Gives public connection |fd|, whose request head |head| (|len| bytes, taken over) was read
 * already, to the service published for |host|. */
void expose_connect_host(struct relay *relay, const char *host, int fd, char *head, size_t len,
                         SSL *ssl);
/* Logs the public ports. */
void expose_dump(struct relay *relay);
struct tn_admin_reply;
/* The public ports as JSON objects, comma-separated, for the status API. */
void expose_status(struct relay *relay, struct tn_admin_reply *r);

/* obs.c: the admin listener (when configured) and the relay's metrics. */
int relay_obs_start(struct relay *relay);
void relay_obs_stop(struct relay *relay);
extern struct tn_metric relay_metric_sessions_total; /* {role} */
extern struct tn_metric relay_metric_public_conns;   /* {service} */

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

/* "1.2.3.4:80", "[::1]:80" or "?" into |buf|. */
void open_endpoint_format(const Tunnel__V1__Endpoint *ep, char *buf, size_t len);
/* Checks |open| of client |client_id|: a flow to an address and port, naming no service
 * (TN_ERR_PROTO if not), that the access rules of |cfg| let it reach (TN_ERR_AUTH if not).
 * Fills |dst|. */
int open_check(const struct relay_config *cfg, const char *client_id, const Tunnel__V1__Open *open,
               struct tn_ip *dst);

/* bandwidth.c */
/* What a flow is, for the bandwidth rules: a NULL field matches no rule that names it. */
struct bw_flow {
    const char *client;
    const char *proxy;
    const char *service;
    const struct tn_ip *dst;
};

/* Checks the rules of limits.bandwidth.  Returns 0 or TN_ERR_CONFIG (printed). */
int bandwidth_check(const struct relay_config *cfg);
/* The gate of one direction of |flow| (|is_up|: toward the proxy), or NULL when no rule limits
 * it.  Bytes that went through (bw_pass) come back, in order and at the pace of every bucket the
 * flow is under, through |release|: the owner then returns their HTTP/2 window. */
struct bw_gate *bw_gate_new(struct relay *relay, const struct bw_flow *flow, bool is_up,
                            void (*release)(void *arg, size_t n), void *arg);
/* |n| bytes went through: |release| hears of them now if the buckets allow, else later. */
void bw_pass(struct bw_gate *g, size_t n);
/* Bytes passed and not yet released. */
size_t bw_owed(const struct bw_gate *g);
void bw_gate_free(struct bw_gate *g);
/* After a SIGHUP: every bucket takes its rule's new rate; a bucket whose rule is gone is no
 * longer a limit. */
void bandwidth_reload(struct relay *relay);
/* Logs the buckets in use. */
void bandwidth_dump(struct relay *relay);

/* flow.c */
/* Takes a client's Connect stream. */
void rflow_start(struct session *s, struct tn_h2_stream *stream);

#endif
