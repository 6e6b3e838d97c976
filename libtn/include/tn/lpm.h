/* SPDX-License-Identifier: MIT */
/* Longest-prefix-match table from networks (both families) to opaque values. */
#ifndef TN_LPM_H
#define TN_LPM_H

#include <stddef.h>

struct tn_cidr;
struct tn_ip;
struct tn_lpm;

struct tn_lpm *tn_lpm_new(void);
/* Frees the table, not the values. */
void tn_lpm_free(struct tn_lpm *t);

/* Adds |c| -> |value| (not NULL).  Host bits of |c| are ignored.  Returns 0, -EEXIST when |c| is
 * already there, -ENOMEM, or -EINVAL for a NULL |value| or a prefix too long for the family. */
int tn_lpm_insert(struct tn_lpm *t, const struct tn_cidr *c, void *value);
/* Removes |c| and returns its value, or NULL when it is not in the table. */
void *tn_lpm_remove(struct tn_lpm *t, const struct tn_cidr *c);
/* The value stored for exactly |c|, or NULL. */
void *tn_lpm_get(const struct tn_lpm *t, const struct tn_cidr *c);
/* The value of the longest network containing |ip|, or NULL. */
void *tn_lpm_lookup(const struct tn_lpm *t, const struct tn_ip *ip);
/* Fills |out| with the values of up to |max| networks containing |ip|, longest first, and
 * returns how many there are in all (which may exceed |max|). */
size_t tn_lpm_lookup_all(const struct tn_lpm *t, const struct tn_ip *ip, void **out, size_t max);

#endif
