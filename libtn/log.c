/* SPDX-License-Identifier: MIT */
/* Process-wide logging: one line per event, text for people or JSON for machines. */
#include "tn/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "tn/opts.h"

const char *const tn_log_level_names[] = { "debug", "info", "warn", "error", NULL };
const char *const tn_log_format_names[] = { "text", "json", NULL };

static struct {
    const char *component;
    enum tn_log_level level;
    enum tn_log_format format;
    FILE *out; /* NULL: stderr */
} logger = { "tunnel", TN_LOG_INFO, TN_LOG_TEXT, NULL };

int
tn_log_open(const char *component, enum tn_log_level level, enum tn_log_format format,
            const char *output)
{
    FILE *f;

    logger.component = component;
    logger.level = level;
    logger.format = format;
    if (output == NULL || strcmp(output, "stderr") == 0)
        return 0;
    if ((f = fopen(output, "ae")) == NULL)
        return -errno;
    setvbuf(f, NULL, _IOLBF, 0);
    tn_log_close();
    logger.out = f;
    return 0;
}

void
tn_log_close(void)
{
    if (logger.out != NULL)
        fclose(logger.out);
    logger.out = NULL;
}

bool
tn_log_enabled(enum tn_log_level level)
{
    return level >= logger.level;
}

/* Writes |s| as the inside of a JSON string. */
static void
json_escape(FILE *f, const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
}

static void
vlog(enum tn_log_level level, const char *fmt, va_list ap, const char *suffix)
{
    FILE *f = logger.out != NULL ? logger.out : stderr;
    char msg[1024], stamp[32];
    struct timeval tv;
    struct tm tm;

    if (!tn_log_enabled(level))
        return;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    if (logger.format == TN_LOG_JSON) {
        fprintf(f, "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"component\":\"%s\",\"msg\":\"",
                stamp, (long)tv.tv_usec / 1000, tn_log_level_names[level], logger.component);
        json_escape(f, msg);
        if (suffix != NULL) {
            fputs(": ", f);
            json_escape(f, suffix);
        }
        fputs("\"}\n", f);
    } else {
        fprintf(f, "%s.%03ldZ %s %s: %s%s%s\n", stamp, (long)tv.tv_usec / 1000, logger.component,
                tn_log_level_names[level], msg, suffix != NULL ? ": " : "",
                suffix != NULL ? suffix : "");
    }
}

void
tn_log(enum tn_log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(level, fmt, ap, NULL);
    va_end(ap);
}

void
tn_log_warn(const char *fmt, ...)
{
    const char *e = strerror(errno);
    va_list ap;

    va_start(ap, fmt);
    vlog(TN_LOG_WARN, fmt, ap, e);
    va_end(ap);
}

void
tn_log_warnx(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(TN_LOG_WARN, fmt, ap, NULL);
    va_end(ap);
}

void
tn_log_info(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(TN_LOG_INFO, fmt, ap, NULL);
    va_end(ap);
}

void
tn_log_debug(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(TN_LOG_DEBUG, fmt, ap, NULL);
    va_end(ap);
}

void
tn_fatal(const char *fmt, ...)
{
    const char *e = strerror(errno);
    va_list ap;

    va_start(ap, fmt);
    vlog(TN_LOG_ERR, fmt, ap, e);
    va_end(ap);
    exit(1);
}

void
tn_fatalx(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(TN_LOG_ERR, fmt, ap, NULL);
    va_end(ap);
    exit(1);
}

int
tn_opts_log_open(const char *component, const struct tn_log_conf *c)
{
    int r = tn_log_open(component, (enum tn_log_level)c->level, (enum tn_log_format)c->format,
                        c->output);

    if (r != 0)
        tn_log_warnx("log output %s: %s", c->output, strerror(-r));
    return r;
}
