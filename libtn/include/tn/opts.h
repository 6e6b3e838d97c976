/* SPDX-License-Identifier: MIT */
/* The option rows every program shares (TLS files, logging), for its tn_conf_key table. */
#ifndef TN_OPTS_H
#define TN_OPTS_H

#include <stddef.h>

#include "tn/conf.h"
#include "tn/log.h"

struct tn_log_conf {
    int level;  /* enum tn_log_level */
    int format; /* enum tn_log_format */
    char *output;
    int64_t max_size; /* rotate the file past this many bytes (0: never) */
    int64_t keep;     /* rotated files kept */
};

/* Rows for the tls: {cert_file, key_file, ca_file, crl_file} section at member |m| (a
 * tn_tls_conf). */
#define TN_OPTS_TLS(T, m, what)                                                                   \
    { .key = "tls.cert_file",                                                                     \
      .flag = "tls-cert",                                                                         \
      .type = TN_CONF_STR,                                                                        \
      .offset = offsetof(T, m.cert_file),                                                         \
      .metavar = "FILE",                                                                          \
      .help = "certificate of this " what " (PEM), from certs-tool" },                            \
        { .key = "tls.key_file",                                                                  \
          .flag = "tls-key",                                                                      \
          .type = TN_CONF_STR,                                                                    \
          .offset = offsetof(T, m.key_file),                                                      \
          .metavar = "FILE",                                                                      \
          .help = "private key of that certificate (PEM)" },                                      \
        { .key = "tls.crl_file",                                                                  \
          .flag = "tls-crl",                                                                      \
          .type = TN_CONF_STR,                                                                    \
          .offset = offsetof(T, m.crl_file),                                                      \
          .metavar = "FILE",                                                                      \
          .help = "CRL of the CA (PEM, certs-tool revoke): refuse the certificates it revokes" }, \
    {                                                                                             \
        .key = "tls.ca_file", .flag = "tls-ca", .type = TN_CONF_STR,                              \
        .offset = offsetof(T, m.ca_file), .metavar = "FILE",                                      \
        .help = "the deployment CA that signs every peer (PEM)"                                   \
    }

/* The row for tls.server_name at member |m| (a tn_tls_conf): client and proxy. */
#define TN_OPTS_SERVER_NAME(T, m)                                                         \
    {                                                                                     \
        .key = "tls.server_name", .flag = "server-name", .type = TN_CONF_STR,             \
        .offset = offsetof(T, m.server_name), .metavar = "NAME",                          \
        .help = "DNS name or IP address the relay's certificate must carry, sent as SNI " \
                "(default: the host of each --server, when the certificate names hosts; " \
                "\"*\": any relay of the CA)"                                             \
    }

/* Rows for the log: {level, format, output} section at member |m| (a tn_log_conf). */
#define TN_OPTS_LOG(T, m)                                                    \
    { .key = "log.level",                                                    \
      .flag = "log-level",                                                   \
      .type = TN_CONF_ENUM,                                                  \
      .offset = offsetof(T, m.level),                                        \
      .def = "info",                                                         \
      .metavar = "LEVEL",                                                    \
      .help = "least severe level logged",                                   \
      .choices = tn_log_level_names },                                       \
        { .key = "log.format",                                               \
          .flag = "log-format",                                              \
          .type = TN_CONF_ENUM,                                              \
          .offset = offsetof(T, m.format),                                   \
          .def = "text",                                                     \
          .metavar = "FORMAT",                                               \
          .help = "log line format (json: one object per line)",             \
          .choices = tn_log_format_names },                                  \
    {                                                                        \
        .key = "log.output", .flag = "log-output", .type = TN_CONF_STR,      \
        .offset = offsetof(T, m.output), .def = "stderr", .metavar = "FILE", \
        .help = "stderr or a file to append to"                              \
    }

/* Rows for log: {max_size, keep} at member |m| (a tn_log_conf): rotation by size. */
#define TN_OPTS_LOG_ROTATION(T, m)                                                                 \
    { .key = "log.max_size",                                                                       \
      .flag = "log-max-size",                                                                      \
      .type = TN_CONF_SIZE,                                                                        \
      .offset = offsetof(T, m.max_size),                                                           \
      .def = "0",                                                                                  \
      .metavar = "SIZE",                                                                           \
      .help = "rotate the log file at this size (0: never; SIGHUP also reopens it)" },             \
    {                                                                                              \
        .key = "log.keep", .flag = "log-keep", .type = TN_CONF_INT, .offset = offsetof(T, m.keep), \
        .def = "5", .metavar = "N", .help = "rotated log files kept (FILE.1 ... FILE.N)",          \
        .max = 1000                                                                                \
    }

/* Rows for the HTTP/2 windows at members |sw| and |cw| (int64_t bytes). */
#define TN_OPTS_WINDOWS(T, sw, cw)                                                               \
    { .key = "limits.stream_window",                                                             \
      .flag = "stream-window",                                                                   \
      .type = TN_CONF_SIZE,                                                                      \
      .offset = offsetof(T, sw),                                                                 \
      .def = "1MiB",                                                                             \
      .metavar = "SIZE",                                                                         \
      .help = "HTTP/2 receive window of each flow",                                              \
      .min = 65535,                                                                              \
      .max = 0x7fffffff },                                                                       \
    {                                                                                            \
        .key = "limits.connection_window", .flag = "connection-window", .type = TN_CONF_SIZE,    \
        .offset = offsetof(T, cw), .def = "16MiB", .metavar = "SIZE",                            \
        .help = "HTTP/2 receive window of the whole connection", .min = 65535, .max = 0x7fffffff \
    }

