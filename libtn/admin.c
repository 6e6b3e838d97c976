/* SPDX-License-Identifier: MIT */
/* The admin listener: HTTP/1.1, one request per connection, on the process's libev loop. */
#include "tn/admin.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tn/addr.h"
#include "tn/err.h"
#include "tn/log.h"
#include "tn/metrics.h"
#include "tn/text.h"
#include "tn/util.h"

#define CONN_DEADLINE 10.0 /* seconds for a whole request and its answer */
#define UNIX_PREFIX   "unix:"

struct tn_admin_conn {
    struct tn_admin *admin;
    struct tn_admin_conn *prev, *next;
    ev_io io;
    ev_timer deadline;
    char req[TN_ADMIN_MAX_REQUEST + 1];
    size_t len;
    struct tn_buf out; /* the response, once the request is complete */
    bool is_answered;  /* response sent: reading what is left until EOF (lingering close) */
};

void
tn_admin_write(struct tn_admin_reply *r, const void *p, size_t n)
{
    if (tn_buf_append(&r->body, p, n) != 0)
        r->err = -ENOMEM;
}

void
tn_admin_printf(struct tn_admin_reply *r, const char *fmt, ...)
{
    char small[512], *big = NULL;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        r->err = -EINVAL;
        return;
    }
    if ((size_t)n < sizeof(small)) {
        tn_admin_write(r, small, (size_t)n);
        return;
    }
    if ((big = malloc((size_t)n + 1)) == NULL) {
        r->err = -ENOMEM;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    tn_admin_write(r, big, (size_t)n);
    free(big);
}

static void
reply_out(void *arg, const char *s, size_t n)
{
    tn_admin_write(arg, s, n);
}

void
tn_admin_json_str(struct tn_admin_reply *r, const char *s)
{
    tn_admin_write(r, "\"", 1);
    tn_json_escape(s, strlen(s), reply_out, r);
    tn_admin_write(r, "\"", 1);
}

static void
conn_free(struct tn_admin_conn *c)
{
    struct tn_admin *a = c->admin;

    ev_io_stop(a->loop, &c->io);
    ev_timer_stop(a->loop, &c->deadline);
    close(c->io.fd);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        a->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    a->nconns--;
    tn_buf_fini(&c->out);
    free(c);
}

static void
serve_metrics(void *arg, const char *query, struct tn_admin_reply *r)
{
    (void)arg;
    (void)query;
    r->type = "text/plain; version=0.0.4; charset=utf-8";
    if (tn_metrics_render(&r->body) != 0)
        r->err = -ENOMEM;
}

static void
serve_health(void *arg, const char *query, struct tn_admin_reply *r)
{
    (void)arg;
    (void)query;
    tn_admin_printf(r, "ok\n");
}

static void
serve_ready(void *arg, const char *query, struct tn_admin_reply *r)
{
    struct tn_admin *a = arg;

    (void)query;
    if (a->is_ready != NULL && !a->is_ready(a->ready_arg)) {
        r->status = 503;
        tn_admin_printf(r, "not ready\n");
        return;
    }
    tn_admin_printf(r, "ready\n");
}

static const char *
status_text(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 409:
        return "Conflict";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Content Too Large";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

/* The handler of |path|: the program's, else a built-in one. */
static void
dispatch(struct tn_admin *a, const char *path, const char *query, struct tn_admin_reply *r)
{
    static const struct tn_admin_route builtin[] = {
        { "/metrics", serve_metrics, NULL },
        { "/healthz", serve_health, NULL },
        { "/readyz", serve_ready, NULL },
        { NULL, NULL, NULL },
    };
    const struct tn_admin_route *rt;

    for (rt = a->routes; rt != NULL && rt->path != NULL; rt++) {
        if (strcmp(rt->path, path) == 0) {
            rt->fn(rt->arg, query, r);
            return;
        }
    }
    for (rt = builtin; rt->path != NULL; rt++) {
        if (strcmp(rt->path, path) == 0) {
            rt->fn(rt->fn == serve_ready ? a : rt->arg, query, r);
            return;
        }
    }
    r->status = 404;
    tn_admin_printf(r, "not found: %s\n", path);
}

/* Where the body of the request in |req| starts (after its blank line), or NULL. */
static char *
body_of(char *req)
{
    char *end = strstr(req, "\r\n\r\n");

    if (end != NULL)
        return end + 4;
    return (end = strstr(req, "\n\n")) != NULL ? end + 2 : NULL;
}

/* The value of header |name| in the request head |req| (copied into |out|), or NULL. */
static const char *
header_value(const char *req, const char *name, char *out, size_t outlen)
{
    const char *p = strchr(req, '\n'), *v, *body = strstr(req, "\r\n\r\n");
    size_t n = strlen(name);

    for (; p != NULL && (body == NULL || p < body + 2); p = strchr(p, '\n')) {
        p++;
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            v = p + n + 1 + strspn(p + n + 1, " \t");
            snprintf(out, outlen, "%.*s", (int)strcspn(v, "\r\n"), v);
            return out;
        }
    }
    return NULL;
}

