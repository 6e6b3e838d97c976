/* SPDX-License-Identifier: MIT */
/* The client's netfilter rules: a chain of our own in the nat table, reached from OUTPUT, that
 * REDIRECTs TCP to the intercepted networks to our listener, and one in mangle that sends their
 * UDP and ICMP echo to NFQUEUE; in gateway mode PREROUTING reaches them too.  The same in
 * ip6tables for IPv6 networks.  Each chain is installed atomically with iptables-restore
 * --noflush, the interception all or nothing as a set; removed by deleting every jump to the
 * chains and the chains. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"
#include "tn/addr.h"
#include "tn/err.h"
#include "tn/log.h"
#include "tn/util.h"

#define CHAIN    "TUNNEL_CLIENT"
#define CHAIN_FC "TUNNEL_CLIENT_FC" /* fail closed: rejects what the tunnel does not carry */
#define CHAIN_Q  "TUNNEL_CLIENT_Q"  /* UDP and ICMP echo to NFQUEUE */
#define COMMENT  "tunnel-client"

extern char **environ;

/* Runs |argv| (no shell) with |input| on its standard input; its output goes to our stderr
 * when |is_loud|, otherwise nowhere.  Returns the exit status, or -errno. */
static int
run(char *const argv[], const char *input, bool is_loud)
{
    posix_spawn_file_actions_t fa;
    int in[2], status, r;
    size_t off, len;
    ssize_t k;
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
    for (off = 0, len = input != NULL ? strlen(input) : 0; off < len; off += (size_t)k) {
        if ((k = write(in[1], input + off, len - off)) < 0 && errno == EINTR) {
            k = 0; /* a signal: a long rule set is written on, never cut short */
        } else if (k < 0) {
            tn_log_warn("writing to %s", argv[0]);
            break;
        }
    }
    close(in[1]);
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return -errno;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* iptables or ip6tables: the tools and what differs in the rules. */
struct family {
    int af;
    const char *tables, *restore;
    unsigned host_prefix;
    const char *unreachable; /* REJECT --reject-with for what is not TCP */
    const char *echo;        /* matches an echo request */
};

static const struct family ip4 = { AF_INET,
                                   "iptables",
                                   "iptables-restore",
                                   32,
                                   "icmp-port-unreachable",
                                   "-p icmp -m icmp --icmp-type 8" };
static const struct family ip6 = { AF_INET6,
                                   "ip6tables",
                                   "ip6tables-restore",
                                   128,
                                   "icmp6-port-unreachable",
                                   "-p ipv6-icmp -m icmp6 --icmpv6-type 128" };

/* One chain of ours, reached by one jump from a built-in chain (and in gateway mode one more,
 * for what the host forwards). */
struct chain {
    const char *table, *name, *from;
    const char *match;        /* what the jump matches, before "-m comment" */
    const char *gateway_from; /* the built-in chain forwarded traffic passes */
};

static const struct chain redirect_chain = { "nat", CHAIN, "OUTPUT", "-p tcp", "PREROUTING" };
static const struct chain reject_chain = { "filter", CHAIN_FC, "OUTPUT", "", "FORWARD" };
/* mangle OUTPUT comes before nat and filter OUTPUT: what we queue (and drop once carried) meets
 * neither the redirect nor the fail-closed rules.  The replies we inject carry our mark. */
static const struct chain queue_chain = { "mangle", CHAIN_Q, "OUTPUT",
                                          "-m mark ! --mark " TN_STR(CLIENT_MARK), "PREROUTING" };

/* "iptables -w -t TABLE OP FROM MATCH... -m comment --comment COMMENT -j CHAIN" for the jump from
 * |from| to |c| into |argv| (24 entries), its words in |match|. */
static void
jump_argv(const struct family *fam, const struct chain *c, const char *op, const char *from,
          char *argv[24], char match[64])
{
    char *save, *word;
    int n = 0;

    argv[n++] = (char *)(uintptr_t)fam->tables;
    argv[n++] = "-w";
    argv[n++] = "-t";
    argv[n++] = (char *)(uintptr_t)c->table;
    argv[n++] = (char *)(uintptr_t)op;
    argv[n++] = (char *)(uintptr_t)from;
    snprintf(match, 64, "%s", c->match);
    for (word = strtok_r(match, " ", &save); word != NULL; word = strtok_r(NULL, " ", &save))
        argv[n++] = word;
    argv[n++] = "-m";
    argv[n++] = "comment";
    argv[n++] = "--comment";
    argv[n++] = COMMENT;
    argv[n++] = "-j";
    argv[n++] = (char *)(uintptr_t)c->name;
    argv[n] = NULL;
}

/* Whether the jump from |from| to |c| is there (iptables -C). */
static bool
jump_exists(const struct family *fam, const struct chain *c, const char *from)
{
    char *argv[24], match[64];

    jump_argv(fam, c, "-C", from, argv, match);
    return run(argv, NULL, false) == 0;
}

/* Writes the jump from |from| to |c| for iptables-restore, unless it is there already: the
 * restore replaces the chain's rules, but an -A of the jump would add one more each time (a
 * reload, a start over stale rules), and removing it first would let traffic pass unseen. */
static void
jump_append(FILE *f, const struct family *fam, const struct chain *c, const char *from)
{
    char *argv[24], match[64];
    int i;

    if (jump_exists(fam, c, from))
        return;
    jump_argv(fam, c, "-A", from, argv, match); /* the same rule as -C and -D see */
    for (i = 4; argv[i] != NULL; i++)           /* after "iptables -w -t TABLE" */
        fprintf(f, "%s%s", argv[i], argv[i + 1] != NULL ? " " : "\n");
}

/* Adds |c| holding |body| and its jumps, atomically (iptables-restore --noflush replaces the
 * chain if it exists).  Returns 0 or TN_ERR_CONFIG (logged). */
static int
chain_install(const struct family *fam, const struct chain *c, const char *body, bool is_gateway)
{
    char *const argv[] = { (char *)(uintptr_t)fam->restore, "-w", "--noflush", NULL };
    char *text = NULL;
    size_t len = 0;
    FILE *f;
    int r;

    if ((f = open_memstream(&text, &len)) == NULL)
        return -errno;
    fprintf(f, "*%s\n:%s - [0:0]\n%s", c->table, c->name, body);
    jump_append(f, fam, c, c->from);
    if (is_gateway)
        jump_append(f, fam, c, c->gateway_from);
    fprintf(f, "COMMIT\n");
    if (fclose(f) != 0) {
        free(text);
        return -ENOMEM;
    }
    tn_log_info("[#] %s --noflush <<EOF\n%sEOF", fam->restore, text);
    r = run(argv, text, true);
    free(text);
    if (r != 0) {
        tn_log(TN_LOG_ERR, "%s failed (status %d): rules not installed", fam->restore, r);
        return TN_ERR_CONFIG;
    }
    return 0;
}

/* Removes every jump from |from| to |c| (a killed run or an older version may have left
 * several).  Returns how many went. */
static int
jumps_remove(const struct family *fam, const struct chain *c, const char *from)
{
    char *argv[24], match[64];
    int removed = 0;

    jump_argv(fam, c, "-D", from, argv, match);
    while (removed < 4096 && run(argv, NULL, false) == 0) /* bounded all the same */
        removed++;
    return removed;
}

/* Removes every jump to |c| and |c|.  Returns how many rules and chains went. */
static int
chain_remove(const struct family *fam, const struct chain *c)
{
    char *const flush[] = {
        (char *)(uintptr_t)fam->tables, "-w", "-t", (char *)(uintptr_t)c->table, "-F",
        (char *)(uintptr_t)c->name,     NULL
    };
    char *const del[] = {
        (char *)(uintptr_t)fam->tables, "-w", "-t", (char *)(uintptr_t)c->table, "-X",
        (char *)(uintptr_t)c->name,     NULL
    };
    int removed = jumps_remove(fam, c, c->from) + jumps_remove(fam, c, c->gateway_from);

    if (run(flush, NULL, false) == 0 && run(del, NULL, false) == 0)
        removed++;
    if (removed > 0)
        tn_log_info("[#] %s -t %s -D %s ... -j %s; -F/-X %s (%d removed)", fam->tables, c->table,
                    c->from, c->name, c->name, removed);
    return removed;
}

/* "-A CHAIN -d RELAY/32 -p tcp --dport PORT ... -j RETURN" for each relay: our own connections
 * to the relays must never be redirected nor rejected. */
static void
relay_exceptions(FILE *f, const struct family *fam, const char *chain, const struct nf_rules *rules)
{
    char relay[TN_ADDR_STRLEN];
    struct tn_ip rip;
    unsigned rport;
    size_t i;

    for (i = 0; i < rules->nrelays; i++) {
        if (tn_addr_to_ip((const struct sockaddr *)&rules->relays[i], &rip, &rport) != 0 ||
            rip.family != fam->af)
            continue;
        fprintf(f, "-A %s -d %s/%u -p tcp --dport %u -m comment --comment " COMMENT " -j RETURN\n",
                chain, tn_ip_format(&rip, relay, sizeof(relay)), fam->host_prefix, rport);
    }
}

/* "-A CHAIN -d NET -j RETURN" for each excluded range: kept local, before any REDIRECT or
 * REJECT of the networks that contain it.  This host's own addresses, loopback included, come
 * first: they are served here (the client's own admin port too), whatever --cidr covers
 * (0.0.0.0/0, ::/0). */
static void
exclusions(FILE *f, const struct family *fam, const char *chain, const struct nf_rules *rules)
{
    char net[TN_CIDR_STRLEN];
    size_t i;

    fprintf(f, "-A %s -m addrtype --dst-type LOCAL -m comment --comment " COMMENT " -j RETURN\n",
            chain);
    for (i = 0; rules->excludes != NULL && i < rules->excludes->n; i++) {
        if (rules->excludes->v[i].ip.family != fam->af)
            continue;
        fprintf(f, "-A %s -d %s -m comment --comment " COMMENT " -j RETURN\n", chain,
                tn_cidr_format(&rules->excludes->v[i], net, sizeof(net)));
    }
}

/* REDIRECT to our listener: what the tunnel carries. */
static void
redirect_rules(FILE *f, const struct family *fam, const char *net, const struct nf_rules *rules)
{
    (void)fam;
    fprintf(
        f, "-A " CHAIN " -d %s -p tcp -m comment --comment " COMMENT " -j REDIRECT --to-ports %u\n",
        net, rules->port);
}

/* UDP and ICMP echo requests to NFQUEUE, where the client takes them. */
static void
queue_rules(FILE *f, const struct family *fam, const char *net, const struct nf_rules *rules)
{
    fprintf(f,
            "-A " CHAIN_Q " -d %s -p udp -m comment --comment " COMMENT
            " -j NFQUEUE --queue-num %d\n"
            "-A " CHAIN_Q " -d %s %s -m comment --comment " COMMENT " -j NFQUEUE --queue-num %d\n",
            net, rules->queue, net, fam->echo, rules->queue);
}

/* Redirected connections reach filter OUTPUT already rewritten to our listener: only what the
 * tunnel does not carry (it is down, or not running) still has these destinations. */
static void
reject_rules(FILE *f, const struct family *fam, const char *net, const struct nf_rules *rules)
{
    (void)rules;
    fprintf(f,
            "-A " CHAIN_FC " -d %s -p tcp -m comment --comment " COMMENT
            " -j REJECT --reject-with tcp-reset\n"
            "-A " CHAIN_FC " -d %s -m comment --comment " COMMENT " -j REJECT --reject-with %s\n",
            net, net, fam->unreachable);
}

typedef void per_net_fn(FILE *f, const struct family *fam, const char *net,
                        const struct nf_rules *rules);

/* Installs chain |c| for |fam|: the relays' exceptions, the exclusions, then |per_net| for each
 * intercepted network of that family.  IPv6 chains exist only when an IPv6 network is
 * intercepted (a host without ip6tables can still use IPv4). */
static int
chain_fill_family(const struct family *fam, const struct chain *c, const struct nf_rules *rules,
                  per_net_fn *per_net)
{
    char *text = NULL, net[TN_CIDR_STRLEN];
    size_t len = 0, i;
    FILE *f;
    int r;

    if (fam->af == AF_INET6 && !client_has_family(rules->cidrs, AF_INET6)) {
        chain_remove(fam, c);
        return 0;
    }
    if ((f = open_memstream(&text, &len)) == NULL)
        return -errno;
    relay_exceptions(f, fam, c->name, rules);
    exclusions(f, fam, c->name, rules);
    for (i = 0; i < rules->cidrs->n; i++) {
        if (rules->cidrs->v[i].ip.family == fam->af)
            per_net(f, fam, tn_cidr_format(&rules->cidrs->v[i], net, sizeof(net)), rules);
    }
    if (fclose(f) != 0) {
        free(text);
        return -ENOMEM;
    }
    r = chain_install(fam, c, text, rules->is_gateway);
    free(text);
    return r;
}

static int
chain_fill(const struct chain *c, const struct nf_rules *rules, per_net_fn *per_net)
{
    int r = chain_fill_family(&ip4, c, rules, per_net);

    return r != 0 ? r : chain_fill_family(&ip6, c, rules, per_net);
}

static int
chain_remove_all(const struct chain *c)
{
    return chain_remove(&ip4, c) + chain_remove(&ip6, c);
}

int
nf_rules_install(const struct nf_rules *rules)
{
    int r = chain_fill(&redirect_chain, rules, redirect_rules);

    if (r == 0 && rules->queue >= 0)
        r = chain_fill(&queue_chain, rules, queue_rules);
    else if (r == 0)
        chain_remove_all(&queue_chain);
    if (r != 0)
        nf_rules_remove(); /* all or nothing: no half of the rules outlives a failure */
    return r;
}

int
nf_rules_remove(void)
{
    return chain_remove_all(&redirect_chain) + chain_remove_all(&queue_chain);
}

int
nf_fail_closed_install(const struct nf_rules *rules)
{
    return chain_fill(&reject_chain, rules, reject_rules);
}

int
nf_fail_closed_remove(void)
{
    return chain_remove_all(&reject_chain);
}
