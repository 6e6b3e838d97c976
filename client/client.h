/* SPDX-License-Identifier: MIT */
/* The client's internal types: config, the relay session, intercepted flows, and the
 * netfilter rules that bring connections to it. */
#ifndef CLIENT_H
#define CLIENT_H

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
#include "tn/listener.h"
#include "tn/metrics.h"
#include "tn/opts.h"
#include "tn/packet.h"
#include "tn/tls.h"

struct client_config {
    struct tn_str_list server_addr; /* relays, used one at a time */
    struct tn_cidr_list target_cidr;
    struct tn_cidr_list exclude; /* kept local even inside target_cidr */
    int64_t listen_port;
    struct tn_tls_conf tls;
    struct tn_log_conf log;
    int64_t stream_window, connection_window;
    int64_t busy_poll_us;
    int64_t heartbeat_interval, heartbeat_timeout;
    struct tn_link_conf reconnect;
    int64_t drain_timeout;
    int64_t idle_timeout;
    bool is_fail_closed;
    bool is_cleanup;
    char *admin_listen;       /* NULL: no admin listener */
    char *status_socket;      /* what 'client status' reads; "": none */
    bool is_udp;              /* UDP and ICMP echo through NFQUEUE */
    bool is_gateway;          /* also what the host forwards */
    int64_t nfqueue;          /* the queue number */
    int64_t udp_idle_timeout; /* ms */
    int64_t udp_max_flows;    /* open at once: a port scan must not take every socket */
    char *user;               /* after start-up, run as this user (keeping the two capabilities) */
};

/* Our packets (replies we inject) carry this mark: our queue rules skip them. */
#define CLIENT_MARK   0x746e
#define DGRAM_BUCKETS 1024

struct dflow;

/* dgram.c: UDP and ICMP echo flows. */
struct dgram {
    struct mnl_socket *nl; /* NFQUEUE; NULL when off */
    unsigned portid, queue;
    ev_io io;
    int raw4, raw6;   /* replies to the applications */
    uint32_t last_id; /* the last packet read, for the batch verdict */
    bool has_verdict;
    struct dflow *buckets[DGRAM_BUCKETS];
    struct dflow *oldest, *newest; /* the flows by their last datagram (dflow_touch) */
    uint64_t nflows, flows;
    uint64_t rejected[TN_PKT_NREASONS], no_relay, overruns;
    ev_tstamp last_warn[TN_PKT_NREASONS]; /* per reason; [TN_PKT_OK]: no relay */
};

struct client {
    struct ev_loop *loop;
    struct client_config *cfg;
    int argc; /* to read the configuration again on SIGHUP */
    char **argv;
    SSL_CTX *tls;
    struct tn_link link; /* to the relay */
    bool has_rules;
    struct sockaddr_storage *relay_addrs; /* resolved once, kept out of the rules */
    size_t nrelay_addrs;
    struct tn_listener listener;
    struct tn_listener listener6; /* when an IPv6 network is intercepted */
    int lfd6;                     /* its socket, or -1 (opened for the first IPv6 network) */
    int status;                   /* exit status once the loop stops */
    uint64_t flows;
    uint64_t active;  /* flows open now */
    bool is_draining; /* SIGTERM: rules gone, open flows finishing */
    ev_timer drain_deadline;
    struct tn_admin admin, status_admin; /* obs.c */
    ev_tstamp started;
    struct dgram dgram;
};

/* privs.c: keeps CAP_NET_ADMIN and CAP_NET_RAW only (bounding, permitted, effective, inheritable
 * and ambient sets, so that the iptables-restore it spawns has them too), as |user| when not
 * NULL, and sets no_new_privs.  Returns 0 or an error (logged). */
int privs_keep_net(const char *user);
/* Whether |user| (NULL: none) exists, checked before the client changes anything.  Returns 0
 * or TN_ERR_CONFIG (logged). */
int privs_check_user(const char *user);

/* netfilter.c: the only code that changes netfilter. */
struct nf_rules {
    const struct tn_cidr_list *cidrs;
    const struct tn_cidr_list *excludes;   /* never intercepted nor rejected; may be NULL */
    const struct sockaddr_storage *relays; /* never intercepted */
    size_t nrelays;
    unsigned port;   /* where REDIRECT sends connections */
    int queue;       /* NFQUEUE for UDP and ICMP echo; -1: none */
    bool is_gateway; /* also what the host forwards (PREROUTING) */
};

/* Installs our chains and their jumps: the redirect, and the queue when |queue| >= 0, in each
 * family.  Each table of a family is one iptables-restore; should any fail, everything is
 * removed again.  Returns 0 or TN_ERR_CONFIG (logged). */
int nf_rules_install(const struct nf_rules *rules);
/* Removes our chain and every jump to it, whoever installed them.  Returns how many rules or
 * chains were removed. */
int nf_rules_remove(void);
/* Fail closed: a chain in the filter table that rejects traffic to the intercepted networks
 * which the redirection did not take (the client is disconnected, stopped or gone).  It stays
 * after the client exits, until nf_fail_closed_remove (client --cleanup).  Returns 0 or
 * TN_ERR_CONFIG (logged). */
int nf_fail_closed_install(const struct nf_rules *rules);
int nf_fail_closed_remove(void);

/* flow.c */
void flow_accept(struct client *c, int fd);
/* Binds |fm| to the intercepted network holding |dst| (the longest match): a flow's bytes,
 * TCP or datagrams, count towards it. */
void client_bind_route(const struct client *c, struct tn_flow_metrics *fm, const struct tn_ip *dst);
/* The listener REDIRECT sends connections to: loopback (OUTPUT maps there), or every address
 * in gateway mode (PREROUTING maps to the incoming interface's).  Returns it or -1 (logged). */
int client_listen(int af, bool is_any, unsigned port);
bool client_has_family(const struct tn_cidr_list *l, int af);

/* dgram.c: binds NFQUEUE |queue| and opens the raw sockets.  Returns 0 or TN_ERR_CONFIG
 * (logged). */
int dgram_start(struct client *c, unsigned queue);
/* Ends every datagram flow and closes the sockets. */
void dgram_stop(struct client *c);

/* obs.c: the admin listener and status socket (when configured), and the exit summary. */
int client_obs_start(struct client *c);
void client_obs_stop(struct client *c);
/* 'client status': prints what the running client's status socket says.  Returns the exit
 * status. */
int client_status(const char *socket_path);

/* main.c: a flow ended (the last one ends a drain). */
void client_flow_ended(struct client *c);

#endif
