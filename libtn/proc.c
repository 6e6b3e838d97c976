/* SPDX-License-Identifier: MIT */
/* Process set-up shared by the three programs. */
#include "tn/proc.h"

#include <sys/resource.h>

long
tn_proc_raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    return (long)rl.rlim_cur;
}
