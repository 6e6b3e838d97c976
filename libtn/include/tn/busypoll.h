/* SPDX-License-Identifier: MIT */
/* Busy polling: after a message, the process polls its loop without sleeping for a moment,
 * giving the CPU away on every turn, so that the answer, which comes within a round trip, is
 * read without waking an idle CPU.  On a VM that wake-up costs tens of microseconds, and a
 * round trip through the tunnel wakes a process eight times.
 *
 * The poll adapts: its window halves each time a message comes later than the longest window
 * after the one before (a slow peer, a paced download: polling would not have caught it), and
 * doubles back, up to the longest, each time one comes sooner.  A turn on which another task
 * took the CPU ends polling for a while: under load the CPUs have no idle time to save, and
 * polling would only take turns from real work. */
#ifndef TN_BUSYPOLL_H
#define TN_BUSYPOLL_H

#include <stdbool.h>
#include <stdint.h>

#include <ev.h>

/* Messages of at most this many bytes of payload start a poll: bulk transfers do not. */
#define TN_BUSYPOLL_MESSAGE_MAX (16 * 1024)

/* The policy, on times the caller gives (seconds), testable without a loop. */
struct tn_busypoll {
    double max;          /* the longest window; 0: off */
    double window;       /* the current one, max/16 .. max */
    double last;         /* when the last message came */
    double until;        /* polling until then; 0: not polling */
    double paused_until; /* the CPU was contended: no polling before then */
};

/* Sets the longest window (0: off), at start and on reload. */
void tn_busypoll_set(struct tn_busypoll *bp, double max);
/* A message came at |now|.  Returns whether to poll (the caller starts turning). */
bool tn_busypoll_kick(struct tn_busypoll *bp, double now);
/* A turn with nothing to do at |now|.  Returns whether to go on polling: false once the
 * window has passed. */
bool tn_busypoll_turn(struct tn_busypoll *bp, double now);
/* Giving the CPU away at |now| took |yielded| seconds.  100 µs or more means another task used
 * it: polling stops, and no message starts a poll for 5 ms after. */
void tn_busypoll_yielded(struct tn_busypoll *bp, double now, double yielded);

/* The process's loop (there is one per process): sets its longest window in microseconds
 * (0: off), and notes a message: a new connection, a datagram, a read of at most
 * TN_BUSYPOLL_MESSAGE_MAX bytes. */
void tn_busypoll_configure(struct ev_loop *loop, int64_t usec);
void tn_busypoll_note(struct ev_loop *loop);

#endif