/* Whether the request is complete: its head, and the body its Content-Length announces. */
static bool
request_is_whole(char *req, size_t len)
{
    char value[32];
    const char *body = body_of(req);

    if (body == NULL)
        return false;
    if (header_value(req, "Content-Length", value, sizeof(value)) == NULL)
        return true;
    return (size_t)(req + len - body) >= strtoul(value, NULL, 10);
}

static const char *
conn_peer(const struct tn_admin_conn *c, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);

    if (getpeername(c->io.fd, (struct sockaddr *)&ss, &sslen) != 0 || ss.ss_family == AF_UNIX)
        return "local";
    return tn_addr_format((struct sockaddr *)&ss, buf, len);
}

/* Parses the request head in |c->req| and queues the response in |c->out|. */
static void
conn_respond(struct tn_admin_conn *c, int status)
{
    struct tn_admin_reply r = { .status = 200, .type = "text/plain; charset=utf-8" };
    char head[512], *method, *target, *version, *query, *save = NULL;
    bool is_head = false;
    int n;

    tn_buf_init(&r.body);
    if (status == 0) {
        method = strtok_r(c->req, " \r\n", &save);
        target = strtok_r(NULL, " \r\n", &save);
        version = strtok_r(NULL, " \r\n", &save);
        if (method == NULL || target == NULL || version == NULL ||
            strncmp(version, "HTTP/1.", 7) != 0 || target[0] != '/') {
            status = 400;
        } else if (c->admin->api != NULL &&
                   strncmp(target, c->admin->api_prefix, strlen(c->admin->api_prefix)) == 0) {
            struct tn_admin_request rq = { .method = method, .path = target };
            char auth[512], peer[TN_ADDR_STRLEN], *rest = version + strlen(version) + 1,
                                                  *body = body_of(rest);

            if ((query = strchr(target, '?')) != NULL)
                *query++ = '\0';
            rq.query = query != NULL ? query : "";
            rq.authorization = header_value(rest, "Authorization", auth, sizeof(auth));
            rq.peer = conn_peer(c, peer, sizeof(peer));
            rq.body = body != NULL ? body : "";
            rq.body_len = body != NULL ? strlen(body) : 0;
            is_head = strcmp(method, "HEAD") == 0;
            c->admin->api(c->admin->api_arg, &rq, &r);
            status = r.status;
        } else if (strcmp(method, "GET") != 0 && !(is_head = strcmp(method, "HEAD") == 0)) {
            status = 405;
        } else {
            if ((query = strchr(target, '?')) != NULL)
                *query++ = '\0';
            dispatch(c->admin, target, query != NULL ? query : "", &r);
            status = r.status;
        }
    }
    if (r.err != 0) {
        tn_buf_fini(&r.body);
        tn_buf_init(&r.body);
        status = 500;
        r.type = "text/plain; charset=utf-8";
    }
    if (status != r.status || tn_buf_len(&r.body) == 0)
        tn_admin_printf(&r, "%d %s\n", status, status_text(status));
    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                 "Cache-Control: no-store\r\nConnection: close\r\n%s\r\n",
                 status, status_text(status), r.type, tn_buf_len(&r.body),
                 status == 405   ? "Allow: GET, HEAD\r\n"
                 : status == 401 ? "WWW-Authenticate: Bearer\r\n"
                                 : "");
    if (tn_buf_append(&c->out, head, (size_t)n) != 0)
        r.err = -ENOMEM;
    if (!is_head)
        tn_buf_move(&c->out, &r.body);
    tn_buf_fini(&r.body);
}

