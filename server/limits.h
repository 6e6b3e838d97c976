/* SPDX-License-Identifier: MIT */
/* The relay's per-identity limits and their option rows. */
#ifndef RELAY_LIMITS_H
#define RELAY_LIMITS_H

#include <stddef.h>

#include "tn/conf.h"

/* Rows for the limits: {...} members of struct relay_limits at member |m| of |T|. */
#define RELAY_OPTS_LIMITS(T, m)                                                                   \
    {                                                                                             \
        .key = "limits.handshake_timeout", .flag = "handshake-timeout", .type = TN_CONF_DURATION, \
        .offset = offsetof(T, m.handshake_timeout), .def = "10s", .metavar = "DURATION",          \
        .help = "close a connection whose TLS handshake takes longer", .min = 100, .max = 600000  \
    }

#endif
