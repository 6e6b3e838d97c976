/* SPDX-License-Identifier: MIT */
/* The health check on the tunnel port: `GET /healthz` answers 200 in plain HTTP/1.1 or over TLS,
 * so that a load balancer or reverse proxy in front of the relay can probe it.  A new
 * connection's first byte tells: 0x16 starts a TLS handshake (the tunnel, or a probe that then
 * chooses HTTP/1.1 by ALPN: see tn_h2_ops.on_http1); anything else is read as plain HTTP. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "relay.h"
#include "tn/log.h"
#include "tn/util.h"

#define REQUEST_MAX   2048
#define SNIFF_TIME    10.0 /* seconds for the first byte, or a plain request's head */
#define TLS_HANDSHAKE 0x16

struct sniff {
    struct relay *relay;
    struct sniff *prev, *next; /* in relay->sniffs */
    ev_io io;
    ev_timer timer;
    char req[REQUEST_MAX];
    size_t len;
};

const char *
health_answer(const struct relay *relay, const char *request)
{
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                             "Content-Length: 3\r\nConnection: close\r\n\r\nok\n";
    static const char draining[] =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
        "Content-Length: 9\r\nConnection: close\r\n\r\ndraining\n";
    static const char missing[] = "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
                                  "Content-Length: 10\r\nConnection: close\r\n\r\nnot found\n";

    if (strncmp(request, "GET /healthz ", 13) != 0 && strncmp(request, "HEAD /healthz ", 14) != 0)
        return missing;
    return relay->is_draining ? draining : ok;
}

static void
sniff_free(struct sniff *sn, bool is_close)
{
    if (sn->prev != NULL)
        sn->prev->next = sn->next;
    else
        sn->relay->sniffs = sn->next;
    if (sn->next != NULL)
        sn->next->prev = sn->prev;
    ev_io_stop(sn->relay->loop, &sn->io);
    ev_timer_stop(sn->relay->loop, &sn->timer);
    if (is_close)
        close(sn->io.fd);
    free(sn);
}

static void
sniff_on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    sniff_free(tn_container_of(w, struct sniff, timer), true);
}

static void
sniff_on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    struct sniff *sn = tn_container_of(w, struct sniff, io);
    const char *answer;
    uint8_t first;
    ssize_t n;

    (void)loop;
    (void)revents;
    if (sn->len == 0) {
        if ((n = recv(w->fd, &first, 1, MSG_PEEK)) < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            sniff_free(sn, true);
            return;
        }
        if (first == TLS_HANDSHAKE) {
            int fd = w->fd;
            struct relay *relay = sn->relay;

            sniff_free(sn, false);
            session_start(relay, fd);
            return;
        }
    }
    n = read(w->fd, sn->req + sn->len, sizeof(sn->req) - 1 - sn->len);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        sniff_free(sn, true);
        return;
    }
    sn->len += (size_t)n;
    sn->req[sn->len] = '\0';
    if (strstr(sn->req, "\r\n\r\n") == NULL && sn->len < sizeof(sn->req) - 1)
        return;
    answer = health_answer(sn->relay, sn->req);
    tn_log_debug("plain HTTP request on the tunnel port: %.40s", sn->req);
    if (write(w->fd, answer, strlen(answer)) < 0)
        tn_log_debug("health answer: %s", strerror(errno));
    sniff_free(sn, true);
}

void
session_accept(struct relay *relay, int fd)
{
    struct sniff *sn;

    if ((sn = calloc(1, sizeof(*sn))) == NULL) {
        close(fd);
        return;
    }
    sn->relay = relay;
    sn->next = relay->sniffs;
    if (relay->sniffs != NULL)
        relay->sniffs->prev = sn;
    relay->sniffs = sn;
    ev_io_init(&sn->io, sniff_on_readable, fd, EV_READ);
    ev_io_start(relay->loop, &sn->io);
    ev_timer_init(&sn->timer, sniff_on_timeout, SNIFF_TIME, 0);
    ev_timer_start(relay->loop, &sn->timer);
}

void
health_close_all(struct relay *relay)
{
    while (relay->sniffs != NULL)
        sniff_free(relay->sniffs, true);
}
