/* SPDX-License-Identifier: MIT */
/* Addresses and prefixes from their text, for tests that build them from literals: a literal
 * that does not parse fails the test where it is used. */
#ifndef TN_TEST_PARSE_HELPERS_H
#define TN_TEST_PARSE_HELPERS_H

#include "tn/cidr.h"

static inline struct tn_cidr
cidr(const char *s)
{
    struct tn_cidr c;

    assert_int_equal(tn_cidr_parse(&c, s), 0);
    return c;
}

static inline struct tn_ip
ip(const char *s)
{
    struct tn_ip a;

    assert_int_equal(tn_ip_parse(&a, s), 0);
    return a;
}

#endif
