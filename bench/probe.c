/* SPDX-License-Identifier: MIT */
/* probe: the TCP end points of the benchmark (bench/run.sh runs them inside its namespaces).
 *
 *   probe echo-server PORT [-b ADDR]
 *       epoll echo server on ADDR:PORT (default all addresses); runs until killed.
 *   probe rtt HOST PORT [-n N] [-s SIZE] [-w WARMUP] [-t SECONDS]
 *       one connection: WARMUP untimed, then N timed round trips of SIZE bytes.
 *   probe ttfb HOST PORT [-n N] [-s SIZE] [-t SECONDS]
 *       N new connections, each timed from socket() until its first SIZE bytes came back.
 *   probe hold HOST PORT [-c CONNS] [-r ROUNDS] [-R RATE] [-p SECONDS] [-t SECONDS]
 *       opens CONNS connections, at most RATE per second, and keeps them all open; then
 *       ROUNDS times sends SIZE (64) bytes on every connection and counts the echoes. With -p,
 *       after the first round it writes "holding OPEN pid PID" to stderr and waits up to that
 *       many seconds, or until SIGUSR1, so that the caller can look at the tunnel meanwhile.
 *
 * Every client command stops at its time limit (-t) and prints one JSON object on stdout
 * (times in microseconds, "complete": false when it stopped early or something failed); the
 * exit status is 0 only when everything asked for was done. Bad usage exits 2.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SIZE     65536 /* rtt and ttfb write the whole message before reading */
#define ECHO_BUF     (64 * 1024)
#define HOLD_MSG     64
#define MAX_INFLIGHT 256

static const char *prog = "probe";

static void
usage(void)
{
    fprintf(stderr,
            "usage: %s echo-server PORT [-b ADDR]\n"
            "       %s rtt HOST PORT [-n N] [-s SIZE] [-w WARMUP] [-t SECONDS]\n"
            "       %s ttfb HOST PORT [-n N] [-s SIZE] [-t SECONDS]\n"
            "       %s hold HOST PORT [-c CONNS] [-r ROUNDS] [-R RATE] [-p SECONDS] "
            "[-t SECONDS]\n",
            prog, prog, prog, prog);
    exit(2);
}

static void
bad(const char *what, const char *value)
{
    fprintf(stderr, "%s: bad %s '%s'\n", prog, what, value);
    exit(2);
}

/* ------------------------------------------------------------------------------ helpers */

static double
now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static long
parse_long(const char *s, long min, long max, const char *what)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        bad(what, s);
    return v;
}

static double
parse_seconds(const char *s, const char *what)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v > 0) || v > 86400)
        bad(what, s);
    return v;
}

static void
parse_addr(const char *host, const char *port, struct sockaddr_in *sa)
{
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)parse_long(port, 1, 65535, "port"));
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
        bad("IPv4 address", host);
}

/* Soft RLIMIT_NOFILE up to the hard one; returns the limit now in force. */
static long
raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    return (long)rl.rlim_cur;
}

static void
set_nodelay(int fd)
{
    int one = 1;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int
ms_until(double deadline)
{
    double left = (deadline - now_us()) / 1000.0;

    if (left <= 0)
        return 0;
    if (left > 1000.0)
        return 1000;
    return (int)ceil(left);
}

/* A connected non-blocking socket, or -1 with errno set (ETIMEDOUT at the deadline). */
static int
dial(const struct sockaddr_in *sa, double deadline)
{
    int fd, err = 0;
    socklen_t len = sizeof(err);

    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    set_nodelay(fd);
    if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0)
        return fd;
    if (errno != EINPROGRESS)
        goto fail;
    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        int r = poll(&p, 1, ms_until(deadline));

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            goto fail;
        if (r == 1)
            break;
        if (now_us() >= deadline) {
            errno = ETIMEDOUT;
            goto fail;
        }
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        goto fail;
    if (err != 0) {
        errno = err;
        goto fail;
    }
    return fd;
fail:
    err = errno;
    close(fd);
    errno = err;
    return -1;
}

/* Write (is_write) or read exactly len bytes before the deadline; 0, or -1 with errno
 * (ETIMEDOUT, ECONNRESET for an early end of stream). */
