/* SPDX-License-Identifier: MIT */
/* gRPC framing of tunnel.v1.Frame.
 *
 * A Data frame is  [0][len:4 BE] [0x1a][varint n] [n payload bytes]  with len = 1 + |varint| + n;
 * we always write n as a 3-byte varint, and read any.
 * The reader recognises that shape from its first bytes and hands the payload on as it arrives;
 * any other message is gathered whole (bounded by max_msg) and decoded by protobuf-c, which also
 * covers a Data frame encoded some other valid way. */
#include "tn/grpc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tn/buf.h"
#include "tn/cidr.h"
#include "tn/err.h"
#include "tn/util.h"

#define DATA_TAG 0x1a /* field 3, wire type 2 */

enum {
    RD_HDR,
    RD_PEEK,
    RD_DATA,
    RD_MSG
};

static void
put_hdr(uint8_t *p, size_t len)
{
    p[0] = 0;
    p[1] = (uint8_t)(len >> 24);
    p[2] = (uint8_t)(len >> 16);
    p[3] = (uint8_t)(len >> 8);
    p[4] = (uint8_t)len;
}

void
tn_grpc_data_prefix(uint8_t *out, size_t len)
{
    put_hdr(out, 1 + 3 + len);
    out[TN_GRPC_HDR] = DATA_TAG;
    out[TN_GRPC_HDR + 1] = (uint8_t)(len | 0x80);
    out[TN_GRPC_HDR + 2] = (uint8_t)(len >> 7 | 0x80);
    out[TN_GRPC_HDR + 3] = (uint8_t)(len >> 14);
}

int
tn_grpc_append(struct tn_buf *b, const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg), avail;
    uint8_t *p;

    if ((p = tn_buf_reserve(b, TN_GRPC_HDR + len, &avail)) == NULL)
        return -ENOMEM;
    put_hdr(p, len);
    protobuf_c_message_pack(msg, p + TN_GRPC_HDR);
    tn_buf_commit(b, TN_GRPC_HDR + len);
    return 0;
}

void
tn_grpc_reader_init(struct tn_grpc_reader *rd, tn_grpc_data_cb on_data, tn_grpc_frame_cb on_frame,
                    void *arg)
{
    memset(rd, 0, sizeof(*rd));
    rd->on_data = on_data;
    rd->on_frame = on_frame;
    rd->arg = arg;
    rd->max_msg = TN_GRPC_MSG_MAX;
    rd->state = RD_HDR;
}

void
tn_grpc_reader_fini(struct tn_grpc_reader *rd)
{
    free(rd->msg);
    rd->msg = NULL;
}

int
tn_grpc_reader_idle(const struct tn_grpc_reader *rd)
{
    return rd->state == RD_HDR && rd->have == 0;
}

/* Decodes a whole non-fast-path message and hands it to the callbacks. */
static int
deliver_msg(struct tn_grpc_reader *rd, const uint8_t *p, size_t n)
{
    Tunnel__V1__Frame *f;
    int r;

    if ((f = tunnel__v1__frame__unpack(NULL, n, p)) == NULL)
        return TN_ERR_PROTO;
    rd->is_msg_end = 1;
    if (f->kind_case == TUNNEL__V1__FRAME__KIND_DATA)
        r = f->data.len > 0 ? rd->on_data(rd->arg, f->data.data, f->data.len) : 0;
    else
        r = rd->on_frame(rd->arg, f);
    tunnel__v1__frame__free_unpacked(f, NULL);
    return r;
}

/* With the first bytes of a message in hdr[TN_GRPC_HDR..have), decides whether it is a Data
 * frame of the plain shape.  Returns 1 (yes, payload length in |*n|), 0 (no), or -1 (need
 * another byte). */
static int
peek_data(const struct tn_grpc_reader *rd, size_t *n)
{
    const uint8_t *p = rd->hdr + TN_GRPC_HDR;
    size_t got = rd->have - TN_GRPC_HDR, i;
    uint64_t v = 0;

    if (got == 0)
        return -1;
    if (p[0] != DATA_TAG)
        return 0;
    for (i = 1; i < got; i++) {
        v |= (uint64_t)(p[i] & 0x7f) << (7 * (i - 1));
        if ((p[i] & 0x80) == 0) {
            *n = (size_t)v;
            return v == rd->msg_len - 1 - i ? 1 : 0;
        }
    }
    return got < 1 + 5 && got < rd->msg_len ? -1 : 0;
}

