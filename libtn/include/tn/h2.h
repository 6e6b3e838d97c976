/* SPDX-License-Identifier: MIT */
/* One HTTP/2 connection over non-blocking TLS on a libev loop, carrying gRPC-style streams.
 *
 * Clients and proxies are HTTP/2 clients (they open streams with tn_h2_stream_open); the relay
 * is the server (it is told of new streams through tn_h2_ops.on_request).  Flow control is
 * manual: the connection window is returned as soon as bytes arrive, a stream's window only
 * when its owner says the bytes were passed on (tn_h2_stream_consume), so a slow reader slows
 * only its own sender. */
#ifndef TN_H2_H
#define TN_H2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "tn/tls.h"

struct ev_loop;
struct tn_buf;
struct tn_h2;
struct tn_h2_stream;
struct tn_identity;

/* What a stream's owner is told.  Every callback gets the owner pointer given at bind/open. */
struct tn_h2_stream_ops {
    /* DATA bytes arrived.  Returns 0, or an error after which the owner has reset the stream. */
    int (*on_data)(void *owner, const uint8_t *p, size_t n);
    /* The peer ended its side.  |grpc_status| is the trailers' grpc-status for a client
     * stream (-1 when absent), 0 for a server stream. */
    void (*on_end)(void *owner, int grpc_status, const char *grpc_message);
    /* |n| bytes of the stream's out buffer were handed to HTTP/2. */
    void (*on_sent)(void *owner, size_t n);
    /* The stream is gone (|error_code| 0 after both ends closed cleanly, otherwise the
     * RST_STREAM code, or TN_H2_CONNECTION_ENDED when its connection ended: lost, or closed
     * here).  The stream pointer is invalid once this returns. */
    void (*on_close)(void *owner, uint32_t error_code);
};

/* The error code of a stream whose connection ended under it.  Never on the wire: no peer
 * reset that stream, and the logs must not say one did. */
#define TN_H2_CONNECTION_ENDED UINT32_MAX

struct tn_h2_ops {
    /* TLS is up, the peer's identity verified and its first SETTINGS arrived (so it accepted
     * ours too).  Returns 0 to go on, or an error to close the connection (the owner has
     * logged why). */
    int (*on_ready)(struct tn_h2 *h2);
    /* Server only (NULL for a client): a request for |path| arrived.  The owner binds the
     * stream (tn_h2_stream_bind) or answers it with tn_h2_stream_finish. */
    void (*on_request)(struct tn_h2 *h2, struct tn_h2_stream *s, const char *path);
    /* The connection is closed (every stream's on_close has run).  |reason| says why; it
     * may be part of |h2|, so it goes with tn_h2_free().  The owner must call tn_h2_free()
     * here or later. */
    void (*on_close)(struct tn_h2 *h2, const char *reason);
    /* The peer sent GOAWAY: it takes no new streams, the open ones go on.  May be NULL. */
    void (*on_goaway)(struct tn_h2 *h2);
    /* Server, may be NULL: a peer chose HTTP/1.1 over TLS (a load balancer's health probe)
     * and sent |request| (its head).  Returns the whole response to send before closing, or
     * NULL to close at once. */
    const char *(*on_http1)(struct tn_h2 *h2, const char *request);
};

struct tn_h2_settings {
    uint32_t stream_window;     /* bytes, per stream, each direction */
    uint32_t connection_window; /* bytes, whole connection */
    uint32_t max_streams;       /* concurrent streams the peer may open */
    const char *authority;      /* client only: :authority of requests */
    const char *server_name;    /* client only: the DNS name or IP address the relay's certificate
                                 * must carry (also sent as SNI); NULL or "*": not checked */
    bool is_name_derived;       /* server_name is only the host dialed: a relay certificate that
                                 * names no host passes (tn_tls_expect_name) */
    enum tn_role peer_role;     /* the role the peer's certificate must carry, or NONE */
    double ping_interval;       /* seconds between PINGs while nothing else proves the peer */
    double ping_timeout;        /* is alive; a PING unanswered this long closes the connection
                                 * (0: no heartbeat) */
    double handshake_timeout;   /* seconds the TLS handshake may take (0: 10 s) */
    uint32_t max_header_list;   /* server: bytes of a request's headers (names, values and 32
                                 * each, as SETTINGS_MAX_HEADER_LIST_SIZE counts; 0: 16 KiB);
                                 * a request over it is reset, the connection goes on */
    bool is_cert_required;      /* server: an HTTP/2 peer without a certificate gets the
                                 * certificate_required alert once its handshake is done, and
                                 * nothing else (HTTP/1.1, a health probe, needs none) */
};

