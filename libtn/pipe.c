/* SPDX-License-Identifier: MIT */
/* A TCP socket joined to an HTTP/2 stream of gRPC Data frames.
 *
 * Aborts happen only at the top of an entry point (a watcher or a stream callback), after
 * which the pipe is not touched again: the owner may free it inside on_close. */
#include "tn/pipe.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tn/addr.h"
#include "tn/busypoll.h"
#include "tn/err.h"
#include "tn/h2.h"
#include "tn/log.h"
#include "tn/util.h"

#define READ_SIZE (64 * 1024)
#define OUT_HIGH  (512 * 1024) /* pause socket reads above this much queued for the stream */
#define OUT_LOW   (128 * 1024) /* and resume below this */

/* The owner hears of the end only once the pipe's own frames are off the stack. */
static void
pipe_report(struct tn_pipe *p)
{
    tn_grpc_reader_fini(&p->grd);
    p->ops->on_close(p, p->end_reason);
}

static void
pipe_end(struct tn_pipe *p, const char *reason, bool is_reset)
{
    if (p->is_ended)
        return;
    p->is_ended = true;
    p->end_reason = reason;
    ev_io_stop(p->loop, &p->rd);
    ev_io_stop(p->loop, &p->wr);
    ev_timer_stop(p->loop, &p->idle);
    if (p->stream != NULL) {
        tn_h2_stream_detach(p->stream, is_reset ? NGHTTP2_CANCEL : 0);
        p->stream = NULL;
    }
    if (p->fd >= 0) {
        if (is_reset)
            tn_addr_close_reset(p->fd);
        else
            close(p->fd);
        p->fd = -1;
    }
    SSL_free(p->ssl);
    p->ssl = NULL;
    tn_buf_fini(&p->down);
    free(p->dgram);
    p->dgram = NULL;
    if (p->depth == 0)
        pipe_report(p);
}

void
tn_pipe_abort(struct tn_pipe *p, const char *reason)
{
    pipe_end(p, reason, true);
}

void
tn_pipe_refuse(struct tn_pipe *p, const Tunnel__V1__Frame *frame, const char *reason)
{
    if (p->stream != NULL && tn_pipe_send(p, frame) == 0) {
        tn_h2_stream_finish(p->stream, 0, NULL);
        tn_h2_stream_detach(p->stream, 0); /* what is queued still leaves */
        p->stream = NULL;
    }
    pipe_end(p, reason, true);
}

/* A clean end needs the stream closed without error and every byte for the socket written. */
static bool
pipe_check_done(struct tn_pipe *p)
{
    if (!p->is_stream_done || !p->is_down_shut)
        return false;
    pipe_end(p, NULL, false);
    return true;
}

static void
pipe_shut_down_if_drained(struct tn_pipe *p)
{
    if (p->is_down_eof && !p->is_down_shut && tn_buf_len(&p->down) == 0 && p->fd >= 0) {
        if (p->ssl != NULL)
            SSL_shutdown(p->ssl); /* close_notify: TLS's end of this direction */
        else
            shutdown(p->fd, SHUT_WR);
        p->is_down_shut = true;
    }
}

static void
pipe_return_window(struct tn_pipe *p, size_t n)
{
    p->unconsumed -= n;
    if (p->stream == NULL || n == 0)
        return;
    if (p->throttle != NULL)
        p->throttle->on_written(p, n);
    else
        tn_h2_stream_consume(p->stream, n);
}

/* ---- the socket, plain or TLS ----------------------------------------------------------- */

/* A failed SSL_read or SSL_write as read() and write() would say it: EAGAIN to wait, 0 for the
 * peer's close_notify on a read, else -1 with ECONNRESET (EPIPE for a write).  Once the peer
 * sent close_notify, OpenSSL calls any failed write ZERO_RETURN: as 0 it would be "nothing
 * written", and the same bytes would be tried again forever. */
static ssize_t
ssl_result(struct tn_pipe *p, int r, bool is_write)
{
    int e = SSL_get_error(p->ssl, r);

    ERR_clear_error();
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        errno = EAGAIN;
        return -1;
    }
    if (e == SSL_ERROR_ZERO_RETURN && !is_write)
        return 0;
    errno = is_write ? EPIPE : ECONNRESET;
    return -1;
}

