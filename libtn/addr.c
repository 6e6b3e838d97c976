/* SPDX-License-Identifier: MIT */
/* Socket addresses and the non-blocking socket set-up every program repeats. */
#include "tn/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tn/cidr.h"
#include "tn/err.h"
#include "tn/log.h"

int
tn_addr_split(const char *hostport, char *host, size_t hostlen, char *port, size_t portlen)
{
    const char *colon, *h = hostport;
    size_t hl;

    if (hostport[0] == '[') {
        const char *end = strchr(hostport, ']');
        if (end == NULL || end[1] != ':')
            return TN_ERR_PARSE;
        h = hostport + 1;
        hl = (size_t)(end - h);
        colon = end + 1;
    } else {
        if ((colon = strrchr(hostport, ':')) == NULL ||
            memchr(hostport, ':', (size_t)(colon - hostport)) != NULL)
            return TN_ERR_PARSE;
        hl = (size_t)(colon - hostport);
    }
    if (hl >= hostlen || strlen(colon + 1) >= portlen || colon[1] == '\0')
        return TN_ERR_PARSE;
    memcpy(host, h, hl);
    host[hl] = '\0';
    strcpy(port, colon + 1);
    return 0;
}

unsigned
tn_addr_parse_port(const char *s)
{
    unsigned long p;
    char *end;

    if (s[0] < '0' || s[0] > '9')
        return 0;
    errno = 0;
    p = strtoul(s, &end, 10);
    return errno != 0 || *end != '\0' || p > 65535 ? 0 : (unsigned)p;
}

int
tn_addr_parse_ip(const char *hostport, struct tn_ip *ip, unsigned *port)
{
    char host[TN_ADDR_STRLEN], portstr[8];

    if (tn_addr_split(hostport, host, sizeof(host), portstr, sizeof(portstr)) != 0 ||
        tn_ip_parse(ip, host) != 0 || (*port = tn_addr_parse_port(portstr)) == 0)
        return TN_ERR_PARSE;
    tn_ip_unmap(ip);
    return 0;
}

int
tn_addr_gai_query(const char *hostport, int flags, char *host, size_t hostlen, char *port,
                  size_t portlen, struct addrinfo *hints)
{
    if (tn_addr_split(hostport, host, hostlen, port, portlen) != 0) {
        tn_log(TN_LOG_ERR, "%s: not HOST:PORT", hostport);
        return TN_ERR_PARSE;
    }
    memset(hints, 0, sizeof(*hints));
    hints->ai_socktype = SOCK_STREAM;
    hints->ai_flags = AI_NUMERICSERV | flags;
    return 0;
}

int
tn_addr_gai_answer(const char *hostport, int e, const struct addrinfo *res,
                   struct sockaddr_storage *out, socklen_t *lens, size_t max)
{
    const struct addrinfo *ai;
    size_t n = 0;

    if (e != 0) {
        if (hostport != NULL)
            tn_log(TN_LOG_ERR, "%s: %s", hostport, gai_strerror(e));
        /* A resolver that cannot answer now may later: only a name it denies is an error of
         * the configuration. */
        return e == EAI_AGAIN || e == EAI_SYSTEM || e == EAI_MEMORY ? -EAGAIN : TN_ERR_PARSE;
    }
    for (ai = res; ai != NULL && n < max; ai = ai->ai_next, n++) {
        memcpy(&out[n], ai->ai_addr, ai->ai_addrlen);
        lens[n] = ai->ai_addrlen;
    }
    return (int)n;
}

int
tn_addr_resolve_all(const char *hostport, bool passive, struct sockaddr_storage *out,
                    socklen_t *lens, size_t max)
{
    struct addrinfo hints, *res = NULL;
    char host[256], port[8];
    int n;

    if (tn_addr_gai_query(hostport, passive ? AI_PASSIVE : 0, host, sizeof(host), port,
                          sizeof(port), &hints) != 0)
        return TN_ERR_PARSE;
    n = getaddrinfo(host[0] != '\0' ? host : NULL, port, &hints, &res);
    n = tn_addr_gai_answer(hostport, n, res, out, lens, max);
    if (res != NULL)
        freeaddrinfo(res);
    return n;
}

int
tn_addr_resolve(const char *hostport, bool passive, struct sockaddr_storage *out, socklen_t *outlen)
{
    int n = tn_addr_resolve_all(hostport, passive, out, outlen, 1);

    return n < 0 ? n : 0;
}

