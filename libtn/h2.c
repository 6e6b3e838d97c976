/* SPDX-License-Identifier: MIT */
/* HTTP/2 over non-blocking TLS on a libev loop.
 *
 * OpenSSL does the handshake; the records after it are ours (tn/record.h), which saves a copy
 * each way:
 * Bytes in:  socket -> read -> tn_record_open (decrypts into one plaintext run) ->
 *            nghttp2_session_mem_recv -> callbacks -> stream owners.
 * Bytes out: nghttp2_session_send -> on_send (frames) and on_send_data (DATA: header, then the
 *            payload from the stream's out buffer, NO_COPY) -> wbuf (frames coalesced into
 *            large writes; a large payload is sealed straight from the out buffer) ->
 *            tn_record_seal -> tlsout -> one writev to the socket.
 * Output is flushed from an ev_prepare watcher, so everything queued while the loop handled one
 * round of events leaves in as few TLS records as possible.  Tear-down is deferred to the same
 * watcher, never done inside nghttp2's callbacks. */
#include "tn/h2.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <ev.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>

#include "tn/addr.h"
#include "tn/buf.h"
#include "tn/busypoll.h"
#include "tn/err.h"
#include "tn/grpc.h"
#include "tn/log.h"
#include "tn/metrics.h"
#include "tn/proc.h"
#include "tn/record.h"
#include "tn/tls.h"
#include "tn/util.h"

#define WBUF_HIGH         (64 * 1024)  /* coalesce frames up to this before sealing */
#define TLSOUT_HIGH       (256 * 1024) /* seal no more while the socket holds back this much */
#define RBUF_SIZE         (64 * 1024)  /* read from the socket at once */
#define HANDSHAKE_TIMEOUT 10.0
#define HEADER_LIST_MAX   (16 * 1024)
#define PATH_MAX_LEN      64
#define TN_H2_HTTP1_MAX   2048        /* an HTTP/1.1 request's head, for a health probe */
#define FRAME_HDLEN       9           /* an HTTP/2 frame header */
#define DIRECT_MIN        (16 * 1024) /* DATA payloads from this size skip wbuf */
/* What one connection may make us hold in all its streams' buffers before its connection
 * window stops coming back: each stream is bounded by its own window, this bounds their sum. */
#define HELD_MAX    (64u * 1024 * 1024)
#define RESET_BURST 16384 /* RST_STREAMs a peer may send at once (see h2_session_start) */
#define RESET_RATE  1000  /* and per second after that */
#define STUCK_AFTER 30.0  /* s a detached stream may send nothing before it is reset */

struct tn_h2_stream {
    struct tn_h2 *h2;
    struct tn_h2_stream *prev, *next; /* in h2->streams */
    int32_t id;
    const struct tn_h2_stream_ops *ops; /* NULL once detached */
    void *owner;
    struct tn_buf out;
    bool is_finishing; /* end our side once |out| is drained */
    bool is_responded; /* server: response headers submitted */
    bool is_deferred;  /* the data source waits for tn_h2_stream_resume */
    bool is_bad_request;
    bool is_end_received, is_end_sent; /* END_STREAM each way: a close without both is an abort */
    size_t held;                       /* received bytes the owner has not consumed yet */
    bool is_shed;                      /* reset by us already (h2_shed, detach, sweep) */
    bool is_paced;                     /* |held| waits for a bandwidth limit: never shed */
    ev_tstamp progress;                /* detached: when it last sent, or was detached */
    bool is_http_error; /* client: the response was not 200: grpc-status no longer counts */
    int grpc_status;    /* server: what our trailers say; client: what the peer's said */
    char grpc_message[128];
    char path[PATH_MAX_LEN]; /* server: the request's :path */
    size_t header_bytes;     /* server: of the request's headers so far */
};

struct tn_h2 {
    struct ev_loop *loop;
    ev_io io;
    ev_prepare flush;
    ev_timer handshake_timer;
    ev_timer heartbeat;
    ev_timer sweep;       /* while detached streams wait to send their last bytes (h2_on_sweep) */
    ev_tstamp last_heard; /* when the peer last sent anything */
    ev_tstamp ping_sent;  /* when our unanswered PING left, or 0 */
    int fd;
    SSL *ssl;             /* the handshake, and HTTP/1.1 health probes */
    struct tn_record rec; /* the records of an HTTP/2 session */
    struct tn_buf rpart;  /* a record cut by the end of a read, until its rest arrives */
    nghttp2_session *ng;
    bool is_server;
    bool want_write;          /* the socket would block: wait for EV_WRITE */
    bool is_ready;            /* the peer's first SETTINGS arrived */
    bool is_refused;          /* a certificate was refused, by either side: final */
    bool is_closed;           /* torn down: only tn_h2_free remains */
    const char *close_reason; /* set: tear down at the next flush */
    struct tn_buf wbuf;       /* HTTP/2 frames waiting to be sealed */
    struct tn_buf tlsout;     /* TLS records waiting for the socket: written with one writev */
    struct tn_identity peer;
    char peer_addr[TN_ADDR_STRLEN];
    struct tn_h2_settings settings;
    const struct tn_h2_ops *ops;
    void *owner;
    struct tn_h2_stream *streams;
    char *http1; /* server: an HTTP/1.1 request over TLS (a health probe), being read */
    size_t http1_len;
    size_t held;             /* received bytes that streams have not consumed yet */
    size_t debt;             /* connection window held back while |held| is over HELD_MAX */
    bool has_message;        /* the read being handled brought HEADERS or DATA... */
    size_t message_bytes;    /* ... with this much payload (tn_busypoll_note) */
    char goaway_reason[160]; /* the protocol error we ended the session for, or "" */
};

static void h2_schedule(struct tn_h2 *h2);
static void h2_release(struct tn_h2 *h2, size_t n);
static void h2_shed(struct tn_h2 *h2);
static void h2_http1(struct tn_h2 *h2);

static void
h2_fail(struct tn_h2 *h2, const char *reason)
{
    if (h2->close_reason == NULL)
        h2->close_reason = reason;
    h2_schedule(h2);
}

/* ---- streams ---------------------------------------------------------------------------- */

static struct tn_h2_stream *
stream_new(struct tn_h2 *h2)
{
    struct tn_h2_stream *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->h2 = h2;
    s->grpc_status = -1;
    tn_buf_init(&s->out);
    s->next = h2->streams;
    if (h2->streams != NULL)
        h2->streams->prev = s;
    h2->streams = s;
    return s;
}