static ssize_t
sock_read(struct tn_pipe *p, void *buf, size_t n)
{
    int r;

    if (p->ssl == NULL)
        return read(p->fd, buf, n);
    r = SSL_read(p->ssl, buf, n > INT_MAX ? INT_MAX : (int)n);
    return r > 0 ? r : ssl_result(p, r, false);
}

static ssize_t
sock_write(struct tn_pipe *p, const void *buf, size_t n)
{
    int r;

    if (p->ssl == NULL)
        return write(p->fd, buf, n);
    r = SSL_write(p->ssl, buf, n > INT_MAX ? INT_MAX : (int)n);
    return r > 0 ? r : ssl_result(p, r, true);
}

/* TLS may hold decrypted bytes the socket will not announce again: read them now. */
static void
pipe_read_pending(struct tn_pipe *p)
{
    if (p->ssl != NULL && SSL_has_pending(p->ssl) && ev_is_active(&p->rd))
        ev_feed_event(p->loop, &p->rd, EV_READ);
}

/* ---- socket -> stream ------------------------------------------------------------------- */

#define DGRAM_MAX 65535 /* the largest UDP payload or ICMP message we carry */

/* Datagram mode: one read is one datagram, which becomes one Data message. */
static void
pipe_read_dgram(struct tn_pipe *p, struct tn_buf *out)
{
    static uint8_t dg[DGRAM_MAX];
    const uint8_t *data = dg;
    size_t avail, len;
    uint8_t *dst;
    ssize_t n;

    if ((n = recv(p->fd, dg, sizeof(dg), MSG_TRUNC)) < 0) {
        /* A connected UDP socket reports an earlier ICMP error here: the flow goes on. */
        if (errno != EAGAIN && errno != EINTR && errno != ECONNREFUSED && errno != EHOSTUNREACH &&
            errno != ENETUNREACH)
            tn_pipe_abort(p, "read failed");
        return;
    }
    if (n == 0 || (size_t)n > sizeof(dg)) { /* empty or truncated: nothing we can carry */
        p->dgrams_dropped++;
        return;
    }
    len = (size_t)n;
    if (p->ops->dgram_in != NULL && !p->ops->dgram_in(p, &data, &len))
        return;
    if ((dst = tn_buf_reserve(out, TN_GRPC_DATA_PFX + len, &avail)) == NULL) {
        tn_pipe_abort(p, "out of memory");
        return;
    }
    tn_grpc_data_prefix(dst, len);
    memcpy(dst + TN_GRPC_DATA_PFX, data, len);
    tn_buf_commit(out, TN_GRPC_DATA_PFX + len);
    tn_busypoll_note(p->loop);
    p->last_active = ev_now(p->loop);
    p->bytes_up += len;
    p->dgrams_up++;
    tn_h2_stream_resume(p->stream);
}

static void
pipe_on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    struct tn_pipe *p = tn_container_of(w, struct tn_pipe, rd);
    struct tn_buf *out;
    size_t avail;
    uint8_t *dst;
    ssize_t n;

    (void)revents;
    if (p->stream == NULL) { /* cannot happen: a closed stream ends or stops reading */
        ev_io_stop(loop, w);
        return;
    }
    out = tn_h2_stream_out(p->stream);
    if (tn_buf_len(out) >= OUT_HIGH) {
        ev_io_stop(loop, w);
        p->is_read_paused = true;
        return;
    }
    if (p->is_datagram) {
        pipe_read_dgram(p, out);
        return;
    }
    if ((dst = tn_buf_reserve(out, TN_GRPC_DATA_PFX + READ_SIZE, &avail)) == NULL) {
        tn_pipe_abort(p, "out of memory");
        return;
    }
    n = sock_read(p, dst + TN_GRPC_DATA_PFX, avail - TN_GRPC_DATA_PFX);
    if (n > 0) {
        if ((size_t)n <= TN_BUSYPOLL_MESSAGE_MAX)
            tn_busypoll_note(loop);
        p->last_active = ev_now(loop);
        tn_grpc_data_prefix(dst, (size_t)n);
        tn_buf_commit(out, TN_GRPC_DATA_PFX + (size_t)n);
        p->bytes_up += (uint64_t)n;
        if (p->ops->on_bytes != NULL)
            p->ops->on_bytes(p, true, dst + TN_GRPC_DATA_PFX, (size_t)n);
        tn_h2_stream_resume(p->stream);
        if (p->throttle != NULL && !p->throttle->on_read(p, (size_t)n)) {
            ev_io_stop(loop, w);
            p->is_read_held = true;
        } else {
            pipe_read_pending(p);
        }
    } else if (n == 0) {
        ev_io_stop(loop, w);
        p->is_up_eof = true;
        tn_h2_stream_finish(p->stream, 0, NULL);
    } else if (errno != EAGAIN && errno != EINTR) {
        tn_pipe_abort(p, errno == ECONNRESET ? "connection reset" : "read failed");
    }
}

