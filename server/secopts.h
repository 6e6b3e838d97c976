/* SPDX-License-Identifier: MIT */
/* The option rows of the relay's limits and revocation list (issue #7's settings). */
#ifndef RELAY_SECOPTS_H
#define RELAY_SECOPTS_H

#include <stddef.h>

#include "relay.h"
#include "tn/conf.h"

/* Rows for the limits: {...} members of struct relay_limits at member |m| of |T|. */
#define RELAY_OPTS_LIMITS(T, m)                                                                   \
    {                                                                                             \
        .key = "limits.handshake_timeout", .flag = "handshake-timeout", .type = TN_CONF_DURATION, \
        .offset = offsetof(T, m.handshake_timeout), .def = "10s", .metavar = "DURATION",          \
        .help = "close a connection whose TLS handshake takes longer", .min = 100, .max = 600000  \
    }

static const struct tn_conf_key relay_revoked_keys[] = {
    { .key = "serial",
      .type = TN_CONF_STR,
      .offset = offsetof(struct revoked_rule, serial),
      .is_required = true },
    { .key = "note", .type = TN_CONF_STR, .offset = offsetof(struct revoked_rule, note) },
    { 0 },
};

/* The row for revoked: [{serial, note}] at member |m| of |T| (a tn_conf_list). */
#define RELAY_OPTS_REVOKED(T, m)                                                                \
    {                                                                                           \
        .key = "revoked", .flag = "revoke", .type = TN_CONF_LIST, .offset = offsetof(T, m),     \
        .metavar = "serial=HEX[,note=TEXT]",                                                    \
        .help = "refuse the certificate of this serial (certs-tool show), and on SIGHUP close " \
                "its sessions",                                                                 \
        .sub = relay_revoked_keys, .elem_size = sizeof(struct revoked_rule)                     \
    }

#endif
