/* SPDX-License-Identifier: MIT */
/* IPv4/IPv6 UDP and ICMP echo: parsing what NFQUEUE hands us, building what we inject.
 * Every length is checked against the bytes present before it is used. */
#include "tn/packet.h"

#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#define ICMP4_ECHO_REQUEST 8
#define ICMP6_ECHO_REQUEST 128
#define ICMP_ECHO_HDR      8 /* type, code, checksum, identifier, sequence */
#define IP4_MF             0x2000
#define IP4_OFFSET         0x1fff

static unsigned
get16(const uint8_t *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

static void
put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* The transport header after the IP header: |p| holds exactly the IP payload. */
static int
parse_transport(int proto, const uint8_t *p, size_t n, struct tn_pkt *out)
{
    size_t ulen;

    out->proto = proto;
    if (proto == IPPROTO_UDP) {
        if (n < TN_PKT_UDP_HDR)
            return TN_PKT_TRUNCATED;
        ulen = get16(p + 4);
        if (ulen < TN_PKT_UDP_HDR || ulen > n)
            return TN_PKT_BAD_LENGTH;
        out->sport = get16(p);
        out->dport = get16(p + 2);
        if (out->dport == 0)
            return TN_PKT_BAD_HEADER;
        out->payload = p + TN_PKT_UDP_HDR;
        out->len = ulen - TN_PKT_UDP_HDR;
        return TN_PKT_OK;
    }
    /* ICMP in IPv4, ICMPv6 in IPv6: never the other way round. */
    if (proto == (out->src.family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6)) {
        if (n < ICMP_ECHO_HDR)
            return TN_PKT_TRUNCATED;
        if (p[0] != (proto == IPPROTO_ICMP ? ICMP4_ECHO_REQUEST : ICMP6_ECHO_REQUEST) || p[1] != 0)
            return TN_PKT_UNSUPPORTED;
        out->sport = get16(p + 4);
        out->dport = 0;
        out->payload = p;
        out->len = n;
        return TN_PKT_OK;
    }
    return TN_PKT_UNSUPPORTED;
}

static int
parse_ip4(const uint8_t *p, size_t n, struct tn_pkt *out)
{
    size_t hl, total;
    unsigned frag;

    if (n < TN_PKT_IP4_HDR)
        return TN_PKT_TRUNCATED;
    hl = (size_t)(p[0] & 0x0f) * 4;
    if (hl < TN_PKT_IP4_HDR)
        return TN_PKT_BAD_HEADER;
    total = get16(p + 2);
    if (total < hl)
        return TN_PKT_BAD_LENGTH;
    if (total > n || hl > n)
        return TN_PKT_TRUNCATED;
    frag = get16(p + 6);
    if ((frag & (IP4_MF | IP4_OFFSET)) != 0)
        return TN_PKT_FRAGMENT;
    out->src.family = out->dst.family = AF_INET;
    memcpy(out->src.bytes, p + 12, 4);
    memcpy(out->dst.bytes, p + 16, 4);
    return parse_transport(p[9], p + hl, total - hl, out);
}

static int
parse_ip6(const uint8_t *p, size_t n, struct tn_pkt *out)
{
    size_t plen;

    if (n < TN_PKT_IP6_HDR)
        return TN_PKT_TRUNCATED;
    plen = get16(p + 4);
    if (plen == 0)
        return TN_PKT_UNSUPPORTED; /* a jumbogram, or a hop-by-hop header we do not read */
    if (plen > n - TN_PKT_IP6_HDR)
        return TN_PKT_TRUNCATED;
    out->src.family = out->dst.family = AF_INET6;
    memcpy(out->src.bytes, p + 8, 16);
    memcpy(out->dst.bytes, p + 24, 16);
    if (p[6] == 44) /* the fragment header */
        return TN_PKT_FRAGMENT;
    return parse_transport(p[6], p + TN_PKT_IP6_HDR, plen, out);
}

int
tn_pkt_parse(const uint8_t *p, size_t n, struct tn_pkt *out)
{
    memset(out, 0, sizeof(*out));
    if (n < 1)
        return TN_PKT_TRUNCATED;
    switch (p[0] >> 4) {
    case 4:
        return parse_ip4(p, n, out);
    case 6:
        return parse_ip6(p, n, out);
    default:
        return TN_PKT_BAD_HEADER;
    }
}

const char *
tn_pkt_reason(int reason)
{
    static const char *const names[TN_PKT_NREASONS] = {
        [TN_PKT_OK] = "ok",
        [TN_PKT_TRUNCATED] = "truncated",
        [TN_PKT_BAD_HEADER] = "bad header",
        [TN_PKT_BAD_LENGTH] = "bad length",
        [TN_PKT_FRAGMENT] = "fragment",
        [TN_PKT_UNSUPPORTED] = "unsupported",
    };

    return reason >= 0 && reason < TN_PKT_NREASONS ? names[reason] : "unknown";
}

/* ---- building ---------------------------------------------------------------------------- */

/* The one's complement sum of |n| bytes, added to |sum|. */
static uint32_t
sum_bytes(uint32_t sum, const uint8_t *p, size_t n)
{
    size_t i;

    for (i = 0; i + 1 < n; i += 2)
        sum += get16(p + i);
    if (n & 1)
        sum += (uint32_t)p[n - 1] << 8;
    return sum;
}

static unsigned
sum_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return ~sum & 0xffff;
}

static size_t
addr_len(const struct tn_ip *ip)
{
    return ip->family == AF_INET ? 4 : 16;
}