/* The row for busy_poll_us at member |m| (int64_t microseconds): tn/busypoll.h. */
#define TN_OPTS_BUSY_POLL(T, m)                                                              \
    {                                                                                        \
        .key = "busy_poll_us", .flag = "busy-poll-us", .type = TN_CONF_INT,                  \
        .offset = offsetof(T, m), .def = "200", .metavar = "USEC",                           \
        .help = "after a message, poll up to this long before sleeping, so that the answer " \
                "does not wait for an idle CPU to wake up; costs CPU while traffic flows "   \
                "(0: off)",                                                                  \
        .min = 0, .max = 10000                                                               \
    }

/* Rows for the heartbeat: {interval, timeout} at members |iv| and |to| (int64_t ms). */
#define TN_OPTS_HEARTBEAT(T, iv, to)                                                       \
    { .key = "heartbeat.interval",                                                         \
      .flag = "heartbeat-interval",                                                        \
      .type = TN_CONF_DURATION,                                                            \
      .offset = offsetof(T, iv),                                                           \
      .def = "2s",                                                                         \
      .metavar = "DURATION",                                                               \
      .help = "PING the peer after this much silence",                                     \
      .min = 100,                                                                          \
      .max = 3600000 },                                                                    \
    {                                                                                      \
        .key = "heartbeat.timeout", .flag = "heartbeat-timeout", .type = TN_CONF_DURATION, \
        .offset = offsetof(T, to), .def = "3s", .metavar = "DURATION",                     \
        .help = "close a connection whose PING goes unanswered this long (0: never)",      \
        .max = 3600000                                                                     \
    }

/* Rows for reconnect: {initial, max, max_retries, disabled} at member |m| (a tn_link_conf). */
#define TN_OPTS_RECONNECT(T, m)                                                          \
    { .key = "reconnect.initial",                                                        \
      .flag = "reconnect-initial",                                                       \
      .type = TN_CONF_DURATION,                                                          \
      .offset = offsetof(T, m.initial_ms),                                               \
      .def = "1s",                                                                       \
      .metavar = "DURATION",                                                             \
      .help = "first reconnect delay's ceiling (doubles per failure, with full jitter)", \
      .min = 10,                                                                         \
      .max = 3600000 },                                                                  \
        { .key = "reconnect.max",                                                        \
          .flag = "reconnect-max",                                                       \
          .type = TN_CONF_DURATION,                                                      \
          .offset = offsetof(T, m.max_ms),                                               \
          .def = "30s",                                                                  \
          .metavar = "DURATION",                                                         \
          .help = "longest reconnect delay",                                             \
          .min = 10,                                                                     \
          .max = 3600000 },                                                              \
        { .key = "reconnect.max_retries",                                                \
          .flag = "max-retries",                                                         \
          .type = TN_CONF_INT,                                                           \
          .offset = offsetof(T, m.max_retries),                                          \
          .def = "0",                                                                    \
          .metavar = "N",                                                                \
          .help = "give up after N failed attempts in a row (0: never)",                 \
          .min = 0,                                                                      \
          .max = 1000000000 },                                                           \
    {                                                                                    \
        .key = "reconnect.disabled", .flag = "no-reconnect", .type = TN_CONF_BOOL,       \
        .offset = offsetof(T, m.is_disabled), .def = "false",                            \
        .help = "exit when the relay connection is lost instead of reconnecting"         \
    }

/* Rows for a flow's idle timeout (int64_t ms) at member |m|, and its drain timeout at |dm|
 * with default |ddef|: what SIGTERM gives open flows. */
#define TN_OPTS_FLOW_TIMEOUTS(T, m, dm, ddef)                                                   \
    { .key = "idle_timeout",                                                                    \
      .flag = "idle-timeout",                                                                   \
      .type = TN_CONF_DURATION,                                                                 \
      .offset = offsetof(T, m),                                                                 \
      .def = "1h",                                                                              \
      .metavar = "DURATION",                                                                    \
      .help = "close a flow that moved no byte for this long (0: never)",                       \
      .max = 604800000 },                                                                       \
    {                                                                                           \
        .key = "drain_timeout", .flag = "drain-timeout", .type = TN_CONF_DURATION,              \
        .offset = offsetof(T, dm), .def = ddef, .metavar = "DURATION",                          \
        .help = "on SIGTERM, let open flows finish this long (0: stop at once)", .max = 3600000 \
    }

/* The row for admin: {listen} at member |m| (char *): the HTTP listener of /metrics, /healthz,
 * /readyz (off unless set; an empty host is 127.0.0.1). */
#define TN_OPTS_ADMIN(T, m)                                                             \
    {                                                                                   \
        .key = "admin.listen", .flag = "admin", .type = TN_CONF_HOSTPORT,               \
        .offset = offsetof(T, m), .metavar = "ADDR:PORT",                               \
        .help = "serve /metrics, /healthz and /readyz over HTTP here (off by default; " \
                "\":9090\" is 127.0.0.1:9090)"                                          \
    }

/* Opens the log as |c| says.  Returns 0 or -errno (logged). */
int tn_opts_log_open(const char *component, const struct tn_log_conf *c);

#endif
