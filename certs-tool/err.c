/* SPDX-License-Identifier: MIT */
/* One-line error and warning messages on stderr, with OpenSSL's reason where it has one. */
#include <stdarg.h>
#include <stdio.h>

#include <openssl/err.h>

#include "certs.h"

const char *ct_prog = "certs-tool";

static void vreport(const char *kind, const char *reason, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void
vreport(const char *kind, const char *reason, const char *fmt, va_list ap)
{
    fprintf(stderr, "%s: %s", ct_prog, kind);
    vfprintf(stderr, fmt, ap);
    if (reason != NULL)
        fprintf(stderr, ": %s", reason);
    fputc('\n', stderr);
}

void
ct_err(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport("", NULL, fmt, ap);
    va_end(ap);
}

void
ct_warn(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport("warning: ", NULL, fmt, ap);
    va_end(ap);
}

void
ct_err_ssl(const char *fmt, ...)
{
    /* The earliest error in the queue is the cause ("no start line", "key values mismatch");
     * the later ones only say which caller gave up. */
    unsigned long e = ERR_peek_error();
    const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;
    va_list ap;

    va_start(ap, fmt);
    vreport("", reason != NULL ? reason : "unknown OpenSSL error", fmt, ap);
    va_end(ap);
    ERR_clear_error();
}
