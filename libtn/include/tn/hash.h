/* SPDX-License-Identifier: MIT */
/* Hashes for flow ids and rendezvous (highest-random-weight) ranking. */
#ifndef TN_HASH_H
#define TN_HASH_H

#include <stddef.h>
#include <stdint.h>

struct tn_ip;

/* FNV-1a over |n| bytes: the flow id is this over protocol and 4-tuple. */
uint64_t tn_hash_bytes(const void *p, size_t n);

/* The rendezvous weight of member |member| (a hash of its identity) for key |key| (a flow id).
 * Each key goes to the member of highest weight: stable while the members stay, spread evenly,
 * and when a member leaves only the keys it held move. */
uint64_t tn_hash_hrw(uint64_t key, uint64_t member);

/* The flow id: a hash of protocol (IPPROTO_*) and 4-tuple, so every hop logs the same number. */
uint64_t tn_flow_id(int proto, const struct tn_ip *src, unsigned sport, const struct tn_ip *dst,
                    unsigned dport);

#endif
