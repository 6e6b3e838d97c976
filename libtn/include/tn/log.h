/* SPDX-License-Identifier: MIT */
/* Process-wide logging in the OpenBSD vocabulary: text or JSON lines to stderr or a file. */
#ifndef TN_LOG_H
#define TN_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum tn_log_level {
    TN_LOG_DEBUG,
    TN_LOG_INFO,
    TN_LOG_WARN,
    TN_LOG_ERR
};

enum tn_log_format {
    TN_LOG_TEXT,
    TN_LOG_JSON
};

/* Names accepted for levels and formats, in enum order, NULL-terminated (for config tables). */
extern const char *const tn_log_level_names[];
extern const char *const tn_log_format_names[];

/* Sets the component name printed on every line and the threshold; |output| is NULL or
 * "stderr" for standard error, otherwise a file opened for appending.  Returns 0 or -errno
 * (the log stays on stderr). */
int tn_log_open(const char *component, enum tn_log_level level, enum tn_log_format format,
                const char *output);
void tn_log_close(void);
/* Rotates the log file once it holds |max_size| bytes (0: never): PATH becomes PATH.1, and so
 * on up to PATH.|keep|; the oldest goes.  With |keep| 0 the file is emptied instead. */
void tn_log_set_rotation(int64_t max_size, int keep);
/* Also appends every "flow.end" event, as JSON, to |path| (NULL: stop); reopened by
 * tn_log_open.  Returns 0 or -errno. */
int tn_log_audit_open(const char *path);

bool tn_log_enabled(enum tn_log_level level);

void tn_log(enum tn_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A structured event: |event| names it ("flow.end"), |flow| is its flow id (0: none), |fields|
 * are "key=value" pairs separated by spaces (a value in double quotes may hold spaces) and
 * |msg| (or NULL) says it for people.  A JSON line carries them all ("fields" as an object); a
 * text line is "flow=ID msg", or the event and its fields when there is no |msg|.  "flow.end"
 * also goes to the audit file. */
void tn_log_event(enum tn_log_level level, const char *event, uint64_t flow, const char *msg,
                  const char *fields);
bool tn_log_audit_enabled(void);

/* What is written to stderr between the two (a reload's configuration errors) goes into the
 * log as warnings prefixed with |prefix|, when the log is a file; else it stays on stderr. */
struct tn_log_capture {
    int fd, saved;
};

void tn_log_stderr_begin(struct tn_log_capture *cap);
void tn_log_stderr_end(struct tn_log_capture *cap, const char *prefix);
/* tn_log_warn appends ": strerror(errno)"; tn_log_warnx does not. */
void tn_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tn_log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tn_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tn_log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Lines a peer can cause one per stream or request go through a rate of their call site (a
 * static struct tn_log_rate): at most TN_LOG_RATE_BURST a second pass, and the next to pass
 * ends with how many were held back meanwhile. */
#define TN_LOG_RATE_BURST 10

struct tn_log_rate {
    int64_t second; /* of the lines counted in |n| */
    unsigned n;
    uint64_t held;
};

void tn_log_rated(struct tn_log_rate *r, enum tn_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* For start-up failures only: logs at error and exits with status 1. */
void tn_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void tn_fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
