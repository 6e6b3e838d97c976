/* SPDX-License-Identifier: MIT */
/* Name lookups off the loop.  glibc's getaddrinfo_a runs getaddrinfo on a thread of its own and
 * then calls lookup_notify on another; that only marks the lookup done and wakes the loop
 * (ev_async, the one libev call meant for other threads), which hands the answer on.  A lookup
 * cannot be stopped inside glibc: a cancelled one is only forgotten by its owner, and freed on
 * the loop once glibc is done with it. */
#include "tn/lookup.h"

#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tn/addr.h"
#include "tn/err.h"
#include "tn/log.h"

struct tn_lookup {
    struct gaicb req; /* glibc's; it must stay put until the lookup is done */
    struct addrinfo hints;
    char host[256], port[8];
    char hostport[300];  /* for the log, or "" when the caller logs */
    atomic_bool is_done; /* set by glibc's notification thread, last thing it touches */
    bool is_unnotified;  /* glibc queued it without a notification: done when gai_error says */
    tn_lookup_cb cb;     /* NULL once cancelled */
    void *arg;
    struct sockaddr_storage *out;
    socklen_t *lens;
    size_t max;
    struct tn_lookup *next;
};

/* One loop per process, as everywhere in libtn. */
static struct {
    struct ev_loop *loop;
    ev_async wake;
    struct tn_lookup *pending;
    size_t npending; /* in |pending|: cancelled ones too, until glibc is done with them */
} lookups;

static void
lookup_notify(union sigval v)
{
    struct tn_lookup *lk = v.sival_ptr;

    atomic_store_explicit(&lk->is_done, true, memory_order_release);
    ev_async_send(lookups.loop, &lookups.wake); /* |lk| may be freed by now */
}

static void
lookup_on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
    struct tn_lookup **pp = &lookups.pending, *lk, *done = NULL;
    int n;

    (void)loop;
    (void)w;
    (void)revents;
    /* Take the finished ones out first: a callback may start or cancel lookups. */
    while ((lk = *pp) != NULL) {
        if (lk->is_unnotified ? gai_error(&lk->req) == EAI_INPROGRESS
                              : !atomic_load_explicit(&lk->is_done, memory_order_acquire)) {
            pp = &lk->next;
            continue;
        }
        *pp = lk->next;
        lookups.npending--;
        lk->next = done;
        done = lk;
    }
    while ((lk = done) != NULL) {
        done = lk->next;
        if (lk->cb != NULL) {
            n = tn_addr_gai_answer(lk->hostport[0] != '\0' ? lk->hostport : NULL,
                                   gai_error(&lk->req), lk->req.ar_result, lk->out, lk->lens,
                                   lk->max);
            lk->cb(lk->arg, n);
        }
        if (lk->req.ar_result != NULL)
            freeaddrinfo(lk->req.ar_result);
        free(lk);
    }
}

int
tn_lookup_start(struct ev_loop *loop, const char *hostport, bool is_quiet,
                struct sockaddr_storage *out, socklen_t *lens, size_t max, tn_lookup_cb cb,
                void *arg, struct tn_lookup **pending)
{
    struct sigevent sev = { .sigev_notify = SIGEV_THREAD };
    struct gaicb *list[1];
    struct tn_lookup *lk;
    struct addrinfo *res = NULL;
    int e;

    *pending = NULL;
    if ((lk = calloc(1, sizeof(*lk))) == NULL)
        return -EAGAIN;
    /* An address needs no resolver: answered here, without a thread. */
    if (tn_addr_gai_query(hostport, AI_NUMERICHOST, lk->host, sizeof(lk->host), lk->port,
                          sizeof(lk->port), &lk->hints) != 0) {
        free(lk);
        return TN_ERR_PARSE;
    }
    e = getaddrinfo(lk->host[0] != '\0' ? lk->host : NULL, lk->port, &lk->hints, &res);
    if (e != EAI_NONAME || lk->host[0] == '\0') {
        e = tn_addr_gai_answer(is_quiet ? NULL : hostport, e, res, out, lens, max);
        if (res != NULL)
            freeaddrinfo(res);
        free(lk);
        return e;
    }

    lk->hints.ai_flags &= ~AI_NUMERICHOST;
    snprintf(lk->hostport, sizeof(lk->hostport), "%s", is_quiet ? "" : hostport);
    lk->req.ar_name = lk->host;
    lk->req.ar_service = lk->port;
    lk->req.ar_request = &lk->hints;
    lk->cb = cb;
    lk->arg = arg;
    lk->out = out;
    lk->lens = lens;
    lk->max = max;
    if (lookups.loop == NULL) {
        lookups.loop = loop;
        ev_async_init(&lookups.wake, lookup_on_wake);
        ev_async_start(loop, &lookups.wake);
        ev_unref(loop); /* a lookup alone keeps no loop running: its owner has a timer */
    }
    sev.sigev_notify_function = lookup_notify;
    sev.sigev_value.sival_ptr = lk;
    list[0] = &lk->req;
    e = getaddrinfo_a(GAI_NOWAIT, list, 1, &sev);
    if (e != 0 && gai_error(&lk->req) != EAI_INPROGRESS) { /* never queued */
        free(lk);
        return tn_addr_gai_answer(is_quiet ? NULL : hostport, e, NULL, out, lens, max);
    }
    /* A request glibc queued but could not arrange to notify (it failed to allocate) is
     * still read and written by its thread: it stays in the list, cancelled, until gai_error
     * says glibc is done with it (looked at when another lookup wakes the loop). */
    lk->next = lookups.pending;
    lookups.pending = lk;
    lookups.npending++;
    if (e != 0) {
        lk->cb = NULL;
        lk->is_unnotified = true;
        return tn_addr_gai_answer(is_quiet ? NULL : hostport, e, NULL, out, lens, max);
    }
    *pending = lk;
    return TN_LOOKUP_PENDING;
}

size_t
tn_lookup_in_flight(void)
{
    return lookups.npending;
}

void
tn_lookup_cancel(struct tn_lookup *lk)
{
    if (lk != NULL)
        lk->cb = NULL;
}