static int
transfer(int fd, char *buf, size_t len, double deadline, bool is_write)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = is_write ? send(fd, buf + done, len - done, MSG_NOSIGNAL)
                             : recv(fd, buf + done, len - done, 0);

        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n == 0) {
            errno = ECONNRESET;
            return -1;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        if (now_us() >= deadline) {
            errno = ETIMEDOUT;
            return -1;
        }
        struct pollfd p = { .fd = fd, .events = is_write ? POLLOUT : POLLIN };
        if (poll(&p, 1, ms_until(deadline)) < 0 && errno != EINTR)
            return -1;
    }
    return 0;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array. */
static double
pct(const double *v, size_t n, double q)
{
    size_t rank;

    if (n == 0)
        return 0;
    rank = (size_t)ceil(q * (double)n);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return v[rank - 1];
}

/* Prints "p50_us":..,..."max_us":.. of n samples (sorted in place), without braces. */
static void
print_stats(double *v, size_t n)
{
    double sum = 0;

    qsort(v, n, sizeof(*v), cmp_double);
    for (size_t i = 0; i < n; i++)
        sum += v[i];
    printf("\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"min_us\":%.1f,\"max_us\":%.1f,"
           "\"mean_us\":%.1f",
           pct(v, n, 0.50), pct(v, n, 0.90), pct(v, n, 0.99), n ? v[0] : 0, n ? v[n - 1] : 0,
           n ? sum / (double)n : 0);
}

/* JSON string without escapes beyond the basics (error texts are plain ASCII). */
static void
print_str(const char *key, const char *s)
{
    printf("\"%s\":\"", key);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            putchar('\\');
        if ((unsigned char)*s >= 0x20)
            putchar(*s);
    }
    putchar('"');
}

struct opts {
    long n, size, warmup, conns, rounds, rate;
    double limit_s, pause_s;
    const char *bind;
    const char *pos[2];
    int npos;
};

/* Options may come before, between or after the positional arguments (GNU getopt
 * permutes); argv[0] is the subcommand. */
static void
parse_opts(int argc, char **argv, struct opts *o)
{
    int c;

    optind = 1;
    while ((c = getopt(argc, argv, "n:s:w:t:c:r:R:p:b:")) != -1) {
        switch (c) {
        case 'n':
            o->n = parse_long(optarg, 1, 100000000, "-n");
            break;
        case 's':
            o->size = parse_long(optarg, 1, MAX_SIZE, "-s");
            break;
        case 'w':
            o->warmup = parse_long(optarg, 0, 100000000, "-w");
            break;
        case 't':
            o->limit_s = parse_seconds(optarg, "-t");
            break;
        case 'c':
            o->conns = parse_long(optarg, 1, 1000000, "-c");
            break;
        case 'r':
            o->rounds = parse_long(optarg, 1, 1000, "-r");
            break;
        case 'R':
            o->rate = parse_long(optarg, 1, 1000000, "-R");
            break;
        case 'p':
            o->pause_s = parse_seconds(optarg, "-p");
            break;
        case 'b':
            o->bind = optarg;
            break;
        default:
            usage();
        }
    }
    while (optind < argc) {
        if (o->npos >= 2)
            usage();
        o->pos[o->npos++] = argv[optind++];
    }
}

/* ------------------------------------------------------------------------------ echo-server */

struct echo_conn {
    int fd;
    char *pending; /* bytes the socket did not take yet */
    size_t plen, poff;
};

static char echo_buf[ECHO_BUF];

static void
echo_close(int ep, struct echo_conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->pending);
    free(c);
}