static void
stream_on_sent(void *owner, size_t n)
{
    struct tn_pipe *p = owner;

    (void)n;
    if (p->is_read_paused && p->stream != NULL &&
        tn_buf_len(tn_h2_stream_out(p->stream)) < OUT_LOW) {
        p->is_read_paused = false;
        if (!p->is_read_held) {
            ev_io_start(p->loop, &p->rd);
            pipe_read_pending(p);
        }
    }
}

void
tn_pipe_read_resume(struct tn_pipe *p)
{
    if (!p->is_read_held)
        return;
    p->is_read_held = false;
    if (!p->is_read_paused && !p->is_up_eof && !p->is_ended && p->fd >= 0) {
        ev_io_start(p->loop, &p->rd);
        pipe_read_pending(p);
    }
}

/* ---- stream -> socket ------------------------------------------------------------------- */

/* Writes what |down| holds.  Returns 0 or -errno. */
static int
pipe_flush_down(struct tn_pipe *p)
{
    const uint8_t *data;
    size_t n;
    ssize_t k;

    while ((data = tn_buf_peek(&p->down, &n)) != NULL) {
        if ((k = sock_write(p, data, n)) < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        if (k <= 0) /* a write that moves nothing would be tried again forever */
            return k < 0 ? -errno : -EPIPE;
        tn_buf_consume(&p->down, (size_t)k);
        pipe_return_window(p, (size_t)k);
        p->last_active = ev_now(p->loop);
    }
    if (tn_buf_len(&p->down) > 0)
        ev_io_start(p->loop, &p->wr);
    else
        ev_io_stop(p->loop, &p->wr);
    pipe_shut_down_if_drained(p);
    return 0;
}

static void
pipe_on_writable(struct ev_loop *loop, ev_io *w, int revents)
{
    struct tn_pipe *p = tn_container_of(w, struct tn_pipe, wr);

    (void)loop;
    (void)revents;
    if (pipe_flush_down(p) != 0) {
        tn_pipe_abort(p, "write failed");
        return;
    }
    pipe_check_done(p);
}

/* Datagram mode: a whole message is sent as one datagram; pieces are gathered first.  What
 * the socket refuses is dropped, never queued.  The window comes back in stream_on_data. */
static int
pipe_write_dgram(struct tn_pipe *p, const uint8_t *data, size_t n)
{
    uint8_t *grown;

    if (!p->grd.is_msg_end || p->dgram_len > 0) {
        if (p->dgram_len + n > DGRAM_MAX) {
            p->abort_reason = "datagram too large";
            return TN_ERR_LIMIT;
        }
        if ((grown = realloc(p->dgram, p->dgram_len + n)) == NULL)
            return -ENOMEM;
        p->dgram = grown;
        memcpy(p->dgram + p->dgram_len, data, n);
        p->dgram_len += n;
        if (!p->grd.is_msg_end)
            return 0;
        data = p->dgram;
        n = p->dgram_len;
        p->dgram_len = 0;
    }
    p->dgrams_down++;
    if (p->fd < 0 || (p->ops->dgram_out != NULL && !p->ops->dgram_out(p, data, n)) ||
        send(p->fd, data, n, MSG_DONTWAIT) < 0)
        p->dgrams_dropped++;
    return 0;
}

/* A piece of Data payload: straight to the socket when nothing waits before it. */
static int
grpc_on_data(void *arg, const uint8_t *data, size_t n)
{
    struct tn_pipe *p = arg;
    ssize_t k = 0;

    if (p->is_ended)
        return TN_GRPC_PAUSE;
    p->bytes_down += n;
    if (p->ops->on_bytes != NULL)
        p->ops->on_bytes(p, false, data, n);
    if (p->is_datagram)
        return pipe_write_dgram(p, data, n);
    if (p->fd >= 0 && tn_buf_len(&p->down) == 0) {
        if ((k = sock_write(p, data, n)) < 0 && (errno == EAGAIN || errno == EINTR))
            k = 0;
        else if (k <= 0) /* no progress is a failure, not a wait (see pipe_flush_down) */
            return k < 0 ? -errno : -EPIPE;
        pipe_return_window(p, (size_t)k);
    }
    if ((size_t)k < n) {
        if (tn_buf_append(&p->down, data + k, n - (size_t)k) != 0)
            return -ENOMEM;
        if (p->fd >= 0)
            ev_io_start(p->loop, &p->wr);
    }
    return 0;
}

static int
grpc_on_frame(void *arg, Tunnel__V1__Frame *f)
{
    struct tn_pipe *p = arg;
    int r = p->ops->on_frame(p, f);

    return p->is_ended ? TN_GRPC_PAUSE : r;
}

static int
stream_on_data(void *owner, const uint8_t *data, size_t n)
{
    struct tn_pipe *p = owner;
    size_t used;
    int r;

    p->unconsumed += n;
    p->last_active = ev_now(p->loop);
    p->depth++;
    r = tn_grpc_reader_feed(&p->grd, data, n, &used);
    p->depth--;
    if (p->is_ended) {
        pipe_report(p);
        return 0;
    }
    if (r != 0) {
        if (p->abort_reason == NULL)
            p->abort_reason =
                r == TN_ERR_PROTO || r == TN_ERR_LIMIT ? "bad message from relay" : "write failed";
        tn_pipe_abort(p, p->abort_reason);
        return r;
    }
    /* Only payload still waiting in |down| keeps its window; framing and control messages
     * were ours alone and the rest went to the socket. */
    pipe_return_window(p, p->unconsumed - tn_buf_len(&p->down));
    return 0;
}

static void
stream_on_end(void *owner, int grpc_status, const char *grpc_message)
{
    struct tn_pipe *p = owner;

    if (grpc_status != 0 || !tn_grpc_reader_idle(&p->grd)) {
        tn_log_debug("stream ended with grpc-status %d: %s", grpc_status, grpc_message);
        tn_pipe_abort(p, p->abort_reason != NULL ? p->abort_reason
                         : p->ops->is_peer_proxy ? "proxy ended the flow"
                                                 : "relay ended the flow");
        return;
    }
    if (p->is_datagram && !p->is_up_eof && p->stream != NULL) {
        /* No half-close in datagrams: the peer's end is the flow's. */
        ev_io_stop(p->loop, &p->rd);
        p->is_up_eof = true;
        p->is_down_shut = true;
        tn_h2_stream_finish(p->stream, 0, NULL);
    }
    p->is_down_eof = true;
    pipe_shut_down_if_drained(p);
}

/* Why a stream that did not end cleanly ended, naming its other end. */
static const char *
stream_end_reason(const struct tn_pipe *p, uint32_t error_code)
{
    if (error_code == TN_H2_CONNECTION_ENDED)
        return p->ops->is_peer_proxy ? "proxy connection ended" : "relay connection ended";
    return p->ops->is_peer_proxy ? "reset by proxy" : "reset by relay";
}

static void
stream_on_close(void *owner, uint32_t error_code)
{
    struct tn_pipe *p = owner;

    p->stream = NULL;
    if (p->ops->on_stream_gone != NULL)
        p->ops->on_stream_gone(p);
    if (error_code != 0) {
        tn_pipe_abort(p,
                      p->abort_reason != NULL ? p->abort_reason : stream_end_reason(p, error_code));
        return;
    }
    p->is_stream_done = true;
    pipe_check_done(p);
}

static const struct tn_h2_stream_ops pipe_stream_ops = {
    .on_data = stream_on_data,
    .on_end = stream_on_end,
    .on_sent = stream_on_sent,
    .on_close = stream_on_close,
};

/* Idle: the timer fires at the earliest moment the flow could have been silent long enough, and
 * checks (moving bytes only stamps last_active: no timer work per read). */
static void
pipe_on_idle(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct tn_pipe *p = tn_container_of(w, struct tn_pipe, idle);
    ev_tstamp left = p->last_active + p->idle_timeout - ev_now(loop);

    (void)revents;
    if (left <= 0) {
        tn_pipe_abort(p, "idle timeout");
        return;
    }
    w->repeat = left;
    ev_timer_again(loop, w);
}

void
tn_pipe_init(struct tn_pipe *p, struct ev_loop *loop, const struct tn_pipe_ops *ops)
{
    memset(p, 0, sizeof(*p));
    p->loop = loop;
    p->ops = ops;
    p->fd = -1;
    tn_buf_init(&p->down);
    tn_grpc_reader_init(&p->grd, grpc_on_data, grpc_on_frame, p);
    ev_init(&p->rd, pipe_on_readable);
    ev_init(&p->idle, pipe_on_idle);
    ev_init(&p->wr, pipe_on_writable);
}

int
tn_pipe_open(struct tn_pipe *p, struct tn_h2 *h2, const char *path)
{
    if ((p->stream = tn_h2_stream_open(h2, path, &pipe_stream_ops, p)) == NULL)
        return TN_ERR_H2;
    return 0;
}

void
tn_pipe_bind(struct tn_pipe *p, struct tn_h2_stream *stream)
{
    p->stream = stream;
    tn_h2_stream_bind(stream, &pipe_stream_ops, p);
}

void
tn_pipe_attach_tls(struct tn_pipe *p, int fd, SSL *ssl)
{
    p->ssl = ssl;
    tn_pipe_attach(p, fd, true);
}

void
tn_pipe_attach(struct tn_pipe *p, int fd, bool is_accepted)
{
    p->fd = fd;
    p->last_active = ev_now(p->loop);
    if (p->idle_timeout > 0) {
        p->idle.repeat = p->idle_timeout;
        ev_timer_again(p->loop, &p->idle);
    }
    ev_io_set(&p->rd, fd, EV_READ);
    ev_io_set(&p->wr, fd, EV_WRITE);
    /* The first bytes move in this loop turn, not after the next poll: what the application
     * sent on connecting (or TLS already holds) leaves with the Open, and what arrived while
     * dialing goes on at once, then maybe SHUT_WR. */
    ev_io_start(p->loop, &p->rd);
    if (is_accepted)
        ev_feed_event(p->loop, &p->rd, EV_READ);
    if (tn_buf_len(&p->down) > 0 || p->is_down_eof) {
        ev_io_start(p->loop, &p->wr);
        ev_feed_event(p->loop, &p->wr, EV_WRITE);
    }
}

int
tn_pipe_send(struct tn_pipe *p, const Tunnel__V1__Frame *frame)
{
    int r;

    if (p->stream == NULL)
        return -EPIPE;
    if ((r = tn_grpc_append(tn_h2_stream_out(p->stream), &frame->base)) != 0)
        return r;
    tn_h2_stream_resume(p->stream);
    return 0;
}

const char *
tn_open_result_name(Tunnel__V1__OpenResult r)
{
    switch (r) {
    case TUNNEL__V1__OPEN_RESULT__OPEN_RESULT_OK:
        return "ok";
    case TUNNEL__V1__OPEN_RESULT__OPEN_RESULT_NO_ROUTE:
        return "no route";
    case TUNNEL__V1__OPEN_RESULT__OPEN_RESULT_FORBIDDEN:
        return "forbidden";
    case TUNNEL__V1__OPEN_RESULT__OPEN_RESULT_REFUSED:
        return "refused";
    case TUNNEL__V1__OPEN_RESULT__OPEN_RESULT_UNREACHABLE:
        return "unreachable";
    case TUNNEL__V1__OPEN_RESULT__OPEN_RESULT_TIMEOUT:
        return "timeout";
    default:
        return "unknown result";
    }
}

int
tn_pipe_check_opened(struct tn_pipe *p, const Tunnel__V1__Frame *fr, char *why, size_t whylen)
{
    const Tunnel__V1__Opened *o = fr->opened;

    if (fr->kind_case != TUNNEL__V1__FRAME__KIND_OPENED) {
        p->abort_reason = "unexpected message instead of Opened";
        return TN_ERR_PROTO;
    }
    if (o->result != TUNNEL__V1__OPEN_RESULT__OPEN_RESULT_OK) {
        snprintf(why, whylen, "%s%s%.64s", tn_open_result_name(o->result),
                 o->reason[0] != '\0' ? ": " : "", o->reason);
        p->abort_reason = why;
        return TN_ERR_NO_ROUTE;
    }
    return 0;
}
