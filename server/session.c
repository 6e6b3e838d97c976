/* SPDX-License-Identifier: MIT */
/* The relay's TLS sessions: who the peer is, which RPCs it may call, and the proxies'
 * registration (Register) and idle Accept streams. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>
#include <nghttp2/nghttp2.h>

#include "relay.h"
#include "tn/err.h"
#include "tn/hash.h"
#include "tn/log.h"
#include "tn/metrics.h"
#include "tn/util.h"

/* How long a peer without a certificate may hold a session before its token registered it:
 * a token proxy registers at once; anyone else answering PINGs would keep it for ever. */
#define REGISTER_DEADLINE 10 /* seconds */
#define REGISTER_LATE \
    "no certificate, and no registration by token within " TN_STR(REGISTER_DEADLINE) " s"

#define PATH_CONNECT  "/tunnel.v1.Relay/Connect"
#define PATH_REGISTER "/tunnel.v1.Relay/Register"
#define PATH_ACCEPT   "/tunnel.v1.Relay/Accept"

const char *
session_id(const struct session *s)
{
    return s->token_id[0] != '\0' ? s->token_id : tn_h2_peer(s->h2)->id;
}

/* The Register stream: a Hello in, a Welcome out, then it stays open as the control channel. */
struct reg {
    struct session *session;
    struct tn_h2_stream *stream;
    uint8_t hdr[TN_GRPC_HDR]; /* the Hello's gRPC prefix, then */
    uint8_t *msg;             /* the Hello, gathered whole (of the length announced) */
    size_t have;              /* of both */
    bool is_done;             /* the Hello is answered: what comes after is ignored */
};

/* The Hello is answered (or refused): another Register may come on this session. */
static void
reg_done(struct reg *rg)
{
    rg->is_done = true;
    rg->session->is_registering = false;
    free(rg->msg);
    rg->msg = NULL;
}

/* ---- proxies ---------------------------------------------------------------------------- */

/* Lets go of |px|'s Register stream: ended with status 0 when |is_graceful| (the relay is
 * draining), else reset.  Its state goes with it: no callback will come to free it. */
static void
control_drop(struct proxy *px, bool is_graceful)
{
    struct reg *rg = px->control;

    if (rg == NULL)
        return;
    px->control = NULL;
    if (is_graceful) {
        tn_h2_stream_finish(rg->stream, TN_GRPC_OK, "relay draining");
        tn_h2_stream_detach(rg->stream, 0);
    } else {
        tn_h2_stream_detach(rg->stream, NGHTTP2_CANCEL);
    }
    free(rg->msg);
    free(rg);
}

/* Takes |px| out of service: its routes go, its queued flows go to other replicas.  Its memory
 * stays until its session is freed, since its flows still name it. */
static void
proxy_leave(struct proxy *px)
{
    struct relay *relay = px->session->relay;
    struct accept_slot *slot;
    struct waiter *w;
    size_t i;

    if (px->has_left)
        return;
    px->has_left = true;
    for (i = 0; i < px->nnets; i++)
        route_remove(relay, px, &px->nets[i].addressed);
    expose_proxy_left(px);
    while ((slot = px->idle) != NULL) {
        px->idle = slot->next;
        tn_h2_stream_detach(slot->stream, NGHTTP2_CANCEL);
        free(slot);
    }
    while ((w = px->queue) != NULL) {
        proxy_unwait(w);
        w->reroute(w);
    }
    control_drop(px, false);
    if (px->nnets > 0 || px->nexposures > 0)
        tn_log_info("proxy %s#%" PRIu64 " left (%" PRIu64 " flows served)", px->id, px->serial,
                    px->flows);
}

static void
proxy_free(struct proxy *px)
{
    proxy_leave(px);
    free(px->nets);
    free(px->exposures);
    free(px);
}

static void
slot_unlink(struct accept_slot *slot)
{
    if (slot->prev != NULL)
        slot->prev->next = slot->next;
    else
        slot->proxy->idle = slot->next;
    if (slot->next != NULL)
        slot->next->prev = slot->prev;
}

static int
slot_on_data(void *owner, const uint8_t *p, size_t n)
{
    struct accept_slot *slot = owner;

    /* An idle Accept stream carries nothing until we send Open: the peer broke the protocol. */
    (void)p;
    tn_h2_stream_consume(slot->stream, n);
    tn_log_warnx("proxy %s: data on an idle Accept stream", slot->proxy->id);
    slot_unlink(slot);
    tn_h2_stream_detach(slot->stream, NGHTTP2_PROTOCOL_ERROR);
    free(slot);
    return TN_ERR_PROTO;
}