/* Unlinks and frees |s|, telling its owner first. */
static void
stream_close(struct tn_h2_stream *s, uint32_t error_code)
{
    struct tn_h2 *h2 = s->h2;
    const struct tn_h2_stream_ops *ops = s->ops;

    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        h2->streams = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    s->ops = NULL;
    h2_release(h2, s->held);
    tn_proc_released();
    if (ops != NULL)
        ops->on_close(s->owner, error_code);
    tn_buf_fini(&s->out);
    free(s);
}

/* Decides the next DATA frame of |s| without copying it (NO_COPY): on_send_data then takes its
 * bytes from the out buffer, copied behind the header when small, sealed straight from it
 * when large. */
static ssize_t
data_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
          nghttp2_data_source *src, void *arg)
{
    struct tn_h2_stream *s = src->ptr;
    size_t n = tn_buf_len(&s->out) < len ? tn_buf_len(&s->out) : len;

    (void)buf;
    (void)arg;
    if (n > 0)
        *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (n == tn_buf_len(&s->out) && s->is_finishing) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (s->h2->is_server) {
            char status[12];
            nghttp2_nv trailers[2];
            size_t nt = 1;

            snprintf(status, sizeof(status), "%d", s->grpc_status);
            trailers[0] = (nghttp2_nv)TN_NV("grpc-status", status);
            if (s->grpc_message[0] != '\0')
                trailers[nt++] = (nghttp2_nv)TN_NV("grpc-message", s->grpc_message);
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            if (nghttp2_submit_trailer(ng, id, trailers, nt) != 0)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        return (ssize_t)n;
    }
    if (n == 0) {
        s->is_deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}

struct tn_h2_stream *
tn_h2_stream_open(struct tn_h2 *h2, const char *path, const struct tn_h2_stream_ops *ops,
                  void *owner)
{
    const char *authority = h2->settings.authority != NULL ? h2->settings.authority : "relay";
    nghttp2_nv hdrs[] = {
        TN_NV(":method", "POST"),
        TN_NV(":scheme", "https"),
        TN_NV(":authority", authority),
        TN_NV(":path", path),
        TN_NV("content-type", "application/grpc"),
        TN_NV("te", "trailers"),
    };
    nghttp2_data_provider prd;
    struct tn_h2_stream *s;
    int32_t id;

    if (h2->is_closed || h2->ng == NULL || (s = stream_new(h2)) == NULL)
        return NULL;
    s->ops = ops;
    s->owner = owner;
    prd.source.ptr = s;
    prd.read_callback = data_read;
    id = nghttp2_submit_request(h2->ng, NULL, hdrs, TN_ARRAY_LEN(hdrs), &prd, s);
    if (id < 0) {
        tn_log_warnx("%s: cannot open stream: %s", h2->peer_addr, nghttp2_strerror(id));
        s->ops = NULL;
        stream_close(s, 0);
        return NULL;
    }
    s->id = id;
    h2_schedule(h2);
    return s;
}

void
tn_h2_stream_bind(struct tn_h2_stream *s, const struct tn_h2_stream_ops *ops, void *owner)
{
    s->ops = ops;
    s->owner = owner;
}

int
tn_h2_stream_respond(struct tn_h2_stream *s)
{
    static const nghttp2_nv hdrs[] = {
        TN_NV(":status", "200"),
        TN_NV("content-type", "application/grpc"),
    };
    nghttp2_data_provider prd;
    int rv;

    if (s->is_responded || s->h2->ng == NULL)
        return 0;
    prd.source.ptr = s;
    prd.read_callback = data_read;
    if ((rv = nghttp2_submit_response(s->h2->ng, s->id, hdrs, TN_ARRAY_LEN(hdrs), &prd)) != 0) {
        tn_log_warnx("%s: stream %d: cannot respond: %s", s->h2->peer_addr, s->id,
                     nghttp2_strerror(rv));
        return TN_ERR_H2;
    }
    s->is_responded = true;
    h2_schedule(s->h2);
    return 0;
}

struct tn_buf *
tn_h2_stream_out(struct tn_h2_stream *s)
{
    return &s->out;
}

void
tn_h2_stream_resume(struct tn_h2_stream *s)
{
    struct tn_h2 *h2 = s->h2;

    if (h2->ng == NULL)
        return;
    if (h2->is_server && !s->is_responded) {
        tn_h2_stream_respond(s);
        return;
    }
    if (s->is_deferred) {
        s->is_deferred = false;
        nghttp2_session_resume_data(h2->ng, s->id);
    }
    h2_schedule(h2);
}

void
tn_h2_stream_finish(struct tn_h2_stream *s, int grpc_status, const char *grpc_message)
{
    struct tn_h2 *h2 = s->h2;

    if (s->is_finishing || h2->ng == NULL)
        return;
    s->is_finishing = true;
    s->grpc_status = grpc_status;
    if (grpc_message != NULL)
        snprintf(s->grpc_message, sizeof(s->grpc_message), "%s", grpc_message);
    if (h2->is_server && !s->is_responded && tn_buf_len(&s->out) == 0) {
        /* Trailers-only response: one HEADERS frame with END_STREAM. */
        char status[12];

        snprintf(status, sizeof(status), "%d", grpc_status);
        nghttp2_nv hdrs[4] = {
            TN_NV(":status", "200"),
            TN_NV("content-type", "application/grpc"),
            TN_NV("grpc-status", status),
            TN_NV("grpc-message", s->grpc_message),
        };
        s->is_responded = true;
        nghttp2_submit_response(h2->ng, s->id, hdrs, s->grpc_message[0] != '\0' ? 4 : 3, NULL);
        h2_schedule(h2);
        return;
    }
    tn_h2_stream_resume(s);
}

void
tn_h2_stream_set_paced(struct tn_h2_stream *s)
{
    s->is_paced = true;
}

void
tn_h2_stream_consume(struct tn_h2_stream *s, size_t n)
{
    if (n > s->held)
        n = s->held;
    s->held -= n;
    h2_release(s->h2, n);
    if (s->h2->ng == NULL || n == 0)
        return;
    nghttp2_session_consume_stream(s->h2->ng, s->id, n);
    h2_schedule(s->h2);
}

void
tn_h2_stream_detach(struct tn_h2_stream *s, uint32_t error_code)
{
    size_t held = s->held;

    s->ops = NULL;
    s->owner = NULL;
    s->held = 0;
    h2_release(s->h2, held); /* what the owner never passed on: its window comes back too */
    if (s->h2->ng != NULL && held > 0)
        nghttp2_session_consume_stream(s->h2->ng, s->id, held);
    if (s->h2->ng == NULL)
        return;
    if (error_code != 0) {
        s->is_shed = true; /* going: not for h2_shed nor h2_on_sweep */
        nghttp2_submit_rst_stream(s->h2->ng, NGHTTP2_FLAG_NONE, s->id, error_code);
    } else {
        tn_h2_stream_resume(s); /* let what is queued leave; the stream then closes itself */
        s->progress = ev_now(s->h2->loop);
        if (!ev_is_active(&s->h2->sweep))
            ev_timer_again(s->h2->loop, &s->h2->sweep);
    }
    h2_schedule(s->h2);
}

/* A detached stream whose peer takes none of its last bytes (a window that stays at 0) would
 * be kept for as long as the connection lives: it is reset once it sent nothing for
 * STUCK_AFTER. */
static void
h2_on_sweep(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct tn_h2 *h2 = tn_container_of(w, struct tn_h2, sweep);
    struct tn_h2_stream *s;
    size_t waiting = 0, stuck = 0;

    (void)revents;
    for (s = h2->streams; s != NULL && h2->ng != NULL; s = s->next) {
        if (s->ops != NULL || s->is_shed)
            continue;
        if (ev_now(loop) - s->progress < STUCK_AFTER) {
            waiting++;
            continue;
        }
        s->is_shed = true;
        stuck++;
        nghttp2_submit_rst_stream(h2->ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
    }
    if (stuck > 0) {
        static struct tn_log_rate rate;

        tn_log_rated(&rate, TN_LOG_WARN,
                     "%s: %zu ended streams sent nothing for %.0f s (the peer takes none of "
                     "their bytes): reset",
                     h2->peer_addr, stuck, STUCK_AFTER);
        h2_schedule(h2);
    }
    if (waiting == 0)
        ev_timer_stop(loop, w);
}

int32_t
tn_h2_stream_id(const struct tn_h2_stream *s)
{
    return s->id;
}

struct tn_h2 *
tn_h2_stream_conn(const struct tn_h2_stream *s)
{
    return s->h2;
}

/* ---- nghttp2 callbacks ------------------------------------------------------------------ */

/* The connection holds too much: the streams whose readers do not take their bytes (a client
 * that never reads, a stalled target) would stall every other stream with the connection's
 * window.  The stream holding the most is reset instead, so the others go on; streams paced
 * by a bandwidth limit are left alone (they drain at their rate). */
static void
h2_shed(struct tn_h2 *h2)
{
    static struct tn_log_rate rate;
    struct tn_h2_stream *s, *most = NULL;
    size_t going = 0; /* held by streams reset already, until they close */

    for (s = h2->streams; s != NULL; s = s->next) {
        if (s->is_shed)
            going += s->held;
        else if (s->ops != NULL && !s->is_paced && (most == NULL || s->held > most->held))
            most = s;
    }
    if (h2->held - going <= HELD_MAX || most == NULL || most->held == 0)
        return;
    tn_log_rated(&rate, TN_LOG_WARN,
                 "%s: stream %d: its reader left %zu bytes untaken while the connection holds "
                 "%zu: reset, so that the other streams go on",
                 h2->peer_addr, most->id, most->held, h2->held);
    most->is_shed = true;
    nghttp2_submit_rst_stream(h2->ng, NGHTTP2_FLAG_NONE, most->id, NGHTTP2_ENHANCE_YOUR_CALM);
    h2_schedule(h2);
}

/* |n| held bytes were consumed or dropped: pay back withheld connection window if we can. */
static void
h2_release(struct tn_h2 *h2, size_t n)
{
    h2->held -= n;
    if (h2->debt > 0 && h2->held <= HELD_MAX && h2->ng != NULL) {
        nghttp2_session_consume_connection(h2->ng, h2->debt);
        h2->debt = 0;
        h2_schedule(h2);
    }
}

static struct tn_h2_stream *
stream_of(struct tn_h2 *h2, int32_t id)
{
    return nghttp2_session_get_stream_user_data(h2->ng, id);
}

static int
on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *arg)
{
    struct tn_h2 *h2 = arg;
    struct tn_h2_stream *s;

    if (!h2->is_server || frame->hd.type != NGHTTP2_HEADERS ||
        frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    if ((s = stream_new(h2)) == NULL)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets this stream only */
    s->id = frame->hd.stream_id;
    nghttp2_session_set_stream_user_data(ng, s->id, s);
    return 0;
}

static bool
name_is(const uint8_t *name, size_t len, const char *want)
{
    return len == strlen(want) && memcmp(name, want, len) == 0;
}

static int
on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
          const uint8_t *value, size_t valuelen, uint8_t flags, void *arg)
{
    struct tn_h2 *h2 = arg;
    struct tn_h2_stream *s = stream_of(h2, frame->hd.stream_id);

    (void)ng;
    (void)flags;
    if (s == NULL || frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    if (h2->is_server &&
        (s->header_bytes += namelen + valuelen + 32) > h2->settings.max_header_list) {
        static struct tn_log_rate rate;

        tn_log_rated(&rate, TN_LOG_WARN,
                     "%s: stream %d: request headers over %u bytes (limits.max_header_list): reset",
                     h2->peer_addr, (int)s->id, (unsigned)h2->settings.max_header_list);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets this stream only */
    }
    if (h2->is_server) {
        if (name_is(name, namelen, ":path")) {
            if (valuelen >= sizeof(s->path))
                s->is_bad_request = true;
            else
                memcpy(s->path, value, valuelen);
        } else if (name_is(name, namelen, ":method")) {
            s->is_bad_request |= !name_is(value, valuelen, "POST");
        } else if (name_is(name, namelen, "content-type")) {
            s->is_bad_request |= valuelen < 16 || memcmp(value, "application/grpc", 16) != 0;
        }
        return 0;
    }
    if (name_is(name, namelen, ":status")) {
        if (!name_is(value, valuelen, "200")) {
            s->is_http_error = true;
            s->grpc_status = TN_GRPC_UNAVAILABLE;
        }
    } else if (name_is(name, namelen, "grpc-status")) {
        char v[12];
        size_t n = valuelen < sizeof(v) - 1 ? valuelen : sizeof(v) - 1;

        memcpy(v, value, n);
        v[n] = '\0';
        if (!s->is_http_error)
            s->grpc_status = atoi(v);
    } else if (name_is(name, namelen, "grpc-message")) {
        size_t n = valuelen < sizeof(s->grpc_message) - 1 ? valuelen : sizeof(s->grpc_message) - 1;

        memcpy(s->grpc_message, value, n);
        s->grpc_message[n] = '\0';
    }
    return 0;
}

static int
on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *arg)
{
    struct tn_h2 *h2 = arg;
    struct tn_h2_stream *s;

    /* The peer's first SETTINGS proves it accepted our certificate too (a TLS 1.3 server
     * checks it after our side of the handshake has finished). */
    if (frame->hd.type == NGHTTP2_SETTINGS && !(frame->hd.flags & NGHTTP2_FLAG_ACK) &&
        !h2->is_ready) {
        h2->is_ready = true;
        if (h2->ops->on_ready(h2) != 0)
            h2_fail(h2, "peer refused");
        return 0;
    }
    if (frame->hd.type == NGHTTP2_PING && (frame->hd.flags & NGHTTP2_FLAG_ACK)) {
        h2->ping_sent = 0;
        return 0;
    }
    if (frame->hd.type == NGHTTP2_GOAWAY) {
        if (h2->ops->on_goaway != NULL)
            h2->ops->on_goaway(h2);
        return 0;
    }
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    h2->has_message = true;
    if ((s = stream_of(h2, frame->hd.stream_id)) == NULL)
        return 0;
    if (h2->is_server && frame->hd.type == NGHTTP2_HEADERS &&
        frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        if (s->is_bad_request || s->path[0] == '\0') {
            tn_h2_stream_finish(s, TN_GRPC_UNIMPLEMENTED, "not a gRPC request of this service");
            return 0;
        }
        h2->ops->on_request(h2, s, s->path);
    }
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
        s->is_end_received = true;
    if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) && s->ops != NULL) {
        int status = h2->is_server ? 0 : s->grpc_status;
        s->ops->on_end(s->owner, status, s->grpc_message);
    }
    (void)ng;
    return 0;
}