/* Sends what is pending; 1 when all went, 0 when the socket is full, -1 on error. */
static int
echo_flush(struct echo_conn *c)
{
    while (c->poff < c->plen) {
        ssize_t n = send(c->fd, c->pending + c->poff, c->plen - c->poff, MSG_NOSIGNAL);

        if (n > 0) {
            c->poff += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        return -1;
    }
    free(c->pending);
    c->pending = NULL;
    c->plen = c->poff = 0;
    return 1;
}

/* Reads and echoes; returns -1 when the connection is to be closed. */
static int
echo_readable(int ep, struct echo_conn *c)
{
    for (int i = 0; i < 8; i++) { /* bounded, so one busy connection cannot starve others */
        ssize_t n = recv(c->fd, echo_buf, sizeof(echo_buf), 0), w;

        if (n == 0)
            return -1;
        if (n < 0)
            return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
        w = send(c->fd, echo_buf, (size_t)n, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return -1;
        if (w < 0)
            w = 0;
        if (w < n) {
            struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };

            c->plen = (size_t)(n - w);
            c->poff = 0;
            c->pending = malloc(c->plen);
            if (c->pending == NULL)
                return -1;
            memcpy(c->pending, echo_buf + w, c->plen);
            /* Stop reading until the peer takes what it sent: backpressure, bounded memory. */
            return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        }
    }
    return 0;
}

static int
cmd_echo_server(int argc, char **argv)
{
    struct opts o = { 0 };
    struct sockaddr_in sa;
    struct epoll_event ev, evs[256];
    int lfd, ep, one = 1;
    bool listening = true;
    double resume_at = 0;
    long nofile;

    parse_opts(argc, argv, &o);
    if (o.npos != 1)
        usage();
    parse_addr(o.bind ? o.bind : "0.0.0.0", o.pos[0], &sa);
    nofile = raise_nofile();
    signal(SIGPIPE, SIG_IGN);

    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 4096) != 0) {
        fprintf(stderr, "%s: listen on %s:%s: %s\n", prog, o.bind ? o.bind : "*", o.pos[0],
                strerror(errno));
        return 1;
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    ev = (struct epoll_event){ .events = EPOLLIN, .data.ptr = NULL };
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) != 0) {
        fprintf(stderr, "%s: epoll: %s\n", prog, strerror(errno));
        return 1;
    }
    printf("{\"cmd\":\"echo-server\",\"port\":%u,\"nofile\":%ld}\n", ntohs(sa.sin_port), nofile);
    fflush(stdout);

    for (;;) {
        int timeout = -1, n;

        if (!listening) {
            timeout = ms_until(resume_at);
            if (timeout == 0) {
                ev = (struct epoll_event){ .events = EPOLLIN, .data.ptr = NULL };
                epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
                listening = true;
                timeout = -1;
            }
        }
        n = epoll_wait(ep, evs, 256, timeout);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "%s: epoll_wait: %s\n", prog, strerror(errno));
            return 1;
        }
        for (int i = 0; i < n; i++) {
            struct echo_conn *c = evs[i].data.ptr;

            if (c == NULL) {
                for (;;) {
                    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

                    if (fd < 0) {
                        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                            errno == ENOMEM) {
                            /* Out of descriptors: stop accepting for a moment, no busy loop. */
                            fprintf(stderr, "%s: accept: %s\n", prog, strerror(errno));
                            epoll_ctl(ep, EPOLL_CTL_DEL, lfd, NULL);
                            listening = false;
                            resume_at = now_us() + 100000;
                        }
                        break;
                    }
                    set_nodelay(fd);
                    c = calloc(1, sizeof(*c));
                    if (c == NULL) {
                        close(fd);
                        continue;
                    }
                    c->fd = fd;
                    ev = (struct epoll_event){ .events = EPOLLIN, .data.ptr = c };
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
                        close(fd);
                        free(c);
                    }
                }
                continue;
            }
            if (evs[i].events & EPOLLOUT) {
                int r = echo_flush(c);

                if (r < 0) {
                    echo_close(ep, c);
                } else if (r > 0) {
                    ev = (struct epoll_event){ .events = EPOLLIN, .data.ptr = c };
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                }
                continue;
            }
            if ((evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && echo_readable(ep, c) < 0)
                echo_close(ep, c);
        }
    }
}

/* ------------------------------------------------------------------------------ rtt, ttfb */

/* What rtt and ttfb share: options, the target, a latency array of o->n and a buffer of
 * o->size bytes of |fill|.  Returns 0, or 2 when out of memory (reported). */
