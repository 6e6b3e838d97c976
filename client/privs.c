/* SPDX-License-Identifier: MIT */
/* Dropping privileges once the client is set up: of everything root may do, it keeps only
 * CAP_NET_ADMIN and CAP_NET_RAW (its netfilter rules, now and at exit), optionally as another
 * user.  Raw capget/capset and prctl: no library needed. */
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "client.h"
#include "tn/err.h"
#include "tn/log.h"

#define KEEP ((1ull << CAP_NET_ADMIN) | (1ull << CAP_NET_RAW))

static int
cap_last(void)
{
    FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
    int last = CAP_LAST_CAP;

    if (f != NULL) {
        if (fscanf(f, "%d", &last) != 1 || last < 0 || last > 63)
            last = CAP_LAST_CAP;
        fclose(f);
    }
    return last;
}

/* Sets the effective, permitted and inheritable sets to |mask|. */
static int
caps_set(uint64_t mask)
{
    struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct data[2];
    int i;

    for (i = 0; i < 2; i++) {
        data[i].effective = data[i].permitted = data[i].inheritable = (uint32_t)(mask >> (32 * i));
    }
    return (int)syscall(SYS_capset, &hdr, data);
}

static int
caps_get(uint64_t *permitted)
{
    struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct data[2];

    if (syscall(SYS_capget, &hdr, data) != 0)
        return -1;
    *permitted = (uint64_t)data[1].permitted << 32 | data[0].permitted;
    return 0;
}

/* The account of |user|, or NULL (logged). */
static struct passwd *
user_lookup(const char *user)
{
    struct passwd *pw;

    errno = 0;
    if ((pw = getpwnam(user)) == NULL)
        tn_log(TN_LOG_ERR, "user: no user '%s'%s%s", user, errno != 0 ? ": " : "",
               errno != 0 ? strerror(errno) : "");
    return pw;
}

int
privs_check_user(const char *user)
{
    return user == NULL || user_lookup(user) != NULL ? 0 : TN_ERR_CONFIG;
}

/* Becomes |user| (and its primary group, no supplementary ones), keeping the capabilities. */
static int
become(const char *user)
{
    struct passwd *pw;

    if ((pw = user_lookup(user)) == NULL)
        return TN_ERR_CONFIG;
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0 || setgroups(0, NULL) != 0 ||
        setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0 ||
        prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) {
        tn_log_warn("user: cannot become %s (uid %u)", user, (unsigned)pw->pw_uid);
        return -errno;
    }
    return 0;
}

int
privs_keep_net(const char *user)
{
    uint64_t have = 0;
    int cap, last = cap_last();

    if (caps_get(&have) != 0) {
        tn_log_warn("capget");
        return -errno;
    }
    /* With --udp on the client cannot get here without CAP_NET_RAW: its raw sockets are open.
     * Without it, TCP needs only CAP_NET_ADMIN, unless iptables is the legacy backend, whose
     * library talks to the kernel through a raw socket. */
    if (!((have >> CAP_NET_ADMIN) & 1))
        tn_log_warnx("privileges: CAP_NET_ADMIN is missing: the rules cannot be changed, not "
                     "even removed at exit (run as root, or give the client the capability)");
    else if (!((have >> CAP_NET_RAW) & 1))
        tn_log_warnx("privileges: CAP_NET_RAW is missing: an iptables of the legacy backend "
                     "could not change the rules (nf_tables needs CAP_NET_ADMIN only)");
    /* The bounding set first, while CAP_SETPCAP is still ours: nothing executed later (the
     * iptables-restore we spawn) can get any other capability back. */
    for (cap = 0; cap <= last; cap++) {
        if ((KEEP >> cap) & 1)
            continue;
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL &&
            (have >> CAP_SETPCAP) & 1) {
            tn_log_warn("privileges: cannot drop capability %d from the bounding set", cap);
            return -errno;
        }
    }
    if (user != NULL && become(user) != 0)
        return TN_ERR_CONFIG;
    if (caps_set(have & KEEP) != 0) {
        tn_log_warn("privileges: capset");
        return -errno;
    }
    /* Ambient: iptables-restore, spawned without root, still gets the two. */
    for (cap = 0; cap <= last; cap++) {
        if (((have & KEEP) >> cap) & 1 &&
            prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) != 0) {
            tn_log_warn("privileges: cannot make capability %d ambient", cap);
            return -errno;
        }
    }
    /* No set-uid program we might start can give back what was dropped. */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        tn_log_warn("privileges: PR_SET_NO_NEW_PRIVS");
        return -errno;
    }
    tn_log_info("privileges: running as uid %u with %s", (unsigned)getuid(),
                (have & KEEP) == KEEP         ? "CAP_NET_ADMIN and CAP_NET_RAW only"
                : (have >> CAP_NET_ADMIN) & 1 ? "CAP_NET_ADMIN only"
                : (have >> CAP_NET_RAW) & 1   ? "CAP_NET_RAW only"
                                              : "no capability");
    return 0;
}