static int
on_data_chunk_recv(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *arg)
{
    struct tn_h2 *h2 = arg;
    struct tn_h2_stream *s = stream_of(h2, id);

    (void)flags;
    h2->message_bytes += len;
    if (s == NULL || s->ops == NULL) {
        nghttp2_session_consume(ng, id, len);
        return 0;
    }
    /* The connection window comes back at once, so that a stalled stream does not block the
     * others, unless this connection already makes us hold too much. */
    s->held += len;
    h2->held += len;
    if (h2->held <= HELD_MAX) {
        nghttp2_session_consume_connection(ng, len);
    } else {
        if (h2->debt == 0)
            tn_metric_at(&tn_metric_limit_hits, "connection_memory", NULL)->value++;
        h2->debt += len;
        h2_shed(h2);
    }
    s->ops->on_data(s->owner, data, len);
    return 0;
}

static int
on_stream_close(nghttp2_session *ng, int32_t id, uint32_t error_code, void *arg)
{
    struct tn_h2 *h2 = arg;
    struct tn_h2_stream *s = stream_of(h2, id);

    if (s != NULL) {
        /* RST_STREAM(NO_ERROR) also closes a stream: only END_STREAM both ways is a clean end. */
        if (error_code == NGHTTP2_NO_ERROR && !(s->is_end_received && s->is_end_sent))
            error_code = NGHTTP2_CANCEL;
        nghttp2_session_set_stream_user_data(ng, id, NULL);
        stream_close(s, error_code);
    }
    return 0;
}

