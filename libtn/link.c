/* SPDX-License-Identifier: MIT */
/* The link to the relay: non-blocking dial, one HTTP/2 connection, backoff and retry. */
#include "tn/link.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "tn/addr.h"
#include "tn/err.h"
#include "tn/log.h"
#include "tn/lookup.h"
#include "tn/metrics.h"
#include "tn/util.h"

#define DIAL_TIMEOUT   10.0 /* seconds for the TCP connect; TLS has its own */
#define LOOKUP_TIMEOUT 10.0 /* seconds for the relay's name; then it is as if unanswered */

static void link_dial(struct tn_link *l);
static void link_resolved(struct tn_link *l, int n);

double
tn_link_backoff(const struct tn_link_conf *conf, int64_t failures, double outage)
{
    double initial = (double)conf->initial_ms / 1e3, ceiling = initial;
    double max = (double)conf->max_ms / 1e3;
    uint32_t r = 0;
    int64_t i;

    for (i = 1; i < failures && ceiling < max; i++)
        ceiling *= 2;
    /* Never wait longer than the relay has been gone: quick refusals must not push the next
     * attempt far past a short outage. */
    if (ceiling > outage)
        ceiling = outage > initial ? outage : initial;
    if (ceiling > max)
        ceiling = max;
    if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
        r = (uint32_t)random();
    return ceiling * ((double)r / (double)UINT32_MAX);
}

static void link_retry(struct tn_link *l, const char *reason);

static void
link_on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct tn_link *l = tn_container_of(w, struct tn_link, timer);

    (void)loop;
    (void)revents;
    if (l->lookup != NULL) {
        tn_lookup_cancel(l->lookup);
        l->lookup = NULL;
        tn_log_warnx("relay %s: the resolver did not answer in %.0f s", l->hostport,
                     LOOKUP_TIMEOUT);
        link_resolved(l, -EAGAIN);
        return;
    }
    if (l->fd >= 0) { /* the dial timed out: the next address, or relay, as for a refusal */
        ev_io_stop(l->loop, &l->connecting);
        close(l->fd);
        l->fd = -1;
        tn_log_warnx("relay %s (%s): connect timed out", l->hostport, l->addr);
        l->failures++;
        link_retry(l, "connect timed out");
        return;
    }
    link_dial(l);
}

/* The connection failed or was lost: try again later, or give up.  Only while nothing is being
 * dialed (no socket, the timer idle): libev does not allow setting an active timer. */
static void
link_retry(struct tn_link *l, const char *reason)
{
    double delay;

    if (l->is_stopped)
        return;
    if (l->down_since == 0)
        l->down_since = ev_now(l->loop);
    /* The name's next address first, at once: the first may be of a family with no route.  A
     * relay counts as failed (for the backoff, the next relay and max_retries) only once all
     * its addresses have. */
    if (l->addr_i + 1 < l->addr_n && !(l->conf.is_disabled && l->was_lost)) {
        tn_log_info("relay %s (%s): %s; trying its address %zu of %zu", l->hostport, l->addr,
                    reason, l->addr_i + 2, l->addr_n);
        l->addr_i++;
        if (l->failures > 0)
            l->failures--;
        ev_timer_set(&l->timer, 0, 0);
        ev_timer_start(l->loop, &l->timer);
        return;
    }
    l->addr_i = 0;
    if (l->conf.is_disabled || (l->conf.max_retries > 0 && l->failures > l->conf.max_retries)) {
        l->ops->on_give_up(l, reason);
        return;
    }
    /* Another relay that has not failed us yet is worth trying at once. */
    if (l->naddrs > 1 && l->failures % (int64_t)l->naddrs != 0)
        delay = 0;
    else
        delay = tn_link_backoff(&l->conf, l->failures / (int64_t)l->naddrs,
                                ev_now(l->loop) - l->down_since);
    tn_log_info("relay %s: %s; attempt %" PRId64 " in %.1f s%s%s", l->hostport, reason,
                l->failures + 1, delay, l->naddrs > 1 ? " with " : "",
                l->naddrs > 1 ? l->addrs[(l->cur + 1) % l->naddrs] : "");
    l->cur = (l->cur + 1) % l->naddrs;
    l->hostport = l->addrs[l->cur];
    ev_timer_set(&l->timer, delay, 0);
    ev_timer_start(l->loop, &l->timer);
}

static int
link_h2_on_ready(struct tn_h2 *h2)
{
    struct tn_link *l = tn_h2_owner(h2);

    /* Superseded while in its handshake, or the link stopped dialing since: it only drains. */
    if (h2 != l->h2 || l->is_stopped) {
        tn_h2_drain(h2);
        return 0;
    }
    if (l->was_lost)
        tn_metric_at(&tn_metric_reconnects, NULL, NULL)->value++;
    l->was_lost = false;
    l->is_up = true;
    l->failures = 0;
    l->down_since = 0;
    /* The next turn starts with this address: one of another family may only time out. */
    l->good = l->resolved[l->addr_i];
    l->good_len = l->resolved_len[l->addr_i];
    return l->ops->on_up(l, h2);
}

