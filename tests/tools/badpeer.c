/* SPDX-License-Identifier: MIT */
/* badpeer: a misbehaving tunnel peer for regression tests; it sends the HTTP/2 frames the
 * tunnel's own programs never send (RST_STREAM(NO_ERROR), two Register calls at once, a forged
 * Hello) and checks how the real relay or proxy answers.  Each subcommand exits 0 when what it
 * saw was right, and 1 with a "FAIL:" line for each thing that was wrong.
 *
 * It talks HTTP/2 with nghttp2 directly over a blocking-style, poll-based TLS connection, and
 * plays the target too where a scenario needs one, so that the order of events is its own:
 *
 *   client-rst-noerror:  badpeer(client) ══ relay ══ proxy ── badpeer(target)
 *   double-register:     badpeer(proxy, twice on one connection), then badpeer(client) ══ relay
 *   register-refused:    badpeer(client or impostor proxy) ══ relay
 *   register-pile:       badpeer(proxy, 50 Register calls with one byte each) ══ relay
 *   open-service:        badpeer(client: an Open naming a service) ══ relay ══ proxy
 *   bad-frame:           badpeer(client: DATA on an idle stream) ══ relay
 *   many-resets:         badpeer(client: 2000 streams reset at once, then a flood) ══ relay
 *   stuck-refusals:      badpeer(client reading nothing: 200 flows the relay refuses) ══ relay
 *   open-pile:           badpeer(client: 4146 Connect streams that send no Open) ══ relay
 *   slow-client:         badpeer(client reading nothing, 80 flows) ══ relay ══ proxy ──
 *                        badpeer(targets pushing), then badpeer(client) the same way
 *   fake-relay-rst:      proxy ══ badpeer(relay) and proxy ── badpeer(target)
 *   fake-relay-refill:   proxy ══ badpeer(relay)
 *   fake-relay-bad-frame: proxy ══ badpeer(relay: DATA on an idle stream), then again */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tn/addr.h"
#include "tn/cidr.h"
#include "tn/grpc.h"
#include "tn/log.h"
#include "tn/tls.h"
#include "tn/util.h"

#define PATH_CONNECT  "/tunnel.v1.Relay/Connect"
#define PATH_REGISTER "/tunnel.v1.Relay/Register"
#define PATH_ACCEPT   "/tunnel.v1.Relay/Accept"

#define MAX_STREAMS 512
#define STEP_MS     20 /* longest poll: side work (a target socket) is looked at this often */

/* How long each kind of wait may take, in milliseconds. */
#define T_CONNECT 5000  /* TCP connect and TLS handshake */
#define T_ANSWER  5000  /* an answer the peer should send at once */
#define T_QUICK   3000  /* what the fixed code does at once or after its 1 s refill timer */
#define T_HOLD    60000 /* a fake relay waiting for the proxy to leave */

static const char *cmd = "badpeer";
static int failures;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Progress, on stderr with the subcommand's name. */
static void
say(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, "badpeer %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Something was wrong: the subcommand goes on where it can and exits 1 at the end. */
static void
fail(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, "badpeer %s: FAIL: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    failures++;
}

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
ms_left(int64_t deadline)
{
    int64_t left = deadline - now_ms();

    return left < 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
}

/* ---- one HTTP/2 connection over TLS ----------------------------------------------------- */

/* What we saw of one stream, and what we still have to send on it. */
struct bstream {
    int32_t id;
    char path[64];   /* server: the request's :path */
    int grpc_status; /* -1 until a grpc-status header came */
    char grpc_message[128];
    bool is_ended;       /* the peer sent END_STREAM */
    bool is_closed;      /* nghttp2 closed the stream */
    bool is_taken;       /* fake relay: an Accept stream already given a flow */
    uint32_t close_code; /* the RST_STREAM or GOAWAY code once closed */
    uint8_t *in;         /* DATA received */
    size_t in_len, in_cap;
    size_t in_used; /* bytes of |in| already taken as whole gRPC messages */
    uint8_t *out;   /* DATA to send */
    size_t out_len, out_cap, out_sent;
    bool is_out_eof;  /* end our side once |out| is sent */
    bool is_deferred; /* the data source waits for more |out| */
};

struct peer {
    const char *what; /* "relay" or "proxy": whom we talk to, for messages */
    int fd;
    SSL *ssl;
    nghttp2_session *ng;
    bool is_server;
    bool is_eof; /* the connection is gone (EOF, TLS or HTTP/2 error) */
    unsigned pings_acked;
    size_t nstreams;
    struct bstream streams[MAX_STREAMS];
};

static struct bstream *
bs_find(struct peer *p, int32_t id)
{
    size_t i;

    for (i = 0; i < p->nstreams; i++)
        if (p->streams[i].id == id)
            return &p->streams[i];
    return NULL;
}

static struct bstream *
bs_add(struct peer *p, int32_t id)
{
    struct bstream *bs;

    if ((bs = bs_find(p, id)) != NULL)
        return bs;
    if (p->nstreams == MAX_STREAMS)
        return NULL;
    bs = &p->streams[p->nstreams++];
    memset(bs, 0, sizeof(*bs));
    bs->id = id;
    bs->grpc_status = -1;
    return bs;
}

static int
grow(uint8_t **buf, size_t *cap, size_t need)
{
    size_t n = *cap > 0 ? *cap : 4096;
    uint8_t *b;

    if (need <= *cap)
        return 0;
    while (n < need)
        n *= 2;
    if ((b = realloc(*buf, n)) == NULL)
        return -ENOMEM;
    *buf = b;
    *cap = n;
    return 0;
}

static ssize_t
bs_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
        nghttp2_data_source *src, void *arg)
{
    struct bstream *bs = bs_find(arg, id);
    size_t n;

    (void)ng;
    (void)src;
    if (bs == NULL) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        return 0;
    }
    n = bs->out_len - bs->out_sent;
    if (n > len)
        n = len;
    if (n > 0)
        memcpy(buf, bs->out + bs->out_sent, n);
    bs->out_sent += n;
    if (bs->out_sent == bs->out_len) {
        if (bs->is_out_eof) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
        } else if (n == 0) {
            bs->is_deferred = true;
            return NGHTTP2_ERR_DEFERRED;
        }
    }
    return (ssize_t)n;
}

static int
on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *arg)
{
    struct peer *p = arg;

    (void)ng;
    if (p->is_server && frame->hd.type == NGHTTP2_HEADERS &&
        frame->headers.cat == NGHTTP2_HCAT_REQUEST && bs_add(p, frame->hd.stream_id) == NULL)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* refuses the stream: badpeer is full */
    return 0;
}

static void
copy_value(char *dst, size_t size, const uint8_t *v, size_t n)
{
    if (n >= size)
        n = size - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static int
on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
          const uint8_t *value, size_t valuelen, uint8_t flags, void *arg)
{
    struct bstream *bs = bs_find(arg, frame->hd.stream_id);
    char v[16];

    (void)ng;
    (void)flags;
    if (bs == NULL)
        return 0;
    if (namelen == 5 && memcmp(name, ":path", 5) == 0) {
        copy_value(bs->path, sizeof(bs->path), value, valuelen);
    } else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0) {
        copy_value(v, sizeof(v), value, valuelen);
        bs->grpc_status = atoi(v);
    } else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0) {
        copy_value(bs->grpc_message, sizeof(bs->grpc_message), value, valuelen);
    }
    return 0;
}

static int
on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *arg)
{
    struct peer *p = arg;
    struct bstream *bs;

    (void)ng;
    if (frame->hd.type == NGHTTP2_PING && (frame->hd.flags & NGHTTP2_FLAG_ACK))
        p->pings_acked++;
    if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
        (bs = bs_find(p, frame->hd.stream_id)) != NULL)
        bs->is_ended = true;
    return 0;
}