static int
measure_setup(int argc, char **argv, struct opts *o, struct sockaddr_in *sa, double **lat,
              char **buf, char fill)
{
    parse_opts(argc, argv, o);
    if (o->npos != 2)
        usage();
    parse_addr(o->pos[0], o->pos[1], sa);
    signal(SIGPIPE, SIG_IGN);
    *lat = calloc((size_t)o->n, sizeof(**lat));
    *buf = malloc((size_t)o->size);
    if (*lat == NULL || *buf == NULL) {
        free(*lat);
        free(*buf);
        fprintf(stderr, "%s: out of memory\n", prog);
        return 2;
    }
    memset(*buf, fill, (size_t)o->size);
    return 0;
}

static int
cmd_rtt(int argc, char **argv)
{
    struct opts o = { .n = 1000, .size = 64, .warmup = 0, .limit_s = 20 };
    struct sockaddr_in sa;
    double deadline, *lat;
    char *buf;
    long done = 0;
    const char *err = NULL;
    int fd;

    if (measure_setup(argc, argv, &o, &sa, &lat, &buf, 'r') != 0)
        return 2;
    deadline = now_us() + o.limit_s * 1e6;

    fd = dial(&sa, deadline);
    if (fd < 0)
        err = strerror(errno);
    for (long i = 0; fd >= 0 && i < o.warmup + o.n; i++) {
        double t0 = now_us();

        if (transfer(fd, buf, (size_t)o.size, deadline, true) != 0 ||
            transfer(fd, buf, (size_t)o.size, deadline, false) != 0) {
            err = strerror(errno);
            break;
        }
        if (i >= o.warmup)
            lat[done++] = now_us() - t0;
    }
    if (fd >= 0)
        close(fd);

    printf("{\"cmd\":\"rtt\",\"n\":%ld,\"size\":%ld,\"warmup\":%ld,\"done\":%ld,"
           "\"complete\":%s,",
           o.n, o.size, o.warmup, done, done == o.n ? "true" : "false");
    print_stats(lat, (size_t)done);
    if (err != NULL) {
        putchar(',');
        print_str("error", err);
    }
    printf("}\n");
    free(lat);
    free(buf);
    return done == o.n ? 0 : 1;
}

static int
cmd_ttfb(int argc, char **argv)
{
    struct opts o = { .n = 100, .size = 64, .limit_s = 20 };
    struct sockaddr_in sa;
    double deadline, *lat;
    char *buf, first_err[128] = "";
    long done = 0, failed = 0;

    if (measure_setup(argc, argv, &o, &sa, &lat, &buf, 't') != 0)
        return 2;
    deadline = now_us() + o.limit_s * 1e6;

    for (long i = 0; i < o.n && now_us() < deadline; i++) {
        double t0 = now_us();
        int fd = dial(&sa, deadline);

        if (fd >= 0 && transfer(fd, buf, (size_t)o.size, deadline, true) == 0 &&
            transfer(fd, buf, (size_t)o.size, deadline, false) == 0) {
            lat[done++] = now_us() - t0;
        } else {
            if (failed++ == 0)
                snprintf(first_err, sizeof(first_err), "%s", strerror(errno));
        }
        if (fd >= 0)
            close(fd);
    }

    printf("{\"cmd\":\"ttfb\",\"n\":%ld,\"size\":%ld,\"done\":%ld,\"failed\":%ld,"
           "\"complete\":%s,",
           o.n, o.size, done, failed, done == o.n ? "true" : "false");
    print_stats(lat, (size_t)done);
    if (first_err[0] != '\0') {
        putchar(',');
        print_str("error", first_err);
    }
    printf("}\n");
    free(lat);
    free(buf);
    return done == o.n ? 0 : 1;
}

/* ------------------------------------------------------------------------------ hold */

enum hold_state {
    H_CONNECTING,
    H_OPEN,
    H_DEAD
};

struct hold_conn {
    int fd;
    unsigned char state;
    bool answered;
    uint16_t got;
};

struct hold {
    struct hold_conn *c;
    long n, open, pending, failed, dropped;
    int ep;
    char first_err[128];
};