/* Frees an earlier connection, closing it if it is not yet (no on_close then). */
static void
link_forget(struct tn_link *l, struct tn_h2 *h2)
{
    size_t i;

    for (i = 0; i < l->ndraining; i++) {
        if (l->draining[i] == h2) {
            memmove(&l->draining[i], &l->draining[i + 1],
                    (l->ndraining - i - 1) * sizeof(l->draining[0]));
            l->ndraining--;
            break;
        }
    }
    tn_h2_free(h2);
}

static void
link_h2_on_close(struct tn_h2 *h2, const char *why)
{
    struct tn_link *l = tn_h2_owner(h2);
    bool was_up = l->is_up, is_refused = tn_h2_is_refused(h2);
    char reason[192];

    snprintf(reason, sizeof(reason), "%s", why); /* it may live in |h2|, freed below */

    /* Only the current connection's end is news.  An earlier one (its streams done, or
     * superseded in its handshake) says nothing about the link, whose next connection may be
     * being dialed right now. */
    if (h2 != l->h2) {
        link_forget(l, h2);
        return;
    }

    l->h2 = NULL;
    l->is_up = false;
    tn_h2_free(h2);
    l->was_lost |= was_up;
    if (was_up) {
        l->ops->on_down(l, reason, true);
        l->addr_i = l->addr_n = 0; /* a new turn, resolved again, the address that worked first */
    } else {
        l->failures++;
    }
    if (is_refused) {
        /* The relay (or we) rejected a certificate: retrying changes nothing. */
        l->ops->on_give_up(l, reason);
        return;
    }
    link_retry(l, reason);
}

/* Keeps the connection for its open streams only (|draining|) and dials a new one now, on the
 * next relay when |is_next|.  Earlier draining connections go on too: their flows end on them,
 * as a reload promises, unless there are too many. */
static void
link_start_over(struct tn_link *l, const char *reason, bool is_next)
{
    if (l->ndraining == TN_LINK_MAX_DRAINING)
        link_forget(l, l->draining[0]);
    l->draining[l->ndraining++] = l->h2;
    l->h2 = NULL;
    if (is_next) {
        l->cur = (l->cur + 1) % l->naddrs;
        l->hostport = l->addrs[l->cur];
        l->addr_i = 0;
    }
    if (l->is_up) {
        l->is_up = false;
        l->ops->on_down(l, reason, false);
    }
    l->down_since = ev_now(l->loop);
    link_dial(l);
}

/* The relay is draining: let this connection finish its streams and dial a new one now (on
 * another relay if there is one), so that new flows do not wait for the old ones. */
static void
link_h2_on_goaway(struct tn_h2 *h2)
{
    struct tn_link *l = tn_h2_owner(h2);

    if (h2 != l->h2 || l->is_stopped)
        return;
    tn_log_info("relay %s sent GOAWAY: its open flows go on, new ones wait for a new connection",
                l->hostport);
    l->was_lost = true;
    link_start_over(l, "the relay is draining (GOAWAY)", true);
}

static const struct tn_h2_ops link_h2_ops = {
    .on_ready = link_h2_on_ready,
    .on_close = link_h2_on_close,
    .on_goaway = link_h2_on_goaway,
};

static void
link_on_connected(struct ev_loop *loop, ev_io *w, int revents)
{
    struct tn_link *l = tn_container_of(w, struct tn_link, connecting);
    int fd = l->fd, r = tn_addr_connect_result(fd);
    char port[8];

    (void)revents;
    ev_io_stop(loop, w);
    ev_timer_stop(loop, &l->timer);
    l->fd = -1;
    if (r != 0) {
        close(fd);
        tn_log_debug("relay %s (%s): connect: %s", l->hostport, l->addr, strerror(-r));
        l->failures++;
        link_retry(l, strerror(-r));
        return;
    }
    l->settings.authority = l->hostport;
    /* Without a configured name, the relay must carry the name (or address) it was dialed by,
     * unless its certificate names no host at all. */
    l->settings.is_name_derived = l->name_conf[0] == '\0';
    if (!l->settings.is_name_derived)
        snprintf(l->name, sizeof(l->name), "%s", l->name_conf);
    else if (tn_addr_split(l->hostport, l->name, sizeof(l->name), port, sizeof(port)) != 0)
        snprintf(l->name, sizeof(l->name), "*");
    l->settings.server_name = l->name;
    if ((l->h2 = tn_h2_new(l->loop, l->tls, fd, false, &l->settings, &link_h2_ops, l)) == NULL) {
        l->failures++;
        link_retry(l, "out of memory");
    }
}

/* Puts the address that last worked, if the name still resolves to it, first. */
static void
link_good_first(struct tn_link *l)
{
    struct sockaddr_storage ss;
    socklen_t len;
    size_t i;

    for (i = 1; l->good_len > 0 && i < l->addr_n; i++) {
        if (l->resolved_len[i] != l->good_len ||
            memcmp(&l->resolved[i], &l->good, l->good_len) != 0)
            continue;
        ss = l->resolved[0];
        len = l->resolved_len[0];
        l->resolved[0] = l->resolved[i];
        l->resolved_len[0] = l->resolved_len[i];
        l->resolved[i] = ss;
        l->resolved_len[i] = len;
        return;
    }
}

