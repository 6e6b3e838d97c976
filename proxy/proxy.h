/* SPDX-License-Identifier: MIT */
/* The proxy's internal types: its link to the relay and the flows it dials. */
#ifndef PROXY_H
#define PROXY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <ev.h>
#include <openssl/ssl.h>

#include "tn/admin.h"
#include "tn/cidr.h"
#include "tn/conf.h"
#include "tn/h2.h"
#include "tn/link.h"
#include "tn/opts.h"
#include "tn/tls.h"

/* A network this proxy serves: |real| in its LAN, addressed by clients as |virt| (same size;
 * ip.family 0 when clients use the real addresses). */
struct proxy_net {
    struct tn_cidr real;
    struct tn_cidr virt;
};

struct http_stats;

/* expose: a local service published on a public port of the relay. */
struct proxy_service {
    char *name;                   /* default: its target */
    char *target;                 /* host:port, dialed for each public connection */
    int64_t public_port;          /* 0: any free port of the relay's */
    int64_t local_port;           /* instead of target: 127.0.0.1:local_port */
    bool http;                    /* log its HTTP/1.x requests */
    char *host;                   /* http.host: reached by this Host on the relay's HTTP port */
    struct sockaddr_storage addr; /* when the target is an address */
    socklen_t addrlen;            /* 0: a name, looked up for each connection */
    struct http_stats *stats;     /* when |http| */
};

struct proxy_config {
    struct tn_str_list server_addr; /* relays: one session to each */
    char *proxy_id;
    struct tn_cidr managed_cidr;  /* one network by flag: --managed-cidr [--virtual-cidr] */
    struct tn_cidr virtual_cidr;  /* ip.family 0: none, clients use the real addresses */
    struct tn_conf_list networks; /* more of them: struct proxy_net */
    struct tn_conf_list expose;   /* struct proxy_service */
    char *token;                  /* bearer token, instead of a certificate */
    int64_t heartbeat_interval, heartbeat_timeout;
    struct tn_link_conf reconnect;
    int64_t drain_timeout;
    int64_t idle_timeout;
    int64_t dial_timeout_ms;
    int64_t accept_pool;
    struct tn_tls_conf tls;
    struct tn_log_conf log;
    int64_t stream_window, connection_window;
    int64_t busy_poll_us;
    char *admin_listen; /* NULL: no admin listener */
};

/* The proxy's session with one relay. */
struct uplink {
    struct proxy *px;
    struct tn_link link;
    struct tn_h2_stream *control; /* the Register stream */
    uint8_t *welcome;             /* the Welcome, gathered whole */
    size_t welcome_len;
    bool is_registered;
    int idle;        /* Accept streams waiting for a flow */
    ev_timer refill; /* tops the pool up again after idle streams were lost */
};

struct proxy {
    struct ev_loop *loop;
    struct proxy_config *cfg;
    int argc; /* to read the configuration again on SIGHUP */
    char **argv;
    struct proxy_net *nets; /* every network served: the list and the flags' one */
    size_t nnets;
    SSL_CTX *tls;
    struct tn_h2_settings settings;
    struct uplink *uplinks; /* one per relay */
    size_t nuplinks;
    bool is_stopping; /* a signal asked us to stop: the relay going away is no error */
    int status;       /* exit status once the loop stops */
    uint64_t flows;
    uint64_t active; /* flows open now */
    /* UDP and ICMP flows open now, each with its socket, and at most: half the open files, so
     * that a port scan through the tunnel leaves sockets for TCP. */
    uint64_t dgram_flows, dgram_max;
    ev_timer drain_deadline;
    struct tn_admin admin; /* obs.c */
    ev_tstamp started;
};

/* link.c: a session per relay, registration and the pool of Accept streams. */
int uplinks_start(struct proxy *px);
/* Sends GOAWAY on every session: the relays route nothing new here.  Returns how many. */
size_t uplinks_drain(struct proxy *px);
/* Every uplink starts over on a new connection (new certificates, a new Hello); open flows
 * finish on the old ones.  Not while draining: a new Hello would draw new flows. */
void uplinks_renew(struct proxy *px);
void uplinks_stop(struct proxy *px);
void uplink_refill(struct uplink *up);
/* Refills the pool a little later: idle streams were lost (an intermediary's idle timeout, a
 * relay resetting them), and an immediate refill could spin. */
void uplink_refill_later(struct uplink *up);

/* dial.c: one Accept stream and the connection it dials. */
int pflow_open(struct uplink *up);

/* obs.c: the admin listener (when configured) and the exit summary. */
int proxy_obs_start(struct proxy *px);
void proxy_obs_stop(struct proxy *px);

/* main.c: stops with exit status |status| (or a higher one already set): at once when no flow
 * is open, or else after a drain: GOAWAY tells the relay to route nothing new here, and the
 * open flows get drain_timeout to finish.  |why| starts the log line.  Once stopping, a second
 * call only raises the status. */
void proxy_leave(struct proxy *px, int status, const char *why);
/* main.c: a flow ended (the last one ends a drain). */
void proxy_flow_ended(struct proxy *px);

#endif