/* The most payload an IP packet from |src|'s family can carry: IPv4's length field counts its
 * header too, IPv6's does not. */
static size_t
ip_payload_max(const struct tn_ip *src)
{
    return src->family == AF_INET ? 65535 - TN_PKT_IP4_HDR : 65535;
}

/* Writes the IP header for |plen| bytes of |proto| payload.  Returns the header's length. */
static size_t
put_ip(uint8_t *out, const struct tn_ip *src, const struct tn_ip *dst, int proto, size_t plen)
{
    if (src->family == AF_INET) {
        memset(out, 0, TN_PKT_IP4_HDR);
        out[0] = 0x45;
        put16(out + 2, (unsigned)(TN_PKT_IP4_HDR + plen));
        out[8] = 64;
        out[9] = (uint8_t)proto;
        memcpy(out + 12, src->bytes, 4);
        memcpy(out + 16, dst->bytes, 4);
        put16(out + 10, sum_fold(sum_bytes(0, out, TN_PKT_IP4_HDR)));
        return TN_PKT_IP4_HDR;
    }
    memset(out, 0, TN_PKT_IP6_HDR);
    out[0] = 0x60;
    put16(out + 4, (unsigned)plen);
    out[6] = (uint8_t)proto;
    out[7] = 64;
    memcpy(out + 8, src->bytes, 16);
    memcpy(out + 24, dst->bytes, 16);
    return TN_PKT_IP6_HDR;
}

/* The pseudo-header's part of a transport checksum. */
static uint32_t
sum_pseudo(const struct tn_ip *src, const struct tn_ip *dst, int proto, size_t len)
{
    uint32_t sum = sum_bytes(0, src->bytes, addr_len(src));

    sum = sum_bytes(sum, dst->bytes, addr_len(dst));
    return sum + (uint32_t)proto + (uint32_t)(len >> 16) + (uint32_t)(len & 0xffff);
}

size_t
tn_pkt_build_udp(uint8_t *out, size_t cap, const struct tn_ip *src, unsigned sport,
                 const struct tn_ip *dst, unsigned dport, const uint8_t *payload, size_t len)
{
    size_t hl = src->family == AF_INET ? TN_PKT_IP4_HDR : TN_PKT_IP6_HDR;
    size_t ulen = TN_PKT_UDP_HDR + len;
    unsigned sum;
    uint8_t *u;

    if (src->family != dst->family || ulen > ip_payload_max(src) || hl + ulen > cap)
        return 0;
    put_ip(out, src, dst, IPPROTO_UDP, ulen);
    u = out + hl;
    put16(u, sport);
    put16(u + 2, dport);
    put16(u + 4, (unsigned)ulen);
    put16(u + 6, 0);
    memcpy(u + TN_PKT_UDP_HDR, payload, len);
    sum = sum_fold(sum_bytes(sum_pseudo(src, dst, IPPROTO_UDP, ulen), u, ulen));
    put16(u + 6, sum == 0 ? 0xffff : sum); /* 0 would mean "no checksum" */
    return hl + ulen;
}

bool
tn_icmp_is_echo_request(int family, const uint8_t *p, size_t n)
{
    return n >= ICMP_ECHO_HDR && p[0] == (family == AF_INET ? 8 : 128) && p[1] == 0;
}

size_t
tn_pkt_build_icmp(uint8_t *out, size_t cap, const struct tn_ip *src, const struct tn_ip *dst,
                  const uint8_t *icmp, size_t len, unsigned id)
{
    size_t hl = src->family == AF_INET ? TN_PKT_IP4_HDR : TN_PKT_IP6_HDR;
    int proto = src->family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6;
    uint32_t sum;
    uint8_t *m;

    if (src->family != dst->family || len < ICMP_ECHO_HDR || len > ip_payload_max(src) ||
        hl + len > cap)
        return 0;
    put_ip(out, src, dst, proto, len);
    m = out + hl;
    memcpy(m, icmp, len);
    put16(m + 2, 0);
    put16(m + 4, id);
    sum = proto == IPPROTO_ICMPV6 ? sum_pseudo(src, dst, proto, len) : 0;
    put16(m + 2, sum_fold(sum_bytes(sum, m, len)));
    return hl + len;
}

size_t
tn_pkt_fragment4(const uint8_t *pkt, size_t len, size_t mtu, unsigned id, size_t *off, uint8_t *out)
{
    size_t plen = len - TN_PKT_IP4_HDR, n = (mtu - TN_PKT_IP4_HDR) & ~(size_t)7;
    unsigned frag;

    if (mtu < TN_PKT_IP4_HDR + 8 || len <= TN_PKT_IP4_HDR || *off >= plen)
        return 0;
    if (n > plen - *off)
        n = plen - *off; /* the last one */
    frag = (unsigned)(*off / 8) | (*off + n < plen ? IP4_MF : 0);
    memcpy(out, pkt, TN_PKT_IP4_HDR);
    memcpy(out + TN_PKT_IP4_HDR, pkt + TN_PKT_IP4_HDR + *off, n);
    put16(out + 2, (unsigned)(TN_PKT_IP4_HDR + n));
    put16(out + 4, id & 0xffff);
    put16(out + 6, frag);
    put16(out + 10, 0);
    put16(out + 10, sum_fold(sum_bytes(0, out, TN_PKT_IP4_HDR)));
    *off += n;
    return TN_PKT_IP4_HDR + n;
}
