/* SPDX-License-Identifier: MIT */
/* Longest-prefix match: one path-compressed binary trie per address family. */
#include "tn/lpm.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tn/cidr.h"

/*
 * A plain binary trie spends one node per bit, so each IPv6 route would cost up to 128 nodes.
 * Here a node stands for a whole prefix and only exists where a route ends or two routes part
 * ways, so the trie holds fewer than two nodes per route and a lookup visits at most one node
 * per distinct prefix length on its path.
 *
 * Invariants: a node's key has no bits set beyond |plen|; every child's prefix extends its
 * parent's, and child[b] continues with bit |plen| equal to b; a node without a value (a
 * branching node) always has two children.
 */
struct node {
    struct node *child[2];
    void *value; /* NULL: a branching node */
    uint8_t plen;
    uint8_t key[16];
};

struct tn_lpm {
    struct node *root[2]; /* IPv4, IPv6 */
};

/* Bit |i| of |key|, counting from the most significant bit of the first byte. */
static unsigned
bit(const uint8_t *key, unsigned i)
{
    return (key[i / 8] >> (7 - i % 8)) & 1;
}

/* How many leading bits |a| and |b| share, at most |max|. */
static unsigned
common_bits(const uint8_t *a, const uint8_t *b, unsigned max)
{
    unsigned n = 0, i;

    for (i = 0; n < max; i++) {
        unsigned x = a[i] ^ b[i];

        if (x != 0) {
            n += (unsigned)__builtin_clz(x) - (8 * sizeof(unsigned) - 8);
            break;
        }
        n += 8;
    }
    return n < max ? n : max;
}

static bool
has_prefix(const uint8_t *key, const struct node *n)
{
    return common_bits(key, n->key, n->plen) == n->plen;
}

/* Copies the first |plen| bits of |src| into |dst| and clears the rest. */
static void
mask_key(uint8_t *dst, const uint8_t *src, unsigned plen)
{
    unsigned whole = plen / 8;

    memset(dst, 0, 16);
    memcpy(dst, src, whole);
    if (plen % 8 != 0)
        dst[whole] = (uint8_t)(src[whole] & (0xff << (8 - plen % 8)));
}

/* The index of |family|'s trie, with its address length in |*bits|, or -1 for another family. */
static int
family_index(int family, unsigned *bits)
{
    *bits = family == AF_INET ? 32 : 128;
    return family == AF_INET ? 0 : family == AF_INET6 ? 1 : -1;
}

static struct node *
node_new(const uint8_t *key, unsigned plen, void *value)
{
    struct node *n;

    if ((n = calloc(1, sizeof(*n))) == NULL)
        return NULL;
    mask_key(n->key, key, plen);
    n->plen = (uint8_t)plen;
    n->value = value;
    return n;
}

static void
free_nodes(struct node *n)
{
    if (n == NULL)
        return;
    free_nodes(n->child[0]);
    free_nodes(n->child[1]);
    free(n);
}

struct tn_lpm *
tn_lpm_new(void)
{
    return calloc(1, sizeof(struct tn_lpm));
}

void
tn_lpm_free(struct tn_lpm *t)
{
    if (t == NULL)
        return;
    free_nodes(t->root[0]);
    free_nodes(t->root[1]);
    free(t);
}

