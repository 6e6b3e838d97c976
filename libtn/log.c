/* SPDX-License-Identifier: MIT */
/* Process-wide logging: one line per event, text for people or JSON for machines. */
#include "tn/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "tn/opts.h"
#include "tn/text.h"

const char *const tn_log_level_names[] = { "debug", "info", "warn", "error", NULL };
const char *const tn_log_format_names[] = { "text", "json", NULL };

static struct {
    const char *component;
    enum tn_log_level level;
    enum tn_log_format format;
    FILE *out;              /* NULL: stderr */
    char *path;             /* of |out|, to rotate and reopen */
    int64_t size, max_size; /* bytes in |out|; rotate past max_size (0: never) */
    int keep;               /* rotated files kept: PATH.1 .. PATH.keep */
    FILE *audit;            /* flow.end lines (JSON), or NULL */
    char *audit_path;
} logger = { "tunnel", TN_LOG_INFO, TN_LOG_TEXT, NULL, NULL, 0, 0, 0, NULL, NULL };

static FILE *
open_append(const char *path, int64_t *size)
{
    FILE *f;

    if ((f = fopen(path, "ae")) == NULL)
        return NULL;
    setvbuf(f, NULL, _IOLBF, 0);
    if (size != NULL) {
        fseek(f, 0, SEEK_END);
        *size = ftell(f) > 0 ? ftell(f) : 0;
    }
    return f;
}

/* Replaces |*path| with a copy of |s| (NULL clears it).  Returns 0 or -ENOMEM. */
static int
set_path(char **path, const char *s)
{
    char *copy = NULL;

    if (s != NULL && (copy = strdup(s)) == NULL)
        return -ENOMEM;
    free(*path);
    *path = copy;
    return 0;
}

/* Back to stderr (the audit file stays). */
static void
close_out(void)
{
    if (logger.out != NULL)
        fclose(logger.out);
    logger.out = NULL;
    set_path(&logger.path, NULL);
}

int
tn_log_open(const char *component, enum tn_log_level level, enum tn_log_format format,
            const char *output)
{
    FILE *f = NULL, *a = NULL;
    int64_t size = 0;

    logger.component = component;
    logger.level = level;
    logger.format = format;
    /* The audit file is reopened with the log (SIGHUP after logrotate moved both). */
    if (logger.audit_path != NULL && (a = open_append(logger.audit_path, NULL)) != NULL) {
        fclose(logger.audit);
        logger.audit = a;
    }
    if (output == NULL || strcmp(output, "stderr") == 0) {
        close_out();
        return 0;
    }
    if ((f = open_append(output, &size)) == NULL)
        return -errno;
    close_out();
    logger.out = f;
    logger.size = size;
    if (set_path(&logger.path, output) != 0) {
        close_out();
        return -ENOMEM;
    }
    return 0;
}

void
tn_log_set_rotation(int64_t max_size, int keep)
{
    logger.max_size = max_size;
    logger.keep = keep;
}

int
tn_log_audit_open(const char *path)
{
    FILE *a = NULL;

    if (path != NULL && (a = open_append(path, NULL)) == NULL)
        return -errno;
    if (logger.audit != NULL)
        fclose(logger.audit);
    logger.audit = a;
    if (set_path(&logger.audit_path, path) != 0) {
        if (a != NULL)
            fclose(a);
        logger.audit = NULL;
        return -ENOMEM;
    }
    return 0;
}

void
tn_log_close(void)
{
    close_out();
    if (logger.audit != NULL)
        fclose(logger.audit);
    logger.audit = NULL;
    set_path(&logger.audit_path, NULL);
}

bool
tn_log_enabled(enum tn_log_level level)
{
    return level >= logger.level;
}

/* PATH -> PATH.1 -> ... -> PATH.keep (the oldest goes), and a new PATH. */
static void
rotate(void)
{
    char from[4096], to[4096];
    FILE *f;
    int i;

    for (i = logger.keep; i >= 1; i--) {
        if (i == 1)
            snprintf(from, sizeof(from), "%s", logger.path);
        else
            snprintf(from, sizeof(from), "%s.%d", logger.path, i - 1);
        snprintf(to, sizeof(to), "%s.%d", logger.path, i);
        rename(from, to);
    }
    if (logger.keep == 0)
        (void)truncate(logger.path, 0);
    if ((f = open_append(logger.path, &logger.size)) == NULL)
        return; /* keep writing to the old file rather than nowhere */
    fclose(logger.out);
    logger.out = f;
}

/* A line being built; longer ones are cut. */
struct line {
    char s[2048];
    size_t n;
};

/* The bytes of a message a cut JSON line keeps: six times this (each byte as \ufffd), with
 * the rest of the object, fits in a line. */
#define JSON_CUT_MSG 256

