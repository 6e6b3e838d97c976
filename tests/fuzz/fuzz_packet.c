/* SPDX-License-Identifier: MIT */
/* libFuzzer target for libtn/packet.c: any bytes may come from NFQUEUE.  The parser must never
 * read outside them, must name a reason for what it refuses, and what it accepts must survive
 * a rebuild (the reply builders) and a second parse unchanged. */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tn/packet.h"

#define CHECK(x)     \
    do {             \
        if (!(x))    \
            abort(); \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t out[TN_PKT_MAX];
    struct tn_pkt pkt, again;
    size_t n;
    int r = tn_pkt_parse(data, size, &pkt);

    CHECK(r >= 0 && r < TN_PKT_NREASONS);
    CHECK(strcmp(tn_pkt_reason(r), "unknown") != 0);
    if (r != TN_PKT_OK)
        return 0;
    CHECK(pkt.payload >= data && pkt.len <= size && pkt.payload + pkt.len <= data + size);
    CHECK(pkt.src.family == pkt.dst.family);
    if (pkt.proto == IPPROTO_UDP)
        n = tn_pkt_build_udp(out, sizeof(out), &pkt.src, pkt.sport, &pkt.dst, pkt.dport,
                             pkt.payload, pkt.len);
    else
        n = tn_pkt_build_icmp(out, sizeof(out), &pkt.src, &pkt.dst, pkt.payload, pkt.len,
                              pkt.sport);
    CHECK(n > 0);
    CHECK(tn_pkt_parse(out, n, &again) == TN_PKT_OK);
    CHECK(again.proto == pkt.proto && again.sport == pkt.sport && again.dport == pkt.dport);
    CHECK(memcmp(&again.src, &pkt.src, sizeof(pkt.src)) == 0);
    CHECK(memcmp(&again.dst, &pkt.dst, sizeof(pkt.dst)) == 0);
    CHECK(again.len == pkt.len);
    /* ICMP: the rebuilt message differs only in its checksum. */
    CHECK(memcmp(again.payload + (pkt.proto == IPPROTO_UDP ? 0 : 4),
                 pkt.payload + (pkt.proto == IPPROTO_UDP ? 0 : 4),
                 pkt.len - (pkt.proto == IPPROTO_UDP ? 0 : 4)) == 0);
    return 0;
}
