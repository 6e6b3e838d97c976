/* SPDX-License-Identifier: MIT */
/* HTTP/1.1 on the relay's ports, before anything else happens on a connection:
 *   - the tunnel port: a new connection's first byte tells what it is.  0x16 starts a TLS
 *     handshake (the tunnel, or a health probe that then chooses HTTP/1.1 by ALPN: see
 *     tn_h2_ops.on_http1); anything else is read as a plain HTTP request, and `GET /healthz`
 *     answers 200 (503 while draining), so that a load balancer can probe the relay;
 *   - the HTTP routing ports: on http_listen the request head's Host names the published service
 *     (expose.c) that gets the connection, head included; an unknown host gets a 404 page.  On
 *     https_listen the relay ends TLS with the certificate of https_certs that matches the SNI
 *     name, which then names the service; the connection stays TLS up to the relay.
 * Either way the head is read whole (bounded in size and time) before anyone acts on it. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "relay.h"
#include "tn/addr.h"
#include "tn/certutil.h"
#include "tn/err.h"
#include "tn/log.h"
#include "tn/tls.h"
#include "tn/util.h"

#define HEAD_MAX      8192
#define TLS_HANDSHAKE 0x16

struct head {
    struct relay *relay;
    struct head *prev, *next; /* in relay->heads */
    bool is_tunnel_port;      /* else an HTTP routing port */
    SSL *ssl;                 /* the HTTPS routing port: TLS first (routed by SNI) */
    bool is_handshaken;
    ev_io io;
    ev_timer timer;
    char buf[HEAD_MAX];
    size_t len;
};

const char *
health_answer(const struct relay *relay, const char *request)
{
#define HEAD_OF(status, len)                                                                     \
    "HTTP/1.1 " status "\r\nContent-Type: text/plain\r\nContent-Length: " len "\r\nConnection: " \
    "close\r\n\r\n"
    bool is_head = strncmp(request, "HEAD ", 5) == 0, is_get = strncmp(request, "GET ", 4) == 0;

    if (!(is_get || is_head) || strncmp(request + (is_head ? 5 : 4), "/healthz ", 9) != 0)
        return is_head ? HEAD_OF("404 Not Found", "10")
                       : HEAD_OF("404 Not Found", "10") "not found\n";
    if (relay->is_draining)
        return is_head ? HEAD_OF("503 Service Unavailable", "9")
                       : HEAD_OF("503 Service Unavailable", "9") "draining\n";
    return is_head ? HEAD_OF("200 OK", "3") : HEAD_OF("200 OK", "3") "ok\n";
#undef HEAD_OF
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
    if (is_close) {
        SSL_free(h->ssl);
        close(h->io.fd);
    }
    free(h);
}

/* "1.2.3.4:5678" of the peer, for logs. */
static const char *
head_peer(struct head *h)
{
    static char peer[TN_ADDR_STRLEN];
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getpeername(h->io.fd, (struct sockaddr *)&ss, &len) != 0)
        return "?";
    return tn_addr_format((struct sockaddr *)&ss, peer, sizeof(peer));
}

/* Whether |buf| (what came so far) can still be the start of an HTTP/1.x request: a method of
 * capitals, a space, then printable text up to the blank line that ends the head (a body that
 * came with it may hold any byte).  Anything else is closed at once. */
static bool
looks_like_http(const char *buf, size_t n)
{
    const char *head_end = memmem(buf, n, "\r\n\r\n", 4);
    size_t i, method = strspn(buf, "ABCDEFGHIJKLMNOPQRSTUVWXYZ");

    if (head_end != NULL)
        n = (size_t)(head_end - buf);
    if (method == 0 || method > 16 || (method < n && buf[method] != ' '))
        return n <= method && method <= 16 && method > 0;
    for (i = method; i < n; i++) {
        if (((unsigned char)buf[i] < ' ' && buf[i] != '\r' && buf[i] != '\n' && buf[i] != '\t') ||
            buf[i] == 0x7f)
            return false;
    }
    return true;
}

static void
head_on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct head *h = tn_container_of(w, struct head, timer);

    (void)loop;
    (void)revents;
    /* On the tunnel port a silent peer is a TLS handshake that never began. */
    tn_log(h->is_tunnel_port ? TN_LOG_WARN : TN_LOG_DEBUG,
           "%s: %s timed out after %.1f s (handshake_timeout)", head_peer(h),
           h->is_tunnel_port && h->len == 0 ? "TLS handshake" : "HTTP request head",
           (double)h->relay->cfg->limits.handshake_timeout / 1e3);
    head_free(h, true);
}

