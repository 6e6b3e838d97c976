/* SPDX-License-Identifier: MIT */
/* A listening socket on a libev loop that hands each accepted connection to its owner. */
#ifndef TN_LISTENER_H
#define TN_LISTENER_H

#include <ev.h>

struct tn_listener;

/* Called with each accepted socket (non-blocking, close-on-exec), which it takes over. */
typedef void (*tn_listener_cb)(struct tn_listener *l, int fd);

struct tn_listener {
    ev_io io;
    ev_timer pause; /* accepting stopped for a moment: out of descriptors */
    tn_listener_cb on_conn;
};

/* Starts accepting on listening socket |fd| (which stays the caller's to close). */
void tn_listener_start(struct tn_listener *l, struct ev_loop *loop, int fd, tn_listener_cb on_conn);
void tn_listener_stop(struct tn_listener *l, struct ev_loop *loop);

#endif