static void
slot_on_end(void *owner, int grpc_status, const char *grpc_message)
{
    struct accept_slot *slot = owner;

    (void)grpc_status;
    (void)grpc_message;
    slot_unlink(slot);
    tn_h2_stream_finish(slot->stream, TN_GRPC_OK, NULL);
    tn_h2_stream_detach(slot->stream, 0);
    free(slot);
}

static void
slot_on_sent(void *owner, size_t n)
{
    (void)owner;
    (void)n;
}

static void
slot_on_close(void *owner, uint32_t error_code)
{
    struct accept_slot *slot = owner;

    (void)error_code;
    slot_unlink(slot);
    free(slot);
}

static const struct tn_h2_stream_ops slot_ops = {
    .on_data = slot_on_data,
    .on_end = slot_on_end,
    .on_sent = slot_on_sent,
    .on_close = slot_on_close,
};

static void
proxy_accept(struct proxy *px, struct tn_h2_stream *stream)
{
    struct accept_slot *slot;
    struct waiter *w;

    if ((w = px->queue) != NULL) {
        proxy_unwait(w);
        w->bind(w, stream);
        return;
    }
    if ((slot = calloc(1, sizeof(*slot))) == NULL) {
        tn_h2_stream_finish(stream, TN_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    slot->proxy = px;
    slot->stream = stream;
    slot->next = px->idle;
    if (px->idle != NULL)
        px->idle->prev = slot;
    px->idle = slot;
    tn_h2_stream_bind(stream, &slot_ops, slot);
}

/* Takes an idle Accept stream of |px| for a flow, or returns NULL when none is idle. */
struct tn_h2_stream *
proxy_take_stream(struct proxy *px)
{
    struct accept_slot *slot = px->idle;
    struct tn_h2_stream *stream;

    if (slot == NULL)
        return NULL;
    slot_unlink(slot);
    stream = slot->stream;
    free(slot);
    return stream;
}

void
proxy_wait(struct proxy *px, struct waiter *w)
{
    w->proxy = px;
    w->next = NULL;
    if (px->queue_tail != NULL)
        px->queue_tail->next = w;
    else
        px->queue = w;
    px->queue_tail = w;
}

void
proxy_unwait(struct waiter *w)
{
    struct proxy *px = w->proxy;
    struct waiter **pp, *prev = NULL;

    if (px == NULL)
        return;
    for (pp = &px->queue; *pp != NULL; prev = *pp, pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            if (px->queue_tail == w)
                px->queue_tail = prev;
            break;
        }
    }
    w->proxy = NULL;
    w->next = NULL;
}

/* Validates and applies a Hello.  Returns 0, or a gRPC status with |why| filled. */
static int
proxy_hello(struct proxy *px, const Tunnel__V1__Hello *hello, char *why, size_t whylen)
{
    struct relay *relay = px->session->relay;
    const char *cert_id = session_id(px->session);
    char a[TN_CIDR_STRLEN], b[TN_CIDR_STRLEN];
    size_t i;

    px->serial = ++relay->serials;
    px->hrw_key = tn_hash_bytes(px->id, strlen(px->id)) ^ px->serial;
    if (strcmp(hello->proxy_id, cert_id) != 0) {
        snprintf(why, whylen, "proxy id '%.64s' does not match its %s id '%s'", hello->proxy_id,
                 px->session->token_id[0] != '\0' ? "token's" : "certificate's", cert_id);
        return TN_GRPC_PERMISSION_DENIED;
    }
    if (hello->n_networks > 256 || hello->n_services > 256 ||
        hello->n_networks + hello->n_services == 0) {
        snprintf(why, whylen,
                 "announce up to 256 networks and 256 services, at least one (got "
                 "%zu and %zu)",
                 hello->n_networks, hello->n_services);
        return TN_GRPC_PERMISSION_DENIED;
    }
    /* Even with services only: an unlisted proxy must not take a public port or host. */
    if (!policy_knows_proxy(relay->cfg, px->id, why, whylen))
        return TN_GRPC_PERMISSION_DENIED;
    if (hello->n_networks > 0 &&
        (px->nets = calloc(hello->n_networks, sizeof(*px->nets))) == NULL) {
        snprintf(why, whylen, "out of memory");
        return TN_GRPC_RESOURCE_EXHAUSTED;
    }
    for (i = 0; i < hello->n_networks; i++) {
        const Tunnel__V1__Network *n = hello->networks[i];
        struct proxy_net *pn = &px->nets[i];

        if (tn_cidr_parse(&pn->real, n->cidr) != 0) {
            snprintf(why, whylen, "network '%.64s' is not a CIDR", n->cidr);
            return TN_GRPC_PERMISSION_DENIED;
        }
        pn->addressed = pn->real;
        if (n->virtual_cidr[0] != '\0' && (tn_cidr_parse(&pn->addressed, n->virtual_cidr) != 0 ||
                                           pn->addressed.ip.family != pn->real.ip.family ||
                                           pn->addressed.prefix != pn->real.prefix)) {
            snprintf(why, whylen, "virtual network '%.50s' is not a CIDR of the size of %.50s",
                     n->virtual_cidr, n->cidr);
            return TN_GRPC_PERMISSION_DENIED;
        }
        if (!policy_may_announce(relay->cfg, px->id, &pn->addressed, why, whylen))
            return TN_GRPC_PERMISSION_DENIED;
    }
    for (i = 0; i < hello->n_networks; i++) {
        if (route_add(relay, px, &px->nets[i].addressed) != 0) {
            px->nnets = i;
            snprintf(why, whylen, "out of memory");
            return TN_GRPC_RESOURCE_EXHAUSTED;
        }
        px->nnets = i + 1;
        tn_log_info("proxy %s registered %s -> %s (replica #%" PRIu64 ")", px->id,
                    tn_cidr_format(&px->nets[i].addressed, a, sizeof(a)),
                    tn_cidr_format(&px->nets[i].real, b, sizeof(b)), px->serial);
    }
    return TN_GRPC_OK;
}

static void
reg_finish(struct reg *rg, int status, const char *why)
{
    struct session *s = rg->session;

    tn_log_warnx("%s: registration refused: %s", tn_h2_peer_addr(s->h2), why);
    tn_h2_stream_finish(rg->stream, status, why); /* rg is freed when the stream closes */
    reg_done(rg);
    /* Without a certificate, and not even a valid token: nothing more for this peer (it may
     * not try token after token on one session).  GOAWAY after the answer, which it reads. */
    if (tn_h2_peer(s->h2)->role == TN_ROLE_NONE && s->token_id[0] == '\0')
        tn_h2_drain(s->h2);
}

static int
reg_on_data(void *owner, const uint8_t *p, size_t n)
{
    struct reg *rg = owner;
    struct session *s = rg->session;
    Tunnel__V1__Hello *hello = NULL;
    Tunnel__V1__Welcome welcome = TUNNEL__V1__WELCOME__INIT;
    struct proxy *px;
    char why[256];
    uint32_t len;
    int status, r;

    size_t max = (size_t)s->relay->cfg->limits.max_message, k;

    tn_h2_stream_consume(rg->stream, n);
    if (rg->is_done)
        return 0;
    for (; n > 0 && rg->have < TN_GRPC_HDR; n--)
        rg->hdr[rg->have++] = *p++;
    if (rg->have < TN_GRPC_HDR)
        return 0;
    len = (uint32_t)rg->hdr[1] << 24 | (uint32_t)rg->hdr[2] << 16 | (uint32_t)rg->hdr[3] << 8 |
          rg->hdr[4];
    if (rg->hdr[0] != 0 || len > max - TN_GRPC_HDR) {
        reg_finish(rg, TN_GRPC_RESOURCE_EXHAUSTED,
                   "Hello compressed or too large (limits.max_message)");
        return 0;
    }
    /* Memory for what was announced, once its first byte is here. */
    if (rg->msg == NULL && n > 0 && (rg->msg = malloc(len)) == NULL) {
        reg_finish(rg, TN_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return 0;
    }
    k = n < TN_GRPC_HDR + len - rg->have ? n : TN_GRPC_HDR + len - rg->have;
    if (k > 0)
        memcpy(rg->msg + rg->have - TN_GRPC_HDR, p, k);
    rg->have += k;
    if (rg->have < TN_GRPC_HDR + len)
        return 0;
    if ((hello = tunnel__v1__hello__unpack(NULL, len, rg->msg)) == NULL) {
        reg_finish(rg, TN_GRPC_PERMISSION_DENIED, "Hello does not decode");
        goto out;
    }
    if (s->proxy != NULL) { /* two Register calls raced past the check at request time */
        reg_finish(rg, TN_GRPC_PERMISSION_DENIED, "already registered");
        goto out;
    }
    if (tn_h2_peer(s->h2)->role == TN_ROLE_NONE) { /* no certificate: the token says who */
        const char *id = policy_token_proxy(s->relay->cfg, hello->token);

        if (id == NULL) {
            reg_finish(rg, TN_GRPC_UNAUTHENTICATED,
                       hello->token[0] == '\0' ? "no certificate and no token"
                                               : "the token is not valid");
            goto out;
        }
        snprintf(s->token_id, sizeof(s->token_id), "%s", id);
        free(s->token); /* of a Register refused earlier on this connection */
        if ((s->token = strdup(hello->token)) == NULL) {
            reg_finish(rg, TN_GRPC_RESOURCE_EXHAUSTED, "out of memory");
            goto out;
        }
    }
    if ((px = calloc(1, sizeof(*px))) == NULL) {
        reg_finish(rg, TN_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    px->session = s;
    snprintf(px->id, sizeof(px->id), "%s", session_id(s));
    if ((status = proxy_hello(px, hello, why, sizeof(why))) != TN_GRPC_OK) {
        proxy_free(px);
        reg_finish(rg, status, why);
        goto out;
    }
    s->proxy = px;
    px->control = rg;
    welcome.relay_version = TN_UNCONST(TN_VERSION);
    r = expose_proxy_joined(px, hello, &welcome);
    if (r == 0)
        r = tn_grpc_append(tn_h2_stream_out(rg->stream), &welcome.base);
    expose_welcome_fini(&welcome);
    if (r != 0) {
        reg_finish(rg, TN_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    tn_h2_stream_resume(rg->stream);
    reg_done(rg);
out:
    if (hello != NULL)
        tunnel__v1__hello__free_unpacked(hello, NULL);
    return 0;
}

static void
reg_on_end(void *owner, int grpc_status, const char *grpc_message)
{
    (void)owner;
    (void)grpc_status;
    (void)grpc_message;
}

static void
reg_on_sent(void *owner, size_t n)
{
    (void)owner;
    (void)n;
}

static void
reg_on_close(void *owner, uint32_t error_code)
{
    struct reg *rg = owner;
    struct session *s = rg->session;

    (void)error_code;
    /* The control stream is the proxy's presence: without it, it serves nothing. */
    if (s->proxy != NULL && s->proxy->control == rg) {
        s->proxy->control = NULL;
        proxy_leave(s->proxy);
        if (!s->is_draining) /* else its flows finish first */
            tn_h2_close(s->h2, "control stream closed");
    }
    if (!rg->is_done)
        reg_done(rg);
    free(rg);
}

static const struct tn_h2_stream_ops reg_ops = {
    .on_data = reg_on_data,
    .on_end = reg_on_end,
    .on_sent = reg_on_sent,
    .on_close = reg_on_close,
};

/* ---- sessions --------------------------------------------------------------------------- */

static void
session_on_register_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct session *s = tn_container_of(w, struct session, register_deadline);

    (void)loop;
    (void)revents;
    if (s->proxy == NULL)
        tn_h2_close(s->h2, REGISTER_LATE);
}

static int
session_on_ready(struct tn_h2 *h2)
{
    struct session *s = tn_h2_owner(h2);
    const struct tn_identity *peer = tn_h2_peer(h2);

    if (peer->role == TN_ROLE_NONE && !s->relay->is_draining) { /* only a token's Register */
        tn_log_info("%s connected without a certificate", tn_h2_peer_addr(h2));
        ev_timer_set(&s->register_deadline, (double)REGISTER_DEADLINE, 0);
        ev_timer_start(s->relay->loop, &s->register_deadline);
        return 0;
    }
    if (peer->role != TN_ROLE_CLIENT && peer->role != TN_ROLE_PROXY) {
        tn_log_warnx("%s: refused: certificate role %s is neither client nor proxy",
                     tn_h2_peer_addr(h2), tn_role_name(peer->role));
        return TN_ERR_AUTH;
    }
    /* Its handshake was under way when the drain began: it would hold the drain open. */
    if (s->relay->is_draining) {
        tn_log_info("%s (%s %s): refused: the relay is draining", tn_h2_peer_addr(h2),
                    tn_role_name(peer->role), peer->id);
        return TN_ERR_LIMIT;
    }
    tn_log_info("%s connected: %s %s", tn_h2_peer_addr(h2), tn_role_name(peer->role), peer->id);
    tn_metric_at(&relay_metric_sessions_total, tn_role_name(peer->role), NULL)->value++;
    return 0;
}

static void
refuse(struct session *s, struct tn_h2_stream *stream, int status, const char *why)
{
    static struct tn_log_rate rate; /* a peer chooses how many requests it sends */
    enum tn_role role = tn_h2_peer(s->h2)->role;
    const char *id = session_id(s);

    tn_log_rated(&rate, TN_LOG_WARN, "%s (%s%s%s): refused: %s", tn_h2_peer_addr(s->h2),
                 id[0] == '\0'          ? "no certificate"
                 : role == TN_ROLE_NONE ? "token of proxy"
                                        : tn_role_name(role),
                 id[0] != '\0' ? " " : "", id, why);
    tn_h2_stream_finish(stream, status, why);
    tn_h2_stream_detach(stream, 0);
    /* A peer without a certificate, and not yet a proxy by its token, may do what the
     * bootstrap needs, nothing else: its first refusal ends the session at once (nothing more
     * of it is read), else it could have as many refused streams kept and logged as it sends
     * requests.  A proxy registered by its token is a proxy like any other. */
    if (role == TN_ROLE_NONE && s->token_id[0] == '\0')
        tn_h2_close(s->h2, why);
}

static void
session_on_request(struct tn_h2 *h2, struct tn_h2_stream *stream, const char *path)
{
    struct session *s = tn_h2_owner(h2);
    enum tn_role role = tn_h2_peer(h2)->role;
    struct reg *rg;

    if (role == TN_ROLE_NONE) {
        /* Without a certificate only a token's proxy may go on: it proves itself in its
         * Hello, and may call Accept once registered. */
        if (strcmp(path, PATH_REGISTER) != 0 && s->token_id[0] == '\0') {
            refuse(s, stream, TN_GRPC_UNAUTHENTICATED, "no certificate");
            return;
        }
        if (s->relay->cfg->tokens.n == 0) { /* a reload withdrew them since its handshake */
            refuse(s, stream, TN_GRPC_UNAUTHENTICATED,
                   "no certificate, and the relay takes no tokens");
            return;
        }
        role = TN_ROLE_PROXY;
    }

    if (strcmp(path, PATH_CONNECT) == 0) {
        if (role != TN_ROLE_CLIENT)
            refuse(s, stream, TN_GRPC_PERMISSION_DENIED, "only clients may call Connect");
        else
            rflow_start(s, stream);
    } else if (strcmp(path, PATH_REGISTER) == 0) {
        if (role != TN_ROLE_PROXY) {
            refuse(s, stream, TN_GRPC_PERMISSION_DENIED, "only proxies may call Register");
        } else if (s->proxy != NULL) {
            refuse(s, stream, TN_GRPC_PERMISSION_DENIED, "already registered");
        } else if (s->is_registering) {
            refuse(s, stream, TN_GRPC_PERMISSION_DENIED, "a Register is already under way");
        } else if ((rg = calloc(1, sizeof(*rg))) == NULL) {
            refuse(s, stream, TN_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        } else {
            rg->session = s;
            rg->stream = stream;
            s->is_registering = true;
            tn_h2_stream_bind(stream, &reg_ops, rg);
        }
    } else if (strcmp(path, PATH_ACCEPT) == 0) {
        if (role != TN_ROLE_PROXY)
            refuse(s, stream, TN_GRPC_PERMISSION_DENIED, "only proxies may call Accept");
        else if (s->proxy == NULL || s->proxy->has_left)
            refuse(s, stream, TN_GRPC_PERMISSION_DENIED, "Accept before Register");
        else
            proxy_accept(s->proxy, stream);
    } else {
        refuse(s, stream, TN_GRPC_UNIMPLEMENTED, "unknown method");
    }
}

/* Frees |s| and its connection; the connection's streams tell their flows first. */
static void
session_free(struct session *s, const char *reason)
{
    struct relay *relay = s->relay;

    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        relay->sessions = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    ev_timer_stop(relay->loop, &s->register_deadline);
    tn_log_info("%s (%s) closed: %s", tn_h2_peer_addr(s->h2),
                session_id(s)[0] != '\0' ? session_id(s) : "-", reason);
    /* Routes first, so that the flows its closing streams fail move to other replicas. */
    if (s->proxy != NULL)
        proxy_leave(s->proxy);
    tn_h2_free(s->h2);
    if (s->proxy != NULL)
        proxy_free(s->proxy);
    free(s->token);
    free(s);
    if (relay->is_draining && relay->sessions == NULL) {
        tn_log_info("drained: every session is closed");
        ev_break(relay->loop, EVBREAK_ALL);
    }
}

static void
session_on_close(struct tn_h2 *h2, const char *reason)
{
    session_free(tn_h2_owner(h2), reason);
}

/* Takes the session out of service gracefully: a proxy's routes go at once, its flows and a
 * client's finish. */
static void
session_drain(struct session *s)
{
    struct proxy *px = s->proxy;

    if (s->is_draining)
        return;
    s->is_draining = true;
    if (px != NULL) {
        control_drop(px, true);
        proxy_leave(px);
    }
}

/* A proxy (or client) going away gracefully sends GOAWAY: take it out of the routes now. */
static void
session_on_goaway(struct tn_h2 *h2)
{
    struct session *s = tn_h2_owner(h2);

    tn_log_info("%s (%s) is leaving: its open flows go on", tn_h2_peer_addr(h2), session_id(s));
    session_drain(s);
}

void
session_recheck_policy(struct relay *relay)
{
    const char *id;
    struct session *s;
    char why[256];
    bool is_allowed;
    size_t i;

    for (s = relay->sessions; s != NULL; s = s->next) {
        const struct proxy *px = s->proxy;

        if (px == NULL || px->has_left)
            continue;
        if (s->token != NULL && ((id = policy_token_proxy(relay->cfg, s->token)) == NULL ||
                                 strcmp(id, s->token_id) != 0)) {
            tn_log_warnx("reload: the token of proxy %s is no longer valid: its open flows "
                         "finish, then it is gone",
                         s->token_id);
            session_drain(s);
            tn_h2_drain(s->h2);
            continue;
        }
        is_allowed = policy_knows_proxy(relay->cfg, px->id, why, sizeof(why));
        for (i = 0; is_allowed && i < px->nnets; i++)
            is_allowed =
                policy_may_announce(relay->cfg, px->id, &px->nets[i].addressed, why, sizeof(why));
        if (!is_allowed) {
            tn_log_warnx("policy: %s: its open flows finish, then it is gone", why);
            session_drain(s);
            tn_h2_drain(s->h2);
        }
    }
}

void
session_drain_all(struct relay *relay)
{
    struct session *s;

    for (s = relay->sessions; s != NULL; s = s->next) {
        session_drain(s);
        tn_h2_drain(s->h2);
    }
}

static const char *
session_on_http1(struct tn_h2 *h2, const char *request)
{
    struct session *s = tn_h2_owner(h2);

    return health_answer(s->relay, request);
}

static const struct tn_h2_ops session_ops = {
    .on_ready = session_on_ready,
    .on_request = session_on_request,
    .on_close = session_on_close,
    .on_goaway = session_on_goaway,
    .on_http1 = session_on_http1,
};

void
session_start(struct relay *relay, int fd)
{
    struct session *s;

    if ((s = calloc(1, sizeof(*s))) == NULL) {
        close(fd);
        return;
    }
    s->relay = relay;
    ev_init(&s->register_deadline, session_on_register_deadline);
    if ((s->h2 = tn_h2_new(relay->loop, relay->tls, fd, true, &relay->h2, &session_ops, s)) ==
        NULL) {
        free(s);
        return;
    }
    s->next = relay->sessions;
    if (relay->sessions != NULL)
        relay->sessions->prev = s;
    relay->sessions = s;
}

void
session_close_all(struct relay *relay)
{
    while (relay->sessions != NULL)
        session_free(relay->sessions, "relay stopping");
}

size_t
session_close_identity(struct relay *relay, const char *id, const char *reason)
{
    struct session *s;
    size_t n = 0;

    /* tn_h2_close only schedules the close: the list stays as it is while we walk it. */
    for (s = relay->sessions; s != NULL; s = s->next) {
        if (strcmp(session_id(s), id) == 0) {
            tn_h2_close(s->h2, reason);
            n++;
        }
    }
    return n;
}
