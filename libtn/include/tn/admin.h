/* SPDX-License-Identifier: MIT */
/* The admin listener: a small HTTP/1.1 server on the libev loop for /metrics, /healthz,
 * /readyz and a program's own pages.  One request per connection (Connection: close), GET or
 * HEAD only, the request head bounded (TN_ADMIN_MAX_REQUEST), a few connections at a time,
 * each with a deadline; nothing blocks the loop. */
#ifndef TN_ADMIN_H
#define TN_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

#include <ev.h>

#include "tn/buf.h"
#include "tn/listener.h"

#define TN_ADMIN_MAX_REQUEST 8192 /* bytes of a request: line, headers and body */
#define TN_ADMIN_MAX_CONNS   32

struct tn_admin_reply {
    int status;       /* 200 unless the handler says otherwise */
    const char *type; /* Content-Type; text/plain by default */
    struct tn_buf body;
    int err; /* set by tn_admin_printf when memory ran out */
};

/* Fills |r| for a GET of the route's path; |query| is what followed '?', or "". */
typedef void (*tn_admin_fn)(void *arg, const char *query, struct tn_admin_reply *r);

struct tn_admin_route {
    const char *path;
    tn_admin_fn fn;
    void *arg;
};

/* A request to the program's API (tn_admin.api): any method, with its body. */
struct tn_admin_request {
    const char *method;        /* "GET", "POST", "DELETE", ... */
    const char *path;          /* without the query */
    const char *query;         /* what followed '?', or "" */
    const char *authorization; /* the Authorization header, or NULL */
    const char *body;          /* "" when none; NUL-terminated */
    size_t body_len;
    const char *peer; /* "127.0.0.1:41234": who asked, for logs */
};

typedef void (*tn_admin_api_fn)(void *arg, const struct tn_admin_request *req,
                                struct tn_admin_reply *r);

struct tn_admin_conn;

struct tn_admin {
    struct ev_loop *loop;
    struct tn_listener listener;
    int fd;
    bool is_on;
    char *unix_path; /* removed on stop */
    const struct tn_admin_route *routes;
    struct tn_admin_conn *conns;
    size_t nconns;
    bool (*is_ready)(void *arg); /* /readyz; NULL: ready */
    void *ready_arg;
    /* Optional: paths under |api_prefix| go to |api| whatever their method (the request head
     * and body fit in TN_ADMIN_MAX_REQUEST). */
    const char *api_prefix;
    tn_admin_api_fn api;
    void *api_arg;
};

/* Listens on |where|: "ADDR:PORT" (an empty ADDR is 127.0.0.1: the admin listener is
 * loopback unless told otherwise) or "unix:PATH" (a socket file only root may use; a stale one
 * is replaced).  |routes| ends with a NULL path and must outlive |a|; /metrics (every
 * registered metric), /healthz and /readyz are served unless |routes| has them.  Returns 0 or
 * a negative error (logged). */
int tn_admin_start(struct tn_admin *a, struct ev_loop *loop, const char *where,
                   const struct tn_admin_route *routes);
/* Closes the listener and every connection (nothing when it was never started). */
void tn_admin_stop(struct tn_admin *a);

/* Appends to the reply's body. */
void tn_admin_printf(struct tn_admin_reply *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends |s| as a JSON string, quotes included, always valid UTF-8 (tn_json_escape). */
void tn_admin_json_str(struct tn_admin_reply *r, const char *s);
/* Appends |n| bytes as they are. */
void tn_admin_write(struct tn_admin_reply *r, const void *p, size_t n);

/* A blocking GET of |path| from an admin listener at |where| (as tn_admin_start takes it),
 * for command-line tools: the body goes to |out|.  Returns the HTTP status, or a negative error
 * (with a reason in |why|). */
int tn_admin_get(const char *where, const char *path, struct tn_buf *out, char *why, size_t whylen);

#endif