static int
on_frame_send(nghttp2_session *ng, const nghttp2_frame *frame, void *arg)
{
    struct tn_h2 *h2 = arg;
    struct tn_h2_stream *s;

    (void)ng;
    if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
        (frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS) &&
        (s = stream_of(h2, frame->hd.stream_id)) != NULL)
        s->is_end_sent = true;
    /* nghttp2 ends a session that broke the protocol with GOAWAY: say why, once. */
    if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code != NGHTTP2_NO_ERROR &&
        h2->goaway_reason[0] == '\0') {
        snprintf(h2->goaway_reason, sizeof(h2->goaway_reason), "%s: %.*s",
                 nghttp2_http2_strerror(frame->goaway.error_code),
                 (int)(frame->goaway.opaque_data_len < 100 ? frame->goaway.opaque_data_len : 100),
                 frame->goaway.opaque_data != NULL ? (const char *)frame->goaway.opaque_data : "");
        tn_log_warnx("%s: HTTP/2 error, GOAWAY sent: %s", h2->peer_addr, h2->goaway_reason);
        if (h2->close_reason == NULL)
            h2->close_reason = h2->goaway_reason;
    }
    return 0;
}

static int
on_frame_not_send(nghttp2_session *ng, const nghttp2_frame *frame, int lib_error, void *arg)
{
    struct tn_h2 *h2 = arg;
    struct tn_h2_stream *s;

    /* A request that never left (the session is going away) gets no on_stream_close. */
    if (frame->hd.type != NGHTTP2_HEADERS || h2->is_server ||
        (s = stream_of(h2, frame->hd.stream_id)) == NULL)
        return 0;
    tn_log_debug("%s: stream %d not sent: %s", h2->peer_addr, frame->hd.stream_id,
                 nghttp2_strerror(lib_error));
    nghttp2_session_set_stream_user_data(ng, frame->hd.stream_id, NULL);
    stream_close(s, NGHTTP2_REFUSED_STREAM);
    return 0;
}

/* ---- I/O -------------------------------------------------------------------------------- */

static void
h2_update_io(struct tn_h2 *h2)
{
    int events = EV_READ | (h2->want_write ? EV_WRITE : 0);

    if (h2->is_closed || (h2->io.events & (EV_READ | EV_WRITE)) == events)
        return;
    ev_io_stop(h2->loop, &h2->io);
    ev_io_set(&h2->io, h2->fd, events);
    ev_io_start(h2->loop, &h2->io);
}

/* Classifies a failed SSL_read/SSL_write/SSL_do_handshake.  Returns 0 to wait (setting
 * want_write when writability is needed) or fails the connection and returns -1. */
