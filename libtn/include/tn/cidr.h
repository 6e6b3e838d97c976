/* SPDX-License-Identifier: MIT */
/* IPv4/IPv6 networks: parsing, membership and the virtual -> real host-bit mapping. */
#ifndef TN_CIDR_H
#define TN_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An address of either family; |family| is AF_INET (4 bytes used) or AF_INET6. */
struct tn_ip {
    int family;
    uint8_t bytes[16];
};

struct tn_cidr {
    struct tn_ip ip; /* the network address: host bits are zero */
    uint8_t prefix;  /* 0-32 or 0-128 */
};

struct tn_cidr_list {
    struct tn_cidr *v;
    size_t n;
};

#define TN_CIDR_STRLEN 50 /* "ffff:...:ffff/128" and a NUL */

/* Parses "a.b.c.d/n", "x:y::/n" or a bare address (a /32 or /128 host).  A network with host
 * bits set is rejected (it is almost always a typo).  Returns 0 or TN_ERR_PARSE. */
int tn_cidr_parse(struct tn_cidr *out, const char *s);

/* Parses a bare IPv4 or IPv6 address.  Returns 0 or TN_ERR_PARSE. */
int tn_ip_parse(struct tn_ip *out, const char *s);

/* An IPv4-mapped IPv6 address (::ffff:a.b.c.d) becomes the IPv4 address it stands for, as it
 * is to the kernel: as IPv6 it would pass checks against IPv6 networks (::/0 takes them all)
 * and miss those against IPv4 ones.  Any other address is left as it is. */
void tn_ip_unmap(struct tn_ip *ip);

bool tn_cidr_contains(const struct tn_cidr *c, const struct tn_ip *ip);

/* True when |a| and |b| share at least one address. */
bool tn_cidr_overlaps(const struct tn_cidr *a, const struct tn_cidr *b);

/* Keeps the host bits of |ip| (which must lie in |from|) and puts them under |to|: with
 * from 100.64.1.0/24 and to 192.168.1.0/24, 100.64.1.5 becomes 192.168.1.5.  |from| and |to|
 * must have the same family and prefix.  Returns 0 or TN_ERR_PARSE when they do not or |ip| is
 * outside |from|. */
int tn_cidr_map(const struct tn_cidr *from, const struct tn_cidr *to, const struct tn_ip *ip,
                struct tn_ip *out);

/* Writes "a.b.c.d/n" into |buf| (at least TN_CIDR_STRLEN bytes) and returns |buf|. */
char *tn_cidr_format(const struct tn_cidr *c, char *buf, size_t len);
/* Writes the bare address into |buf| (at least TN_CIDR_STRLEN bytes) and returns |buf|. */
char *tn_ip_format(const struct tn_ip *ip, char *buf, size_t len);

/* Appends a copy of |c|.  Returns 0 or -ENOMEM. */
int tn_cidr_list_add(struct tn_cidr_list *l, const struct tn_cidr *c);
void tn_cidr_list_fini(struct tn_cidr_list *l);

#endif
