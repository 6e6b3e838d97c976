/* SPDX-License-Identifier: MIT */
/* Hashes for flow ids and rendezvous ranking. */
#include "tn/hash.h"

#include <string.h>
#include <sys/socket.h>

#include "tn/cidr.h"

uint64_t
tn_hash_bytes(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 0xcbf29ce484222325ULL;
    size_t i;

    for (i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

/* splitmix64's finaliser: every input bit affects every output bit, so weights of one key for
 * different members are independent enough to rank by. */
static uint64_t
mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

uint64_t
tn_hash_hrw(uint64_t key, uint64_t member)
{
    return mix64(key ^ mix64(member));
}

uint64_t
tn_flow_id(int proto, const struct tn_ip *src, unsigned sport, const struct tn_ip *dst,
           unsigned dport)
{
    uint8_t key[1 + 16 + 2 + 16 + 2];
    size_t alen = src->family == AF_INET ? 4 : 16, n = 0;

    key[n++] = (uint8_t)proto;
    memcpy(key + n, src->bytes, alen);
    n += alen;
    key[n++] = (uint8_t)(sport >> 8);
    key[n++] = (uint8_t)sport;
    memcpy(key + n, dst->bytes, alen);
    n += alen;
    key[n++] = (uint8_t)(dport >> 8);
    key[n++] = (uint8_t)dport;
    return tn_hash_bytes(key, n);
}
