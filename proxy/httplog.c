/* SPDX-License-Identifier: MIT */
/* The HTTP request log of a published service marked `http: true`: each HTTP/1.x request on a
 * public connection is logged with its method, path, status and latency, and counted.  The
 * observer only reads the bytes the pipe moves; it never changes or delays them, and when the
 * traffic stops looking like HTTP/1.x (an upgrade, a parse error) it just stops looking. */
#include "httplog.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ev.h>

#include "tn/log.h"

enum {
    S_HEAD,
    S_BODY,
    S_CHUNK_SIZE,
    S_CHUNK_DATA,
    S_CHUNK_END,
    S_TRAILER,
    S_TO_EOF,
    S_OFF
};

void
http_watch_init(struct http_watch *w, struct http_stats *stats, const char *name,
                struct ev_loop *loop)
{
    memset(w, 0, sizeof(*w));
    w->stats = stats;
    w->name = name;
    w->loop = loop;
    stats->streams++;
}

/* The value of header |name| in |head| (lines after the first), copied into |out|. */
static bool
header(const char *head, const char *name, char *out, size_t outlen)
{
    size_t n = strlen(name);
    const char *p = strchr(head, '\n');

    for (; p != NULL; p = strchr(p, '\n')) {
        p++;
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1, *end;

            v += strspn(v, " \t");
            end = v + strcspn(v, "\r\n");
            snprintf(out, outlen, "%.*s", (int)(end - v), v);
            return true;
        }
    }
    return false;
}

static void
count_status(struct http_stats *st, unsigned code)
{
    size_t i;

    for (i = 0; i < st->ncodes && st->codes[i].code != code; i++)
        ;
    if (i == st->ncodes) {
        if (st->ncodes == HTTP_CODES_MAX)
            return;
        st->codes[st->ncodes++].code = code;
    }
    st->codes[i].count++;
}

/* A whole head arrived in |d|: a request (client side) or a response.  Sets the body state. */
static void
head_done(struct http_watch *w, struct http_dir *d, bool is_request)
{
    char method[16], path[HTTP_PATH_MAX], value[64];
    unsigned code;
    bool has_body = true;
    double ms;

    d->state = S_OFF;
    if (is_request) {
        struct http_pending *pr;

        if (sscanf(d->buf, "%15s %255s HTTP/1.%*c", method, path) != 2 ||
            w->npending == HTTP_PENDING_MAX)
            return;
        pr = &w->pending[(w->first + w->npending++) % HTTP_PENDING_MAX];
        snprintf(pr->method, sizeof(pr->method), "%s", method);
        snprintf(pr->path, sizeof(pr->path), "%s", path);
        pr->start = ev_time();
    } else {
        const struct http_pending *pr;

        if (sscanf(d->buf, "HTTP/1.%*c %3u", &code) != 1 || w->npending == 0)
            return;
        if (code >= 100 && code < 200 && code != 101) { /* interim: the final one follows */
            d->state = S_HEAD;
            return;
        }
        pr = &w->pending[w->first];
        w->first = (w->first + 1) % HTTP_PENDING_MAX;
        w->npending--;
        ms = (ev_time() - pr->start) * 1e3;
        tn_log_info("http %s: %s %s %u %.1f ms", w->name, pr->method, pr->path, code, ms);
        w->stats->requests++;
        count_status(w->stats, code);
        if (w->stats->requests == 1 || ms < w->stats->lat_min)
            w->stats->lat_min = ms;
        if (ms > w->stats->lat_max)
            w->stats->lat_max = ms;
        w->stats->lat_sum += ms;
        if (code == 101 || strcmp(pr->method, "CONNECT") == 0)
            return; /* the connection is not HTTP any more */
        has_body = strcmp(pr->method, "HEAD") != 0 && code != 204 && code != 304;
    }
    if (header(d->buf, "Transfer-Encoding", value, sizeof(value)) && has_body) {
        d->state = strcasestr(value, "chunked") != NULL ? S_CHUNK_SIZE : S_TO_EOF;
    } else if (header(d->buf, "Content-Length", value, sizeof(value)) && has_body) {
        d->left = strtoull(value, NULL, 10);
        d->state = d->left > 0 ? S_BODY : S_HEAD;
    } else {
        d->state = is_request || !has_body ? S_HEAD : S_TO_EOF;
    }
}

/* Appends one byte to the line buffer; false when the head is too long to be HTTP we follow. */
static bool
buf_put(struct http_dir *d, uint8_t c)
{
    if (d->len == sizeof(d->buf) - 1)
        return false;
    d->buf[d->len++] = (char)c;
    d->buf[d->len] = '\0';
    return true;
}

void
http_watch_bytes(struct http_watch *w, bool is_request, const uint8_t *p, size_t n)
{
    struct http_dir *d = is_request ? &w->req : &w->resp;
    size_t k;

    if (is_request)
        w->stats->bytes_in += n;
    else
        w->stats->bytes_out += n;
    while (n > 0 && d->state != S_OFF && d->state != S_TO_EOF) {
        switch (d->state) {
        case S_HEAD:
        case S_CHUNK_SIZE:
        case S_TRAILER:
            if (!buf_put(d, *p)) {
                d->state = S_OFF;
                break;
            }
            p++, n--;
            if (d->buf[d->len - 1] != '\n')
                break;
            if (d->state == S_CHUNK_SIZE) {
                d->left = strtoull(d->buf, NULL, 16);
                d->state = d->left > 0 ? S_CHUNK_DATA : S_TRAILER;
                d->len = 0;
            } else if (d->state == S_TRAILER) {
                if (d->len <= 2)
                    d->state = S_HEAD;
                d->len = 0;
            } else if (d->len >= 4 && strcmp(d->buf + d->len - 4, "\r\n\r\n") == 0) {
                head_done(w, d, is_request);
                d->len = 0;
            } else if (d->len <= 2) {
                d->len = 0; /* a blank line between messages */
            }
            break;
        case S_BODY:
        case S_CHUNK_DATA:
            k = n < d->left ? n : (size_t)d->left;
            p += k, n -= k, d->left -= k;
            if (d->left == 0)
                d->state = d->state == S_BODY ? S_HEAD : S_CHUNK_END;
            if (d->state == S_CHUNK_END)
                d->left = 2; /* its CRLF */
            break;
        case S_CHUNK_END:
            p++, n--;
            if (--d->left == 0)
                d->state = S_CHUNK_SIZE;
            break;
        }
    }
}

void
http_stats_summary(const struct http_stats *st, const char *name, double uptime)
{
    char codes[256] = "";
    size_t i, used = 0;

    for (i = 0; i < st->ncodes && used < sizeof(codes); i++)
        used += (size_t)snprintf(codes + used, sizeof(codes) - used, " %u: %" PRIu64,
                                 st->codes[i].code, st->codes[i].count);
    tn_log_info("summary of %s: streams: %" PRIu64 ", bytes in: %" PRIu64 ", out: %" PRIu64
                ", requests: %" PRIu64 ", latency ms min/avg/max: %.1f/%.1f/%.1f, status"
                "%s, uptime %.0f s",
                name, st->streams, st->bytes_in, st->bytes_out, st->requests, st->lat_min,
                st->requests > 0 ? st->lat_sum / (double)st->requests : 0.0, st->lat_max,
                st->ncodes > 0 ? codes : " -", uptime);
}