int
tn_grpc_reader_feed(struct tn_grpc_reader *rd, const uint8_t *p, size_t n, size_t *used)
{
    size_t off = 0, k;
    int r = 0, shape;

    while (off < n) {
        switch (rd->state) {
        case RD_HDR:
            rd->hdr[rd->have++] = p[off++];
            if (rd->have < TN_GRPC_HDR)
                break;
            if (rd->hdr[0] != 0) {
                r = TN_ERR_PROTO; /* compressed: we never negotiate compression */
                goto out;
            }
            rd->msg_len = (size_t)rd->hdr[1] << 24 | (size_t)rd->hdr[2] << 16 |
                          (size_t)rd->hdr[3] << 8 | rd->hdr[4];
            if (rd->msg_len == 0) {
                rd->have = 0; /* an empty Frame carries nothing */
                break;
            }
            rd->state = RD_PEEK;
            break;
        case RD_PEEK:
            rd->hdr[rd->have++] = p[off++];
            shape = peek_data(rd, &rd->data_left);
            if (shape < 0)
                break;
            if (shape == 1) {
                rd->state = RD_DATA;
                rd->have = 0;
                if (rd->data_left == 0)
                    rd->state = RD_HDR;
                break;
            }
            if (rd->msg_len > rd->max_msg) {
                r = TN_ERR_LIMIT;
                goto out;
            }
            if ((rd->msg = malloc(rd->msg_len)) == NULL) {
                r = -ENOMEM;
                goto out;
            }
            memcpy(rd->msg, rd->hdr + TN_GRPC_HDR, rd->have - TN_GRPC_HDR);
            rd->have -= TN_GRPC_HDR;
            rd->state = RD_MSG;
            /* the message may already be complete */
            /* fall through */
        case RD_MSG:
            k = rd->msg_len - rd->have;
            if (k > n - off)
                k = n - off;
            memcpy(rd->msg + rd->have, p + off, k);
            rd->have += k;
            off += k;
            if (rd->have < rd->msg_len)
                break;
            r = deliver_msg(rd, rd->msg, rd->msg_len);
            free(rd->msg);
            rd->msg = NULL;
            rd->have = 0;
            rd->state = RD_HDR;
            if (r != 0)
                goto out;
            break;
        case RD_DATA:
            k = rd->data_left < n - off ? rd->data_left : n - off;
            rd->is_msg_end = k == rd->data_left;
            if ((r = rd->on_data(rd->arg, p + off, k)) != 0)
                goto out;
            off += k;
            rd->data_left -= k;
            if (rd->data_left == 0)
                rd->state = RD_HDR;
            break;
        }
    }
out:
    *used = off;
    return r;
}

enum {
    METER_HDR,
    METER_TAG,
    METER_LEN,
    METER_BODY,
    METER_SKIP
};

uint64_t
tn_grpc_meter_feed(struct tn_grpc_meter *m, const uint8_t *p, size_t n)
{
    uint64_t payload = 0;
    size_t k;

    while (n > 0) {
        switch (m->state) {
        case METER_HDR:
            m->hdr[m->have++] = *p++;
            n--;
            if (m->have < TN_GRPC_HDR)
                break;
            m->have = 0;
            m->left = (uint32_t)m->hdr[1] << 24 | (uint32_t)m->hdr[2] << 16 |
                      (uint32_t)m->hdr[3] << 8 | m->hdr[4];
            m->state = m->left > 0 ? METER_TAG : METER_HDR;
            break;
        case METER_TAG: /* Frame.data is field 3, length-delimited: tag 0x1a */
            m->state = *p == 0x1a ? METER_LEN : METER_SKIP;
            m->field = 0;
            m->shift = 0;
            p++;
            n--;
            if (--m->left == 0)
                m->state = METER_HDR;
            break;
        case METER_LEN:
            if (m->shift < 63)
                m->field |= (uint64_t)(*p & 0x7f) << m->shift;
            m->shift += 7;
            m->state = *p & 0x80 ? METER_LEN : METER_BODY;
            p++;
            n--;
            if (--m->left == 0)
                m->state = METER_HDR;
            break;
        case METER_BODY:
        case METER_SKIP:
            k = n < m->left ? n : m->left;
            if (m->state == METER_BODY) {
                payload += k < m->field ? k : m->field;
                m->field -= k < m->field ? k : m->field;
            }
            p += k;
            n -= k;
            m->left -= (uint32_t)k;
            if (m->left == 0)
                m->state = METER_HDR;
            break;
        }
    }
    return payload;
}

void
tn_endpoint_set(Tunnel__V1__Endpoint *ep, const struct tn_ip *ip, unsigned port)
{
    tunnel__v1__endpoint__init(ep);
    ep->ip.data = TN_UNCONST(ip->bytes);
    ep->ip.len = ip->family == AF_INET ? 4 : 16;
    ep->port = port;
}

int
tn_endpoint_ip(const Tunnel__V1__Endpoint *ep, struct tn_ip *ip)
{
    memset(ip, 0, sizeof(*ip));
    if (ep == NULL || ep->port > 65535 || (ep->ip.len != 4 && ep->ip.len != 16))
        return TN_ERR_PROTO;
    ip->family = ep->ip.len == 4 ? AF_INET : AF_INET6;
    memcpy(ip->bytes, ep->ip.data, ep->ip.len);
    tn_ip_unmap(ip); /* then dialed as IPv4 */
    return 0;
}

int
tn_open_dst(const Tunnel__V1__Open *open, struct tn_ip *dst)
{
    if (tn_endpoint_ip(open->dst, dst) != 0 ||
        (open->protocol != TUNNEL__V1__PROTOCOL__PROTOCOL_TCP &&
         open->protocol != TUNNEL__V1__PROTOCOL__PROTOCOL_UDP &&
         open->protocol != TUNNEL__V1__PROTOCOL__PROTOCOL_ICMP) ||
        (open->dst->port == 0) != (open->protocol == TUNNEL__V1__PROTOCOL__PROTOCOL_ICMP))
        return TN_ERR_PROTO;
    return 0;
}