static int
ssl_wait(struct tn_h2 *h2, int rv, const char *what)
{
    int e = SSL_get_error(h2->ssl, rv);

    if (e == SSL_ERROR_WANT_READ)
        return 0;
    if (e == SSL_ERROR_WANT_WRITE) {
        h2->want_write = true;
        return 0;
    }
    if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0)) {
        h2_fail(h2, "peer closed the connection");
    } else if (e == SSL_ERROR_SYSCALL) {
        tn_log_debug("%s: %s: %s", h2->peer_addr, what, strerror(errno));
        h2_fail(h2, "connection lost");
    } else if (ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        ERR_clear_error(); /* the peer's process or host went away mid-record */
        h2_fail(h2, "peer closed the connection");
    } else {
        char buf[256];
        unsigned long ee = ERR_get_error();

        if (!h2->is_ready)
            h2->is_refused = true; /* a TLS alert before the session: a certificate problem */
        ERR_error_string_n(ee, buf, sizeof(buf));
        tn_log_warnx("%s: %s: %s", h2->peer_addr, what, ee != 0 ? buf : "TLS failure");
        ERR_clear_error();
        h2_fail(h2, "TLS failure");
    }
    return -1;
}

/* Writes the TLS records in tlsout to the socket, all of them in one writev when it takes
 * them.  Returns 0 when tlsout is empty, 1 when the socket would block (want_write is set), -1
 * when the connection failed. */
static int
h2_sock_flush(struct tn_h2 *h2)
{
    struct iovec iov[16];
    ssize_t k;
    int n;

    while ((n = tn_buf_iov(&h2->tlsout, iov, (int)TN_ARRAY_LEN(iov))) > 0) {
        if ((k = writev(h2->fd, iov, n)) < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                h2->want_write = true;
                return 1;
            }
            tn_log_debug("%s: write: %s", h2->peer_addr, strerror(errno));
            h2_fail(h2, "connection lost");
            return -1;
        }
        tn_buf_consume(&h2->tlsout, (size_t)k);
    }
    return 0;
}

/* Seals up to |n| bytes from the head of |b| into tlsout, consuming them.  Returns 0, or -1
 * when the connection failed. */
static int
h2_seal(struct tn_h2 *h2, struct tn_buf *b, size_t n)
{
    int rv = tn_record_seal(&h2->rec, b, n, &h2->tlsout);

    if (rv != 0) {
        h2_fail(h2, rv == -ENOMEM ? "out of memory" : "TLS failure");
        return -1;
    }
    return 0;
}

/* Seals wbuf into tlsout and writes that to the socket.  Returns 0 when both are empty, 1
 * when the socket would block (want_write is set), -1 when the connection failed. */
static int
h2_flush(struct tn_h2 *h2)
{
    int rv;

    for (;;) {
        /* Bounded: nothing more is sealed while the socket lags this far behind. */
        while (tn_buf_len(&h2->tlsout) < TLSOUT_HIGH && tn_buf_len(&h2->wbuf) > 0) {
            if (h2_seal(h2, &h2->wbuf, WBUF_HIGH) != 0)
                return -1;
        }
        if ((rv = h2_sock_flush(h2)) != 0)
            return rv;
        if (tn_buf_len(&h2->wbuf) == 0)
            return 0;
    }
}

/* The write side of OpenSSL's records (the handshake, HTTP/1.1): they are appended to tlsout
 * (never blocking), so that the records of one flight leave in one system call. */
static int
wbio_write(BIO *b, const char *data, int len)
{
    struct tn_h2 *h2 = BIO_get_data(b);

    BIO_clear_retry_flags(b);
    if (tn_buf_append(&h2->tlsout, data, (size_t)len) != 0)
        return -1;
    return len;
}

static long
wbio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static BIO_METHOD *
wbio_method(void)
{
    static BIO_METHOD *m;

    if (m == NULL &&
        (m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "tunnel TLS out")) != NULL) {
        BIO_meth_set_write(m, wbio_write);
        BIO_meth_set_ctrl(m, wbio_ctrl);
    }
    return m;
}

/* Makes room in wbuf for nghttp2's next frame.  Returns 0 or NGHTTP2_ERR_WOULDBLOCK. */
static int
wbuf_room(struct tn_h2 *h2)
{
    if (tn_buf_len(&h2->wbuf) < WBUF_HIGH)
        return 0;
    return h2_flush(h2) == 0 ? 0 : NGHTTP2_ERR_WOULDBLOCK;
}