int
tn_lpm_insert(struct tn_lpm *t, const struct tn_cidr *c, void *value)
{
    struct node **link, *n, *leaf = NULL, *fork;
    unsigned bits, plen = c->prefix, common;
    int r = -EINVAL, fam = family_index(c->ip.family, &bits);
    uint8_t key[16];

    if (value == NULL || fam < 0 || plen > bits)
        goto out;
    link = &t->root[fam];
    mask_key(key, c->ip.bytes, plen);
    r = -ENOMEM;
    if ((leaf = node_new(key, plen, value)) == NULL)
        goto out;
    while ((n = *link) != NULL) {
        common = common_bits(key, n->key, plen < n->plen ? plen : n->plen);
        if (common == n->plen) {
            if (plen == n->plen) {
                r = -EEXIST;
                if (n->value != NULL)
                    goto out;
                n->value = value; /* a branching node becomes a route */
                r = 0;
                goto out;
            }
            link = &n->child[bit(key, n->plen)];
            continue;
        }
        if (common == plen) {
            /* The new network contains |n|: it goes above it. */
            leaf->child[bit(n->key, plen)] = n;
            *link = leaf;
            leaf = NULL; /* transferred */
            r = 0;
            goto out;
        }
        /* The two part ways at bit |common|: a branching node holds both. */
        if ((fork = node_new(key, common, NULL)) == NULL)
            goto out;
        fork->child[bit(key, common)] = leaf;
        fork->child[bit(n->key, common)] = n;
        *link = fork;
        leaf = NULL; /* transferred */
        r = 0;
        goto out;
    }
    *link = leaf;
    leaf = NULL; /* transferred */
    r = 0;
out:
    free(leaf);
    return r;
}

void *
tn_lpm_remove(struct tn_lpm *t, const struct tn_cidr *c)
{
    struct node **link, **parent_link = NULL, *n, *parent, *child;
    unsigned bits, plen = c->prefix;
    int fam = family_index(c->ip.family, &bits);
    uint8_t key[16];
    void *value;

    if (fam < 0 || plen > bits)
        return NULL;
    link = &t->root[fam];
    mask_key(key, c->ip.bytes, plen);
    while ((n = *link) != NULL && n->plen < plen && has_prefix(key, n)) {
        parent_link = link;
        link = &n->child[bit(key, n->plen)];
    }
    if (n == NULL || n->plen != plen || !has_prefix(key, n) || n->value == NULL)
        return NULL;
    value = n->value;
    n->value = NULL;
    if (n->child[0] != NULL && n->child[1] != NULL)
        return value; /* still needed to branch */
    child = n->child[0] != NULL ? n->child[0] : n->child[1];
    *link = child;
    free(n);
    /* A leaf went away: its parent may now be a branching node with a single child. */
    if (child == NULL && parent_link != NULL) {
        parent = *parent_link;
        if (parent->value == NULL) {
            *parent_link = parent->child[0] != NULL ? parent->child[0] : parent->child[1];
            free(parent);
        }
    }
    return value;
}

void *
tn_lpm_get(const struct tn_lpm *t, const struct tn_cidr *c)
{
    unsigned bits, plen = c->prefix;
    int fam = family_index(c->ip.family, &bits);
    const struct node *n;
    uint8_t key[16];

    if (fam < 0 || plen > bits)
        return NULL;
    mask_key(key, c->ip.bytes, plen);
    for (n = t->root[fam]; n != NULL && n->plen < plen && has_prefix(key, n);)
        n = n->child[bit(key, n->plen)];
    if (n == NULL || n->plen != plen || !has_prefix(key, n))
        return NULL;
    return n->value;
}

void *
tn_lpm_lookup(const struct tn_lpm *t, const struct tn_ip *ip)
{
    unsigned bits;
    int fam = family_index(ip->family, &bits);
    const struct node *n;
    void *best = NULL;

    if (fam < 0)
        return NULL;
    for (n = t->root[fam]; n != NULL && has_prefix(ip->bytes, n);) {
        if (n->value != NULL)
            best = n->value;
        if (n->plen == bits)
            break;
        n = n->child[bit(ip->bytes, n->plen)];
    }
    return best;
}

size_t
tn_lpm_lookup_all(const struct tn_lpm *t, const struct tn_ip *ip, void **out, size_t max)
{
    void *found[129]; /* at most one route per prefix length */
    size_t count = 0, i;
    unsigned bits;
    int fam = family_index(ip->family, &bits);
    const struct node *n;

    if (fam < 0)
        return 0;
    for (n = t->root[fam]; n != NULL && has_prefix(ip->bytes, n);) {
        if (n->value != NULL)
            found[count++] = n->value;
        if (n->plen == bits)
            break;
        n = n->child[bit(ip->bytes, n->plen)];
    }
    /* The walk meets the shortest network first. */
    for (i = 0; i < count && i < max; i++)
        out[i] = found[count - 1 - i];
    return count;
}
