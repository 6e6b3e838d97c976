/* SPDX-License-Identifier: MIT */
/* The option rows of the relay's limits and revocation list (issue #7's settings). */
#ifndef RELAY_SECOPTS_H
#define RELAY_SECOPTS_H

#include <stddef.h>

#include "relay.h"
#include "tn/conf.h"

/* Rows for the limits: {...} members of struct relay_limits at member |m| of |T|. */
#define RELAY_OPTS_LIMITS(T, m)                                                               \
    { .key = "limits.handshake_timeout",                                                      \
      .flag = "handshake-timeout",                                                            \
      .type = TN_CONF_DURATION,                                                               \
      .offset = offsetof(T, m.handshake_timeout),                                             \
      .def = "10s",                                                                           \
      .metavar = "DURATION",                                                                  \
      .help = "close a connection whose TLS handshake takes longer",                          \
      .min = 100,                                                                             \
      .max = 600000 },                                                                        \
        { .key = "limits.max_header_list",                                                    \
          .flag = "max-header-list",                                                          \
          .type = TN_CONF_SIZE,                                                               \
          .offset = offsetof(T, m.max_header_list),                                           \
          .def = "16KiB",                                                                     \
          .metavar = "SIZE",                                                                  \
          .help = "headers of one request (a larger one is reset, the connection goes on)",   \
          .min = 1024,                                                                        \
          .max = 1048576 },                                                                   \
        { .key = "limits.max_message",                                                        \
          .flag = "max-message",                                                              \
          .type = TN_CONF_SIZE,                                                               \
          .offset = offsetof(T, m.max_message),                                               \
          .def = "64KiB",                                                                     \
          .metavar = "SIZE",                                                                  \
          .help = "a message the relay decodes (Open, Opened, Hello); Data is not limited",   \
          .min = 1024,                                                                        \
          .max = 16777216 },                                                                  \
        { .key = "limits.flows_per_client",                                                   \
          .flag = "max-client-flows",                                                         \
          .type = TN_CONF_INT,                                                                \
          .offset = offsetof(T, m.flows_per_client),                                          \
          .def = "0",                                                                         \
          .metavar = "N",                                                                     \
          .help = "open flows one client identity may have, over all its sessions (0: any)",  \
          .min = 0,                                                                           \
          .max = 100000000 },                                                                 \
        { .key = "limits.flow_rate",                                                          \
          .flag = "client-flow-rate",                                                         \
          .type = TN_CONF_INT,                                                                \
          .offset = offsetof(T, m.flow_rate),                                                 \
          .def = "0",                                                                         \
          .metavar = "N",                                                                     \
          .help = "new flows per second one client identity may open (0: any)",               \
          .min = 0,                                                                           \
          .max = 100000000 },                                                                 \
    {                                                                                         \
        .key = "limits.flow_burst", .flag = "client-flow-burst", .type = TN_CONF_INT,         \
        .offset = offsetof(T, m.flow_burst), .def = "0", .metavar = "N",                      \
        .help = "new flows a client may open at once above its rate (0: one second's worth)", \
        .min = 0, .max = 100000000                                                            \
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

/* Rows for tls.bootstrap and tls.state_dir at members |b| and |d| of |T|. */
#define RELAY_OPTS_BOOTSTRAP(T, b, d)                                                            \
    { .key = "tls.bootstrap",                                                                    \
      .flag = "bootstrap",                                                                       \
      .type = TN_CONF_BOOL,                                                                      \
      .offset = offsetof(T, b),                                                                  \
      .def = "false",                                                                            \
      .help = "without tls files: use a CA and certificate in state_dir, made on first start" }, \
    {                                                                                            \
        .key = "tls.state_dir", .flag = "state-dir", .type = TN_CONF_STR,                        \
        .offset = offsetof(T, d), .def = "/var/lib/tunnel", .metavar = "DIR",                    \
        .help = "where --bootstrap keeps the CA (its key too) and the relay's certificate"       \
    }

#endif
