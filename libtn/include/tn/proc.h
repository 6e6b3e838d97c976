/* SPDX-License-Identifier: MIT */
/* Process set-up shared by the three programs. */
#ifndef TN_PROC_H
#define TN_PROC_H

/* Raises the soft limit on open files to the hard limit: every flow holds a socket, and the
 * default soft limit of 1024 would cap a busy client or proxy long before memory does.
 * Returns the new limit. */
long tn_proc_raise_nofile(void);

struct ev_loop;

/* Gives freed heap memory back to the system a few seconds after flows ended: glibc keeps it
 * otherwise, so that a burst of ten thousand flows would leave the process that much larger.
 * Starts a timer on |loop|; tn_proc_released() marks that something was freed. */
void tn_proc_trim_start(struct ev_loop *loop);
void tn_proc_released(void);

#endif
