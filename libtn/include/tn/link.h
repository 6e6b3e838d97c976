/* SPDX-License-Identifier: MIT */
/* A client's link to the relay: dials without blocking the loop, runs one HTTP/2 connection at
 * a time, and when it is lost dials again after an exponential backoff with full jitter.  When
 * the relay says GOAWAY (it is draining), the link dials a new connection at once while the
 * old one finishes its streams.
 * Used by the client and the proxy alike. */
#ifndef TN_LINK_H
#define TN_LINK_H

#include <stdbool.h>
#include <stdint.h>

#include <ev.h>
#include <openssl/ssl.h>

#include "tn/addr.h"
#include "tn/h2.h"

struct tn_link;
struct tn_lookup;

/* Earlier connections a link keeps for their open streams: past this many (a burst of reloads
 * or GOAWAYs while long flows are open) the oldest is closed, so that they cannot pile up. */
#define TN_LINK_MAX_DRAINING 4

struct tn_link_ops {
    /* The connection is up (TLS verified, the relay's SETTINGS in).  Returns 0, or an error
     * to give up (the owner has logged why). */
    int (*on_up)(struct tn_link *l, struct tn_h2 *h2);
    /* The connection is gone (|is_lost|): every stream on it has been closed already.  Or it
     * is being replaced (a renewal, GOAWAY): its open streams finish on it, new ones wait for
     * the next connection. */
    void (*on_down)(struct tn_link *l, const char *reason, bool is_lost);
    /* No more attempts: retries ran out, reconnecting is off, or the relay refused us in a way
     * retrying cannot mend (a certificate it does not trust). */
    void (*on_give_up)(struct tn_link *l, const char *reason);
};

struct tn_link_conf {
    int64_t initial_ms;  /* first delay's ceiling; it doubles per failed attempt */
    int64_t max_ms;      /* ceiling of the delay */
    int64_t max_retries; /* 0: unlimited */
    bool is_disabled;    /* --no-reconnect: the first loss ends it */
};

struct tn_link {
    struct ev_loop *loop;
    SSL_CTX *tls;
    char *const *addrs; /* relays to try, in turn: one failing passes to the next */
    size_t naddrs;
    size_t cur;           /* the one in use or being dialed */
    const char *hostport; /* addrs[cur] */
    /* The addresses hostport resolved to at the start of its turn (an AAAA and an A record),
     * dialed one after the other: addr_i of addr_n. */
    struct sockaddr_storage resolved[TN_ADDR_MAX_PER_NAME];
    socklen_t resolved_len[TN_ADDR_MAX_PER_NAME];
    size_t addr_i, addr_n;
    const char *resolved_of; /* the hostport |resolved| holds addresses of, or NULL */
    size_t resolved_n;
    struct sockaddr_storage good; /* the address of the last connection that came up */
    socklen_t good_len;           /* 0: none yet */
    char addr[TN_ADDR_STRLEN];    /* that address, for the logs */
    char name_conf[256];          /* the relay name configured (settings.server_name), or "" */
    char name[256]; /* the name the relay dialed now must carry: name_conf or its host */
    struct tn_h2_settings settings;
    struct tn_link_conf conf;
    const struct tn_link_ops *ops;
    void *owner;
    struct tn_h2 *h2; /* NULL while down */
    /* Earlier connections finishing their open streams after GOAWAY or a renewal, oldest first:
     * a second renewal while one still drains must not cut its flows short. */
    struct tn_h2 *draining[TN_LINK_MAX_DRAINING];
    size_t ndraining;
    bool is_up;
    bool was_lost; /* a connection was lost or drained (GOAWAY): the next one up is a reconnect */
    bool is_stopped;
    int64_t failures;         /* attempts since the link was last up */
    ev_tstamp down_since;     /* when the link was first found down, or 0 */
    struct tn_lookup *lookup; /* the relay's name being looked up, or NULL */
    int fd;                   /* the socket being dialed, or -1 */
    ev_io connecting;
    ev_timer timer; /* the next attempt, or the lookup's or the dial's timeout */
};

/* Starts dialing the first of |naddrs| relays |addrs| (HOST:PORT) at once.  Each relay's
 * certificate must carry settings->server_name (copied), or when that is NULL the host it is
 * dialed by.  A failed attempt or a lost connection moves to the next address of the relay's
 * name (an AAAA and an A record), then to the next relay, at once while some have not been
 * tried since the link was last up, then after the backoff. */
void tn_link_start(struct tn_link *l, struct ev_loop *loop, SSL_CTX *tls, char *const *addrs,
                   size_t naddrs, const struct tn_h2_settings *settings,
                   const struct tn_link_conf *conf, const struct tn_link_ops *ops, void *owner);
/* The name the relay's certificate must carry from the next connection on (a reload's
 * tls.server_name; NULL: the host dialed). */
void tn_link_set_server_name(struct tn_link *l, const char *name);
/* Starts over on a new connection (new certificates, a new registration): the current one says
 * GOAWAY and finishes its open streams while the new one is dialed.  Does nothing while down:
 * the next attempt uses the new settings anyway. */
void tn_link_renew(struct tn_link *l);

/* No new connection from now on (a drain): a lookup, a dial or the wait for the next attempt is
 * abandoned, and a connection still in its handshake is drained as soon as it is up.  The
 * connections the link has finish their streams; when they end, nothing is dialed again. */
void tn_link_stop_dialing(struct tn_link *l);

/* Closes the connection (GOAWAY, close_notify) and stops every timer: no callback after this. */
void tn_link_stop(struct tn_link *l);

/* The delay before the next attempt after |failures| failed ones, |outage| seconds after the
 * link went down: uniform in [0, C] (full jitter, so that a fleet that lost its relay at once
 * does not come back at once) with C = initial * 2^(failures-1), capped by max and by the
 * outage so far (but at least initial). */
double tn_link_backoff(const struct tn_link_conf *conf, int64_t failures, double outage);

#endif
