/* SPDX-License-Identifier: MIT */
/* Small certificate helpers that the programs (libtn) and certs-tool (which needs only OpenSSL)
 * share: header only, so certs-tool takes nothing else of libtn. */
#ifndef TN_CERTUTIL_H
#define TN_CERTUTIL_H

#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include <openssl/asn1.h>

/* A pem_password_cb that never prompts (on a terminal, OpenSSL's default would): the programs
 * and certs-tool run unattended, and a prompt would stop a daemon's loop.  Sets the bool that
 * |was_asked| points to, so the caller can say the key is encrypted. */
static inline int
tn_no_passphrase(char *buf, int size, int rwflag, void *was_asked)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    *(bool *)was_asked = true;
    return -1;
}

/* |t| as 2026-01-02T03:04:05Z in |buf| (of |size| bytes; "?" when it cannot be read). */
static inline char *
tn_asn1_time_str(const ASN1_TIME *t, char *buf, size_t size)
{
    struct tm tm;

    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1 ||
        strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, size, "?");
    return buf;
}

#endif