static void __attribute__((format(printf, 2, 3))) put(struct line *l, const char *fmt, ...)
{
    va_list ap;
    int k;

    if (l->n >= sizeof(l->s) - 1)
        return;
    va_start(ap, fmt);
    k = vsnprintf(l->s + l->n, sizeof(l->s) - l->n, fmt, ap);
    va_end(ap);
    if (k > 0)
        l->n = l->n + (size_t)k < sizeof(l->s) ? l->n + (size_t)k : sizeof(l->s) - 1;
}

static void
line_out(void *arg, const char *s, size_t n)
{
    put(arg, "%.*s", (int)n, s);
}

/* How many bytes at |p| are to be written as \xNN: a control character, or a byte that starts
 * no UTF-8 character (1: a lone 0x9b is CSI to an 8-bit terminal).  0 when |p| starts a
 * character to write as it is, |*len| bytes long. */
static size_t
escape_len(const unsigned char *p, size_t *len)
{
    size_t n;

    if ((n = tn_control_len(p)) > 0)
        return n;
    return (*len = tn_utf8_len(p)) == 0 ? 1 : 0;
}

/* Appends |s| as text, with control characters and bytes that are no UTF-8 as \xNN: what
 * peers send (a request's path, a host name) must not move a terminal's cursor nor forge a
 * second log line. */
static void
text_escape(struct line *l, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t run, len, n;

    while (*p != '\0') {
        for (run = 0; p[run] != '\0' && escape_len(p + run, &len) == 0; run += len)
            ;
        if (run > 0) {
            put(l, "%.*s", (int)run, (const char *)p);
            p += run;
            continue;
        }
        for (n = escape_len(p, &len); n > 0; n--, p++)
            put(l, "\\x%02x", *p);
    }
}

/* "key=value key=\"a value\" ..." as JSON members: all-digit values become numbers. */
static void
json_fields(struct line *l, const char *s)
{
    const char *k, *eq, *v, *end;
    size_t n = 0;

    for (;;) {
        while (*s == ' ')
            s++;
        if (*s == '\0')
            break;
        k = s;
        if ((eq = strchr(k, '=')) == NULL || memchr(k, ' ', (size_t)(eq - k)) != NULL)
            break; /* not a field: the rest is prose */
        v = eq + 1;
        if (*v == '"') {
            v++;
            end = strchr(v, '"');
            end = end != NULL ? end : v + strlen(v);
            s = *end == '"' ? end + 1 : end;
        } else {
            end = strchr(v, ' ');
            end = end != NULL ? end : v + strlen(v);
            s = end;
        }
        put(l, "%s\"", n++ > 0 ? "," : "");
        tn_json_escape(k, (size_t)(eq - k), line_out, l);
        if (end > v && strspn(v, "0123456789") == (size_t)(end - v) && end - v < 16 &&
            (*v != '0' || end - v == 1)) {
            put(l, "\":%.*s", (int)(end - v), v);
        } else {
            put(l, "\":\"");
            tn_json_escape(v, (size_t)(end - v), line_out, l);
            put(l, "\"");
        }
    }
}

static void
emit(struct line *l, FILE *f, bool is_log_file)
{
    fwrite(l->s, 1, l->n, f);
    if (is_log_file) {
        logger.size += (int64_t)l->n;
        if (logger.max_size > 0 && logger.size >= logger.max_size)
            rotate();
    }
}

/* The JSON object of a line.  |is_cut|: the whole did not fit, so the fields are left out
 * and the message shortened to what fits even when every byte is escaped: a line is always one
 * valid object.  Either way, and when the message came cut already (|is_msg_cut|), it says
 * "truncated":true. */
static void
json_line(struct line *l, const char *stamp, long ms, enum tn_log_level level, const char *flowid,
          const char *event, const char *fields, const char *msg, bool is_msg_cut, bool is_cut)
{
    put(l, "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"component\":\"%s\",", stamp, ms,
        tn_log_level_names[level], logger.component);
    if (flowid[0] != '\0')
        put(l, "\"flow\":\"%s\",", flowid);
    put(l, "\"event\":\"%s\",\"fields\":{", event != NULL ? event : "log");
    if (fields != NULL && !is_cut)
        json_fields(l, fields);
    put(l, "}%s", is_cut || is_msg_cut ? ",\"truncated\":true" : "");
    if (msg != NULL) {
        put(l, ",\"msg\":\"");
        tn_json_escape(msg, is_cut ? JSON_CUT_MSG : strlen(msg), line_out, l);
        put(l, "\"");
    }
    put(l, "}");
}

/* One line: |event| and |fields| ("k=v ...") for structured events, or a message |msg| whose
 * leading "flow=ID " becomes the flow id.  |is_msg_cut|: |msg| is the start of a longer one,
 * which the line says ("truncated":true, or "(truncated)" at the end of a text line). */