static void
hold_fail(struct hold *h, long i, int err)
{
    struct hold_conn *c = &h->c[i];

    if (h->first_err[0] == '\0')
        snprintf(h->first_err, sizeof(h->first_err), "%s", strerror(err));
    if (c->fd >= 0) {
        epoll_ctl(h->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    if (c->state == H_CONNECTING) {
        h->pending--;
        h->failed++;
    } else if (c->state == H_OPEN) {
        h->open--;
        h->dropped++;
    }
    c->state = H_DEAD;
}

/* One epoll event on connection i during the connect phase or a round; returns true when
 * the connection has just answered (HOLD_MSG bytes back). */
static bool
hold_event(struct hold *h, long i, uint32_t events)
{
    struct hold_conn *c = &h->c[i];
    char buf[512];

    if (c->state == H_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.u64 = (uint64_t)i };

        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (err == 0 && !(events & EPOLLERR) && epoll_ctl(h->ep, EPOLL_CTL_MOD, c->fd, &ev) == 0) {
            c->state = H_OPEN;
            h->pending--;
            h->open++;
        } else {
            hold_fail(h, i, err ? err : EIO);
        }
        return false;
    }
    if (c->state != H_OPEN)
        return false;
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof(buf), 0);

        if (n > 0) {
            c->got = (uint16_t)(c->got + (n > HOLD_MSG ? HOLD_MSG : n));
            if (c->got >= HOLD_MSG && !c->answered) {
                c->answered = true;
                return true;
            }
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return false;
        /* End of stream or reset: the flow is gone. */
        hold_fail(h, i, n == 0 ? ECONNRESET : errno);
        return false;
    }
}

static volatile sig_atomic_t got_usr1;

static void
on_usr1(int sig)
{
    (void)sig;
    got_usr1 = 1;
}

