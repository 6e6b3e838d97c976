/* SPDX-License-Identifier: MIT */
/* Process set-up shared by the three programs. */
#ifndef TN_PROC_H
#define TN_PROC_H

/* Raises the soft limit on open files to the hard limit: every flow holds a socket, and the
 * default soft limit of 1024 would cap a busy client or proxy long before memory does.
 * Returns the new limit. */
long tn_proc_raise_nofile(void);

#endif