/* Writes a small answer and closes (a full socket buffer just cuts it short). */
static void
head_answer(struct head *h, const char *answer)
{
    if (h->ssl != NULL) {
        SSL_write(h->ssl, answer, (int)strlen(answer));
        SSL_shutdown(h->ssl);
        ERR_clear_error();
    } else if (write(h->io.fd, answer, strlen(answer)) < 0) {
        tn_log_debug("HTTP answer: %s", strerror(errno));
    }
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
        "Content-Length: 23\r\nConnection: close\r\n\r\nno Host in the request\n";
    const char *sni = h->ssl != NULL ? SSL_get_servername(h->ssl, TLSEXT_NAMETYPE_host_name) : NULL;
    char host[256], body[320], page[512];
    int fd = h->io.fd;
    size_t i;

    /* Over TLS the name the client verified the certificate for decides, not the Host. */
    if (sni != NULL && strlen(sni) < sizeof(host)) {
        for (i = 0; sni[i] != '\0'; i++)
            host[i] = (char)tolower((unsigned char)sni[i]);
        host[i] = '\0';
    } else if (http_host_of(h->buf, host, sizeof(host)) != 0) {
        head_answer(h, bad);
        return;
    }
    if (expose_by_host(h->relay, host)) {
        struct relay *relay = h->relay;
        char *head = malloc(h->len);
        size_t len = h->len;
        SSL *ssl = h->ssl;

        if (head == NULL) { /* the head must go first: without it, no connection */
            head_free(h, true);
            return;
        }
        memcpy(head, h->buf, len);
        h->ssl = NULL; /* the connection's now */
        head_free(h, false);
        expose_connect_host(relay, host, fd, head, len, ssl);
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

static ssize_t
head_read(struct head *h)
{
    size_t room = sizeof(h->buf) - 1 - h->len;
    int r, e;

    if (h->ssl == NULL)
        return read(h->io.fd, h->buf + h->len, room);
    if ((r = SSL_read(h->ssl, h->buf + h->len, (int)room)) > 0)
        return r;
    e = SSL_get_error(h->ssl, r);
    ERR_clear_error();
    errno = e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? EAGAIN : ECONNRESET;
    return e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
}

/* Moves the TLS handshake on.  Returns true once it is done; false to wait (or when the
 * connection was given up, and |h| freed). */
static bool
head_handshake(struct head *h)
{
    int r = SSL_do_handshake(h->ssl), e;

    if (r == 1) {
        h->is_handshaken = true;
        if (h->io.events != EV_READ) {
            ev_io_stop(h->relay->loop, &h->io);
            ev_io_set(&h->io, h->io.fd, EV_READ);
            ev_io_start(h->relay->loop, &h->io);
        }
        return true;
    }
    e = SSL_get_error(h->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        int events = e == SSL_ERROR_WANT_READ ? EV_READ : EV_WRITE;

        if (h->io.events != events) {
            ev_io_stop(h->relay->loop, &h->io);
            ev_io_set(&h->io, h->io.fd, events);
            ev_io_start(h->relay->loop, &h->io);
        }
        return false;
    }
    tn_log_debug("HTTPS routing port: TLS handshake failed");
    ERR_clear_error();
    head_free(h, true);
    return false;
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
    if (h->ssl != NULL && !h->is_handshaken) {
        if (!head_handshake(h))
            return;
    }
    do {
        n = head_read(h);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            head_free(h, true);
            return;
        }
        h->len += (size_t)n;
        h->buf[h->len] = '\0';
    } while (h->ssl != NULL && SSL_has_pending(h->ssl) && h->len < sizeof(h->buf) - 1 &&
             strstr(h->buf, "\r\n\r\n") == NULL);
    if (!looks_like_http(h->buf, h->len)) {
        tn_log(h->is_tunnel_port ? TN_LOG_WARN : TN_LOG_DEBUG,
               "%s: neither TLS nor an HTTP request: closed", head_peer(h));
        head_free(h, true);
        return;
    }
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
head_start(struct relay *relay, int fd, bool is_tunnel_port, SSL_CTX *tls)
{
    struct head *h;

    if ((h = calloc(1, sizeof(*h))) == NULL) {
        close(fd);
        return;
    }
    if (tls != NULL && ((h->ssl = SSL_new(tls)) == NULL || SSL_set_fd(h->ssl, fd) != 1)) {
        SSL_free(h->ssl);
        free(h);
        close(fd);
        return;
    }
    if (h->ssl != NULL)
        SSL_set_accept_state(h->ssl);
    h->relay = relay;
    h->is_tunnel_port = is_tunnel_port;
    h->next = relay->heads;
    if (relay->heads != NULL)
        relay->heads->prev = h;
    relay->heads = h;
    ev_io_init(&h->io, head_on_readable, fd, EV_READ);
    ev_io_start(relay->loop, &h->io);
    /* The first byte, then the whole head, must come within the handshake timeout. */
    ev_timer_init(&h->timer, head_on_timeout, (double)relay->cfg->limits.handshake_timeout / 1e3,
                  0);
    ev_timer_start(relay->loop, &h->timer);
}

void
session_accept(struct relay *relay, int fd)
{
    head_start(relay, fd, true, NULL);
}

void
http_route_accept(struct relay *relay, int fd, bool is_tls)
{
    head_start(relay, fd, false, is_tls ? relay->https_tls[0] : NULL);
}

/* SNI: the certificate whose names cover the requested one (else the first). */
static int
https_on_servername(SSL *ssl, int *alert, void *arg)
{
    struct relay *relay = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    size_t i;

    (void)alert;
    for (i = 0; name != NULL && i < relay->nhttps_tls; i++) {
        X509 *cert = SSL_CTX_get0_certificate(relay->https_tls[i]);

        if (cert != NULL && X509_check_host(cert, name, 0, 0, NULL) == 1) {
            SSL_set_SSL_CTX(ssl, relay->https_tls[i]);
            break;
        }
    }
    return SSL_TLSEXT_ERR_OK;
}

/* Loads |cfg|'s https_certs into |*out|, an array of |*n| contexts.  Returns 0 or an error
 * (logged; nothing left to free). */
static int
https_load(struct relay *relay, const struct relay_config *cfg, SSL_CTX ***out, size_t *n)
{
    const struct https_cert *certs = cfg->https_certs.v;
    bool was_encrypted = false;
    SSL_CTX **v;
    size_t i;

    *out = NULL;
    *n = 0;
    if (cfg->https_certs.n == 0) {
        tn_log(TN_LOG_ERR, "https_listen needs certificates: https_certs: [{cert_file, key_file}]");
        return TN_ERR_CONFIG;
    }
    if ((v = calloc(cfg->https_certs.n, sizeof(*v))) == NULL)
        return -ENOMEM;
    for (i = 0; i < cfg->https_certs.n; i++) {
        SSL_CTX *ctx = v[i] = SSL_CTX_new(TLS_server_method());

        if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
            tn_tls_log_errors("https");
            goto fail;
        }
        /* Never a prompt on a terminal: a reload would stop the loop until someone types. */
        was_encrypted = false;
        SSL_CTX_set_default_passwd_cb(ctx, tn_no_passphrase);
        SSL_CTX_set_default_passwd_cb_userdata(ctx, &was_encrypted);
        if (SSL_CTX_use_certificate_chain_file(ctx, certs[i].cert_file) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx, certs[i].key_file, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            tn_tls_log_errors(certs[i].cert_file);
            tn_log(TN_LOG_ERR, "https_certs: %s and %s are not a usable certificate and key%s",
                   certs[i].cert_file, certs[i].key_file,
                   was_encrypted ? " (the key is encrypted: give it without a passphrase)" : "");
            goto fail;
        }
        SSL_CTX_set_default_passwd_cb(ctx, NULL);
        SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);
        SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        /* HTTP/1.1 only: the head is read to route, then bytes are piped as they come. */
        SSL_CTX_set_alpn_select_cb(ctx, tn_tls_select_alpn, TN_UNCONST(TN_TLS_ALPN_HTTP11));
        SSL_CTX_set_tlsext_servername_callback(ctx, https_on_servername);
        SSL_CTX_set_tlsext_servername_arg(ctx, relay);
    }
    *out = v;
    *n = i;
    return 0;
fail:
    for (i = 0; i < cfg->https_certs.n; i++)
        SSL_CTX_free(v[i]);
    free(v);
    return TN_ERR_CONFIG;
}

int
https_init(struct relay *relay)
{
    return https_load(relay, relay->cfg, &relay->https_tls, &relay->nhttps_tls);
}

int
https_reload(struct relay *relay, const struct relay_config *fresh, SSL_CTX ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (relay->cfg->https_listen == NULL || fresh->https_listen == NULL)
        return 0; /* the port opens or closes only with a restart */
    return https_load(relay, fresh, out, n);
}

void
https_swap(struct relay *relay, SSL_CTX **v, size_t n)
{
    if (v == NULL)
        return;
    https_fini(relay); /* connections hold their own references */
    relay->https_tls = v;
    relay->nhttps_tls = n;
}

void
https_fini(struct relay *relay)
{
    size_t i;

    for (i = 0; i < relay->nhttps_tls; i++)
        SSL_CTX_free(relay->https_tls[i]);
    free(relay->https_tls);
    relay->https_tls = NULL;
    relay->nhttps_tls = 0;
}

void
http_close_all(struct relay *relay)
{
    while (relay->heads != NULL)
        head_free(relay->heads, true);
}
