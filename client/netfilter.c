/* SPDX-License-Identifier: MIT */
/* The client's netfilter rules: one chain of our own in the nat table, reached from OUTPUT,
 * that REDIRECTs TCP to the intercepted networks to our listener.  Installed atomically with
 * iptables-restore --noflush; removed by deleting every jump to the chain and the chain. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"
#include "tn/addr.h"
#include "tn/err.h"
#include "tn/log.h"

#define CHAIN   "TUNNEL_CLIENT"
#define COMMENT "tunnel-client"

extern char **environ;

/* Runs |argv| (no shell) with |input| on its standard input; its output goes to our stderr
 * when |is_loud|, otherwise nowhere.  Returns the exit status, or -errno. */
static int
run(char *const argv[], const char *input, bool is_loud)
{
    posix_spawn_file_actions_t fa;
    int in[2], status, r;
    pid_t pid;

    if (pipe2(in, O_CLOEXEC) < 0)
        return -errno;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    if (!is_loud) {
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    }
    r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    if (r != 0) {
        close(in[1]);
        tn_log_warnx("cannot run %s: %s", argv[0], strerror(r));
        return -r;
    }
    if (input != NULL && write(in[1], input, strlen(input)) < 0)
        tn_log_warn("writing to %s", argv[0]);
    close(in[1]);
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return -errno;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

int
nf_rules_install(const struct nf_rules *rules)
{
    char *const argv[] = { "iptables-restore", "--noflush", NULL };
    char *text = NULL, relay[TN_ADDR_STRLEN], net[TN_CIDR_STRLEN];
    struct tn_ip rip;
    unsigned rport;
    size_t len = 0, i;
    FILE *f;
    int r;

    if ((f = open_memstream(&text, &len)) == NULL)
        return -errno;
    fprintf(f, "*nat\n:" CHAIN " - [0:0]\n");
    /* Our own connections to the relays must never loop back into the tunnel. */
    for (i = 0; i < rules->nrelays; i++) {
        if (tn_addr_to_ip((const struct sockaddr *)&rules->relays[i], &rip, &rport) != 0 ||
            rip.family != AF_INET)
            continue;
        fprintf(f,
                "-A " CHAIN " -d %s/32 -p tcp --dport %u -m comment --comment " COMMENT
                " -j RETURN\n",
                tn_ip_format(&rip, relay, sizeof(relay)), rport);
    }
    for (i = 0; i < rules->cidrs->n; i++) {
        if (rules->cidrs->v[i].ip.family != AF_INET)
            continue; /* TODO(#6): IPv6 through ip6tables */
        fprintf(f,
                "-A " CHAIN " -d %s -p tcp -m comment --comment " COMMENT
                " -j REDIRECT --to-ports %u\n",
                tn_cidr_format(&rules->cidrs->v[i], net, sizeof(net)), rules->port);
    }
    fprintf(f, "-A OUTPUT -p tcp -m comment --comment " COMMENT " -j " CHAIN "\nCOMMIT\n");
    if (fclose(f) != 0) {
        free(text);
        return -ENOMEM;
    }
    tn_log_info("[#] iptables-restore --noflush <<EOF\n%sEOF", text);
    r = run(argv, text, true);
    free(text);
    if (r != 0) {
        tn_log_warnx("iptables-restore failed (status %d): rules not installed", r);
        return TN_ERR_CONFIG;
    }
    return 0;
}

int
nf_rules_remove(void)
{
    char *const del_jump[] = { "iptables",  "-w",    "-t",  "nat", "-D",
                               "OUTPUT",    "-p",    "tcp", "-m",  "comment",
                               "--comment", COMMENT, "-j",  CHAIN, NULL };
    char *const flush[] = { "iptables", "-w", "-t", "nat", "-F", CHAIN, NULL };
    char *const del_chain[] = { "iptables", "-w", "-t", "nat", "-X", CHAIN, NULL };
    int removed = 0, i;

    /* A killed run may have left several jumps; each -D removes one.  Bounded. */
    for (i = 0; i < 64 && run(del_jump, NULL, false) == 0; i++)
        removed++;
    if (run(flush, NULL, false) == 0 && run(del_chain, NULL, false) == 0)
        removed++;
    if (removed > 0)
        tn_log_info("[#] iptables -t nat -D OUTPUT ... -j " CHAIN "; -F/-X " CHAIN " (%d removed)",
                    removed);
    return removed;
}
