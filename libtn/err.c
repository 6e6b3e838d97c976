/* SPDX-License-Identifier: MIT */
/* Names for error codes. */
#include "tn/err.h"

#include <string.h>

const char *
tn_strerror(int r)
{
    switch (r) {
    case 0:
        return "success";
    case TN_ERR_PROTO:
        return "protocol error";
    case TN_ERR_CONFIG:
        return "configuration error";
    case TN_ERR_TLS:
        return "TLS error";
    case TN_ERR_LIMIT:
        return "limit exceeded";
    case TN_ERR_SHORT:
        return "truncated input";
    case TN_ERR_PARSE:
        return "malformed input";
    case TN_ERR_H2:
        return "HTTP/2 error";
    case TN_ERR_AUTH:
        return "not authorized";
    case TN_ERR_NO_ROUTE:
        return "no route";
    }
    return r < 0 && r > -4096 ? strerror(-r) : "unknown error";
}
