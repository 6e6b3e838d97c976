/* SPDX-License-Identifier: MIT */
/* Accepting connections on a libev loop. */
#include "tn/listener.h"

#include <errno.h>
#include <sys/socket.h>

#include "tn/busypoll.h"
#include "tn/log.h"
#include "tn/metrics.h"
#include "tn/util.h"

#define ACCEPTS_PER_WAKEUP 64 /* then let other events run */
#define PAUSE              0.5

static void
listener_on_pause_end(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct tn_listener *l = tn_container_of(w, struct tn_listener, pause);

    (void)revents;
    ev_io_start(loop, &l->io);
}

static void
listener_on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    struct tn_listener *l = tn_container_of(w, struct tn_listener, io);
    int fd, i;

    (void)revents;
    for (i = 0; i < ACCEPTS_PER_WAKEUP; i++) {
        if ((fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) < 0) {
            if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
                return;
            /* Out of descriptors or memory: the socket stays readable, so a level-triggered
             * watcher would spin.  Pause accepting for a moment instead. */
            tn_log_warn("accept (pausing new connections for %.1f s)", PAUSE);
            if (errno == EMFILE || errno == ENFILE)
                tn_metric_at(&tn_metric_limit_hits, "open_files", NULL)->value++;
            ev_io_stop(loop, w);
            ev_timer_start(loop, &l->pause);
            return;
        }
        tn_busypoll_note(loop);
        l->on_conn(l, fd);
    }
}

void
tn_listener_start(struct tn_listener *l, struct ev_loop *loop, int fd, tn_listener_cb on_conn)
{
    l->on_conn = on_conn;
    ev_io_init(&l->io, listener_on_readable, fd, EV_READ);
    ev_timer_init(&l->pause, listener_on_pause_end, PAUSE, 0);
    ev_io_start(loop, &l->io);
}

void
tn_listener_stop(struct tn_listener *l, struct ev_loop *loop)
{
    ev_io_stop(loop, &l->io);
    ev_timer_stop(loop, &l->pause);
}
