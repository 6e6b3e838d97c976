/* SPDX-License-Identifier: MIT */
/* The HTTP/1.x request log of a published service (http: true): see httplog.c. */
#ifndef HTTPLOG_H
#define HTTPLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ev_loop;

#define HTTP_CODES_MAX   32
#define HTTP_PENDING_MAX 16 /* pipelined requests awaiting their responses */
#define HTTP_PATH_MAX    256

/* Counts of one service since the proxy started. */
struct http_stats {
    uint64_t streams; /* public connections */
    uint64_t bytes_in, bytes_out;
    uint64_t requests;
    double lat_min, lat_max, lat_sum; /* milliseconds, request head to response head */

    struct {
        unsigned code;
        uint64_t count;
    } codes[HTTP_CODES_MAX];

    size_t ncodes;
};

/* One direction's parser state. */
struct http_dir {
    int state;
    uint64_t left;  /* body or chunk bytes still to skip */
    char buf[4096]; /* the head (or chunk-size line) being read */
    size_t len;
};

struct http_pending {
    char method[16];
    char path[HTTP_PATH_MAX];
    double start;
};

/* One public connection's observer. */
struct http_watch {
    struct http_stats *stats;
    const char *name;
    struct ev_loop *loop;
    struct http_dir req, resp;
    struct http_pending pending[HTTP_PENDING_MAX];
    size_t first, npending;
};

void http_watch_init(struct http_watch *w, struct http_stats *stats, const char *name,
                     struct ev_loop *loop);
/* Bytes of the connection: |is_request| for those from the public user to the service. */
void http_watch_bytes(struct http_watch *w, bool is_request, const uint8_t *p, size_t n);
/* Logs the service's counts (on exit). */
void http_stats_summary(const struct http_stats *st, const char *name, double uptime);

#endif