/* Dials the address |addr_i| of the relay's name. */
static void
link_dial_address(struct tn_link *l)
{
    int fd;

    tn_addr_format((struct sockaddr *)&l->resolved[l->addr_i], l->addr, sizeof(l->addr));
    if ((fd = tn_addr_connect((struct sockaddr *)&l->resolved[l->addr_i],
                              l->resolved_len[l->addr_i])) < 0) {
        l->failures++;
        link_retry(l, strerror(-fd));
        return;
    }
    l->fd = fd;
    ev_io_init(&l->connecting, link_on_connected, fd, EV_WRITE);
    ev_io_start(l->loop, &l->connecting);
    ev_timer_set(&l->timer, DIAL_TIMEOUT, 0);
    ev_timer_start(l->loop, &l->timer);
}

/* The relay's name gave |n| addresses in |resolved|, or the lookup failed (n < 0). */
static void
link_resolved(struct tn_link *l, int n)
{
    if (n == -EAGAIN && l->resolved_of == l->hostport) {
        /* The resolver may be inside the networks we intercept, out of reach while the relay
         * is: the addresses the name had are better than none. */
        tn_log_warnx("relay %s: its name cannot be resolved now: dialing the %zu addresses it had",
                     l->hostport, l->resolved_n);
        n = (int)l->resolved_n;
    }
    if (n <= 0) {
        l->failures++;
        l->addr_n = 0;
        link_retry(l, "cannot resolve the relay's address");
        return;
    }
    l->resolved_of = l->hostport;
    l->resolved_n = l->addr_n = (size_t)n;
    link_good_first(l);
    link_dial_address(l);
}

static void
link_on_lookup(void *arg, int n)
{
    struct tn_link *l = arg;

    l->lookup = NULL;
    ev_timer_stop(l->loop, &l->timer);
    link_resolved(l, n);
}

static void
link_dial(struct tn_link *l)
{
    int n;

    if (l->addr_i > 0 && l->addr_i < l->addr_n) {
        link_dial_address(l);
        return;
    }
    /* Resolved once per turn: a round-robin answer must not reorder the addresses under us.
     * A failed lookup leaves |resolved| as it was, for link_resolved's fallback. */
    l->addr_i = 0;
    n = tn_lookup_start(l->loop, l->hostport, false, l->resolved, l->resolved_len,
                        TN_ADDR_MAX_PER_NAME, link_on_lookup, l, &l->lookup);
    if (n != TN_LOOKUP_PENDING) {
        link_resolved(l, n);
        return;
    }
    ev_timer_stop(l->loop, &l->timer);
    ev_timer_set(&l->timer, LOOKUP_TIMEOUT, 0);
    ev_timer_start(l->loop, &l->timer);
}

void
tn_link_start(struct tn_link *l, struct ev_loop *loop, SSL_CTX *tls, char *const *addrs,
              size_t naddrs, const struct tn_h2_settings *settings, const struct tn_link_conf *conf,
              const struct tn_link_ops *ops, void *owner)
{
    memset(l, 0, sizeof(*l));
    l->loop = loop;
    l->tls = tls;
    l->addrs = addrs;
    l->naddrs = naddrs;
    l->hostport = addrs[0];
    l->settings = *settings;
    if (settings->server_name != NULL)
        snprintf(l->name_conf, sizeof(l->name_conf), "%s", settings->server_name);
    l->conf = *conf;
    l->ops = ops;
    l->owner = owner;
    l->fd = -1;
    ev_init(&l->connecting, link_on_connected);
    /* The first dial comes from the loop: one that fails at once (no route) may give up, and
     * only a running loop can then stop (ev_run forgets an ev_break made before it). */
    ev_timer_init(&l->timer, link_on_timer, 0., 0.);
    ev_timer_start(loop, &l->timer);
}

void
tn_link_set_server_name(struct tn_link *l, const char *name)
{
    snprintf(l->name_conf, sizeof(l->name_conf), "%s", name != NULL ? name : "");
}

void
tn_link_renew(struct tn_link *l)
{
    struct tn_h2 *old = l->h2;

    if (old == NULL || l->is_stopped)
        return;
    link_start_over(l, "renewing the connection", false);
    tn_h2_drain(old);
}

void
tn_link_stop_dialing(struct tn_link *l)
{
    if (l->loop == NULL) /* never started */
        return;
    l->is_stopped = true;
    tn_lookup_cancel(l->lookup);
    l->lookup = NULL;
    ev_timer_stop(l->loop, &l->timer);
    ev_io_stop(l->loop, &l->connecting);
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
}

void
tn_link_stop(struct tn_link *l)
{
    if (l->loop == NULL) /* never started */
        return;
    tn_link_stop_dialing(l);
    if (l->h2 != NULL)
        tn_h2_free(l->h2); /* GOAWAY and close_notify; no callbacks */
    l->h2 = NULL;
    while (l->ndraining > 0)
        link_forget(l, l->draining[0]);
    l->is_up = false;
}
