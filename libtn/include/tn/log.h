/* SPDX-License-Identifier: MIT */
/* Process-wide logging in the OpenBSD vocabulary: text or JSON lines to stderr or a file. */
#ifndef TN_LOG_H
#define TN_LOG_H

#include <stdbool.h>

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

bool tn_log_enabled(enum tn_log_level level);

void tn_log(enum tn_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* tn_log_warn appends ": strerror(errno)"; tn_log_warnx does not. */
void tn_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tn_log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tn_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tn_log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* For start-up failures only: logs at error and exits with status 1. */
void tn_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void tn_fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