static int
on_data_chunk_recv(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *arg)
{
    struct bstream *bs = bs_find(arg, id);

    (void)ng;
    (void)flags;
    if (bs == NULL)
        return 0;
    if (grow(&bs->in, &bs->in_cap, bs->in_len + len) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    memcpy(bs->in + bs->in_len, data, len);
    bs->in_len += len;
    return 0;
}

static int
on_stream_close(nghttp2_session *ng, int32_t id, uint32_t error_code, void *arg)
{
    struct bstream *bs = bs_find(arg, id);

    (void)ng;
    if (bs != NULL) {
        bs->is_closed = true;
        bs->close_code = error_code;
    }
    return 0;
}

/* Writes all of |data|, waiting for the socket at most until |deadline|.  Returns 0 or -1. */
static int
ssl_write_all(struct peer *p, const uint8_t *data, size_t len, int64_t deadline)
{
    struct pollfd pfd = { .fd = p->fd };
    int n, e;

    while (len > 0) {
        ERR_clear_error();
        if ((n = SSL_write(p->ssl, data, len > INT_MAX ? INT_MAX : (int)len)) > 0) {
            data += n;
            len -= (size_t)n;
            continue;
        }
        e = SSL_get_error(p->ssl, n);
        if ((e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ) || now_ms() >= deadline)
            return -1;
        pfd.events = e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN;
        poll(&pfd, 1, ms_left(deadline) < STEP_MS ? ms_left(deadline) : STEP_MS);
    }
    return 0;
}

/* Sends what nghttp2 has queued. */
static void
peer_flush(struct peer *p)
{
    int64_t deadline = now_ms() + T_ANSWER;
    const uint8_t *data;
    ssize_t n;

    while (!p->is_eof) {
        if ((n = nghttp2_session_mem_send(p->ng, &data)) <= 0) {
            if (n < 0)
                p->is_eof = true;
            return;
        }
        if (ssl_write_all(p, data, (size_t)n, deadline) != 0)
            p->is_eof = true;
    }
}

/* Reads and handles whatever arrived, without waiting. */
static void
peer_read(struct peer *p)
{
    uint8_t buf[16384];
    int n, e;

    while (!p->is_eof) {
        ERR_clear_error();
        if ((n = SSL_read(p->ssl, buf, sizeof(buf))) > 0) {
            if (nghttp2_session_mem_recv(p->ng, buf, (size_t)n) < 0)
                p->is_eof = true;
            continue;
        }
        e = SSL_get_error(p->ssl, n);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
            p->is_eof = true;
        return;
    }
}

/* A condition a wait ends on; it may also do side work (accept, send) each time it is asked. */
typedef bool (*cond_fn)(struct peer *p, void *arg);

/* Moves frames both ways on |p| (may be NULL: no connection) until |cond| holds, the
 * connection ends or |timeout_ms| passed.  Returns whether |cond| held. */
static bool
peer_wait(struct peer *p, int timeout_ms, cond_fn cond, void *arg)
{
    int64_t deadline = now_ms() + timeout_ms;
    struct pollfd pfd = { .fd = p != NULL ? p->fd : -1, .events = POLLIN };
    int left;

    for (;;) {
        if (p != NULL) {
            peer_flush(p);
            peer_read(p);
            peer_flush(p);
        }
        if (cond != NULL && cond(p, arg))
            return true;
        if ((p != NULL && p->is_eof) || (left = ms_left(deadline)) == 0)
            return false;
        poll(&pfd, 1, left < STEP_MS ? left : STEP_MS);
    }
}

/* The receive window of each stream of the peers made from here on (0: a peer that reads
 * nothing). */
static uint32_t stream_window = 1 << 20;

static struct peer *
peer_new(const char *what, int fd, SSL_CTX *ctx, bool is_server)
{
    const nghttp2_settings_entry settings[] = {
        { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 1000 },
        { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, stream_window },
    };
    int64_t deadline = now_ms() + T_CONNECT;
    nghttp2_session_callbacks *cbs = NULL;
    struct pollfd pfd = { .fd = fd };
    const unsigned char *alpn = NULL;
    unsigned alpn_len = 0;
    struct peer *p;
    int n, e, rv;

    if ((p = calloc(1, sizeof(*p))) == NULL) {
        close(fd);
        return NULL;
    }
    p->what = what;
    p->fd = fd;
    p->is_server = is_server;
    if ((p->ssl = SSL_new(ctx)) == NULL || SSL_set_fd(p->ssl, fd) != 1)
        goto err;
    for (;;) {
        ERR_clear_error();
        if ((n = is_server ? SSL_accept(p->ssl) : SSL_connect(p->ssl)) == 1)
            break;
        e = SSL_get_error(p->ssl, n);
        if ((e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) || now_ms() >= deadline) {
            tn_tls_log_errors("TLS handshake");
            goto err;
        }
        pfd.events = e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN;
        poll(&pfd, 1, ms_left(deadline));
    }
    SSL_get0_alpn_selected(p->ssl, &alpn, &alpn_len);
    if (alpn_len != 2 || memcmp(alpn, "h2", 2) != 0) {
        say("the %s did not agree on ALPN h2", what);
        goto err;
    }
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        goto err;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    rv = is_server ? nghttp2_session_server_new(&p->ng, cbs, p)
                   : nghttp2_session_client_new(&p->ng, cbs, p);
    nghttp2_session_callbacks_del(cbs);
    if (rv != 0)
        goto err;
    nghttp2_submit_settings(p->ng, NGHTTP2_FLAG_NONE, settings, TN_ARRAY_LEN(settings));
    peer_flush(p);
    return p;
err:
    if (p->ng != NULL)
        nghttp2_session_del(p->ng);
    SSL_free(p->ssl);
    close(fd);
    free(p);
    return NULL;
}

/* Ends the connection: GOAWAY when |is_polite|, then close_notify, then close. */
static void
peer_free(struct peer *p, bool is_polite)
{
    size_t i;

    if (p == NULL)
        return;
    if (is_polite && !p->is_eof) {
        nghttp2_session_terminate_session(p->ng, NGHTTP2_NO_ERROR);
        peer_flush(p);
    }
    if (!p->is_eof)
        SSL_shutdown(p->ssl); /* sends close_notify; we do not wait for the peer's */
    nghttp2_session_del(p->ng);
    SSL_free(p->ssl);
    close(p->fd);
    for (i = 0; i < p->nstreams; i++) {
        free(p->streams[i].in);
        free(p->streams[i].out);
    }
    free(p);
}

/* Dials |hostport| and speaks HTTP/2 as a client.  Returns NULL after saying why. */
static struct peer *
peer_dial(const char *hostport, SSL_CTX *ctx)
{
    struct peer *p;
    int fd;

    if ((fd = tn_addr_dial(hostport, T_CONNECT)) < 0) {
        fail("cannot connect to the relay at %s: %s", hostport, strerror(-fd));
        return NULL;
    }
    if ((p = peer_new("relay", fd, ctx, false)) == NULL)
        fail("no TLS/HTTP/2 session with the relay at %s", hostport);
    return p;
}

/* Queues |n| bytes on |bs|. */
static int
bs_send(struct peer *p, struct bstream *bs, const void *data, size_t n)
{
    if (grow(&bs->out, &bs->out_cap, bs->out_len + n) != 0)
        return -ENOMEM;
    memcpy(bs->out + bs->out_len, data, n);
    bs->out_len += n;
    if (bs->is_deferred) {
        bs->is_deferred = false;
        nghttp2_session_resume_data(p->ng, bs->id);
    }
    return 0;
}

/* Queues |msg| with gRPC framing: flag 0, 4-byte big-endian length, protobuf. */
static int
bs_send_msg(struct peer *p, struct bstream *bs, const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(TN_GRPC_HDR + len);
    int r;

    if (buf == NULL)
        return -ENOMEM;
    buf[0] = 0;
    buf[1] = (uint8_t)(len >> 24);
    buf[2] = (uint8_t)(len >> 16);
    buf[3] = (uint8_t)(len >> 8);
    buf[4] = (uint8_t)len;
    protobuf_c_message_pack(msg, buf + TN_GRPC_HDR);
    r = bs_send(p, bs, buf, TN_GRPC_HDR + len);
    free(buf);
    return r;
}

/* Client: opens a gRPC call to |path|; its body is what bs_send queues. */
/* Submits a gRPC call to |path|.  Returns its stream id, or a negative nghttp2 error. */
static int32_t
submit_call(struct peer *p, const char *path, const nghttp2_data_provider *prd)
{
    nghttp2_nv hdrs[] = {
        TN_NV(":method", "POST"),
        TN_NV(":scheme", "https"),
        TN_NV(":authority", "relay"),
        TN_NV(":path", path),
        TN_NV("content-type", "application/grpc"),
        TN_NV("te", "trailers"),
    };

    return nghttp2_submit_request(p->ng, NULL, hdrs, TN_ARRAY_LEN(hdrs), prd, NULL);
}

static struct bstream *
peer_call(struct peer *p, const char *path)
{
    nghttp2_data_provider prd = { .read_callback = bs_read };
    struct bstream *bs;
    int32_t id;

    if ((id = submit_call(p, path, &prd)) < 0 || (bs = bs_add(p, id)) == NULL) {
        fail("cannot open a %s stream", path);
        return NULL;
    }
    snprintf(bs->path, sizeof(bs->path), "%s", path);
    return bs;
}

/* Server: sends response headers on |bs|; its body is what bs_send queues. */
static int
peer_respond(struct peer *p, struct bstream *bs)
{
    static const nghttp2_nv hdrs[] = {
        TN_NV(":status", "200"),
        TN_NV("content-type", "application/grpc"),
    };
    nghttp2_data_provider prd = { .read_callback = bs_read };

    return nghttp2_submit_response(p->ng, bs->id, hdrs, TN_ARRAY_LEN(hdrs), &prd);
}

static void
peer_reset(struct peer *p, struct bstream *bs, uint32_t code)
{
    nghttp2_submit_rst_stream(p->ng, NGHTTP2_FLAG_NONE, bs->id, code);
    peer_flush(p);
}

/* Whether a whole gRPC message waits in |bs|; sets |*len| to its length. */
static bool
bs_peek_msg(const struct bstream *bs, size_t *len)
{
    size_t have = bs->in_len - bs->in_used;
    const uint8_t *h;

    if (have < TN_GRPC_HDR)
        return false;
    h = bs->in + bs->in_used;
    *len = (size_t)h[1] << 24 | (size_t)h[2] << 16 | (size_t)h[3] << 8 | h[4];
    return have >= TN_GRPC_HDR + *len;
}

/* Takes the next whole gRPC message received on |bs|, or returns false. */
static bool
bs_next_msg(struct bstream *bs, const uint8_t **msg, size_t *len)
{
    if (!bs_peek_msg(bs, len))
        return false;
    *msg = bs->in + bs->in_used + TN_GRPC_HDR;
    bs->in_used += TN_GRPC_HDR + *len;
    return true;
}

static bool
bs_has_msg(const struct bstream *bs)
{
    size_t len;

    return bs_peek_msg(bs, &len);
}

static bool
cond_msg_or_end(struct peer *p, void *arg)
{
    struct bstream *bs = arg;

    (void)p;
    return bs_has_msg(bs) || bs->is_ended || bs->is_closed;
}

/* Waits for the next Frame on |bs|.  Returns it (free with tunnel__v1__frame__free_unpacked)
 * or NULL after saying what came instead, naming the frame |what| we waited for. */
static Tunnel__V1__Frame *
wait_frame(struct peer *p, struct bstream *bs, int timeout_ms, const char *what)
{
    Tunnel__V1__Frame *fr;
    const uint8_t *msg;
    size_t len;

    if (!peer_wait(p, timeout_ms, cond_msg_or_end, bs)) {
        fail("no %s from the %s within %d ms%s", what, p->what, timeout_ms,
             p->is_eof ? ": the connection closed" : "");
        return NULL;
    }
    if (!bs_next_msg(bs, &msg, &len)) {
        fail("the %s ended stream %d instead of sending %s (grpc-status %d '%s', reset code %u)",
             p->what, bs->id, what, bs->grpc_status, bs->grpc_message, bs->close_code);
        return NULL;
    }
    if ((fr = tunnel__v1__frame__unpack(NULL, len, msg)) == NULL)
        fail("%s from the %s does not decode as a Frame", what, p->what);
    return fr;
}

/* Waits for Frame{opened} on |bs|.  Returns its result, or -1 after saying what came. */
static int
wait_opened(struct peer *p, struct bstream *bs, int timeout_ms)
{
    Tunnel__V1__Frame *fr = wait_frame(p, bs, timeout_ms, "Opened");
    int result = -1;

    if (fr == NULL)
        return -1;
    if (fr->kind_case == TUNNEL__V1__FRAME__KIND_OPENED)
        result = (int)fr->opened->result;
    else
        fail("the %s sent Frame kind %d where Opened belongs", p->what, (int)fr->kind_case);
    tunnel__v1__frame__free_unpacked(fr, NULL);
    return result;
}

static bool
cond_pinged(struct peer *p, void *arg)
{
    return p->pings_acked >= *(unsigned *)arg;
}

/* Checks that the peer still answers on this connection. */
static bool
peer_alive(struct peer *p)
{
    unsigned want = p->pings_acked + 1;

    nghttp2_submit_ping(p->ng, NGHTTP2_FLAG_NONE, NULL);
    if (!peer_wait(p, T_ANSWER, cond_pinged, &want)) {
        fail("the %s did not answer a PING within %d ms%s", p->what, T_ANSWER,
             p->is_eof ? ": its connection closed (did it crash?)" : "");
        return false;
    }
    return true;
}

/* ---- TLS contexts and messages ---------------------------------------------------------- */

/* The context for |role|'s certificate in |certdir| (certs-tool's layout). */
static SSL_CTX *
tls_ctx(const char *certdir, const char *role, bool is_server)
{
    char cert[PATH_MAX], key[PATH_MAX], ca[PATH_MAX];
    struct tn_tls_conf conf = { .cert_file = cert, .key_file = key, .ca_file = ca };
    SSL_CTX *ctx;

    snprintf(cert, sizeof(cert), "%s/%s/cert.pem", certdir, role);
    snprintf(key, sizeof(key), "%s/%s/key.pem", certdir, role);
    snprintf(ca, sizeof(ca), "%s/ca/cert.pem", certdir);
    if (tn_tls_ctx_new(&ctx, &conf, is_server ? TN_ROLE_SERVER : TN_ROLE_NONE) != 0) {
        fail("cannot load the %s certificate from %s", role, certdir);
        return NULL;
    }
    return ctx;
}

/* The id in the certificate of |ctx| (what a proxy puts in its Hello). */
static void
ctx_id(SSL_CTX *ctx, char *out, size_t size)
{
    struct tn_identity id;

    if (tn_tls_cert_identity(SSL_CTX_get0_certificate(ctx), &id) != 0)
        id.id[0] = '\0';
    snprintf(out, size, "%s", id.id);
}

/* A 4-byte IPv4 endpoint of "127.0.0.1:port"; |ip| holds its bytes. */
static int
endpoint_of(const char *hostport, struct tn_ip *ip, Tunnel__V1__Endpoint *ep)
{
    struct sockaddr_storage ss;
    socklen_t len;
    unsigned port;

    if (tn_addr_resolve(hostport, false, &ss, &len) != 0 ||
        tn_addr_to_ip((struct sockaddr *)&ss, ip, &port) != 0 || ip->family != AF_INET)
        return -1;
    ep->ip.data = ip->bytes;
    ep->ip.len = 4;
    ep->port = port;
    return 0;
}

static uint64_t
new_flow_id(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return ((uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)getpid() << 32);
}

/* Sends Frame{open} for |dst| on |bs|. */
static int send_open_service(struct peer *p, struct bstream *bs, const char *dst, uint64_t flow_id,
                             const char *service);

static int
send_open(struct peer *p, struct bstream *bs, const char *dst, uint64_t flow_id)
{
    return send_open_service(p, bs, dst, flow_id, "");
}

/* An Open naming a published service, which only the relay may set (public connections). */
static int
send_open_service(struct peer *p, struct bstream *bs, const char *dst, uint64_t flow_id,
                  const char *service)
{
    Tunnel__V1__Frame fr = TUNNEL__V1__FRAME__INIT;
    Tunnel__V1__Open open = TUNNEL__V1__OPEN__INIT;
    Tunnel__V1__Endpoint src_ep = TUNNEL__V1__ENDPOINT__INIT, dst_ep = TUNNEL__V1__ENDPOINT__INIT;
    struct tn_ip src_ip, dst_ip;
    char src[32];

    snprintf(src, sizeof(src), "127.0.0.1:%u", 40000 + (unsigned)(flow_id % 20000));
    if (endpoint_of(src, &src_ip, &src_ep) != 0 || endpoint_of(dst, &dst_ip, &dst_ep) != 0) {
        fail("'%s' is not an IPv4 HOST:PORT", dst);
        return -1;
    }
    open.flow_id = flow_id;
    open.protocol = TUNNEL__V1__PROTOCOL__PROTOCOL_TCP;
    open.src = &src_ep;
    open.dst = &dst_ep;
    open.client_id = TN_UNCONST(p->is_server ? "client-1" : "");
    open.service = TN_UNCONST(service);
    fr.kind_case = TUNNEL__V1__FRAME__KIND_OPEN;
    fr.open = &open;
    return bs_send_msg(p, bs, &fr.base);
}

static int
send_data(struct peer *p, struct bstream *bs, const char *text)
{
    Tunnel__V1__Frame fr = TUNNEL__V1__FRAME__INIT;

    fr.kind_case = TUNNEL__V1__FRAME__KIND_DATA;
    fr.data.data = (uint8_t *)TN_UNCONST(text);
    fr.data.len = strlen(text);
    return bs_send_msg(p, bs, &fr.base);
}

/* Sends a Hello for |proxy_id| announcing 127.0.0.1/32, then ends our side (as a proxy does). */
static int
send_hello(struct peer *p, struct bstream *bs, const char *proxy_id)
{
    Tunnel__V1__Hello hello = TUNNEL__V1__HELLO__INIT;
    Tunnel__V1__Network net = TUNNEL__V1__NETWORK__INIT, *nets[1] = { &net };

    net.cidr = TN_UNCONST("127.0.0.1/32");
    hello.proxy_id = TN_UNCONST(proxy_id);
    hello.n_networks = 1;
    hello.networks = nets;
    hello.version = TN_UNCONST("badpeer");
    bs->is_out_eof = true;
    return bs_send_msg(p, bs, &hello.base);
}

/* ---- the target: a TCP server that is part of badpeer ----------------------------------- */

static int
target_listen(const char *hostport)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd;

    if (tn_addr_resolve(hostport, true, &ss, &len) != 0)
        return -1;
    if ((fd = tn_addr_listen((struct sockaddr *)&ss, len, 128)) < 0) {
        fail("cannot listen on %s: %s", hostport, strerror(-fd));
        return -1;
    }
    return fd;
}