static ssize_t
on_send(nghttp2_session *ng, const uint8_t *data, size_t len, int flags, void *arg)
{
    struct tn_h2 *h2 = arg;
    int rv;

    (void)ng;
    (void)flags;
    if ((rv = wbuf_room(h2)) != 0)
        return rv;
    if (tn_buf_append(&h2->wbuf, data, len) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return (ssize_t)len;
}

/* A DATA frame decided by data_read: its header, then its payload from the stream's out
 * buffer.  A small payload is copied behind the header, so that small frames share TLS records;
 * a large one is sealed straight from the out buffer, the header leaving in the record of
 * what wbuf held before it: the AEAD pass is the payload's only copy on its way to the socket. */
static int
on_send_data(nghttp2_session *ng, nghttp2_frame *frame, const uint8_t *framehd, size_t length,
             nghttp2_data_source *src, void *arg)
{
    struct tn_h2 *h2 = arg;
    struct tn_h2_stream *s = src->ptr;
    size_t avail;
    uint8_t *dst;
    int rv;

    (void)ng;
    (void)frame;
    if ((rv = wbuf_room(h2)) != 0)
        return rv;
    if (length < DIRECT_MIN) {
        if ((dst = tn_buf_reserve(&h2->wbuf, FRAME_HDLEN + length, &avail)) == NULL)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        memcpy(dst, framehd, FRAME_HDLEN);
        tn_buf_copy(&s->out, dst + FRAME_HDLEN, length);
        tn_buf_commit(&h2->wbuf, FRAME_HDLEN + length);
        tn_buf_consume(&s->out, length);
    } else {
        if (tn_buf_len(&h2->tlsout) >= TLSOUT_HIGH && (rv = h2_sock_flush(h2)) != 0)
            return rv > 0 ? NGHTTP2_ERR_WOULDBLOCK : NGHTTP2_ERR_CALLBACK_FAILURE;
        if (tn_buf_append(&h2->wbuf, framehd, FRAME_HDLEN) != 0 ||
            h2_seal(h2, &h2->wbuf, tn_buf_len(&h2->wbuf)) != 0 || h2_seal(h2, &s->out, length) != 0)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    if (length > 0 && s->ops != NULL)
        s->ops->on_sent(s->owner, length);
    else
        s->progress = ev_now(h2->loop);
    return 0;
}

static void
h2_send(struct tn_h2 *h2)
{
    int rv;

    h2->want_write = false;
    while (h2->ng != NULL) {
        if ((rv = nghttp2_session_send(h2->ng)) != 0) {
            tn_log_warnx("%s: HTTP/2: %s", h2->peer_addr, nghttp2_strerror(rv));
            h2_fail(h2, "HTTP/2 error");
            return;
        }
        if (h2_flush(h2) != 0 || !nghttp2_session_want_write(h2->ng))
            return;
    }
}

/* What tn_record_open stopped at. */
static void
h2_record_failed(struct tn_h2 *h2, enum tn_record_status st, const char *why)
{
    if (st == TN_RECORD_CLOSED) {
        h2_fail(h2, "peer closed the connection");
        return;
    }
    if (st == TN_RECORD_ALERT) {
        /* Before the peer's SETTINGS: the relay checked our certificate after our handshake
         * ended, and refused it. */
        if (!h2->is_ready && tn_record_refused_certificate(&h2->rec))
            h2->is_refused = true;
        tn_log_warnx("%s: TLS alert from the peer: %s", h2->peer_addr, why);
    } else {
        tn_log_warnx("%s: TLS: %s", h2->peer_addr, why);
        if (tn_record_seal_alert(&h2->rec, &h2->tlsout) == 0) /* the fatal alert we owe */
            h2_sock_flush(h2);
    }
    h2_fail(h2, "TLS failure");
}

static void
h2_recv(struct tn_h2 *h2)
{
    /* One loop per process: static buffers are enough.  All the records of one read are
     * opened into one run of plaintext, so nghttp2 hands on long runs of payload, which the
     * next hop writes in few, large pieces. */
    static uint8_t in[TN_RECORD_MAX + RBUF_SIZE], plain[sizeof(in)];
    size_t have = tn_buf_copy(&h2->rpart, in, TN_RECORD_MAX), used, len = 0;
    enum tn_record_status st;
    const char *why = NULL;
    ssize_t n;

    if ((n = read(h2->fd, in + have, sizeof(in) - have)) <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n < 0)
            tn_log_debug("%s: read: %s", h2->peer_addr, strerror(errno));
        h2_fail(h2, n == 0 ? "peer closed the connection" : "connection lost");
        return;
    }
    tn_buf_consume(&h2->rpart, have);
    have += (size_t)n;
    h2->last_heard = ev_now(h2->loop);
    st = tn_record_open(&h2->rec, in, have, &used, plain, &len, &why);
    if (len > 0 && (n = nghttp2_session_mem_recv(h2->ng, plain, len)) < 0) {
        tn_log_warnx("%s: HTTP/2: %s", h2->peer_addr, nghttp2_strerror((int)n));
        h2_fail(h2, "HTTP/2 protocol error");
        return;
    }
    if (h2->has_message && h2->message_bytes <= TN_BUSYPOLL_MESSAGE_MAX)
        tn_busypoll_note(h2->loop);
    h2->has_message = false;
    h2->message_bytes = 0;
    if (st != TN_RECORD_OK) {
        h2_record_failed(h2, st, why);
        return;
    }
    if (used < have && tn_buf_append(&h2->rpart, in + used, have - used) != 0)
        h2_fail(h2, "out of memory");
}

/* Everything a closed connection holds goes here, once, outside nghttp2's callbacks. */
static void
h2_teardown(struct tn_h2 *h2, bool notify)
{
    const char *reason = h2->close_reason;

    /* A local close says goodbye properly: GOAWAY and TLS close_notify, if the socket takes
     * them now (it is non-blocking; nothing waits). */
    if (!notify && h2->ng != NULL) {
        nghttp2_session_terminate_session(h2->ng, NGHTTP2_NO_ERROR);
        h2_send(h2);
        if (tn_record_seal_alert(&h2->rec, &h2->tlsout) == 0) /* close_notify */
            h2_sock_flush(h2);
    }
    h2->is_closed = true;
    ev_io_stop(h2->loop, &h2->io);
    ev_prepare_stop(h2->loop, &h2->flush);
    ev_timer_stop(h2->loop, &h2->handshake_timer);
    ev_timer_stop(h2->loop, &h2->heartbeat);
    ev_timer_stop(h2->loop, &h2->sweep);
    nghttp2_session_del(h2->ng);
    h2->ng = NULL;
    while (h2->streams != NULL)
        stream_close(h2->streams, TN_H2_CONNECTION_ENDED);
    tn_buf_fini(&h2->wbuf);
    tn_buf_fini(&h2->tlsout);
    tn_buf_fini(&h2->rpart);
    tn_record_fini(&h2->rec);
    if (notify)
        h2->ops->on_close(h2, reason);
}

static void
h2_after_events(struct tn_h2 *h2)
{
    if (h2->close_reason != NULL) {
        if (h2->ng != NULL && h2->is_closed == false)
            h2_send(h2); /* a last GOAWAY or RST, if the socket takes it */
        h2_teardown(h2, true);
        return;
    }
    if (h2->ng != NULL && !nghttp2_session_want_read(h2->ng) &&
        !nghttp2_session_want_write(h2->ng) && tn_buf_len(&h2->wbuf) == 0) {
        h2->close_reason = "session ended";
        h2_teardown(h2, true);
        return;
    }
    h2_update_io(h2);
}

static void
h2_on_flush(struct ev_loop *loop, ev_prepare *w, int revents)
{
    struct tn_h2 *h2 = tn_container_of(w, struct tn_h2, flush);

    (void)revents;
    ev_prepare_stop(loop, w);
    if (h2->close_reason == NULL && h2->ng != NULL && !h2->want_write)
        h2_send(h2);
    h2_after_events(h2);
}

static void
h2_schedule(struct tn_h2 *h2)
{
    if (!h2->is_closed && !ev_is_active(&h2->flush))
        ev_prepare_start(h2->loop, &h2->flush);
}

/* DATA frames as large as the peer takes (64 KiB between our programs) instead of nghttp2's
 * 16 KiB: fewer frame headers, and the receiver gets longer runs of payload per chunk.
 * nghttp2 lowers the answer to what the flow-control windows allow. */
static ssize_t
data_read_length(nghttp2_session *ng, uint8_t type, int32_t id, int32_t conn_window,
                 int32_t stream_window, uint32_t max_frame, void *arg)
{
    (void)ng;
    (void)type;
    (void)id;
    (void)conn_window;
    (void)stream_window;
    (void)arg;
    return (ssize_t)max_frame;
}

static int
h2_session_start(struct tn_h2 *h2)
{
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
    nghttp2_settings_entry iv[] = {
        { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, h2->settings.max_streams },
        { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, h2->settings.stream_window },
        { NGHTTP2_SETTINGS_MAX_FRAME_SIZE, 64 * 1024 },
        { NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
        { NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, h2->settings.max_header_list },
    };
    int rv;

    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return -ENOMEM;
    nghttp2_session_callbacks_set_send_callback(cbs, on_send);
    nghttp2_session_callbacks_set_send_data_callback(cbs, on_send_data);
    nghttp2_session_callbacks_set_data_source_read_length_callback(cbs, data_read_length);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs, on_frame_not_send);
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cbs);
        return -ENOMEM;
    }
    nghttp2_option_set_no_auto_window_update(opt, 1);
    /* nghttp2 otherwise keeps closed streams for the priority tree, up to the concurrency
     * limit: with thousands of short flows that is memory that never comes back. */
    nghttp2_option_set_no_closed_streams(opt, 1);
    nghttp2_option_set_max_send_header_block_length(opt, 16 * 1024);
    /* nghttp2 tears down a peer that resets streams faster than this (the rapid reset
     * attack).  Its default burst, 1000, is what one proxy sends at once when a target host
     * with that many flows goes away: a peer's burst may reach RESET_BURST, but not last. */
    nghttp2_option_set_stream_reset_rate_limit(opt, RESET_BURST, RESET_RATE);
    if (h2->is_server)
        rv = nghttp2_session_server_new2(&h2->ng, cbs, h2, opt);
    else
        rv = nghttp2_session_client_new2(&h2->ng, cbs, h2, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    if (rv != 0)
        return -ENOMEM;
    rv = nghttp2_submit_settings(h2->ng, NGHTTP2_FLAG_NONE, iv, TN_ARRAY_LEN(iv));
    if (rv == 0)
        rv = nghttp2_session_set_local_window_size(h2->ng, NGHTTP2_FLAG_NONE, 0,
                                                   (int32_t)h2->settings.connection_window);
    return rv == 0 ? 0 : TN_ERR_H2;
}

