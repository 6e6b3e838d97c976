/* SPDX-License-Identifier: MIT */
/* Accepting connections on a libev loop. */
#include "tn/listener.h"

#include <errno.h>
#include <sys/socket.h>

#include "tn/log.h"
#include "tn/util.h"

#define ACCEPTS_PER_WAKEUP 64 /* then let other events run */

static void
listener_on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    struct tn_listener *l = tn_container_of(w, struct tn_listener, io);
    int fd, i;

    (void)loop;
    (void)revents;
    for (i = 0; i < ACCEPTS_PER_WAKEUP; i++) {
        if ((fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                tn_log_warn("accept"); /* EMFILE and the like: retried on the next wakeup */
            return;
        }
        l->on_conn(l, fd);
    }
}

void
tn_listener_start(struct tn_listener *l, struct ev_loop *loop, int fd, tn_listener_cb on_conn)
{
    l->on_conn = on_conn;
    ev_io_init(&l->io, listener_on_readable, fd, EV_READ);
    ev_io_start(loop, &l->io);
}

void
tn_listener_stop(struct tn_listener *l, struct ev_loop *loop)
{
    ev_io_stop(loop, &l->io);
}