struct target_accept {
    int lfd;
    int fd; /* the accepted connection, or -1 */
};

static bool
cond_target_accepted(struct peer *p, void *arg)
{
    struct target_accept *ta = arg;

    (void)p;
    if (ta->fd < 0)
        ta->fd = accept4(ta->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    return ta->fd >= 0;
}

/* Waits for the proxy to dial the target.  Returns the connection or -1 after saying so. */
static int
wait_target(struct peer *p, int lfd)
{
    struct target_accept ta = { .lfd = lfd, .fd = -1 };

    if (!peer_wait(p, T_ANSWER, cond_target_accepted, &ta))
        fail("the proxy did not dial the target within %d ms%s", T_ANSWER,
             p->is_eof ? " (our connection closed)" : "");
    return ta.fd;
}

/* Whether the peer of |fd| closed or reset it; reads and drops what it sent meanwhile. */
static bool
sock_closed(int fd, const char **how)
{
    char buf[4096];
    ssize_t n;

    while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
        ;
    if (n == 0) {
        *how = "closed (FIN)";
        return true;
    }
    if (errno == EAGAIN || errno == EINTR)
        return false;
    *how = errno == ECONNRESET ? "reset (RST)" : strerror(errno);
    return true;
}

struct target_watch {
    int fd;
    bool is_sending; /* keep writing to it: the proxy reads while its flow lives */
    const char *how; /* set once the proxy closed the connection */
};

static bool
cond_target_closed(struct peer *p, void *arg)
{
    static const char chunk[1024];
    struct target_watch *tw = arg;

    (void)p;
    if (tw->is_sending && send(tw->fd, chunk, sizeof(chunk), MSG_DONTWAIT | MSG_NOSIGNAL) < 0 &&
        errno != EAGAIN && errno != EINTR) {
        tw->how = errno == ECONNRESET ? "reset (RST)" : strerror(errno);
        return true;
    }
    return sock_closed(tw->fd, &tw->how);
}

struct target_read {
    int fd;
    char buf[64];
    size_t len;
    const char *want;
};

static bool
cond_target_read(struct peer *p, void *arg)
{
    struct target_read *tr = arg;
    ssize_t n;

    (void)p;
    n = recv(tr->fd, tr->buf + tr->len, sizeof(tr->buf) - 1 - tr->len, MSG_DONTWAIT);
    if (n > 0)
        tr->len += (size_t)n;
    tr->buf[tr->len] = '\0';
    return tr->len >= strlen(tr->want) || n == 0;
}

struct data_wait {
    struct bstream *bs;
    char buf[64];
    size_t len;
    const char *want;
};

static bool
cond_data(struct peer *p, void *arg)
{
    struct data_wait *dw = arg;
    Tunnel__V1__Frame *fr;
    const uint8_t *msg;
    size_t len;

    (void)p;
    while (bs_next_msg(dw->bs, &msg, &len)) {
        if ((fr = tunnel__v1__frame__unpack(NULL, len, msg)) == NULL)
            return true;
        if (fr->kind_case == TUNNEL__V1__FRAME__KIND_DATA &&
            dw->len + fr->data.len < sizeof(dw->buf)) {
            memcpy(dw->buf + dw->len, fr->data.data, fr->data.len);
            dw->len += fr->data.len;
            dw->buf[dw->len] = '\0';
        }
        tunnel__v1__frame__free_unpacked(fr, NULL);
    }
    return dw->len >= strlen(dw->want) || dw->bs->is_ended || dw->bs->is_closed;
}

/* A flow through the relay that must work end to end: Open, Opened ok, "ping" to the target,
 * "pong" back; then |key_updates| times a TLS KeyUpdate of ours that asks for the relay's, and
 * "ping" and "pong" again.  Returns 0 or -1 after saying what went wrong. */
static int
flow_roundtrip(const char *relay, SSL_CTX *ctx, int lfd, const char *target, int key_updates)
{
    struct peer *p;
    struct bstream *cs;
    int r = -1, tfd = -1, round;

    if ((p = peer_dial(relay, ctx)) == NULL)
        return -1;
    if ((cs = peer_call(p, PATH_CONNECT)) == NULL || send_open(p, cs, target, new_flow_id()) != 0)
        goto out;
    if ((tfd = wait_target(p, lfd)) < 0)
        goto out;
    if (wait_opened(p, cs, T_ANSWER) != TUNNEL__V1__OPEN_RESULT__OPEN_RESULT_OK) {
        fail("a new flow was not opened");
        goto out;
    }
    for (round = 0; round <= key_updates; round++) {
        struct target_read tr = { .fd = tfd, .want = "ping" };
        struct data_wait dw = { .bs = cs, .want = "pong" };

        /* Sent before the next record; OpenSSL fails the connection if the relay's records
         * do not follow the keys that the two KeyUpdates change. */
        if (round > 0 && SSL_key_update(p->ssl, SSL_KEY_UPDATE_REQUESTED) != 1) {
            fail("SSL_key_update failed");
            goto out;
        }
        send_data(p, cs, "ping");
        if (!peer_wait(p, T_ANSWER, cond_target_read, &tr) || strcmp(tr.buf, "ping") != 0) {
            fail("the target got '%s' instead of 'ping' (round %d)", tr.buf, round);
            goto out;
        }
        if (send(tfd, "pong", 4, MSG_NOSIGNAL) != 4) {
            fail("cannot answer 'pong' from the target: %s", strerror(errno));
            goto out;
        }
        if (!peer_wait(p, T_ANSWER, cond_data, &dw) || strcmp(dw.buf, "pong") != 0) {
            fail("the client got '%s' instead of 'pong' (round %d)", dw.buf, round);
            goto out;
        }
    }
    r = 0;
out:
    if (tfd >= 0)
        close(tfd);
    peer_free(p, true);
    return r;
}

/* ---- subcommands ------------------------------------------------------------------------ */

/* Bug: a client's Connect stream reset with NO_ERROR while its flow's Accept stream stays open,
 * then the client's connection closes; the relay kept the flow pointing at the freed session. */
static int
cmd_client_rst_noerror(char **argv)
{
    const char *relay = argv[0], *certdir = argv[1], *target = argv[2];
    struct target_watch tw = { .fd = -1 };
    SSL_CTX *ctx = NULL;
    struct peer *p = NULL;
    struct bstream *cs;
    int lfd, result;

    if ((lfd = target_listen(target)) < 0 || (ctx = tls_ctx(certdir, "client", false)) == NULL ||
        (p = peer_dial(relay, ctx)) == NULL)
        goto out;
    if ((cs = peer_call(p, PATH_CONNECT)) == NULL || send_open(p, cs, target, new_flow_id()) != 0)
        goto out;
    if ((tw.fd = wait_target(p, lfd)) < 0)
        goto out;
    if ((result = wait_opened(p, cs, T_ANSWER)) != TUNNEL__V1__OPEN_RESULT__OPEN_RESULT_OK) {
        if (result >= 0)
            fail("the flow to %s was refused (result %d); is the proxy up?", target, result);
        goto out;
    }
    say("flow open; resetting the Connect stream with RST_STREAM(NO_ERROR), then closing");
    peer_reset(p, cs, NGHTTP2_NO_ERROR);
    peer_free(p, false);
    p = NULL;
    /* An RST_STREAM of any code is an abort: the relay must end the proxy's side too, and the
     * proxy then resets the target's connection. */
    if (!peer_wait(NULL, T_QUICK, cond_target_closed, &tw))
        fail("the target's connection stayed open %d ms after the client reset its Connect "
             "stream with NO_ERROR: the relay kept the flow",
             T_QUICK);
    else
        say("the proxy ended the target's connection: %s", tw.how);
    /* The target closes its side: the proxy ends the Accept stream, if it still exists. */
    shutdown(tw.fd, SHUT_RDWR);
    close(tw.fd);
    tw.fd = -1;
    usleep(500 * 1000);
    if (flow_roundtrip(relay, ctx, lfd, target, 0) == 0)
        say("the relay still serves new flows");
out:
    peer_free(p, true);
    if (tw.fd >= 0)
        close(tw.fd);
    if (lfd >= 0)
        close(lfd);
    SSL_CTX_free(ctx);
    return failures > 0;
}

static bool
cond_both_answered(struct peer *p, void *arg)
{
    struct bstream **rs = arg;

    return cond_msg_or_end(p, rs[0]) && cond_msg_or_end(p, rs[1]);
}

/* Describes the answer to a Register call in |out|.  Returns true for a Welcome. */
static bool
register_answer(struct bstream *bs, char *out, size_t size)
{
    Tunnel__V1__Welcome *w;
    const uint8_t *msg;
    size_t len;

    if (bs_next_msg(bs, &msg, &len)) {
        if ((w = tunnel__v1__welcome__unpack(NULL, len, msg)) == NULL) {
            snprintf(out, size, "a message that is no Welcome");
            return false;
        }
        snprintf(out, size, "a Welcome");
        tunnel__v1__welcome__free_unpacked(w, NULL);
        return true;
    }
    if (bs->grpc_status >= 0)
        snprintf(out, size, "grpc-status %d '%s'", bs->grpc_status, bs->grpc_message);
    else if (bs->is_closed)
        snprintf(out, size, "RST_STREAM code %u", bs->close_code);
    else
        snprintf(out, size, "no answer");
    return false;
}

/* Bug: two Register calls on one connection, both in before either Hello, both got a Welcome;
 * the first proxy stayed in the routes after the connection closed. */
static int
cmd_double_register(char **argv)
{
    const char *relay = argv[0], *certdir = argv[1];
    SSL_CTX *pctx = NULL, *cctx = NULL;
    struct peer *p = NULL;
    struct bstream *rs[2], *cs;
    Tunnel__V1__Frame *fr;
    char id[TN_ID_MAX + 1], a0[160], a1[160];
    bool w0, w1;

    if ((pctx = tls_ctx(certdir, "proxy", false)) == NULL ||
        (cctx = tls_ctx(certdir, "client", false)) == NULL || (p = peer_dial(relay, pctx)) == NULL)
        goto out;
    ctx_id(pctx, id, sizeof(id));
    /* Both requests are queued before the first flush: nghttp2 sends both HEADERS, then both
     * DATA frames, so the relay sees two Register calls before either Hello. */
    if ((rs[0] = peer_call(p, PATH_REGISTER)) == NULL ||
        (rs[1] = peer_call(p, PATH_REGISTER)) == NULL || send_hello(p, rs[0], id) != 0 ||
        send_hello(p, rs[1], id) != 0)
        goto out;
    say("sent two Register calls as proxy %s on one connection", id);
    if (!peer_wait(p, T_ANSWER, cond_both_answered, rs)) {
        fail("the relay did not answer both Register calls within %d ms%s", T_ANSWER,
             p->is_eof ? ": the connection closed" : "");
        goto out;
    }
    w0 = register_answer(rs[0], a0, sizeof(a0));
    w1 = register_answer(rs[1], a1, sizeof(a1));
    if (w0 && w1)
        fail("both Register calls on one connection were accepted");
    else if (w0 == w1 || (w0 ? rs[1] : rs[0])->grpc_status != TN_GRPC_PERMISSION_DENIED)
        fail("expected one Welcome and one grpc-status %d, got %s and %s",
             TN_GRPC_PERMISSION_DENIED, a0, a1);
    else
        say("one Register got %s, the other %s", w0 ? a0 : a1, w0 ? a1 : a0);
    peer_free(p, true);
    p = NULL;
    say("the proxy left; a client now asks for its network");
    usleep(300 * 1000);
    if ((p = peer_dial(relay, cctx)) == NULL || (cs = peer_call(p, PATH_CONNECT)) == NULL ||
        send_open(p, cs, "127.0.0.1:9", new_flow_id()) != 0)
        goto out;
    if (!peer_wait(p, T_QUICK, cond_msg_or_end, cs)) {
        if (p->is_eof)
            fail("the relay closed the client's connection instead of refusing the flow");
        else
            fail("no answer within %d ms to a flow for the network of a proxy that left: the "
                 "relay still routes to it",
                 T_QUICK);
        goto out;
    }
    if (bs_has_msg(cs)) {
        if ((fr = wait_frame(p, cs, 0, "Opened")) == NULL)
            goto out;
        if (fr->kind_case != TUNNEL__V1__FRAME__KIND_OPENED ||
            fr->opened->result == TUNNEL__V1__OPEN_RESULT__OPEN_RESULT_OK)
            fail("the relay opened a flow to a proxy that left");
        else
            say("refused at once: Opened result %d '%s'", (int)fr->opened->result,
                fr->opened->reason);
        tunnel__v1__frame__free_unpacked(fr, NULL);
    } else if (cs->grpc_status > 0 || (cs->is_closed && cs->close_code != 0)) {
        say("refused at once: grpc-status %d, reset code %u", cs->grpc_status, cs->close_code);
    } else {
        fail("the relay ended the flow without Opened and without an error");
    }
out:
    peer_free(p, true);
    SSL_CTX_free(pctx);
    SSL_CTX_free(cctx);
    return failures > 0;
}

/* One Register call on a connection of its own, which the relay must refuse with
 * PERMISSION_DENIED: a Hello for |proxy_id|, or a body that does not decode when NULL. */
static void
register_refused(const char *relay, SSL_CTX *ctx, const char *what, const char *proxy_id)
{
    static const uint8_t garbage[] = { 0, 0, 0, 0, 3, 0x0a, 0x10, 'x' }; /* field 1 cut short */
    struct peer *p;
    struct bstream *rs;

    if ((p = peer_dial(relay, ctx)) == NULL)
        return;
    if ((rs = peer_call(p, PATH_REGISTER)) == NULL)
        goto out;
    if (proxy_id != NULL) {
        send_hello(p, rs, proxy_id);
    } else {
        rs->is_out_eof = true;
        bs_send(p, rs, garbage, sizeof(garbage));
    }
    if (!peer_wait(p, T_ANSWER, cond_msg_or_end, rs))
        fail("%s: no answer within %d ms%s", what, T_ANSWER,
             p->is_eof ? ": the connection closed" : "");
    else if (bs_has_msg(rs))
        fail("%s: the relay answered with a message (a Welcome?)", what);
    else if (rs->grpc_status != TN_GRPC_PERMISSION_DENIED)
        fail("%s: grpc-status %d '%s' (reset code %u), expected %d", what, rs->grpc_status,
             rs->grpc_message, rs->close_code, TN_GRPC_PERMISSION_DENIED);
    else
        say("%s: refused with grpc-status %d '%s'", what, rs->grpc_status, rs->grpc_message);
out:
    peer_free(p, true);
}

/* Bug: a refused Register leaked its state at the relay (LeakSanitizer sees it at exit). */
static int
cmd_register_refused(char **argv)
{
    const char *relay = argv[0], *certdir = argv[1];
    SSL_CTX *pctx = NULL, *cctx = NULL;
    char id[TN_ID_MAX + 1];

    if ((pctx = tls_ctx(certdir, "proxy", false)) == NULL ||
        (cctx = tls_ctx(certdir, "client", false)) == NULL)
        goto out;
    ctx_id(cctx, id, sizeof(id));
    register_refused(relay, cctx, "a client calling Register", id);
    register_refused(relay, pctx, "a Hello with another proxy's id", "impostor");
    register_refused(relay, pctx, "a Hello that does not decode", NULL);
out:
    SSL_CTX_free(pctx);
    SSL_CTX_free(cctx);
    return failures > 0;
}

/* Bug: a client's Open naming a service ("secret", published by the proxy) reached that
 * service past the relay's access rules, under a source address of its choosing: the relay
 * must refuse it, and the proxy must never dial the service's target. */
static int
cmd_open_service(char **argv)
{
    const char *relay = argv[0], *certdir = argv[1], *target = argv[2];
    struct target_accept ta = { .fd = -1 };
    SSL_CTX *ctx = NULL;
    struct peer *p = NULL;
    struct bstream *cs;
    int result;

    if ((ta.lfd = target_listen(target)) < 0 || (ctx = tls_ctx(certdir, "client", false)) == NULL ||
        (p = peer_dial(relay, ctx)) == NULL || (cs = peer_call(p, PATH_CONNECT)) == NULL)
        goto out;
    /* 127.0.0.1:9: inside the proxy's network, refused by nothing else. */
    if (send_open_service(p, cs, "127.0.0.1:9", new_flow_id(), "secret") != 0)
        goto out;
    if (bs_has_msg(cs) || peer_wait(p, T_ANSWER, cond_msg_or_end, cs)) {
        if (!bs_has_msg(cs))
            say("refused: grpc-status %d '%s'", cs->grpc_status, cs->grpc_message);
        else if ((result = wait_opened(p, cs, 0)) == TUNNEL__V1__OPEN_RESULT__OPEN_RESULT_OK)
            fail("the relay opened a client's flow that names a service");
        else
            say("refused: Opened result %d", result);
    } else {
        fail("no answer within %d ms to an Open naming a service", T_ANSWER);
    }
    if (peer_wait(NULL, 500, cond_target_accepted, &ta))
        fail("the proxy dialed the service's target for a client's Open");
    if (ta.fd >= 0)
        close(ta.fd);
    peer_alive(p);
out:
    if (ta.lfd >= 0)
        close(ta.lfd);
    peer_free(p, true);
    SSL_CTX_free(ctx);
    return failures > 0;
}

struct push {
    int lfd;
    int fd[80];
    size_t n, sent[80], goal;
};

/* Accepts the flows' connections and writes to each until |goal| bytes or until it blocks. */
static bool
cond_pushed(struct peer *p, void *arg)
{
    static const char junk[65536];
    struct push *pu = arg;
    size_t i, full = 0;
    ssize_t k;
    int fd;

    (void)p;
    while (pu->n < TN_ARRAY_LEN(pu->fd) &&
           (fd = accept4(pu->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
        pu->fd[pu->n++] = fd;
    for (i = 0; i < pu->n; i++) {
        while (pu->sent[i] < pu->goal &&
               (k = send(pu->fd[i], junk, sizeof(junk), MSG_NOSIGNAL | MSG_DONTWAIT)) > 0)
            pu->sent[i] += (size_t)k;
        full += pu->sent[i] >= pu->goal;
    }
    return full == TN_ARRAY_LEN(pu->fd);
}

/* Bug: a client that opens many flows and never reads their bytes (stream windows of 0) made
 * the relay hold more than its cap from the proxy's connection, which it shares with every
 * client; the relay then stopped taking the proxy's bytes for all of them, and another
 * client's new flow got no Opened.  Now the streams holding the most are reset instead. */
static int
cmd_slow_client(char **argv)
{
    const char *relay = argv[0], *certdir = argv[1], *push_target = argv[2], *target = argv[3];
    struct push pu = { .lfd = -1, .goal = 2u << 20 };
    SSL_CTX *ctx = NULL;
    struct peer *slow = NULL;
    struct bstream *cs;
    size_t i, total = 0;
    int lfd = -1;

    if ((pu.lfd = target_listen(push_target)) < 0 || (lfd = target_listen(target)) < 0 ||
        (ctx = tls_ctx(certdir, "client", false)) == NULL)
        goto out;
    stream_window = 0;
    slow = peer_dial(relay, ctx);
    stream_window = 1 << 20;
    if (slow == NULL)
        goto out;
    for (i = 0; i < TN_ARRAY_LEN(pu.fd); i++) {
        if ((cs = peer_call(slow, PATH_CONNECT)) == NULL ||
            send_open(slow, cs, push_target, new_flow_id()) != 0)
            goto out;
    }
    /* Until every flow has taken all the proxy and the sockets take: the relay then holds
     * about 1 MiB (its stream window) of each, 80 MiB, over its 64 MiB per connection. */
    peer_wait(slow, 10000, cond_pushed, &pu);
    for (i = 0; i < pu.n; i++)
        total += pu.sent[i];
    say("%zu flows that are never read; %zu MiB written to them", pu.n, total >> 20);
    if (pu.n != TN_ARRAY_LEN(pu.fd))
        fail("the proxy dialed %zu of %zu flows", pu.n, TN_ARRAY_LEN(pu.fd));
    peer_wait(slow, 2000, NULL, NULL); /* for the proxy's bytes to reach the relay */
    if (flow_roundtrip(relay, ctx, lfd, target, 0) == 0)
        say("another client's new flow went through beside them");
    peer_alive(slow);
out:
    for (i = 0; i < pu.n; i++)
        close(pu.fd[i]);
    if (pu.lfd >= 0)
        close(pu.lfd);
    if (lfd >= 0)
        close(lfd);
    peer_free(slow, true);
    SSL_CTX_free(ctx);
    return failures > 0;
}

static bool
cond_eof(struct peer *p, void *arg)
{
    (void)arg;
    return p->is_eof;
}

/* Opens a Connect stream (HEADERS only) and resets it.  Returns 0, or -1 after saying why. */
static int
call_and_reset(struct peer *p)
{
    int32_t id = submit_call(p, PATH_CONNECT, NULL);

    if (id < 0) {
        fail("cannot open a stream: %s", nghttp2_strerror(id));
        return -1;
    }
    peer_flush(p);
    nghttp2_submit_rst_stream(p->ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    peer_flush(p);
    return 0;
}

/* Bug: nghttp2 tore down a connection that reset more than 1000 streams at once (its rapid
 * reset defence), which a proxy does when a target host with that many flows goes away; the
 * relay went on routing to it.  2000 resets at once must pass; a flood must still be cut. */
static int
cmd_many_resets(char **argv)
{
    const char *relay = argv[0], *certdir = argv[1];
    SSL_CTX *ctx = NULL;
    struct peer *p = NULL;
    int i;

    if ((ctx = tls_ctx(certdir, "client", false)) == NULL || (p = peer_dial(relay, ctx)) == NULL ||
        !peer_alive(p))
        goto out;
    for (i = 0; i < 2000 && call_and_reset(p) == 0; i++)
        ;
    if (!peer_alive(p))
        goto out;
    say("2000 streams reset at once: the connection goes on");
    for (i = 0; i < 60000 && !p->is_eof && call_and_reset(p) == 0; i++) {
        if (i % 256 == 0)
            peer_read(p);
    }
    if (!p->is_eof && !peer_wait(p, T_ANSWER, cond_eof, NULL))
        fail("%d more resets as fast as they go: the relay did not end the connection", i);
    else
        say("a flood of resets ended the connection after %d more", i);
out:
    peer_free(p, true);
    SSL_CTX_free(ctx);
    return failures > 0;
}

static ssize_t
read_nothing_yet(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                 nghttp2_data_source *src, void *arg)
{
    (void)ng, (void)id, (void)buf, (void)len, (void)flags, (void)src, (void)arg;
    return NGHTTP2_ERR_DEFERRED;
}

/* Bug: a Connect stream costs the relay a flow's memory from its HEADERS on, but counts as a
 * flow for limits.flows_per_client only once its Open comes: 60,000 streams without one held
 * 369 MB until open_timeout.  4096 may wait for their Open in a session; more are refused. */
static int
cmd_open_pile(char **argv)
{
    const nghttp2_data_provider later = { .read_callback = read_nothing_yet };
    const char *relay = argv[0], *certdir = argv[1];

    enum {
        WAITING = 4096,
        MORE = 50
    };
    struct bstream *bs[MORE];
    SSL_CTX *ctx = NULL;
    struct peer *p = NULL;
    int i, refused = 0;

    if ((ctx = tls_ctx(certdir, "client", false)) == NULL || (p = peer_dial(relay, ctx)) == NULL)
        goto out;
    for (i = 0; i < WAITING; i++) {
        if (submit_call(p, PATH_CONNECT, &later) < 0) {
            fail("cannot open stream %d", i);
            goto out;
        }
    }
    peer_flush(p);
    for (i = 0; i < MORE; i++) {
        if ((bs[i] = peer_call(p, PATH_CONNECT)) == NULL)
            goto out;
    }
    for (i = 0; i < MORE; i++) {
        if (!peer_wait(p, T_ANSWER, cond_msg_or_end, bs[i])) {
            fail("stream %d beyond %d waiting for their Open was not refused", i + 1, WAITING);
            goto out;
        }
        refused += bs[i]->grpc_status == TN_GRPC_RESOURCE_EXHAUSTED;
    }
    if (refused != MORE)
        fail("%d of the %d streams beyond the %d waiting were refused", refused, MORE, WAITING);
    else
        say("%d streams wait for their Open; the %d after them were refused", WAITING, refused);
    peer_alive(p);
out:
    peer_free(p, true);
    SSL_CTX_free(ctx);
    return failures > 0;
}

struct all_closed {
    struct bstream **bs;
    size_t n;
};

static bool
cond_all_closed(struct peer *p, void *arg)
{
    struct all_closed *ac = arg;
    size_t i;

    (void)p;
    for (i = 0; i < ac->n; i++) {
        if (!ac->bs[i]->is_closed)
            return false;
    }
    return true;
}

/* Bug: a flow the relay refused (here: no route) ends with an Opened message and trailers;
 * a client that gives its streams no window never takes them, and the relay kept each such
 * stream for as long as the connection lived.  It must reset them once they are stuck. */
static int
cmd_stuck_refusals(char **argv)
{
    const char *relay = argv[0], *certdir = argv[1];

    enum {
        N = 200
    };
    struct bstream *bs[N];
    struct all_closed ac = { bs, N };
    SSL_CTX *ctx = NULL;
    struct peer *p = NULL;
    size_t i;

    if ((ctx = tls_ctx(certdir, "client", false)) == NULL)
        goto out;
    stream_window = 0;
    p = peer_dial(relay, ctx);
    stream_window = 1 << 20;
    if (p == NULL)
        goto out;
    for (i = 0; i < N; i++) {
        /* 192.0.2.0/24 (TEST-NET-1): no proxy serves it. */
        if ((bs[i] = peer_call(p, PATH_CONNECT)) == NULL ||
            send_open(p, bs[i], "192.0.2.1:9", new_flow_id()) != 0)
            goto out;
    }
    if (!peer_wait(p, 45000, cond_all_closed, &ac))
        fail("%d refused flows were still open at the relay after 45 s", N);
    else
        say("the relay reset the %d refused flows whose end the client never took", N);
    peer_alive(p);
out:
    peer_free(p, true);
    SSL_CTX_free(ctx);
    return failures > 0;
}

/* Writes, past nghttp2, DATA on stream 101, which nobody opened: a PROTOCOL_ERROR for the
 * connection (RFC 9113 5.1).  Returns 0, or -1 after saying why. */
static int
send_idle_data(struct peer *p)
{
    static const uint8_t frame[] = { 0, 0, 4, 0, 0, 0, 0, 0, 101, 'b', 'a', 'd', '!' };

    if (SSL_write(p->ssl, frame, sizeof(frame)) != (int)sizeof(frame)) {
        fail("cannot write the frame");
        return -1;
    }
    return 0;
}

/* Bug: a session that broke the protocol (here DATA on a stream never opened) was logged as
 * "session ended", like a clean close: the relay must say what the error was. */
static int
cmd_bad_frame(char **argv)
{
    const char *relay = argv[0], *certdir = argv[1];
    SSL_CTX *ctx = NULL;
    struct peer *p = NULL;

    if ((ctx = tls_ctx(certdir, "client", false)) == NULL || (p = peer_dial(relay, ctx)) == NULL ||
        !peer_alive(p))
        goto out;
    if (send_idle_data(p) != 0)
        goto out;
    if (!peer_wait(p, T_ANSWER, cond_eof, NULL))
        fail("the relay kept a connection that sent DATA on an idle stream");
    else
        say("the relay closed the connection");
out:
    peer_free(p, true);
    SSL_CTX_free(ctx);
    return failures > 0;
}

/* Bug: each Register stream took limits.max_message of memory from its first byte, with no
 * bound on how many gather a Hello at once: one Register at a time on a connection now, the
 * others refused, and memory only for the length a Hello announces. */
static int
cmd_register_pile(char **argv)
{
    static const uint8_t first = 0; /* the first byte of a gRPC prefix, and no more */
    const char *relay = argv[0], *certdir = argv[1];

    enum {
        N = 50
    };
    struct bstream *rs[N];
    SSL_CTX *ctx = NULL;
    struct peer *p = NULL;
    int i, refused = 0;

    if ((ctx = tls_ctx(certdir, "proxy", false)) == NULL || (p = peer_dial(relay, ctx)) == NULL)
        goto out;
    for (i = 0; i < N; i++) {
        if ((rs[i] = peer_call(p, PATH_REGISTER)) == NULL || bs_send(p, rs[i], &first, 1) != 0)
            goto out;
    }
    for (i = 1; i < N; i++) {
        if (!peer_wait(p, T_ANSWER, cond_msg_or_end, rs[i])) {
            fail("Register call %d of %d gathering a Hello at once was not refused", i + 1, N);
            goto out;
        }
        refused += rs[i]->grpc_status == TN_GRPC_PERMISSION_DENIED;
    }
    if (refused != N - 1)
        fail("%d of the %d Register calls after the first were refused", refused, N - 1);
    else
        say("one Register gathers its Hello; the %d others were refused", refused);
    if (rs[0]->is_ended || rs[0]->is_closed)
        fail("the first Register call ended before its Hello came");
    peer_alive(p);
out:
    peer_free(p, true);
    SSL_CTX_free(ctx);
    return failures > 0;
}

/* Not a misbehaviour, but what our programs never do: the peer updates its TLS keys in the
 * middle of a flow and asks for the relay's (RFC 8446 4.6.3).  The relay's records are its own
 * (libtn/record.c): it must follow, answer in order, and go on carrying the flow. */
static int
cmd_key_update(char **argv)
{
    const char *relay = argv[0], *certdir = argv[1], *target = argv[2];
    SSL_CTX *ctx = NULL;
    int lfd;

    if ((lfd = target_listen(target)) < 0 || (ctx = tls_ctx(certdir, "client", false)) == NULL)
        goto out;
    if (flow_roundtrip(relay, ctx, lfd, target, 3) == 0)
        say("three key updates, each answered; the flow carried data after each");
out:
    if (lfd >= 0)
        close(lfd);
    SSL_CTX_free(ctx);
    return failures > 0;
}

/* ---- fake relay ------------------------------------------------------------------------- */

static bool
cond_registered(struct peer *p, void *arg)
{
    struct bstream **out = arg;
    size_t i;

    for (i = 0; i < p->nstreams; i++) {
        if (strcmp(p->streams[i].path, PATH_REGISTER) == 0 && bs_has_msg(&p->streams[i])) {
            *out = &p->streams[i];
            return true;
        }
    }
    return false;
}

/* Idle Accept streams with an id above |min_id|. */
static int
count_idle_accepts(struct peer *p, int32_t min_id)
{
    int n = 0;
    size_t i;

    for (i = 0; i < p->nstreams; i++) {
        const struct bstream *bs = &p->streams[i];
        n += strcmp(bs->path, PATH_ACCEPT) == 0 && !bs->is_closed && !bs->is_taken &&
             bs->id > min_id;
    }
    return n;
}

static struct bstream *
take_idle_accept(struct peer *p)
{
    size_t i;

    for (i = 0; i < p->nstreams; i++) {
        struct bstream *bs = &p->streams[i];
        if (strcmp(bs->path, PATH_ACCEPT) == 0 && !bs->is_closed && !bs->is_taken) {
            bs->is_taken = true;
            return bs;
        }
    }
    fail("the proxy has no idle Accept stream");
    return NULL;
}

struct accepts_wait {
    int32_t min_id;
    int want;
};

static bool
cond_accepts(struct peer *p, void *arg)
{
    struct accepts_wait *aw = arg;

    return count_idle_accepts(p, aw->min_id) >= aw->want;
}

/* Plays the relay for one proxy: takes its connection and Register, answers Welcome, and waits
 * for its pool of idle Accept streams.  Returns the connection, or NULL after saying why. */
static struct peer *
fake_relay_start(const char *listen_addr, SSL_CTX *ctx)
{
    Tunnel__V1__Welcome welcome = TUNNEL__V1__WELCOME__INIT;
    struct accepts_wait aw = { .min_id = 0, .want = 1 };
    struct bstream *rs = NULL;
    Tunnel__V1__Hello *hello;
    struct pollfd pfd;
    struct peer *p = NULL;
    const uint8_t *msg;
    size_t len;
    int lfd, fd;

    if ((lfd = target_listen(listen_addr)) < 0)
        return NULL;
    say("listening on %s", listen_addr);
    pfd.fd = lfd;
    pfd.events = POLLIN;
    if (poll(&pfd, 1, T_HOLD / 4) != 1 ||
        (fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) < 0) {
        fail("no proxy connected to %s within %d ms", listen_addr, T_HOLD / 4);
        goto out;
    }
    if ((p = peer_new("proxy", fd, ctx, true)) == NULL) {
        fail("no TLS/HTTP/2 session with the proxy");
        goto out;
    }
    if (!peer_wait(p, T_ANSWER, cond_registered, &rs)) {
        fail("the proxy sent no Register with a Hello within %d ms", T_ANSWER);
        goto err;
    }
    if (!bs_next_msg(rs, &msg, &len) ||
        (hello = tunnel__v1__hello__unpack(NULL, len, msg)) == NULL) {
        fail("the proxy's Hello does not decode");
        goto err;
    }
    say("proxy %s says hello with %zu network(s)", hello->proxy_id, hello->n_networks);
    tunnel__v1__hello__free_unpacked(hello, NULL);
    welcome.relay_version = TN_UNCONST("badpeer");
    if (peer_respond(p, rs) != 0 || bs_send_msg(p, rs, &welcome.base) != 0) {
        fail("cannot answer the Register call");
        goto err;
    }
    if (!peer_wait(p, T_ANSWER, cond_accepts, &aw)) {
        fail("the proxy opened no Accept stream within %d ms of its Welcome", T_ANSWER);
        goto err;
    }
    peer_wait(p, 500, NULL, NULL); /* the rest of the pool comes in the same burst */
    say("the proxy keeps %d idle Accept streams", count_idle_accepts(p, 0));
    goto out;
err:
    peer_free(p, true);
    p = NULL;
out:
    close(lfd);
    return p;
}

/* Sends Open for |target| on an idle Accept stream; waits for the proxy's dial and Opened.
 * Returns the target's side of the connection, or -1 after saying why. */
static int
fake_relay_open(struct peer *p, struct bstream *as, int lfd, const char *target)
{
    int fd, result;

    if (peer_respond(p, as) != 0 || send_open(p, as, target, new_flow_id()) != 0) {
        fail("cannot send Open");
        return -1;
    }
    if ((fd = wait_target(p, lfd)) < 0)
        return -1;
    if ((result = wait_opened(p, as, T_ANSWER)) != TUNNEL__V1__OPEN_RESULT__OPEN_RESULT_OK) {
        if (result >= 0)
            fail("the proxy answered Opened with result %d for %s", result, target);
        close(fd);
        return -1;
    }
    return fd;
}

/* Holds the connection until the proxy leaves (the test stops it with SIGTERM). */
static void
fake_relay_hold(struct peer *p)
{
    say("checks passed; waiting for the proxy to leave");
    peer_wait(p, T_HOLD, NULL, NULL);
    if (p->is_eof)
        say("the proxy left");
    else
        say("the proxy did not leave within %d ms", T_HOLD);
}

struct forwarded_wait {
    struct target_watch *tw;
    struct bstream *bs;
    size_t mark; /* |bs|'s received bytes when the wait began */
};

static bool
cond_forwarded(struct peer *p, void *arg)
{
    struct forwarded_wait *fw = arg;

    cond_target_closed(p, fw->tw); /* keeps the target talking */
    return fw->bs->in_len > fw->mark || fw->tw->how != NULL;
}

/* Bug: the proxy took RST_STREAM(NO_ERROR) on a flow's Accept stream as a clean end, kept
 * reading the target and wrote to the freed stream. */
static int
cmd_fake_relay_rst(char **argv)
{
    const char *listen_addr = argv[0], *certdir = argv[1], *target = argv[2];
    struct target_watch tw = { .fd = -1, .is_sending = true };
    struct forwarded_wait fw = { .tw = &tw };
    struct bstream *as;
    struct peer *p = NULL;
    SSL_CTX *ctx = NULL;
    int lfd, fd2 = -1;
    bool is_closed;

    if ((lfd = target_listen(target)) < 0 || (ctx = tls_ctx(certdir, "server", true)) == NULL ||
        (p = fake_relay_start(listen_addr, ctx)) == NULL)
        goto out;
    if ((as = take_idle_accept(p)) == NULL || (tw.fd = fake_relay_open(p, as, lfd, target)) < 0)
        goto out;
    fw.bs = as;
    fw.mark = as->in_len;
    if (!peer_wait(p, T_ANSWER, cond_forwarded, &fw) || tw.how != NULL) {
        fail("the proxy forwarded nothing the target sent%s", tw.how != NULL ? " (it closed)" : "");
        goto out;
    }
    say("flow open, the target is sending; resetting the Accept stream with RST_STREAM(NO_ERROR)");
    peer_reset(p, as, NGHTTP2_NO_ERROR);
    is_closed = peer_wait(p, T_QUICK, cond_target_closed, &tw);
    if (p->is_eof) {
        fail("the proxy dropped its connection to the relay after RST_STREAM(NO_ERROR) on a "
             "flow (did it crash?)");
        goto out;
    }
    if (!is_closed)
        fail("the proxy kept the target's connection open %d ms after the relay reset the flow "
             "with RST_STREAM(NO_ERROR)",
             T_QUICK);
    else
        say("the proxy ended the flow: the target's connection was %s", tw.how);
    if (!peer_alive(p))
        goto out;
    if ((as = take_idle_accept(p)) == NULL || (fd2 = fake_relay_open(p, as, lfd, target)) < 0)
        goto out;
    say("the proxy still opens flows");
    peer_reset(p, as, NGHTTP2_CANCEL);
    if (failures == 0)
        fake_relay_hold(p);
out:
    if (fd2 >= 0)
        close(fd2);
    if (tw.fd >= 0)
        close(tw.fd);
    if (lfd >= 0)
        close(lfd);
    peer_free(p, true);
    SSL_CTX_free(ctx);
    return failures > 0;
}

/* Bug: the proxy's pool of idle Accept streams never refilled after the relay reset some. */
static int
cmd_fake_relay_refill(char **argv)
{
    const char *listen_addr = argv[0], *certdir = argv[1];
    struct accepts_wait aw = { 0 };
    struct peer *p = NULL;
    SSL_CTX *ctx = NULL;
    struct bstream *as;
    int n, i;
    size_t k;

    if ((ctx = tls_ctx(certdir, "server", true)) == NULL ||
        (p = fake_relay_start(listen_addr, ctx)) == NULL)
        goto out;
    if ((n = count_idle_accepts(p, 0)) < 2) {
        fail("the proxy keeps %d idle Accept streams; this test needs 2 or more", n);
        goto out;
    }
    for (k = 0; k < p->nstreams; k++)
        if (p->streams[k].id > aw.min_id)
            aw.min_id = p->streams[k].id;
    aw.want = n / 2;
    for (i = 0; i < aw.want && (as = take_idle_accept(p)) != NULL; i++)
        peer_reset(p, as, NGHTTP2_CANCEL);
    say("reset %d of %d idle Accept streams with RST_STREAM(CANCEL)", aw.want, n);
    if (!peer_wait(p, T_QUICK, cond_accepts, &aw)) {
        fail("the proxy opened %d new Accept streams within %d ms after %d idle ones were reset%s",
             count_idle_accepts(p, aw.min_id), T_QUICK, aw.want,
             p->is_eof ? " and dropped its connection" : ": its pool did not refill");
        goto out;
    }
    say("the proxy opened %d new Accept streams", count_idle_accepts(p, aw.min_id));
    if (peer_alive(p))
        fake_relay_hold(p);
out:
    peer_free(p, true);
    SSL_CTX_free(ctx);
    return failures > 0;
}

/* Bug: when the proxy's HTTP/2 layer ended the connection for the relay's protocol error, the
 * reason it logged lived in the freed connection (a use after free, seen by ASan): it must
 * log the error, and reconnect. */
static int
cmd_fake_relay_bad_frame(char **argv)
{
    const char *listen_addr = argv[0], *certdir = argv[1];
    struct peer *p = NULL;
    SSL_CTX *ctx = NULL;

    if ((ctx = tls_ctx(certdir, "server", true)) == NULL ||
        (p = fake_relay_start(listen_addr, ctx)) == NULL)
        goto out;
    if (send_idle_data(p) != 0)
        goto out;
    if (!peer_wait(p, T_ANSWER, cond_eof, NULL))
        fail("the proxy kept a connection that sent DATA on an idle stream");
    peer_free(p, true);
    /* It dials again: take that connection and hold it until the test stops the proxy. */
    if ((p = fake_relay_start(listen_addr, ctx)) != NULL) {
        say("the proxy reconnected after the protocol error");
        fake_relay_hold(p);
    }
out:
    peer_free(p, true);
    SSL_CTX_free(ctx);
    return failures > 0;
}

/* ---- main ------------------------------------------------------------------------------- */

static const struct command {
    const char *name;
    const char *args;
    int nargs;
    int (*run)(char **argv);
} commands[] = {
    { "client-rst-noerror", "RELAY CERTDIR TARGET", 3, cmd_client_rst_noerror },
    { "double-register", "RELAY CERTDIR", 2, cmd_double_register },
    { "register-refused", "RELAY CERTDIR", 2, cmd_register_refused },
    { "register-pile", "RELAY CERTDIR", 2, cmd_register_pile },
    { "open-service", "RELAY CERTDIR TARGET", 3, cmd_open_service },
    { "slow-client", "RELAY CERTDIR PUSH_TARGET TARGET", 4, cmd_slow_client },
    { "bad-frame", "RELAY CERTDIR", 2, cmd_bad_frame },
    { "many-resets", "RELAY CERTDIR", 2, cmd_many_resets },
    { "stuck-refusals", "RELAY CERTDIR", 2, cmd_stuck_refusals },
    { "open-pile", "RELAY CERTDIR", 2, cmd_open_pile },
    { "key-update", "RELAY CERTDIR TARGET", 3, cmd_key_update },
    { "fake-relay-rst", "LISTEN CERTDIR TARGET", 3, cmd_fake_relay_rst },
    { "fake-relay-refill", "LISTEN CERTDIR", 2, cmd_fake_relay_refill },
    { "fake-relay-bad-frame", "LISTEN CERTDIR", 2, cmd_fake_relay_bad_frame },
};

static void
usage(void)
{
    size_t i;

    fprintf(stderr, "usage: badpeer COMMAND ARGS (CERTDIR is certs-tool's --out folder; every "
                    "address is HOST:PORT)\n");
    for (i = 0; i < TN_ARRAY_LEN(commands); i++)
        fprintf(stderr, "  badpeer %s %s\n", commands[i].name, commands[i].args);
}

int
main(int argc, char **argv)
{
    size_t i;

    signal(SIGPIPE, SIG_IGN);
    tn_log_open("badpeer", TN_LOG_WARN, TN_LOG_TEXT, NULL);
    for (i = 0; argc >= 2 && i < TN_ARRAY_LEN(commands); i++) {
        if (strcmp(argv[1], commands[i].name) != 0)
            continue;
        if (argc - 2 != commands[i].nargs)
            break;
        cmd = commands[i].name;
        return commands[i].run(argv + 2);
    }
    usage();
    return 2;
}
