/* SPDX-License-Identifier: MIT */
/* Process set-up shared by the three programs. */
#include "tn/proc.h"

#include <malloc.h>
#include <stdbool.h>
#include <sys/resource.h>

#include <ev.h>

#define TRIM_EVERY 5.0 /* seconds */

static ev_timer trim_timer;
static bool has_released;

static void
on_trim(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    if (has_released) {
        has_released = false;
        malloc_trim(0);
    }
}

void
tn_proc_trim_start(struct ev_loop *loop)
{
    ev_timer_init(&trim_timer, on_trim, TRIM_EVERY, TRIM_EVERY);
    ev_timer_start(loop, &trim_timer);
    ev_unref(loop); /* the timer alone does not keep the loop running */
}

void
tn_proc_released(void)
{
    has_released = true;
}

long
tn_proc_raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t was = rl.rlim_cur;

        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            rl.rlim_cur = was;
    }
    return (long)rl.rlim_cur;
}