int
tn_addr_resolve_host(const char *host, unsigned port, bool passive, struct sockaddr_storage *out,
                     socklen_t *outlen)
{
    char hostport[300];
    bool is_v6 = strchr(host, ':') != NULL && host[0] != '[';

    if ((size_t)snprintf(hostport, sizeof(hostport), "%s%s%s:%u", is_v6 ? "[" : "", host,
                         is_v6 ? "]" : "", port) >= sizeof(hostport)) {
        tn_log(TN_LOG_ERR, "%.64s...: too long for a host", host);
        return TN_ERR_PARSE;
    }
    return tn_addr_resolve(hostport, passive, out, outlen);
}

char *
tn_addr_format(const struct sockaddr *sa, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN];

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        snprintf(buf, len, "%s:%u", ip, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        snprintf(buf, len, "[%s]:%u", ip, ntohs(in6->sin6_port));
    } else {
        snprintf(buf, len, "(family %d)", sa->sa_family);
    }
    return buf;
}

int
tn_addr_to_ip(const struct sockaddr *sa, struct tn_ip *ip, unsigned *port)
{
    memset(ip, 0, sizeof(*ip));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        ip->family = AF_INET;
        memcpy(ip->bytes, &in->sin_addr, 4);
        *port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        ip->family = AF_INET6;
        memcpy(ip->bytes, &in6->sin6_addr, 16);
        *port = ntohs(in6->sin6_port);
    } else {
        return TN_ERR_PARSE;
    }
    return 0;
}

socklen_t
tn_addr_from_ip(const struct tn_ip *ip, unsigned port, struct sockaddr_storage *out)
{
    memset(out, 0, sizeof(*out));
    if (ip->family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)(void *)out;
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        memcpy(&in->sin_addr, ip->bytes, 4);
        return sizeof(*in);
    }
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)out;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)port);
    memcpy(&in6->sin6_addr, ip->bytes, 16);
    return sizeof(*in6);
}

void
tn_addr_tcp_options(int fd)
{
    int one = 1, idle = 60, intvl = 10, cnt = 6;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

int
tn_addr_listen(const struct sockaddr *sa, socklen_t len, int backlog)
{
    int fd, one = 1, r;

    if ((fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    tn_addr_tcp_options(fd);
    if (bind(fd, sa, len) < 0 || listen(fd, backlog) < 0) {
        r = -errno;
        close(fd);
        return r;
    }
    return fd;
}

int
tn_addr_connect(const struct sockaddr *sa, socklen_t len)
{
    int fd, r;

    if ((fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
        return -errno;
    tn_addr_tcp_options(fd);
    if (connect(fd, sa, len) < 0 && errno != EINPROGRESS) {
        r = -errno;
        close(fd);
        return r;
    }
    return fd;
}

int
tn_addr_connect_result(int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -errno;
    return -err;
}

bool
tn_addr_connect_ended(int fd)
{
    struct pollfd pfd = { .fd = fd, .events = POLLOUT };

    return poll(&pfd, 1, 0) == 1;
}

void
tn_addr_close_reset(int fd)
{
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };

    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}

int
tn_addr_dial(const char *hostport, int timeout_ms)
{
    struct sockaddr_storage ss;
    struct pollfd pfd;
    socklen_t len;
    char addr[TN_ADDR_STRLEN];
    int fd, r;

    if ((r = tn_addr_resolve(hostport, false, &ss, &len)) != 0)
        return r;
    tn_addr_format((struct sockaddr *)&ss, addr, sizeof(addr));
    if ((fd = tn_addr_connect((struct sockaddr *)&ss, len)) < 0) {
        tn_log_warnx("connect to %s: %s", addr, strerror(-fd));
        return fd;
    }
    pfd.fd = fd;
    pfd.events = POLLOUT;
    do {
        r = poll(&pfd, 1, timeout_ms);
    } while (r < 0 && errno == EINTR);
    if (r == 0)
        r = -ETIMEDOUT;
    else if (r > 0)
        r = tn_addr_connect_result(fd);
    else
        r = -errno;
    if (r != 0) {
        tn_log_warnx("connect to %s: %s", addr, strerror(-r));
        close(fd);
        return r;
    }
    return fd;
}