/* Starts the TLS handshake on connected socket |fd| (taken over: closed by tn_h2_free), which
 * has tn_addr_tcp_options (no Nagle delay) from tn_addr_listen or tn_addr_connect.  Returns the
 * connection, or NULL when out of memory (|fd| is then closed). */
struct tn_h2 *tn_h2_new(struct ev_loop *loop, SSL_CTX *ctx, int fd, bool is_server,
                        const struct tn_h2_settings *settings, const struct tn_h2_ops *ops,
                        void *owner);
/* Frees a connection that is closed or never got going.  Safe with NULL. */
void tn_h2_free(struct tn_h2 *h2);
/* Starts a graceful close: GOAWAY tells the peer to open no more streams; the connection ends
 * by itself (ops->on_close) once the open ones are done. */
void tn_h2_drain(struct tn_h2 *h2);

/* Closes the connection now: every stream is told, then ops->on_close.  Not for use inside
 * this connection's own stream callbacks (use tn_h2_stream_reset there). */
void tn_h2_close(struct tn_h2 *h2, const char *reason);

void *tn_h2_owner(const struct tn_h2 *h2);
const struct tn_identity *tn_h2_peer(const struct tn_h2 *h2);
/* True when the connection ended because a certificate was refused (by either side, or for
 * its role): reconnecting cannot help. */
bool tn_h2_is_refused(const struct tn_h2 *h2);
/* "1.2.3.4:5678" of the peer. */
const char *tn_h2_peer_addr(const struct tn_h2 *h2);

/* Client: opens a gRPC POST to |path| whose body comes from the stream's out buffer.
 * Returns the stream or NULL (out of memory or too many streams; logged). */
struct tn_h2_stream *tn_h2_stream_open(struct tn_h2 *h2, const char *path,
                                       const struct tn_h2_stream_ops *ops, void *owner);
/* Server: takes |s| (given by on_request) for |owner|.  Response headers go out with the first
 * bytes queued, or earlier through tn_h2_stream_respond. */
void tn_h2_stream_bind(struct tn_h2_stream *s, const struct tn_h2_stream_ops *ops, void *owner);
/* Server: sends the response headers; the body follows from the out buffer. */
int tn_h2_stream_respond(struct tn_h2_stream *s);

/* Bytes queued here are sent as DATA as the peer's windows allow. */
struct tn_buf *tn_h2_stream_out(struct tn_h2_stream *s);
/* Call after queueing bytes in the out buffer. */
void tn_h2_stream_resume(struct tn_h2_stream *s);
/* Ends our side once the out buffer is drained: END_STREAM for a client; trailers with
 * |grpc_status| and |grpc_message| (may be NULL) for a server, or a trailers-only response
 * when no headers went out yet. */
void tn_h2_stream_finish(struct tn_h2_stream *s, int grpc_status, const char *grpc_message);
/* The bytes |s| holds wait for a bandwidth limit, not for a reader that does not read: a
 * connection holding too much resets other streams first (see h2.c, h2_shed). */
void tn_h2_stream_set_paced(struct tn_h2_stream *s);
/* Returns |n| bytes of receive window to the peer (after the owner passed them on). */
void tn_h2_stream_consume(struct tn_h2_stream *s, size_t n);
/* Resets the stream with |error_code| and forgets its owner: no callback reaches the owner
 * afterwards.  A stream that already closed cleanly is just forgotten. */
void tn_h2_stream_detach(struct tn_h2_stream *s, uint32_t error_code);

int32_t tn_h2_stream_id(const struct tn_h2_stream *s);
struct tn_h2 *tn_h2_stream_conn(const struct tn_h2_stream *s);

#endif
