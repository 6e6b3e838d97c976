/* SPDX-License-Identifier: MIT */
/* Busy polling after a message (tn/busypoll.h). */
#include "tn/busypoll.h"

#include <sched.h>

#include "tn/metrics.h"

#define MIN_SHARE 16     /* the window narrows to max/16 at least */
#define CONTENDED 100e-6 /* a yield this long: another task had work for this CPU */
#define PAUSE     5e-3   /* no polling for this long after one */

void
tn_busypoll_set(struct tn_busypoll *bp, double max)
{
    bp->max = max > 0 ? max : 0;
    bp->window = bp->max;
    bp->until = 0;
}

bool
tn_busypoll_kick(struct tn_busypoll *bp, double now)
{
    double gap = now - bp->last;

    bp->last = now;
    if (bp->max == 0 || now < bp->paused_until)
        return false;
    /* Would a window of |max| have caught this message?  Then widen the next, else narrow it. */
    if (gap <= bp->max) {
        if ((bp->window *= 2) > bp->max)
            bp->window = bp->max;
    } else if ((bp->window /= 2) < bp->max / MIN_SHARE) {
        bp->window = bp->max / MIN_SHARE;
    }
    bp->until = now + bp->window;
    return true;
}

bool
tn_busypoll_turn(struct tn_busypoll *bp, double now)
{
    if (now >= bp->until)
        bp->until = 0;
    return bp->until != 0;
}

void
tn_busypoll_yielded(struct tn_busypoll *bp, double now, double yielded)
{
    if (yielded < CONTENDED)
        return;
    bp->paused_until = now + yielded + PAUSE;
    bp->until = 0;
}

/* How a poll ends, as tunnel_busy_polls_total counts it. */
enum poll_end {
    END_MESSAGE,
    END_TIMEOUT,
    END_CONTENDED,
    END_COUNT
};

static const char *const end_names[END_COUNT] = { "message", "timeout", "contended" };

/* One loop per process: one poller. */
static struct {
    struct tn_busypoll bp;
    ev_idle idle;    /* while active, the loop polls without blocking and calls it each idle turn */
    bool has_polled; /* a turn was polled since the last message */
    struct tn_metric_series *ends[END_COUNT]; /* tunnel_busy_polls_total, by end */
} poller;

static void
poller_end(struct ev_loop *loop, enum poll_end end)
{
    ev_idle_stop(loop, &poller.idle);
    tn_metric_add(poller.ends[end], 1);
}

static void
poller_on_idle(struct ev_loop *loop, ev_idle *w, int revents)
{
    ev_tstamp before;

    (void)w;
    (void)revents;
    if (!tn_busypoll_turn(&poller.bp, ev_now(loop))) {
        poller_end(loop, END_TIMEOUT);
        return;
    }
    poller.has_polled = true;
    before = ev_time();
    sched_yield();
    tn_busypoll_yielded(&poller.bp, ev_now(loop), ev_time() - before);
    if (poller.bp.until == 0)
        poller_end(loop, END_CONTENDED);
}

void
tn_busypoll_configure(struct ev_loop *loop, int64_t usec)
{
    ev_idle_stop(loop, &poller.idle);
    ev_idle_init(&poller.idle, poller_on_idle);
    for (int i = 0; i < END_COUNT; i++)
        poller.ends[i] = tn_metric_at(&tn_metric_busy_polls, end_names[i], NULL);
    tn_busypoll_set(&poller.bp, (double)usec / 1e6);
}

void
tn_busypoll_note(struct ev_loop *loop)
{
    if (ev_is_active(&poller.idle) && poller.has_polled)
        tn_metric_add(poller.ends[END_MESSAGE], 1);
    poller.has_polled = false;
    if (tn_busypoll_kick(&poller.bp, ev_now(loop)) && !ev_is_active(&poller.idle))
        ev_idle_start(loop, &poller.idle);
}