static void
conn_on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    struct tn_admin_conn *c = tn_container_of(w, struct tn_admin_conn, io);
    struct iovec iov[16];
    ssize_t n;
    int status = -1, niov;

    (void)revents;
    if (c->is_answered) {
        /* Closing with unread bytes would send a reset, which can destroy the answer before
         * the peer reads it (a request head too large): read to EOF first. */
        n = read(w->fd, c->req, sizeof(c->req));
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            conn_free(c);
        return;
    }
    if (tn_buf_len(&c->out) == 0) { /* still reading the request */
        n = read(w->fd, c->req + c->len, TN_ADMIN_MAX_REQUEST - c->len);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            conn_free(c);
            return;
        }
        if (memchr(c->req + c->len, '\0', (size_t)n) != NULL)
            status = 400; /* the request is parsed as a string: a NUL would hide the rest */
        c->len += (size_t)n;
        c->req[c->len] = '\0';
        if (status < 0 && request_is_whole(c->req, c->len))
            status = 0;
        else if (status < 0 && c->len == TN_ADMIN_MAX_REQUEST) /* a whole head: the body */
            status = memmem(c->req, c->len, "\r\n\r\n", 4) != NULL ? 413 : 431;
        if (status < 0)
            return;
        conn_respond(c, status);
        ev_io_stop(loop, w);
        ev_io_set(w, w->fd, EV_WRITE);
        ev_io_start(loop, w);
        return;
    }
    niov = tn_buf_iov(&c->out, iov, (int)TN_ARRAY_LEN(iov));
    n = writev(w->fd, iov, niov);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n < 0) {
        conn_free(c);
        return;
    }
    tn_buf_consume(&c->out, (size_t)n);
    if (tn_buf_len(&c->out) == 0) {
        shutdown(w->fd, SHUT_WR);
        c->is_answered = true;
        ev_io_stop(loop, w);
        ev_io_set(w, w->fd, EV_READ);
        ev_io_start(loop, w);
    }
}

static void
conn_on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    conn_free(tn_container_of(w, struct tn_admin_conn, deadline));
}

static void
admin_on_conn(struct tn_listener *l, int fd)
{
    struct tn_admin *a = tn_container_of(l, struct tn_admin, listener);
    struct tn_admin_conn *c;

    if (a->nconns >= TN_ADMIN_MAX_CONNS) {
        /* Full: the oldest connection still sending its request makes room, so that idle
         * connections cannot lock out a health check or a scrape. */
        struct tn_admin_conn *oldest = NULL;

        for (c = a->conns; c != NULL; c = c->next) {
            if (tn_buf_len(&c->out) == 0 && !c->is_answered)
                oldest = c;
        }
        if (oldest != NULL)
            conn_free(oldest);
    }
    if (a->nconns >= TN_ADMIN_MAX_CONNS || (c = calloc(1, sizeof(*c))) == NULL) {
        close(fd);
        return;
    }
    c->admin = a;
    tn_buf_init(&c->out);
    ev_io_init(&c->io, conn_on_io, fd, EV_READ);
    ev_timer_init(&c->deadline, conn_on_deadline, CONN_DEADLINE, 0);
    ev_io_start(a->loop, &c->io);
    ev_timer_start(a->loop, &c->deadline);
    c->next = a->conns;
    if (a->conns != NULL)
        a->conns->prev = c;
    a->conns = c;
    a->nconns++;
}

/* "unix:PATH" as a socket address.  Returns 0 or TN_ERR_PARSE. */
static int
unix_addr(const char *where, struct sockaddr_un *sun)
{
    const char *path = where + strlen(UNIX_PREFIX);

    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    if (path[0] == '\0' || strlen(path) >= sizeof(sun->sun_path))
        return TN_ERR_PARSE;
    memcpy(sun->sun_path, path, strlen(path));
    return 0;
}

/* |where| as a socket address, an empty host being loopback. */
static int
admin_addr(const char *where, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[256], port[16], hostport[300];

    if (strncmp(where, UNIX_PREFIX, strlen(UNIX_PREFIX)) == 0) {
        *len = sizeof(struct sockaddr_un);
        return unix_addr(where, (struct sockaddr_un *)ss);
    }
    if (tn_addr_split(where, host, sizeof(host), port, sizeof(port)) != 0)
        return TN_ERR_PARSE;
    if (host[0] != '\0')
        snprintf(hostport, sizeof(hostport), "%s", where);
    else
        snprintf(hostport, sizeof(hostport), "127.0.0.1:%s", port);
    return tn_addr_resolve(hostport, true, ss, len);
}

static int
unix_listen(const char *where)
{
    struct sockaddr_un sun;
    mode_t old;
    int fd, r;

    if (unix_addr(where, &sun) != 0)
        return TN_ERR_PARSE;
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return -errno;
    /* A socket file nobody answers on is an earlier run's: replace it; a live one is not ours. */
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
        close(fd);
        return -EADDRINUSE;
    }
    close(fd);
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
        return -errno;
    unlink(sun.sun_path);
    old = umask(0077);
    r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
    umask(old);
    if (r < 0 || listen(fd, 16) < 0) {
        r = -errno;
        close(fd);
        return r;
    }
    return fd;
}