/* Liveness: a PING once the peer has been silent for ping_interval; no answer within
 * ping_timeout (a cable pulled: packets dropped, nothing refused) closes the connection.  The
 * timer is re-armed for exactly the next moment that matters. */
static void
h2_on_heartbeat(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct tn_h2 *h2 = tn_container_of(w, struct tn_h2, heartbeat);
    const struct tn_h2_settings *set = &h2->settings;
    ev_tstamp now = ev_now(loop), next;

    (void)revents;
    if (h2->ng == NULL || h2->close_reason != NULL)
        return;
    if (h2->ping_sent != 0) {
        if (now - h2->ping_sent >= set->ping_timeout) {
            tn_log_warnx("%s: no answer to PING for %.1f s", h2->peer_addr, now - h2->ping_sent);
            tn_metric_at(&tn_metric_heartbeats, "timeout", NULL)->value++;
            h2_fail(h2, "heartbeat timeout");
            return;
        }
        next = h2->ping_sent + set->ping_timeout - now;
    } else if (now - h2->last_heard >= set->ping_interval) {
        if (nghttp2_submit_ping(h2->ng, NGHTTP2_FLAG_NONE, NULL) == 0) {
            h2->ping_sent = now;
            tn_metric_at(&tn_metric_heartbeats, "sent", NULL)->value++;
            h2_schedule(h2);
        }
        next = set->ping_timeout;
    } else {
        next = h2->last_heard + set->ping_interval - now;
    }
    w->repeat = next > 0.001 ? next : 0.001;
    ev_timer_again(loop, w);
}

static void
h2_handshake(struct tn_h2 *h2)
{
    const unsigned char *alpn = NULL;
    unsigned alpn_len = 0;
    int rv;

    ERR_clear_error();
    rv = SSL_do_handshake(h2->ssl);
    if (h2_sock_flush(h2) < 0) /* what the handshake wrote (tlsout) */
        return;
    if (rv != 1) {
        ssl_wait(h2, rv, "TLS handshake");
        return;
    }
    ev_timer_stop(h2->loop, &h2->handshake_timer);
    if (h2->settings.ping_timeout > 0) {
        h2->last_heard = ev_now(h2->loop);
        h2->heartbeat.repeat = h2->settings.ping_interval;
        ev_timer_again(h2->loop, &h2->heartbeat);
    }
    SSL_get0_alpn_selected(h2->ssl, &alpn, &alpn_len);
    if (h2->is_server && (alpn_len == 0 || (alpn_len == 8 && memcmp(alpn, "http/1.1", 8) == 0))) {
        if ((h2->http1 = calloc(1, TN_H2_HTTP1_MAX)) == NULL) {
            h2_fail(h2, "out of memory");
            return;
        }
        ev_timer_set(&h2->handshake_timer, HANDSHAKE_TIMEOUT, 0); /* bounds the request too */
        ev_timer_start(h2->loop, &h2->handshake_timer);
        h2_http1(h2);
        return;
    }
    if (alpn_len != 2 || memcmp(alpn, "h2", 2) != 0) {
        tn_log_warnx("%s: peer did not negotiate ALPN h2", h2->peer_addr);
        h2->is_refused = true;
        h2_fail(h2, "no ALPN h2");
        return;
    }
    if (tn_record_start(&h2->rec, h2->ssl) != 0) {
        tn_log_warnx("%s: cannot take over the TLS records of this session", h2->peer_addr);
        h2_fail(h2, "TLS failure");
        return;
    }
    if (h2->is_server && SSL_get0_peer_certificate(h2->ssl) == NULL) {
        /* No certificate: the owner decides what such a peer may do (role NONE), unless it
         * needs one.  Then it gets the alert instead of our SETTINGS, and none of the requests
         * it may have sent already is read.  An alert before our SETTINGS tells our clients and
         * proxies that retrying cannot help (h2_record_failed). */
        if (h2->settings.is_cert_required) {
            tn_record_require_certificate(&h2->rec);
            if (tn_record_seal_alert(&h2->rec, &h2->tlsout) == 0)
                h2_sock_flush(h2);
            h2_fail(h2, "refused: no certificate, and one is required");
            return;
        }
    } else if (tn_tls_peer_identity(h2->ssl, &h2->peer) != 0) {
        tn_log_warnx("%s: certificate has no tunnel:// identity", h2->peer_addr);
        h2->is_refused = true;
        h2_fail(h2, "certificate without identity");
        return;
    }
    if (h2->settings.peer_role != TN_ROLE_NONE && h2->peer.role != h2->settings.peer_role) {
        tn_log_warnx("%s: refused: its certificate is a %s's, not a %s's", h2->peer_addr,
                     tn_role_name(h2->peer.role), tn_role_name(h2->settings.peer_role));
        h2->is_refused = true;
        h2_fail(h2, "wrong certificate role");
        return;
    }
    if (h2_session_start(h2) != 0) {
        h2_fail(h2, "cannot start HTTP/2");
        return;
    }
    h2_send(h2);
}

