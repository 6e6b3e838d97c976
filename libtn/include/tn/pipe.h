/* SPDX-License-Identifier: MIT */
/* One TCP connection joined to one HTTP/2 stream of Data frames: the flow endpoint that the
 * client (app side), the proxy (target side) and the relay's public ports share.
 *
 * Each direction is its own state machine:
 *   up   (socket -> stream): OPEN -> EOF read -> END_STREAM once the out buffer drained
 *   down (stream -> socket): OPEN -> peer ended -> SHUT_WR once |down| drained
 * Backpressure: socket reads pause while the stream's out buffer is above a high watermark;
 * the stream's receive window is returned only for bytes the socket took.
 *
 * Datagram mode (|is_datagram|, a UDP or ICMP socket): each Data message is one datagram and
 * each datagram read one Data message; what the socket cannot take at once is dropped (counted
 * in |dgrams_dropped|), as the network would, and the peer's END_STREAM ends the flow. */
#ifndef TN_PIPE_H
#define TN_PIPE_H

#include <stdbool.h>
#include <stdint.h>

#include <ev.h>
#include <openssl/ssl.h>

#include "tn/buf.h"
#include "tn/grpc.h"

struct tn_h2;
struct tn_h2_stream;
struct tn_pipe;

struct tn_pipe_ops {
    /* A non-Data frame (Open, Opened) arrived.  Returns 0, or an error to abort the pipe
     * (the owner may set |abort_reason| first). */
    int (*on_frame)(struct tn_pipe *p, Tunnel__V1__Frame *f);
    /* The pipe is finished: |reason| is NULL after a clean end of both directions.  The
     * socket is closed and the stream released; the owner may free |p| now. */
    void (*on_close)(struct tn_pipe *p, const char *reason);
    /* May be NULL.  Sees the payload as it passes: |is_up| for bytes read from the socket,
     * else for bytes on their way to it.  Only looks: the bytes move on regardless. */
    void (*on_bytes)(struct tn_pipe *p, bool is_up, const uint8_t *data, size_t n);
    /* May be NULL.  The stream is gone (a clean end or a reset); the pipe may still write what
     * it holds to the socket, but whatever the owner knows of the stream's connection (the
     * peer behind it) may be freed from now on. */
    void (*on_stream_gone)(struct tn_pipe *p);
    /* Datagram mode, optional: a datagram read from the socket, which the owner may trim (move
     * |*data|, shorten |*n|).  Returns true to carry it, false to drop it (not ours). */
    bool (*dgram_in)(struct tn_pipe *p, const uint8_t **data, size_t *n);
    /* Datagram mode, optional: a datagram about to be sent.  Returns false to drop it. */
    bool (*dgram_out)(struct tn_pipe *p, const uint8_t *data, size_t n);
    /* The stream's other end is a proxy (the relay's public connections), not the relay: the
     * reasons a pipe gives for the stream's end name it. */
    bool is_peer_proxy;
};

/* Optional, for the relay's bandwidth limits: each direction's bytes pass through the owner,
 * who lets them on at its pace.  A pipe without one asks nothing. */
struct tn_pipe_throttle {
    /* |n| bytes were read from the socket.  Returns false to stop reading until the owner calls
     * tn_pipe_read_resume. */
    bool (*on_read)(struct tn_pipe *p, size_t n);
    /* |n| bytes of the stream were written to the socket (or were framing): the owner returns
     * their window to the peer (tn_h2_stream_consume on |stream|, while not NULL) when it
     * likes. */
    void (*on_written)(struct tn_pipe *p, size_t n);
};

struct tn_pipe {
    struct ev_loop *loop;
    const struct tn_pipe_ops *ops;
    int fd;   /* -1 until tn_pipe_attach */
    SSL *ssl; /* the socket speaks TLS (tn_pipe_attach_tls), or NULL */
    ev_io rd, wr;
    ev_timer idle;               /* runs while idle_timeout > 0 */
    double idle_timeout;         /* seconds without a byte either way before the flow is closed */
    ev_tstamp last_active;       /* when a byte last moved */
    struct tn_h2_stream *stream; /* NULL once closed */
    struct tn_grpc_reader grd;
    struct tn_buf down; /* payload waiting for the socket */
    size_t unconsumed;  /* stream bytes not yet returned to the peer's window */
    bool is_up_eof;     /* socket EOF read, END_STREAM queued */
    bool is_down_eof;   /* peer ended: SHUT_WR once |down| drains */
    bool is_down_shut;
    bool is_read_paused;
    bool is_datagram; /* set before tn_pipe_attach */
    uint8_t *dgram;   /* datagram mode: a message that came in several pieces */
    size_t dgram_len;
    uint64_t dgrams_up, dgrams_down, dgrams_dropped;
    bool is_read_held;                       /* by the throttle */
    const struct tn_pipe_throttle *throttle; /* NULL: no limit */
    bool is_stream_done;                     /* the stream closed cleanly */
    uint64_t bytes_up, bytes_down;
    const char *abort_reason;
    const char *end_reason;
    bool is_ended;
    int depth; /* > 0 while our stream callback runs: on_close waits for it */
};

void tn_pipe_init(struct tn_pipe *p, struct ev_loop *loop, const struct tn_pipe_ops *ops);
/* Opens the pipe's stream: a gRPC call to |path| on |h2|.  Returns 0 or TN_ERR_H2. */
int tn_pipe_open(struct tn_pipe *p, struct tn_h2 *h2, const char *path);
/* For the owner's on_frame when the pipe sent Open: 0 when |fr| is an Opened with result ok;
 * otherwise sets abort_reason (the result and its reason, written into |why|) and returns
 * TN_ERR_NO_ROUTE, or TN_ERR_PROTO for any other message. */
int tn_pipe_check_opened(struct tn_pipe *p, const Tunnel__V1__Frame *fr, char *why, size_t whylen);

/* The result's name as reasons and logs say it: "refused", "no route", "timeout"... */
const char *tn_open_result_name(Tunnel__V1__OpenResult r);
/* Takes |stream|, a request the relay was given (tn_h2_ops.on_request), as the pipe's stream. */
void tn_pipe_bind(struct tn_pipe *p, struct tn_h2_stream *stream);
/* Starts moving bytes with connected socket |fd| (taken over; its TCP options come from
 * tn_addr_tcp_options).  When |is_accepted|, the peer may have sent bytes already: they are
 * read in this loop turn instead of after the next poll.  Set |idle_timeout| before to close a
 * silent flow. */
void tn_pipe_attach(struct tn_pipe *p, int fd, bool is_accepted);
/* tn_pipe_attach for an accepted socket whose TLS session |ssl| (handshake done; taken over)
 * carries the bytes. */
void tn_pipe_attach_tls(struct tn_pipe *p, int fd, SSL *ssl);
/* The throttle lets reading go on. */
void tn_pipe_read_resume(struct tn_pipe *p);
/* Queues |frame| on the stream.  Returns 0 or -ENOMEM. */
int tn_pipe_send(struct tn_pipe *p, const Tunnel__V1__Frame *frame);
/* Ends the flow now: the socket is reset, the stream cancelled, then ops->on_close(reason). */
void tn_pipe_abort(struct tn_pipe *p, const char *reason);
/* Ends a flow that never got a socket: |frame| (an Opened saying why) and END_STREAM still
 * reach the peer, then ops->on_close(reason). */
void tn_pipe_refuse(struct tn_pipe *p, const Tunnel__V1__Frame *frame, const char *reason);

#endif
