/* SPDX-License-Identifier: MIT */
/* IP packets the client takes from NFQUEUE and injects back: a pure parser of IPv4/IPv6 UDP
 * datagrams and ICMP echo requests (no state, no allocation: it is fuzzed), and builders of
 * the replies, checksums included. */
#ifndef TN_PACKET_H
#define TN_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tn/cidr.h"

/* Why a packet is not carried; the client counts each kind. */
enum {
    TN_PKT_OK = 0,
    TN_PKT_TRUNCATED,   /* shorter than a header, or than the length a header announces */
    TN_PKT_BAD_HEADER,  /* not IPv4/IPv6, a header length below the minimum */
    TN_PKT_BAD_LENGTH,  /* a length field that contradicts another */
    TN_PKT_FRAGMENT,    /* a fragment: we carry whole datagrams only */
    TN_PKT_UNSUPPORTED, /* another protocol, an ICMP other than echo request, IPv6 options */
    TN_PKT_NREASONS
};

#define TN_PKT_IP4_HDR 20
#define TN_PKT_IP6_HDR 40
#define TN_PKT_UDP_HDR 8
#define TN_PKT_MAX     (TN_PKT_IP6_HDR + TN_PKT_UDP_HDR + 65535)

struct tn_pkt {
    int proto; /* IPPROTO_UDP, IPPROTO_ICMP or IPPROTO_ICMPV6 */
    struct tn_ip src, dst;
    unsigned sport, dport;  /* UDP ports; for ICMP the echo identifier and 0 */
    const uint8_t *payload; /* UDP: the payload; ICMP: the whole echo request message */
    size_t len;
};

/* Parses the IPv4 or IPv6 packet |p| of |n| bytes into |out| (which points into |p|).
 * Returns TN_PKT_OK or the reason it is not carried. */
int tn_pkt_parse(const uint8_t *p, size_t n, struct tn_pkt *out);
/* "truncated", "bad header", ...: names a TN_PKT_* reason. */
const char *tn_pkt_reason(int reason);

/* Writes an IP/UDP packet from |src|:|sport| to |dst|:|dport| (same family) carrying |len|
 * bytes, checksums included, into |out|.  Returns its length, or 0 when |cap| is too small. */
size_t tn_pkt_build_udp(uint8_t *out, size_t cap, const struct tn_ip *src, unsigned sport,
                        const struct tn_ip *dst, unsigned dport, const uint8_t *payload,
                        size_t len);
/* Whether the ICMP (|family| AF_INET) or ICMPv6 message |p| is an echo request (type 8 or 128,
 * code 0, a whole echo header): the only kind a proxy sends for a client. */
bool tn_icmp_is_echo_request(int family, const uint8_t *p, size_t n);
/* Writes an IP packet from |src| to |dst| carrying the ICMP (ICMPv6 for IPv6) message |icmp|
 * with its echo identifier set to |id| and its checksum recomputed.  Returns its length, or 0
 * when |cap| is too small or |len| is shorter than an echo header. */
size_t tn_pkt_build_icmp(uint8_t *out, size_t cap, const struct tn_ip *src, const struct tn_ip *dst,
                         const uint8_t *icmp, size_t len, unsigned id);

/* The fragment of the IPv4 packet |pkt| (|len| bytes, a 20-byte header as the builders write)
 * that starts |*off| bytes into its payload, at most |mtu| bytes long, with IP id |id|, into
 * |out| (|mtu| bytes); |*off| moves past it.  Returns its length, or 0 once the payload is all
 * out (or |mtu| leaves no room).  A header-included raw socket does not fragment: the caller
 * does, for a reply larger than the link's MTU. */
size_t tn_pkt_fragment4(const uint8_t *pkt, size_t len, size_t mtu, unsigned id, size_t *off,
                        uint8_t *out);

#endif