static void
vlog_line(enum tn_log_level level, const char *event, uint64_t flow, const char *fields,
          const char *msg, bool is_audit, bool is_msg_cut)
{
    struct line l = { .n = 0 };
    char stamp[32], flowid[17] = "";
    struct timeval tv;
    struct tm tm;
    const char *rest = msg;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    if (event != NULL && flow != 0)
        snprintf(flowid, sizeof(flowid), "%016" PRIx64, flow);
    else if (event == NULL && strncmp(msg, "flow=", 5) == 0 &&
             strspn(msg + 5, "0123456789abcdef") == 16) {
        memcpy(flowid, msg + 5, 16);
        rest = msg + 21 + (msg[21] == ' ');
    }
    if (logger.format == TN_LOG_JSON || is_audit) {
        json_line(&l, stamp, (long)tv.tv_usec / 1000, level, flowid, event, fields, rest,
                  is_msg_cut, false);
        if (l.n >= sizeof(l.s) - 1) { /* cut: the object would not close */
            l.n = 0;
            json_line(&l, stamp, (long)tv.tv_usec / 1000, level, flowid, event, fields, rest, true,
                      true);
        }
    } else {
        put(&l, "%s.%03ldZ %s %s: ", stamp, (long)tv.tv_usec / 1000, logger.component,
            tn_log_level_names[level]);
        if (msg == NULL) {
            put(&l, "%s%s%s ", event, flowid[0] != '\0' ? " flow=" : "", flowid);
            text_escape(&l, fields);
        } else {
            if (event != NULL && flowid[0] != '\0')
                put(&l, "flow=%s ", flowid);
            text_escape(&l, msg);
            if (is_msg_cut)
                put(&l, " (truncated)");
        }
    }
    /* A cut line still ends the line. */
    if (l.n >= sizeof(l.s) - 1)
        l.n = sizeof(l.s) - 2;
    l.s[l.n++] = '\n';
    if (is_audit) {
        if (logger.audit != NULL)
            emit(&l, logger.audit, false);
        return;
    }
    emit(&l, logger.out != NULL ? logger.out : stderr, logger.out != NULL);
}

static void
vlog(enum tn_log_level level, const char *fmt, va_list ap, const char *suffix)
{
    char msg[1024];
    size_t n;
    int k;

    if (!tn_log_enabled(level))
        return;
    k = vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    if (suffix != NULL)
        k = (int)n + snprintf(msg + n, sizeof(msg) - n, ": %s", suffix);
    vlog_line(level, NULL, 0, NULL, msg, false, k < 0 || (size_t)k >= sizeof(msg));
}

void
tn_log_event(enum tn_log_level level, const char *event, uint64_t flow, const char *msg,
             const char *fields)
{
    if (tn_log_enabled(level))
        vlog_line(level, event, flow, fields, msg, false, false);
    if (logger.audit != NULL && strcmp(event, "flow.end") == 0)
        vlog_line(level, event, flow, fields, msg, true, false);
}

bool
tn_log_audit_enabled(void)
{
    return logger.audit != NULL;
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
tn_log_rated(struct tn_log_rate *r, enum tn_log_level level, const char *fmt, ...)
{
    struct timespec now;
    char held[64] = "";
    va_list ap;

    if (!tn_log_enabled(level))
        return;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec > r->second) {
        r->second = now.tv_sec;
        r->n = 0;
    }
    if (r->n >= TN_LOG_RATE_BURST) {
        r->held++;
        return;
    }
    r->n++;
    if (r->held > 0)
        snprintf(held, sizeof(held), "%" PRIu64 " more of these not logged", r->held);
    r->held = 0;
    va_start(ap, fmt);
    vlog(level, fmt, ap, held[0] != '\0' ? held : NULL);
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

    tn_log_set_rotation(c->max_size, (int)c->keep);
    if (r != 0)
        tn_log(TN_LOG_ERR, "log output %s: %s", c->output, strerror(-r));
    return r;
}

void
tn_log_stderr_begin(struct tn_log_capture *cap)
{
    cap->saved = cap->fd = -1;
    if (logger.out == NULL)
        return; /* the log is stderr: the details are there already */
    fflush(stderr);
    if ((cap->fd = memfd_create("config-errors", MFD_CLOEXEC)) < 0 ||
        (cap->saved = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3)) < 0 ||
        dup2(cap->fd, STDERR_FILENO) < 0) {
        if (cap->saved >= 0)
            close(cap->saved);
        if (cap->fd >= 0)
            close(cap->fd);
        cap->saved = cap->fd = -1;
    }
}

void
tn_log_stderr_end(struct tn_log_capture *cap, const char *prefix)
{
    char buf[4096], *line, *save = NULL;
    ssize_t n;

    if (cap->fd < 0)
        return;
    fflush(stderr);
    dup2(cap->saved, STDERR_FILENO);
    close(cap->saved);
    if (lseek(cap->fd, 0, SEEK_SET) == 0 && (n = read(cap->fd, buf, sizeof(buf) - 1)) > 0) {
        buf[n] = '\0';
        for (line = strtok_r(buf, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save))
            tn_log_warnx("%s: %s", prefix, line);
    }
    close(cap->fd);
    cap->fd = -1;
}