static int
cmd_hold(int argc, char **argv)
{
    struct opts o = { .conns = 100, .rounds = 2, .rate = 1000, .limit_s = 120 };
    struct sockaddr_in sa;
    struct epoll_event evs[512];
    struct hold h = { 0 };
    double t_start, deadline, connect_s;
    long next = 0, nofile, min_answered = -1;
    bool all_ok;
    char msg[HOLD_MSG];

    parse_opts(argc, argv, &o);
    if (o.npos != 2)
        usage();
    parse_addr(o.pos[0], o.pos[1], &sa);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGUSR1, on_usr1);
    nofile = raise_nofile();
    memset(msg, 'h', sizeof(msg));

    h.n = o.conns;
    h.c = calloc((size_t)h.n, sizeof(*h.c));
    h.ep = epoll_create1(EPOLL_CLOEXEC);
    if (h.c == NULL || h.ep < 0) {
        fprintf(stderr, "%s: %s\n", prog, h.c == NULL ? "out of memory" : strerror(errno));
        return 2;
    }
    for (long i = 0; i < h.n; i++)
        h.c[i] = (struct hold_conn){ .fd = -1, .state = H_DEAD };

    /* Connect phase: paced at RATE per second, at most MAX_INFLIGHT handshakes at once. */
    t_start = now_us();
    deadline = t_start + o.limit_s * 1e6;
    while ((next < h.n || h.pending > 0) && now_us() < deadline) {
        double now = now_us();
        long allowed = (long)((now - t_start) * (double)o.rate / 1e6) + 1;
        int timeout, nev;

        while (next < h.n && next < allowed && h.pending < MAX_INFLIGHT) {
            struct hold_conn *c = &h.c[next];
            int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

            if (fd < 0) {
                if (h.first_err[0] == '\0')
                    snprintf(h.first_err, sizeof(h.first_err), "socket: %s", strerror(errno));
                h.failed++;
                next++;
                continue;
            }
            set_nodelay(fd);
            c->fd = fd;
            c->state = H_CONNECTING;
            h.pending++;
            if (connect(fd, (const struct sockaddr *)&sa, sizeof(sa)) != 0 &&
                errno != EINPROGRESS) {
                hold_fail(&h, next, errno);
            } else {
                struct epoll_event ev = { .events = EPOLLOUT, .data.u64 = (uint64_t)next };

                if (epoll_ctl(h.ep, EPOLL_CTL_ADD, fd, &ev) != 0)
                    hold_fail(&h, next, errno);
            }
            next++;
        }
        if (next < h.n && h.pending < MAX_INFLIGHT)
            timeout = 1; /* pacing */
        else
            timeout = ms_until(deadline) < 100 ? ms_until(deadline) : 100;
        nev = epoll_wait(h.ep, evs, 512, timeout);
        for (int k = 0; k < nev; k++)
            hold_event(&h, (long)evs[k].data.u64, evs[k].events);
    }
    for (long i = 0; i < h.n; i++)
        if (h.c[i].state == H_CONNECTING)
            hold_fail(&h, i, ETIMEDOUT);
    connect_s = (now_us() - t_start) / 1e6;
    if (next < h.n)
        h.failed += h.n - next; /* never tried: out of time */

    printf("{\"cmd\":\"hold\",\"conns\":%ld,\"rate\":%ld,\"nofile\":%ld,\"connected\":%ld,"
           "\"connect_failed\":%ld,\"connect_s\":%.3f,\"rounds\":[",
           h.n, o.rate, nofile, h.open, h.failed, connect_s);

    for (long r = 0; r < o.rounds; r++) {
        long expected = 0, answered = 0, dropped0 = h.dropped;
        double t0 = now_us(), round_deadline = t0 + 30e6, last = t0;

        if (round_deadline > deadline)
            round_deadline = deadline;
        for (long i = 0; i < h.n; i++) {
            struct hold_conn *c = &h.c[i];

            if (c->state != H_OPEN)
                continue;
            c->got = 0;
            c->answered = false;
            if (send(c->fd, msg, sizeof(msg), MSG_NOSIGNAL) != (ssize_t)sizeof(msg)) {
                hold_fail(&h, i, errno ? errno : EIO);
                continue;
            }
            expected++;
        }
        while (answered + (h.dropped - dropped0) < expected && now_us() < round_deadline) {
            int nev = epoll_wait(h.ep, evs, 512, ms_until(round_deadline));

            for (int k = 0; k < nev; k++) {
                if (hold_event(&h, (long)evs[k].data.u64, evs[k].events)) {
                    answered++;
                    last = now_us();
                }
            }
        }
        printf("%s{\"sent\":%ld,\"answered\":%ld,\"lost\":%ld,\"s\":%.3f,\"last_answer_s\":%.3f}",
               r ? "," : "", expected, answered, h.dropped - dropped0, (now_us() - t0) / 1e6,
               (last - t0) / 1e6);
        if (min_answered < 0 || answered < min_answered)
            min_answered = answered;

        if (r == 0 && o.pause_s > 0) {
            double until = now_us() + o.pause_s * 1e6;

            fprintf(stderr, "holding %ld pid %ld\n", h.open, (long)getpid());
            fflush(stderr);
            while (!got_usr1 && now_us() < until && now_us() < deadline)
                usleep(10000);
        }
    }
    all_ok = h.failed == 0 && h.dropped == 0 && min_answered == h.n;
    printf("],\"answered_min\":%ld,\"dropped\":%ld,\"complete\":%s",
           min_answered < 0 ? 0 : min_answered, h.dropped, all_ok ? "true" : "false");
    if (h.first_err[0] != '\0') {
        putchar(',');
        print_str("error", h.first_err);
    }
    printf("}\n");

    for (long i = 0; i < h.n; i++)
        if (h.c[i].fd >= 0)
            close(h.c[i].fd);
    close(h.ep);
    free(h.c);
    return all_ok ? 0 : 1;
}

int
main(int argc, char **argv)
{
    const char *cmd;

    if (argc < 2)
        usage();
    cmd = argv[1];
    argc--;
    argv++;
    if (strcmp(cmd, "echo-server") == 0)
        return cmd_echo_server(argc, argv);
    if (strcmp(cmd, "rtt") == 0)
        return cmd_rtt(argc, argv);
    if (strcmp(cmd, "ttfb") == 0)
        return cmd_ttfb(argc, argv);
    if (strcmp(cmd, "hold") == 0)
        return cmd_hold(argc, argv);
    usage();
    return 2;
}
