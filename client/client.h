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

#include "tn/cidr.h"
#include "tn/conf.h"
#include "tn/h2.h"
#include "tn/link.h"
#include "tn/listener.h"
#include "tn/opts.h"
#include "tn/tls.h"

struct client_config {
    struct tn_str_list server_addr; /* relays, used one at a time */
    struct tn_cidr_list target_cidr;
    int64_t listen_port;
    struct tn_tls_conf tls;
    struct tn_log_conf log;
    int64_t stream_window, connection_window;
    int64_t heartbeat_interval, heartbeat_timeout;
    struct tn_link_conf reconnect;
    int64_t drain_timeout;
    int64_t idle_timeout;
    bool is_fail_closed;
    bool is_cleanup;
    char *user; /* after start-up, run as this user (keeping the two capabilities) */
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
    int status; /* exit status once the loop stops */
    uint64_t flows;
    uint64_t active;  /* flows open now */
    bool is_draining; /* SIGTERM: rules gone, open flows finishing */
    ev_timer drain_deadline;
};

/* privs.c: keeps CAP_NET_ADMIN and CAP_NET_RAW only (bounding, permitted, effective, inheritable
 * and ambient sets, so that the iptables-restore it spawns has them too), as |user| when not
 * NULL, and sets no_new_privs.  Returns 0 or an error (logged). */
int privs_keep_net(const char *user);

/* netfilter.c: the only code that changes netfilter. */
struct nf_rules {
    const struct tn_cidr_list *cidrs;
    const struct sockaddr_storage *relays; /* never intercepted */
    size_t nrelays;
    unsigned port; /* where REDIRECT sends connections */
};

/* Installs our chain and its jump atomically.  Returns 0 or TN_ERR_CONFIG (logged). */
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

/* main.c: a flow ended (the last one ends a drain). */
void client_flow_ended(struct client *c);

#endif
