/* SPDX-License-Identifier: MIT */
/* IPv4/IPv6 networks: strict parsing, membership tests and the host-bit mapping. */
#include "tn/cidr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tn/err.h"

/* The longest text accepted: a full IPv6 address with an IPv4 tail, then "/128". */
#define MAX_TEXT (TN_CIDR_STRLEN - 1)

static unsigned
family_bits(int family)
{
    return family == AF_INET ? 32 : 128;
}

/* The mask of the network bits of byte |i| in a |prefix|-bit network. */
static uint8_t
byte_mask(unsigned prefix, unsigned i)
{
    if (prefix >= 8 * (i + 1))
        return 0xff;
    if (prefix <= 8 * i)
        return 0;
    return (uint8_t)(0xff << (8 - (prefix - 8 * i)));
}

/* True when the first |bits| bits of |a| and |b| are equal. */
static bool
prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned whole = bits / 8;

    if (memcmp(a, b, whole) != 0)
        return false;
    return bits % 8 == 0 || ((a[whole] ^ b[whole]) & byte_mask(bits, whole)) == 0;
}

/* Reads a prefix length: 1 to 3 decimal digits, no sign, no leading zero, at most |max|. */
static int
parse_prefix(const char *s, unsigned max, unsigned *out)
{
    unsigned v = 0;
    size_t n;

    for (n = 0; s[n] >= '0' && s[n] <= '9'; n++) {
        if (n == 3)
            return TN_ERR_PARSE;
        v = v * 10 + (unsigned)(s[n] - '0');
    }
    if (n == 0 || s[n] != '\0' || (n > 1 && s[0] == '0') || v > max)
        return TN_ERR_PARSE;
    *out = v;
    return 0;
}

void
tn_ip_unmap(struct tn_ip *ip)
{
    static const uint8_t v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

    if (ip->family == AF_INET6 && memcmp(ip->bytes, v4_mapped, sizeof(v4_mapped)) == 0) {
        ip->family = AF_INET;
        memmove(ip->bytes, ip->bytes + 12, 4);
        memset(ip->bytes + 4, 0, 12);
    }
}

int
tn_ip_parse(struct tn_ip *out, const char *s)
{
    memset(out, 0, sizeof(*out));
    /* inet_pton only sees strings that fit in its own buffers. */
    if (strnlen(s, INET6_ADDRSTRLEN) >= INET6_ADDRSTRLEN)
        return TN_ERR_PARSE;
    if (inet_pton(AF_INET, s, out->bytes) == 1) {
        out->family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, s, out->bytes) == 1) {
        out->family = AF_INET6;
        return 0;
    }
    memset(out, 0, sizeof(*out));
    return TN_ERR_PARSE;
}

int
tn_cidr_parse(struct tn_cidr *out, const char *s)
{
    char addr[INET6_ADDRSTRLEN];
    const char *slash;
    struct tn_cidr c;
    unsigned prefix, i;
    size_t len, alen;
    int r = TN_ERR_PARSE;

    memset(out, 0, sizeof(*out));
    len = strnlen(s, MAX_TEXT + 1);
    if (len == 0 || len > MAX_TEXT)
        goto out;
    slash = memchr(s, '/', len);
    alen = slash != NULL ? (size_t)(slash - s) : len;
    if (alen >= sizeof(addr))
        goto out;
    memcpy(addr, s, alen);
    addr[alen] = '\0';
    if (tn_ip_parse(&c.ip, addr) != 0)
        goto out;
    prefix = family_bits(c.ip.family);
    if (slash != NULL && parse_prefix(slash + 1, family_bits(c.ip.family), &prefix) != 0)
        goto out;
    c.prefix = (uint8_t)prefix;
    /* "10.0.0.1/8" is rejected rather than masked: it is almost always a typo for a host or a
     * different network, and silently widening it would route the wrong addresses. */
    for (i = 0; i < 16; i++) {
        if ((c.ip.bytes[i] & (uint8_t)~byte_mask(prefix, i)) != 0)
            goto out;
    }
    *out = c;
    r = 0;
out:
    return r;
}

bool
tn_cidr_contains(const struct tn_cidr *c, const struct tn_ip *ip)
{
    return c->ip.family == ip->family && prefix_equal(c->ip.bytes, ip->bytes, c->prefix);
}

bool
tn_cidr_overlaps(const struct tn_cidr *a, const struct tn_cidr *b)
{
    unsigned bits = a->prefix < b->prefix ? a->prefix : b->prefix;

    /* Two networks overlap exactly when the shorter one contains the longer one. */
    return a->ip.family == b->ip.family && prefix_equal(a->ip.bytes, b->ip.bytes, bits);
}

int
tn_cidr_map(const struct tn_cidr *from, const struct tn_cidr *to, const struct tn_ip *ip,
            struct tn_ip *out)
{
    unsigned i;

    memset(out, 0, sizeof(*out));
    if (from->ip.family != to->ip.family || from->prefix != to->prefix ||
        !tn_cidr_contains(from, ip))
        return TN_ERR_PARSE;
    out->family = to->ip.family;
    for (i = 0; i < 16; i++) {
        uint8_t m = byte_mask(from->prefix, i);
        out->bytes[i] = (uint8_t)((to->ip.bytes[i] & m) | (ip->bytes[i] & ~m));
    }
    if (out->family == AF_INET)
        memset(out->bytes + 4, 0, 12);
    return 0;
}

char *
tn_ip_format(const struct tn_ip *ip, char *buf, size_t len)
{
    char tmp[INET6_ADDRSTRLEN];

    if ((ip->family != AF_INET && ip->family != AF_INET6) ||
        inet_ntop(ip->family, ip->bytes, tmp, sizeof(tmp)) == NULL)
        snprintf(buf, len, "(none)");
    else
        snprintf(buf, len, "%s", tmp);
    return buf;
}

char *
tn_cidr_format(const struct tn_cidr *c, char *buf, size_t len)
{
    char tmp[INET6_ADDRSTRLEN];

    if ((c->ip.family != AF_INET && c->ip.family != AF_INET6) ||
        inet_ntop(c->ip.family, c->ip.bytes, tmp, sizeof(tmp)) == NULL)
        snprintf(buf, len, "(none)");
    else
        snprintf(buf, len, "%s/%u", tmp, (unsigned)c->prefix);
    return buf;
}

int
tn_cidr_list_add(struct tn_cidr_list *l, const struct tn_cidr *c)
{
    struct tn_cidr *v;
    size_t cap;

    /* The list keeps no capacity field: built only by this function, its capacity is n rounded
     * up to a power of two, so it is full exactly when n is zero or a power of two. */
    if ((l->n & (l->n - 1)) == 0) {
        if (l->n > SIZE_MAX / 2 / sizeof(*v))
            return -ENOMEM;
        cap = l->n == 0 ? 1 : 2 * l->n;
        if ((v = realloc(l->v, cap * sizeof(*v))) == NULL)
            return -ENOMEM;
        l->v = v;
    }
    l->v[l->n++] = *c;
    return 0;
}

void
tn_cidr_list_fini(struct tn_cidr_list *l)
{
    free(l->v);
    l->v = NULL;
    l->n = 0;
}
