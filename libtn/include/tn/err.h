/* SPDX-License-Identifier: MIT */
/* Error codes shared by every module: 0 is success, -errno a system failure, TN_ERR_* ours. */
#ifndef TN_ERR_H
#define TN_ERR_H

#include <stdbool.h>

enum {
    TN_ERR_PROTO = -1000,   /* the peer broke the wire protocol */
    TN_ERR_CONFIG = -1001,  /* a bad configuration value (already reported) */
    TN_ERR_TLS = -1002,     /* TLS handshake or certificate failure */
    TN_ERR_LIMIT = -1003,   /* a configured limit was hit */
    TN_ERR_SHORT = -1004,   /* input ends before the value it announces */
    TN_ERR_PARSE = -1005,   /* input is not of the expected form */
    TN_ERR_H2 = -1006,      /* nghttp2 refused an operation */
    TN_ERR_AUTH = -1007,    /* the peer's identity may not do this */
    TN_ERR_NO_ROUTE = -1008 /* no proxy serves the destination */
};

/* Names |r| (0, -errno or TN_ERR_*) in a static string. */
const char *tn_strerror(int r);

#endif