/* A peer that chose HTTP/1.1 (a load balancer's health probe): one request, the owner's
 * answer, then the connection closes. */
static void
h2_http1(struct tn_h2 *h2)
{
    const char *answer;
    int rv;

    while (h2->http1_len < TN_H2_HTTP1_MAX - 1 && strstr(h2->http1, "\r\n\r\n") == NULL) {
        ERR_clear_error();
        rv = SSL_read(h2->ssl, h2->http1 + h2->http1_len,
                      (int)(TN_H2_HTTP1_MAX - 1 - h2->http1_len));
        if (rv <= 0) {
            ssl_wait(h2, rv, "HTTP/1.1 request");
            return;
        }
        h2->http1_len += (size_t)rv;
        h2->http1[h2->http1_len] = '\0';
    }
    answer = h2->ops->on_http1 != NULL ? h2->ops->on_http1(h2, h2->http1) : NULL;
    if (answer != NULL) {
        ERR_clear_error();
        SSL_write(h2->ssl, answer, (int)strlen(answer));
        SSL_shutdown(h2->ssl);
        h2_sock_flush(h2);
    }
    h2_fail(h2, "HTTP/1.1 request answered");
}

static void
h2_on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    struct tn_h2 *h2 = tn_container_of(w, struct tn_h2, io);

    (void)loop;
    if (h2->http1 != NULL) {
        h2_http1(h2);
    } else if (h2->ng == NULL) {
        h2->want_write = false;
        h2_handshake(h2);
    } else {
        if (revents & EV_READ)
            h2_recv(h2);
        if ((revents & EV_WRITE) || h2->close_reason == NULL)
            h2_send(h2);
    }
    h2_after_events(h2);
}

static void
h2_on_handshake_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct tn_h2 *h2 = tn_container_of(w, struct tn_h2, handshake_timer);

    (void)loop;
    (void)revents;
    tn_log_warnx("%s: TLS handshake timed out after %.1f s (handshake_timeout)", h2->peer_addr,
                 h2->settings.handshake_timeout);
    h2_fail(h2, "handshake timeout");
}

struct tn_h2 *
tn_h2_new(struct ev_loop *loop, SSL_CTX *ctx, int fd, bool is_server,
          const struct tn_h2_settings *settings, const struct tn_h2_ops *ops, void *owner)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    struct tn_h2 *h2;
    BIO *rbio = NULL, *wbio = NULL;

    if ((h2 = calloc(1, sizeof(*h2))) == NULL || (h2->ssl = SSL_new(ctx)) == NULL)
        goto fail;
    h2->loop = loop;
    h2->fd = fd;
    h2->is_server = is_server;
    h2->settings = *settings;
    h2->ops = ops;
    h2->owner = owner;
    tn_buf_init(&h2->wbuf);
    tn_buf_init(&h2->tlsout);
    tn_buf_init(&h2->rpart);
    if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
        tn_addr_format((struct sockaddr *)&ss, h2->peer_addr, sizeof(h2->peer_addr));
    /* The handshake reads straight from the socket and writes through tlsout (wbio_write). */
    if ((rbio = BIO_new_socket(fd, BIO_NOCLOSE)) == NULL ||
        (wbio = BIO_new(wbio_method())) == NULL) {
        BIO_free(rbio);
        goto fail;
    }
    BIO_set_data(wbio, h2);
    BIO_set_init(wbio, 1);
    SSL_set_bio(h2->ssl, rbio, wbio); /* transferred */
    if (tn_record_watch(&h2->rec, h2->ssl) != 0)
        goto fail;
    if (is_server)
        SSL_set_accept_state(h2->ssl);
    else
        SSL_set_connect_state(h2->ssl);
    if (!is_server &&
        tn_tls_expect_name(h2->ssl, settings->server_name, settings->is_name_derived) != 0)
        goto fail;
    ev_io_init(&h2->io, h2_on_io, fd, EV_READ | EV_WRITE);
    ev_prepare_init(&h2->flush, h2_on_flush);
    if (h2->settings.handshake_timeout <= 0)
        h2->settings.handshake_timeout = HANDSHAKE_TIMEOUT;
    if (h2->settings.max_header_list == 0)
        h2->settings.max_header_list = HEADER_LIST_MAX;
    ev_timer_init(&h2->handshake_timer, h2_on_handshake_timeout, h2->settings.handshake_timeout, 0);
    ev_init(&h2->sweep, h2_on_sweep);
    h2->sweep.repeat = STUCK_AFTER / 3;
    ev_init(&h2->heartbeat, h2_on_heartbeat);
    ev_io_start(loop, &h2->io);
    ev_timer_start(loop, &h2->handshake_timer);
    return h2;
fail:
    if (h2 != NULL)
        SSL_free(h2->ssl);
    free(h2);
    close(fd);
    return NULL;
}

void
tn_h2_drain(struct tn_h2 *h2)
{
    if (h2->ng == NULL || h2->is_closed)
        return;
    nghttp2_submit_goaway(h2->ng, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(h2->ng), NGHTTP2_NO_ERROR, NULL,
                          0);
    h2_schedule(h2);
}

void
tn_h2_close(struct tn_h2 *h2, const char *reason)
{
    if (h2->ng != NULL)
        nghttp2_session_terminate_session(h2->ng, NGHTTP2_NO_ERROR);
    h2_fail(h2, reason);
}

void
tn_h2_free(struct tn_h2 *h2)
{
    if (h2 == NULL)
        return;
    if (!h2->is_closed) {
        h2->close_reason = "freed";
        h2_teardown(h2, false);
    }
    SSL_free(h2->ssl);
    if (h2->fd >= 0)
        close(h2->fd);
    free(h2->http1);
    free(h2);
}

void *
tn_h2_owner(const struct tn_h2 *h2)
{
    return h2->owner;
}

const struct tn_identity *
tn_h2_peer(const struct tn_h2 *h2)
{
    return &h2->peer;
}

bool
tn_h2_is_refused(const struct tn_h2 *h2)
{
    return h2->is_refused;
}

const char *
tn_h2_peer_addr(const struct tn_h2 *h2)
{
    return h2->peer_addr;
}