int
tn_admin_start(struct tn_admin *a, struct ev_loop *loop, const char *where,
               const struct tn_admin_route *routes)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd;

    a->loop = loop;
    a->routes = routes;
    a->fd = -1;
    if (strncmp(where, UNIX_PREFIX, strlen(UNIX_PREFIX)) == 0) {
        fd = unix_listen(where);
        if (fd >= 0 && (a->unix_path = strdup(where + strlen(UNIX_PREFIX))) == NULL) {
            close(fd);
            fd = -ENOMEM;
        }
    } else if (admin_addr(where, &ss, &len) != 0) {
        tn_log(TN_LOG_ERR, "admin listener %s: not ADDR:PORT or unix:PATH", where);
        return TN_ERR_PARSE;
    } else {
        fd = tn_addr_listen((struct sockaddr *)&ss, len, 16);
    }
    if (fd < 0) {
        tn_log(TN_LOG_ERR, "admin listener %s: %s", where, tn_strerror(fd));
        return fd;
    }
    a->fd = fd;
    a->is_on = true;
    tn_listener_start(&a->listener, loop, fd, admin_on_conn);
    return 0;
}

void
tn_admin_stop(struct tn_admin *a)
{
    if (!a->is_on)
        return;
    a->is_on = false;
    tn_listener_stop(&a->listener, a->loop);
    while (a->conns != NULL)
        conn_free(a->conns);
    close(a->fd);
    a->fd = -1;
    if (a->unix_path != NULL)
        unlink(a->unix_path);
    free(a->unix_path);
    a->unix_path = NULL;
}

/* Blocking client. */

static int
wait_fd(int fd, short events, time_t deadline)
{
    struct pollfd p = { .fd = fd, .events = events };
    time_t now = time(NULL);
    int r;

    if (now >= deadline)
        return -ETIMEDOUT;
    r = poll(&p, 1, (int)(deadline - now) * 1000);
    return r < 0 ? -errno : r == 0 ? -ETIMEDOUT : 0;
}

int
tn_admin_get(const char *where, const char *path, struct tn_buf *out, char *why, size_t whylen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    char req[512], buf[4096], *body;
    struct tn_buf raw;
    time_t deadline = time(NULL) + 5;
    size_t off = 0, n;
    ssize_t k;
    int fd, r, status;

    if (admin_addr(where, &ss, &len) != 0) {
        snprintf(why, whylen, "%s: not ADDR:PORT or unix:PATH", where);
        return TN_ERR_PARSE;
    }
    if ((fd = tn_addr_connect((struct sockaddr *)&ss, len)) < 0 ||
        (r = wait_fd(fd, POLLOUT, deadline)) != 0 || (r = tn_addr_connect_result(fd)) != 0) {
        r = fd < 0 ? fd : r;
        snprintf(why, whylen, "connect to %s: %s", where, tn_strerror(r));
        if (fd >= 0)
            close(fd);
        return r;
    }
    n = (size_t)snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: admin\r\n\r\n", path);
    while (off < n) {
        if ((k = write(fd, req + off, n - off)) > 0)
            off += (size_t)k;
        else if (k < 0 && errno != EAGAIN && errno != EINTR)
            break;
        else if ((r = wait_fd(fd, POLLOUT, deadline)) != 0)
            break;
    }
    tn_buf_init(&raw);
    for (;;) {
        k = read(fd, buf, sizeof(buf));
        if (k > 0 && tn_buf_append(&raw, buf, (size_t)k) == 0)
            continue;
        if (k == 0 || k > 0)
            break;
        if ((errno != EAGAIN && errno != EINTR) || wait_fd(fd, POLLIN, deadline) != 0)
            break;
    }
    close(fd);
    n = tn_buf_len(&raw);
    if ((body = malloc(n + 1)) == NULL) {
        tn_buf_fini(&raw);
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    tn_buf_copy(&raw, (uint8_t *)body, n);
    body[n] = '\0';
    tn_buf_fini(&raw);
    status = -1;
    if (sscanf(body, "HTTP/1.%*d %d", &status) != 1 || strstr(body, "\r\n\r\n") == NULL) {
        snprintf(why, whylen, "%s: no HTTP answer", where);
        free(body);
        return TN_ERR_PROTO;
    }
    off = (size_t)(strstr(body, "\r\n\r\n") + 4 - body);
    if (tn_buf_append(out, body + off, n - off) != 0)
        status = -ENOMEM;
    free(body);
    return status;
}
