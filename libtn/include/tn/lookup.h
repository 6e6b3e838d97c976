/* SPDX-License-Identifier: MIT */
/* Name lookups that never stop the loop.  A resolver that does not answer would otherwise
 * freeze every flow of the process for its whole timeout (seconds per attempt), for instance
 * while a renewed link is dialed and the old connection still carries flows. */
#ifndef TN_LOOKUP_H
#define TN_LOOKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <ev.h>

struct tn_lookup;

/* The answer, on the loop: |n| addresses were written (n > 0), or -EAGAIN (the resolver cannot
 * answer now) or TN_ERR_PARSE (a name it denies), logged. */
typedef void (*tn_lookup_cb)(void *arg, int n);

/* What tn_lookup_start returns when the answer comes later, through the callback. */
#define TN_LOOKUP_PENDING (-1000)

/* Looks up |hostport| (HOST:PORT, see tn_addr_split) for a connection: up to |max| addresses in
 * getaddrinfo's order into |out| and |lens|, which must stay valid until the callback or
 * tn_lookup_cancel.  A numeric address (or an empty host, loopback) is answered at once:
 * returns how many were written, or an error as the callback would get it.  A name is looked
 * up on another thread: returns TN_LOOKUP_PENDING and sets *|pending|, and |cb| comes from the
 * loop |loop| (one loop per process) with what it found.  Failures are logged unless
 * |is_quiet| (the caller says why, as a flow's end does). */
int tn_lookup_start(struct ev_loop *loop, const char *hostport, bool is_quiet,
                    struct sockaddr_storage *out, socklen_t *lens, size_t max, tn_lookup_cb cb,
                    void *arg, struct tn_lookup **pending);

/* Lookups glibc has not finished, cancelled ones included: what a caller that starts one per
 * connection must bound, since glibc queues them without limit behind a few threads. */
size_t tn_lookup_in_flight(void);

/* No callback for |lk| after this, and |out| is not written.  The lookup itself cannot be
 * stopped: it is freed when the resolver is done with it. */
void tn_lookup_cancel(struct tn_lookup *lk);

#endif
