/* SPDX-License-Identifier: MIT */
/* Plain HTTP/1.1 on the relay's ports, before anything else happens on a connection:
 *   - the tunnel port: a new connection's first byte tells what it is.  0x16 starts a TLS
 *     handshake (the tunnel, or a health probe that then chooses HTTP/1.1 by ALPN: see
 *     tn_h2_ops.on_http1); anything else is read as a plain HTTP request, and `GET /healthz`
 *     answers 200 (503 while draining), so that a load balancer can probe the relay;
 *   - the HTTP routing port (http_listen): the request head's Host names the published service
 *     (expose.c) that gets the connection, head included; an unknown host gets a 404 page.
 * Either way the head is read whole (bounded in size and time) before anyone acts on it. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "relay.h"
#include "tn/log.h"
#include "tn/util.h"

#define HEAD_MAX      8192
#define HEAD_TIME     10.0 /* seconds for the first byte, then for the whole head */
#define TLS_HANDSHAKE 0x16

struct head {
    struct relay *relay;
    struct head *prev, *next; /* in relay->heads */
    bool is_tunnel_port;      /* else the HTTP routing port */
    ev_io io;
    ev_timer timer;
    char buf[HEAD_MAX];
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
head_free(struct head *h, bool is_close)
{
    if (h->prev != NULL)
        h->prev->next = h->next;
    else
        h->relay->heads = h->next;
    if (h->next != NULL)
        h->next->prev = h->prev;
    ev_io_stop(h->relay->loop, &h->io);
    ev_timer_stop(h->relay->loop, &h->timer);
    if (is_close)
        close(h->io.fd);
    free(h);
}

static void
head_on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    head_free(tn_container_of(w, struct head, timer), true);
}

/* Writes a small answer and closes (a full socket buffer just cuts it short). */
static void
head_answer(struct head *h, const char *answer)
{
    if (write(h->io.fd, answer, strlen(answer)) < 0)
        tn_log_debug("HTTP answer: %s", strerror(errno));
    head_free(h, true);
}

int
http_host_of(const char *head, char *host, size_t len)
{
    const char *p = strchr(head, '\n'), *v;
    size_t n, i;

    for (; p != NULL; p = strchr(p, '\n')) {
        p++;
        if (strncasecmp(p, "Host:", 5) != 0)
            continue;
        v = p + 5 + strspn(p + 5, " \t");
        n = strcspn(v, ":\r\n \t"); /* the port, if any, does not count */
        if (n == 0 || n >= len)
            return -1;
        for (i = 0; i < n; i++)
            host[i] = (char)tolower((unsigned char)v[i]);
        host[n] = '\0';
        return 0;
    }
    return -1;
}

static void
head_route(struct head *h)
{
    static const char bad[] =
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
        "Content-Length: 22\r\nConnection: close\r\n\r\nno Host in the request\n";
    char host[256], body[320], page[512];
    int fd = h->io.fd;

    if (http_host_of(h->buf, host, sizeof(host)) != 0) {
        head_answer(h, bad);
        return;
    }
    if (expose_by_host(h->relay, host)) {
        struct relay *relay = h->relay;
        char *head = malloc(h->len);
        size_t len = h->len;

        if (head != NULL)
            memcpy(head, h->buf, len);
        head_free(h, false);
        expose_connect_host(relay, host, fd, head, head != NULL ? len : 0);
        return;
    }
    snprintf(body, sizeof(body), "no service is published for %s\n", host);
    snprintf(page, sizeof(page),
             "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
             "Connection: close\r\n\r\n%s",
             strlen(body), body);
    tn_log_info("HTTP request for unknown host '%s' answered 404", host);
    head_answer(h, page);
}

static void
head_on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    struct head *h = tn_container_of(w, struct head, io);
    uint8_t first;
    ssize_t n;

    (void)loop;
    (void)revents;
    if (h->is_tunnel_port && h->len == 0) {
        if ((n = recv(w->fd, &first, 1, MSG_PEEK)) < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            head_free(h, true);
            return;
        }
        if (first == TLS_HANDSHAKE) {
            struct relay *relay = h->relay;
            int fd = w->fd;

            head_free(h, false);
            session_start(relay, fd);
            return;
        }
    }
    n = read(w->fd, h->buf + h->len, sizeof(h->buf) - 1 - h->len);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        head_free(h, true);
        return;
    }
    h->len += (size_t)n;
    h->buf[h->len] = '\0';
    if (strstr(h->buf, "\r\n\r\n") == NULL && h->len < sizeof(h->buf) - 1)
        return;
    if (h->is_tunnel_port) {
        tn_log_debug("plain HTTP request on the tunnel port: %.40s", h->buf);
        head_answer(h, health_answer(h->relay, h->buf));
    } else {
        head_route(h);
    }
}

static void
head_start(struct relay *relay, int fd, bool is_tunnel_port)
{
    struct head *h;

    if ((h = calloc(1, sizeof(*h))) == NULL) {
        close(fd);
        return;
    }
    h->relay = relay;
    h->is_tunnel_port = is_tunnel_port;
    h->next = relay->heads;
    if (relay->heads != NULL)
        relay->heads->prev = h;
    relay->heads = h;
    ev_io_init(&h->io, head_on_readable, fd, EV_READ);
    ev_io_start(relay->loop, &h->io);
    ev_timer_init(&h->timer, head_on_timeout, HEAD_TIME, 0);
    ev_timer_start(relay->loop, &h->timer);
}

void
session_accept(struct relay *relay, int fd)
{
    head_start(relay, fd, true);
}

void
http_route_accept(struct relay *relay, int fd)
{
    head_start(relay, fd, false);
}

void
http_close_all(struct relay *relay)
{
    while (relay->heads != NULL)
        head_free(relay->heads, true);
}
