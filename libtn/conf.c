/* SPDX-License-Identifier: MIT */
/* Table-driven configuration: built-in defaults, then one YAML file, then command-line flags. */
#include "tn/conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <yaml.h>

#include "tn/addr.h"
#include "tn/cidr.h"
#include "tn/err.h"

#ifndef TN_VERSION
#define TN_VERSION "0.0.0"
#endif

#define MAX_VALUE       4096          /* longest value, in bytes */
#define MAX_FILE        (1024 * 1024) /* largest configuration file */
#define MAX_PATH        256           /* longest dotted key ("tls.cert_file") */
#define MAX_QUOTE       64            /* longest piece of a bad value quoted in an error */
#define USAGE_WIDTH_MAX 28            /* a longer flag and metavar gets its help on the next line */

/* Where a value comes from, so that an error names it the way the user wrote it. */
struct origin {
    const char *name; /* file name, program name, or "default" */
    const char *flag; /* "--listen-port" for a flag, else NULL */
    size_t line, col; /* 1-based position in the file, 0 when not from YAML */
};

/* A bounded string for lists in error and help messages; it truncates, never overflows. */
struct sbuf {
    char s[512];
    size_t n;
};

static void
sb_add(struct sbuf *b, const char *s)
{
    size_t len = strlen(s), room = sizeof(b->s) - 1 - b->n;

    if (len > room)
        len = room;
    memcpy(b->s + b->n, s, len);
    b->n += len;
    b->s[b->n] = '\0';
}

static void report(const struct origin *o, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Where a load reports its errors: stderr, or a caller's stream (tn_conf_load_errors). */
static FILE *conf_err_stream;
#define conf_err (conf_err_stream != NULL ? conf_err_stream : stderr)

/* Prints "file:7:3: key: message", "prog: --flag: message" or "name: key: message". */
static void
report(const struct origin *o, const char *key, const char *fmt, ...)
{
    va_list ap;

    if (o->flag != NULL)
        fprintf(conf_err, "%s: %s: ", o->name, o->flag);
    else if (o->line != 0)
        fprintf(conf_err, "%s:%zu:%zu: ", o->name, o->line, o->col);
    else
        fprintf(conf_err, "%s: ", o->name);
    if (o->flag == NULL && key != NULL)
        fprintf(conf_err, "%s: ", key);
    va_start(ap, fmt);
    vfprintf(conf_err, fmt, ap);
    va_end(ap);
    fputc('\n', conf_err);
}

/* Copies |s| for quoting in a message: control characters become '?', long values are cut. */
static const char *
quote(char *buf, size_t size, const char *s)
{
    size_t i;

    for (i = 0; s[i] != '\0' && i + 1 < size; i++)
        buf[i] = iscntrl((unsigned char)s[i]) ? '?' : s[i];
    buf[i] = '\0';
    if (s[i] != '\0' && size > 4)
        memcpy(buf + size - 4, "...", 4);
    return buf;
}

static void *
field(void *cfg, const struct tn_conf_key *k)
{
    return (char *)cfg + k->offset;
}

/* Reads the leading decimal digits of |s|.  Returns what follows them, or NULL when there are
 * none or the number exceeds |limit|. */
static const char *
read_digits(const char *s, uint64_t limit, uint64_t *out)
{
    uint64_t v = 0;

    if (!isdigit((unsigned char)*s))
        return NULL;
    for (; isdigit((unsigned char)*s); s++) {
        unsigned d = (unsigned)(*s - '0');

        if (v > (limit - d) / 10)
            return NULL;
        v = v * 10 + d;
    }
    *out = v;
    return s;
}

static bool
parse_int(const char *s, int64_t *out)
{
    bool is_neg = *s == '-';
    uint64_t v;

    s = read_digits(is_neg ? s + 1 : s, is_neg ? (uint64_t)INT64_MAX + 1 : INT64_MAX, &v);
    if (s == NULL || *s != '\0')
        return false;
    *out = is_neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

/* A number followed by one of |names| (NULL-terminated), which multiplies it by |mult|. */
static bool
parse_scaled(const char *s, const char *const *names, const int64_t *mult, int64_t *out)
{
    uint64_t v;
    size_t i;

    if ((s = read_digits(s, INT64_MAX, &v)) == NULL)
        return false;
    for (i = 0; names[i] != NULL; i++) {
        if (strcmp(s, names[i]) == 0) {
            if (v > (uint64_t)(INT64_MAX / mult[i]))
                return false;
            *out = (int64_t)v * mult[i];
            return true;
        }
    }
    return false;
}

static const char *const duration_units[] = { "", "ms", "s", "m", "h", NULL };
static const int64_t duration_mult[] = { 1000, 1, 1000, 60000, 3600000 };
static const char *const size_units[] = { "",   "B",  "KiB", "MiB", "GiB", "TiB",
                                          "KB", "MB", "GB",  "TB",  NULL };
static const int64_t size_mult[] = {
    1,    1,       INT64_C(1) << 10, INT64_C(1) << 20,       INT64_C(1) << 30, INT64_C(1) << 40,
    1000, 1000000, 1000000000,       INT64_C(1000000000000),
};

/* Writes |v| with the largest unit of |names| (skipping the bare ones) that divides it. */
static const char *
format_scaled(char *buf, size_t size, int64_t v, const char *const *names, const int64_t *mult,
              size_t first, size_t last)
{
    size_t i;

    for (i = last + 1; i-- > first;) {
        if (v != 0 && v % mult[i] == 0) {
            snprintf(buf, size, "%" PRId64 "%s", v / mult[i], names[i]);
            return buf;
        }
    }
    snprintf(buf, size, "%" PRId64 "%s", v, names[first]);
    return buf;
}

static const char *
format_duration(char *buf, size_t size, int64_t ms)
{
    return format_scaled(buf, size, ms, duration_units, duration_mult, 1, 4);
}

static const char *
format_size(char *buf, size_t size, int64_t bytes)
{
    return format_scaled(buf, size, bytes, size_units, size_mult, 1, 5);
}

static bool
parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = { "true", "yes", "on" };
    static const char *const no[] = { "false", "no", "off" };
    size_t i;

    for (i = 0; i < 3; i++) {
        if (strcasecmp(s, yes[i]) == 0 || strcasecmp(s, no[i]) == 0) {
            *out = strcasecmp(s, yes[i]) == 0;
            return true;
        }
    }
    return false;
}

/* Checks "host:port", "[v6]:port" or ":port".  Hosts are checked loosely (letters, digits and
 * "-._"), since names are resolved later and the resolver has the last word. */
static int
check_hostport(const struct tn_conf_key *k, const char *s, const struct origin *o)
{
    char q[MAX_QUOTE], q6[MAX_QUOTE], v6[INET6_ADDRSTRLEN];
    struct in6_addr a6;
    const char *colon, *end, *p;
    size_t n;

    if (s[0] == '[') {
        end = strchr(s, ']');
        n = end != NULL ? (size_t)(end - s - 1) : 0;
        if (end == NULL || n >= sizeof(v6) || end[1] != ':') {
            report(o, k->key, "'%s' is not [IPV6]:PORT", quote(q, sizeof(q), s));
            return TN_ERR_CONFIG;
        }
        memcpy(v6, s + 1, n);
        v6[n] = '\0';
        v6[strcspn(v6, "%")] = '\0'; /* a zone ("%eth0") is the resolver's business */
        if (inet_pton(AF_INET6, v6, &a6) != 1) {
            report(o, k->key, "'%s': '%s' is not an IPv6 address", quote(q, sizeof(q), s),
                   quote(q6, sizeof(q6), v6));
            return TN_ERR_CONFIG;
        }
        colon = end + 1;
    } else {
        if ((colon = strrchr(s, ':')) == NULL) {
            report(o, k->key, "'%s' is not HOST:PORT (e.g. relay.example.com:443, [::1]:443, :443)",
                   quote(q, sizeof(q), s));
            return TN_ERR_CONFIG;
        }
        for (p = s; p < colon; p++) {
            if (*p == ':') {
                report(o, k->key, "'%s': an IPv6 address goes in brackets ([::1]:443)",
                       quote(q, sizeof(q), s));
                return TN_ERR_CONFIG;
            }
            if (!isalnum((unsigned char)*p) && strchr("-._", *p) == NULL) {
                report(o, k->key, "'%s': the host has a bad character", quote(q, sizeof(q), s));
                return TN_ERR_CONFIG;
            }
        }
    }
    if (tn_addr_parse_port(colon + 1) == 0) {
        report(o, k->key, "'%s' has no valid port (1-65535)", quote(q, sizeof(q), s));
        return TN_ERR_CONFIG;
    }
    return 0;
}

static int
set_string(const struct tn_conf_key *k, void *cfg, const char *s, const struct origin *o)
{
    char **p = field(cfg, k), *copy;

    /* "key:", "~" or "" in YAML, an empty flag or variable: as if not given, its default,
     * unless the key gives the empty value a meaning. */
    if (*s == '\0' && k->def != NULL && !k->is_empty_none)
        s = k->def;
    if (*s == '\0' && k->is_empty_none) {
        free(*p);
        return (*p = strdup("")) != NULL ? 0 : TN_ERR_CONFIG;
    }
    if (*s == '\0') {
        free(*p);
        *p = NULL;
        return 0;
    }
    if (strlen(s) > MAX_VALUE) {
        report(o, k->key, "the value is too long (at most %d bytes)", MAX_VALUE);
        return TN_ERR_CONFIG;
    }
    if ((copy = strdup(s)) == NULL) {
        report(o, k->key, "out of memory");
        return TN_ERR_CONFIG;
    }
    free(*p);
    *p = copy;
    return 0;
}

/* Explains why |s| is not a CIDR; for a network with host bits set, names the network meant. */
static void
report_cidr(const struct tn_conf_key *k, const char *s, const struct origin *o)
{
    char q[MAX_QUOTE], addr[TN_CIDR_STRLEN], net[TN_CIDR_STRLEN];
    const char *slash = strchr(s, '/');
    struct tn_cidr c, given;
    uint64_t prefix;
    const char *end;
    unsigned i;

    if (slash != NULL && (size_t)(slash - s) < sizeof(addr)) {
        memcpy(addr, s, (size_t)(slash - s));
        addr[slash - s] = '\0';
        end = read_digits(slash + 1, 128, &prefix);
        if (tn_ip_parse(&c.ip, addr) == 0 && end != NULL && *end == '\0' &&
            prefix <= (c.ip.family == AF_INET ? 32 : 128)) {
            c.prefix = (uint8_t)prefix;
            given = c;
            for (i = 0; i < 16; i++) {
                unsigned keep = prefix >= 8 * (i + 1) ? 8 : prefix > 8 * i ? prefix - 8 * i : 0;

                c.ip.bytes[i] &= (uint8_t)(0xff00 >> keep);
            }
            if (memcmp(c.ip.bytes, given.ip.bytes, sizeof(c.ip.bytes)) != 0) {
                report(o, k->key, "'%s' has host bits set (the network is %s)",
                       quote(q, sizeof(q), s), tn_cidr_format(&c, net, sizeof(net)));
                return;
            }
        }
    }
    report(o, k->key, "'%s' is not a CIDR (a network like 10.0.0.0/8 or fd00::/64, or one address)",
           quote(q, sizeof(q), s));
}

/* Appends the networks of |s|, separated by commas or spaces, to |l|. */
static int
add_cidrs(const struct tn_conf_key *k, struct tn_cidr_list *l, const char *s,
          const struct origin *o)
{
    char item[TN_CIDR_STRLEN + 1];
    struct tn_cidr c;
    size_t n;

    for (;;) {
        s += strspn(s, ", \t\r\n");
        if ((n = strcspn(s, ", \t\r\n")) == 0)
            return 0;
        if (n >= sizeof(item))
            n = sizeof(item) - 1; /* too long to be a CIDR: the parser rejects it */
        memcpy(item, s, n);
        item[n] = '\0';
        if (tn_cidr_parse(&c, item) != 0) {
            report_cidr(k, item, o);
            return TN_ERR_CONFIG;
        }
        if (tn_cidr_list_add(l, &c) != 0) {
            report(o, k->key, "out of memory");
            return TN_ERR_CONFIG;
        }
        s += strcspn(s, ", \t\r\n");
    }
}

static int
set_cidr_list(const struct tn_conf_key *k, void *cfg, const char *s, bool is_append,
              const struct origin *o)
{
    struct tn_cidr_list *l = field(cfg, k), fresh = { NULL, 0 };
    int r;

    if (is_append)
        return add_cidrs(k, l, s, o);
    if ((r = add_cidrs(k, &fresh, s, o)) != 0) {
        tn_cidr_list_fini(&fresh);
        return r;
    }
    tn_cidr_list_fini(l);
    *l = fresh;
    return 0;
}

/* Checks |v| against the bounds of a DURATION or SIZE key, where 0 means "no bound". */
static int
check_bounds(const struct tn_conf_key *k, const char *s, int64_t v, const struct origin *o)
{
    const char *(*format)(char *, size_t, int64_t);
    char q[MAX_QUOTE], lim[32];

    format = k->type == TN_CONF_DURATION ? format_duration : format_size;
    if (k->min > 0 && v < k->min) {
        report(o, k->key, "'%s' is too %s (at least %s)", quote(q, sizeof(q), s),
               k->type == TN_CONF_DURATION ? "short" : "small", format(lim, sizeof(lim), k->min));
        return TN_ERR_CONFIG;
    }
    if (k->max > 0 && v > k->max) {
        report(o, k->key, "'%s' is too %s (at most %s)", quote(q, sizeof(q), s),
               k->type == TN_CONF_DURATION ? "long" : "large", format(lim, sizeof(lim), k->max));
        return TN_ERR_CONFIG;
    }
    return 0;
}

static int
set_enum(const struct tn_conf_key *k, void *cfg, const char *s, const struct origin *o)
{
    struct sbuf names = { .n = 0 };
    char q[MAX_QUOTE];
    size_t i;

    for (i = 0; k->choices != NULL && k->choices[i] != NULL; i++) {
        if (strcmp(s, k->choices[i]) == 0) {
            *(int *)field(cfg, k) = (int)i;
            return 0;
        }
        sb_add(&names, i == 0 ? "" : ", ");
        sb_add(&names, k->choices[i]);
    }
    report(o, k->key, "'%s' is not one of: %s", quote(q, sizeof(q), s), names.s);
    return TN_ERR_CONFIG;
}

static int set_value(const struct tn_conf_key *k, void *cfg, const char *s, bool is_append,
                     const struct origin *o);
static const struct tn_conf_key *find_key(const struct tn_conf_key *keys, const char *path);
static bool is_set(const struct tn_conf_key *k, void *cfg);

/* Frees every record of list |l| of key |k|. */
static void
list_fini(const struct tn_conf_key *k, struct tn_conf_list *l)
{
    size_t i;

    for (i = 0; i < l->n; i++)
        tn_conf_fini(k->sub, (char *)l->v + i * k->elem_size);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* Appends a record holding |k|'s sub-table defaults.  Returns it, or NULL (reported). */
static void *
list_add(const struct tn_conf_key *k, struct tn_conf_list *l, const struct origin *o)
{
    void *grown, *elem;

    if ((grown = realloc(l->v, (l->n + 1) * k->elem_size)) == NULL) {
        report(o, k->key, "out of memory");
        return NULL;
    }
    l->v = grown;
    elem = (char *)l->v + l->n++ * k->elem_size;
    memset(elem, 0, k->elem_size);
    if (tn_conf_defaults(k->sub, elem) != 0)
        return NULL;
    return elem;
}

/* Reports the first required key of |keys| that |cfg| lacks.  Returns 0 or TN_ERR_CONFIG. */
static int
check_required(const struct tn_conf_key *keys, void *cfg, const char *section,
               const struct origin *o)
{
    for (; keys->key != NULL; keys++) {
        if (keys->is_required && !is_set(keys, cfg)) {
            report(o, section, "'%s' is required", keys->key);
            return TN_ERR_CONFIG;
        }
    }
    return 0;
}

/* One record of a TN_CONF_LIST from a flag's short form: "10000:127.0.0.1:3000" into the
 * key's flag_fields, the last taking the rest. */
static int
set_record_fields(const struct tn_conf_key *k, void *elem, const char *s, const struct origin *o)
{
    const char *const *f;
    char part[MAX_VALUE + 1];
    size_t n;

    for (f = k->flag_fields; *f != NULL; f++) {
        n = f[1] != NULL ? strcspn(s, ":") : strlen(s);
        if (f[1] != NULL && s[n] != ':') {
            report(o, k->key, "'%s' is too short: give %s", s, k->metavar);
            return TN_ERR_CONFIG;
        }
        snprintf(part, sizeof(part), "%.*s", (int)n, s);
        if (set_value(find_key(k->sub, *f), elem, part, false, o) != 0)
            return TN_ERR_CONFIG;
        s += n + (s[n] == ':');
    }
    return check_required(k->sub, elem, k->key, o);
}

/* One record of a TN_CONF_LIST from a flag: "key=value,key=value". */
static int
set_record(const struct tn_conf_key *k, void *cfg, const char *s, bool is_append,
           const struct origin *o)
{
    struct tn_conf_list *l = field(cfg, k);
    const struct tn_conf_key *sk;
    char pair[MAX_VALUE + 1], q[MAX_QUOTE], *eq;
    bool seen[64] = { false };
    void *elem;
    size_t n;

    if (!is_append)
        list_fini(k, l);
    if ((elem = list_add(k, l, o)) == NULL)
        return TN_ERR_CONFIG;
    if (k->flag_fields != NULL && strchr(s, '=') == NULL)
        return set_record_fields(k, elem, s, o);
    for (; *s != '\0'; s += n + (s[n] == ',')) {
        n = strcspn(s, ",");
        if (n > MAX_VALUE) {
            report(o, k->key, "a key=value is too long (at most %d bytes)", MAX_VALUE);
            return TN_ERR_CONFIG;
        }
        snprintf(pair, sizeof(pair), "%.*s", (int)n, s);
        if ((eq = strchr(pair, '=')) == NULL) {
            report(o, k->key, "'%s' is not key=value", quote(q, sizeof(q), pair));
            return TN_ERR_CONFIG;
        }
        *eq = '\0';
        if ((sk = find_key(k->sub, pair)) == NULL) {
            report(o, k->key, "unknown key '%s'", quote(q, sizeof(q), pair));
            return TN_ERR_CONFIG;
        }
        /* A list key may repeat (it adds); another one given twice would lose a value. */
        if (seen[(sk - k->sub) % 64] && sk->type != TN_CONF_CIDR_LIST &&
            sk->type != TN_CONF_HOSTPORT_LIST) {
            report(o, k->key, "'%s' is given twice", quote(q, sizeof(q), pair));
            return TN_ERR_CONFIG;
        }
        if (set_value(sk, elem, eq + 1, seen[(sk - k->sub) % 64], o) != 0)
            return TN_ERR_CONFIG;
        seen[(sk - k->sub) % 64] = true;
    }
    return check_required(k->sub, elem, k->key, o);
}

static void
str_list_fini(struct tn_str_list *l)
{
    size_t i;

    for (i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* Checks |s| as a HOSTPORT and appends a copy to |l|.  Returns 0 or TN_ERR_CONFIG. */
static int
str_list_add(const struct tn_conf_key *k, struct tn_str_list *l, const char *s,
             const struct origin *o)
{
    char **grown, *copy;

    if (strlen(s) > MAX_VALUE) {
        report(o, k->key, "the value is too long (at most %d bytes)", MAX_VALUE);
        return TN_ERR_CONFIG;
    }
    if (check_hostport(k, s, o) != 0)
        return TN_ERR_CONFIG;
    if ((copy = strdup(s)) == NULL ||
        (grown = realloc(l->v, (l->n + 1) * sizeof(*grown))) == NULL) {
        free(copy);
        report(o, k->key, "out of memory");
        return TN_ERR_CONFIG;
    }
    l->v = grown;
    l->v[l->n++] = copy;
    return 0;
}

/* Parses |s| as the value of |k| and stores it in |cfg|; a CIDR list is replaced unless
 * |is_append|.  Returns 0 or TN_ERR_CONFIG (reported). */
static int
set_value(const struct tn_conf_key *k, void *cfg, const char *s, bool is_append,
          const struct origin *o)
{
    char q[MAX_QUOTE];
    struct tn_cidr c;
    int64_t v;
    bool b;

    if (*s == '\0' && k->type != TN_CONF_STR && k->type != TN_CONF_CIDR_LIST &&
        k->type != TN_CONF_LIST && k->type != TN_CONF_HOSTPORT_LIST) {
        report(o, k->key, "needs a value");
        return TN_ERR_CONFIG;
    }
    switch (k->type) {
    case TN_CONF_STR:
        return set_string(k, cfg, s, o);
    case TN_CONF_HOSTPORT:
        if (strlen(s) > MAX_VALUE) {
            report(o, k->key, "the value is too long (at most %d bytes)", MAX_VALUE);
            return TN_ERR_CONFIG;
        }
        return check_hostport(k, s, o) != 0 ? TN_ERR_CONFIG : set_string(k, cfg, s, o);
    case TN_CONF_INT:
        if (!parse_int(s, &v)) {
            report(o, k->key, "'%s' is not an integer", quote(q, sizeof(q), s));
            return TN_ERR_CONFIG;
        }
        if ((k->min != 0 || k->max != 0) && (v < k->min || v > k->max)) {
            if (k->min == 1 && k->max == 65535)
                report(o, k->key, "'%s' is not a port (1-65535)", quote(q, sizeof(q), s));
            else
                report(o, k->key, "'%s' is out of range (%" PRId64 " to %" PRId64 ")",
                       quote(q, sizeof(q), s), k->min, k->max);
            return TN_ERR_CONFIG;
        }
        *(int64_t *)field(cfg, k) = v;
        return 0;
    case TN_CONF_BOOL:
        if (!parse_bool(s, &b)) {
            report(o, k->key, "'%s' is not a boolean (true/false, yes/no, on/off)",
                   quote(q, sizeof(q), s));
            return TN_ERR_CONFIG;
        }
        *(bool *)field(cfg, k) = b;
        return 0;
    case TN_CONF_ENUM:
        return set_enum(k, cfg, s, o);
    case TN_CONF_DURATION:
        if (!parse_scaled(s, duration_units, duration_mult, &v)) {
            report(o, k->key, "'%s' is not a duration (e.g. 250ms, 10s, 2m, 1h)",
                   quote(q, sizeof(q), s));
            return TN_ERR_CONFIG;
        }
        if (check_bounds(k, s, v, o) != 0)
            return TN_ERR_CONFIG;
        *(int64_t *)field(cfg, k) = v;
        return 0;
    case TN_CONF_SIZE:
        if (!parse_scaled(s, size_units, size_mult, &v)) {
            report(o, k->key, "'%s' is not a size (e.g. 512, 64KiB, 16MiB, 1GiB, 10MB)",
                   quote(q, sizeof(q), s));
            return TN_ERR_CONFIG;
        }
        if (check_bounds(k, s, v, o) != 0)
            return TN_ERR_CONFIG;
        *(int64_t *)field(cfg, k) = v;
        return 0;
    case TN_CONF_CIDR:
        if (tn_cidr_parse(&c, s) != 0) {
            report_cidr(k, s, o);
            return TN_ERR_CONFIG;
        }
        *(struct tn_cidr *)field(cfg, k) = c;
        return 0;
    case TN_CONF_CIDR_LIST:
        return set_cidr_list(k, cfg, s, is_append, o);
    case TN_CONF_LIST:
        return set_record(k, cfg, s, is_append, o);
    case TN_CONF_HOSTPORT_LIST:
        if (!is_append)
            str_list_fini(field(cfg, k));
        return str_list_add(k, field(cfg, k), s, o);
    }
    report(o, k->key, "unknown key type %d", (int)k->type);
    return TN_ERR_CONFIG;
}

int
tn_conf_defaults(const struct tn_conf_key *keys, void *cfg)
{
    const struct origin o = { "default", NULL, 0, 0 };
    const struct tn_conf_key *k;

    for (k = keys; k->key != NULL; k++) {
        if (k->def != NULL && set_value(k, cfg, k->def, false, &o) != 0)
            return TN_ERR_CONFIG;
    }
    return 0;
}

/* Frees what key |k| owns in |cfg|, leaving it empty. */
static void
fini_key(const struct tn_conf_key *k, void *cfg)
{
    char **p;

    switch (k->type) {
    case TN_CONF_STR:
    case TN_CONF_HOSTPORT:
        p = field(cfg, k);
        free(*p);
        *p = NULL;
        break;
    case TN_CONF_CIDR_LIST:
        tn_cidr_list_fini(field(cfg, k));
        break;
    case TN_CONF_LIST:
        list_fini(k, field(cfg, k));
        break;
    case TN_CONF_HOSTPORT_LIST:
        str_list_fini(field(cfg, k));
        break;
    default:
        break;
    }
}

void
tn_conf_fini(const struct tn_conf_key *keys, void *cfg)
{
    const struct tn_conf_key *k;

    for (k = keys; k->key != NULL; k++)
        fini_key(k, cfg);
}

/*
 * YAML.  Dotted table keys are nested mappings: "tls.cert_file" is tls: {cert_file: ...}.  A
 * mapping is walked with the dotted path of its parent; a name that is neither a key nor the
 * start of one ("tls" for "tls.cert_file") is an error that lists what the section knows.
 */

struct loader {
    const struct tn_conf_key *keys;
    void *cfg;
    const char *name;
    yaml_document_t *doc;
};

static struct origin
node_origin(const struct loader *l, const yaml_node_t *n)
{
    struct origin o = { l->name, NULL, n->start_mark.line + 1, n->start_mark.column + 1 };

    return o;
}

static const char *
node_kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_MAPPING_NODE:
        return "a mapping";
    case YAML_SEQUENCE_NODE:
        return "a list";
    default:
        return "a single value";
    }
}

/* True for an empty value ("key:"), "~" or "null", written without quotes. */
static bool
is_null(const yaml_node_t *n)
{
    const char *s;

    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    s = (const char *)n->data.scalar.value;
    return *s == '\0' || strcmp(s, "~") == 0 || strcasecmp(s, "null") == 0;
}

/* The text of scalar |n|, or NULL (reported) when it cannot be a C string value. */
static const char *
scalar_text(const struct loader *l, const yaml_node_t *n, const char *path)
{
    const char *s = (const char *)n->data.scalar.value;
    struct origin o = node_origin(l, n);

    if (n->data.scalar.length > MAX_VALUE) {
        report(&o, path, "the value is too long (at most %d bytes)", MAX_VALUE);
        return NULL;
    }
    if (strlen(s) != n->data.scalar.length) {
        report(&o, path, "the value contains a NUL character");
        return NULL;
    }
    return s;
}

static const struct tn_conf_key *
find_key(const struct tn_conf_key *keys, const char *path)
{
    for (; keys->key != NULL; keys++) {
        if (strcmp(keys->key, path) == 0)
            return keys;
    }
    return NULL;
}

/* True when |path| is a section: some key starts with "path.". */
static bool
is_section(const struct tn_conf_key *keys, const char *path)
{
    size_t n = strlen(path);

    for (; keys->key != NULL; keys++) {
        if (strncmp(keys->key, path, n) == 0 && keys->key[n] == '.')
            return true;
    }
    return false;
}

/* Lists the names directly under section |prefix| ("" for the top level), each once. */
static void
known_names(const struct tn_conf_key *keys, const char *prefix, struct sbuf *b)
{
    size_t plen = *prefix != '\0' ? strlen(prefix) + 1 : 0, n;
    const struct tn_conf_key *k, *e;
    const char *name;
    char one[MAX_PATH];
    bool is_dup;

    for (k = keys; k->key != NULL; k++) {
        if (plen != 0 && (strncmp(k->key, prefix, plen - 1) != 0 || k->key[plen - 1] != '.'))
            continue;
        name = k->key + plen;
        n = strcspn(name, ".");
        for (e = keys, is_dup = false; e < k && !is_dup; e++) {
            is_dup = strncmp(e->key, k->key, plen + n) == 0 &&
                     (e->key[plen + n] == '\0' || e->key[plen + n] == '.');
        }
        if (is_dup)
            continue;
        snprintf(one, sizeof(one), "%s%.*s", b->n != 0 ? ", " : "", (int)n, name);
        sb_add(b, one);
    }
}

static int load_mapping(struct loader *l, const yaml_node_t *map, const char *prefix);

/* A YAML list of mappings into a fresh TN_CONF_LIST, which replaces the old one. */
static int
apply_records(struct loader *l, const struct tn_conf_key *k, const yaml_node_t *seq,
              const char *path)
{
    struct tn_conf_list fresh = { NULL, 0 };
    struct loader sub = *l;
    yaml_node_item_t *it;
    yaml_node_t *item;
    struct origin o;
    int r = TN_ERR_CONFIG;

    sub.keys = k->sub;
    for (it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++) {
        item = yaml_document_get_node(l->doc, *it);
        o = node_origin(l, item);
        if (item->type != YAML_MAPPING_NODE) {
            report(&o, path, "expected a mapping in the list, got %s", node_kind(item));
            goto out;
        }
        if ((sub.cfg = list_add(k, &fresh, &o)) == NULL || load_mapping(&sub, item, "") != 0 ||
            check_required(k->sub, sub.cfg, path, &o) != 0)
            goto out;
    }
    list_fini(k, field(l->cfg, k));
    *(struct tn_conf_list *)field(l->cfg, k) = fresh;
    fresh.v = NULL; /* transferred */
    fresh.n = 0;
    r = 0;
out:
    list_fini(k, &fresh);
    return r;
}

/* A YAML list of scalars into a CIDR or HOST:PORT list key: the first item replaces the list,
 * the others append, each checked as a flag's value would be. */
static int
apply_scalars(struct loader *l, const struct tn_conf_key *k, const yaml_node_t *seq,
              const char *path)
{
    yaml_node_item_t *it;
    yaml_node_t *item;
    bool is_append = false;
    struct origin o;
    const char *s;

    if (seq->data.sequence.items.start == seq->data.sequence.items.top) {
        fini_key(k, l->cfg); /* an empty list */
        return 0;
    }
    for (it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++) {
        item = yaml_document_get_node(l->doc, *it);
        o = node_origin(l, item);
        if (item->type != YAML_SCALAR_NODE) {
            report(&o, path, "expected %s in the list, got %s",
                   k->type == TN_CONF_CIDR_LIST ? "a CIDR" : "HOST:PORT", node_kind(item));
            return TN_ERR_CONFIG;
        }
        if ((s = scalar_text(l, item, path)) == NULL || set_value(k, l->cfg, s, is_append, &o) != 0)
            return TN_ERR_CONFIG;
        is_append = true;
    }
    return 0;
}

static int
apply_node(struct loader *l, const struct tn_conf_key *k, const yaml_node_t *n, const char *path)
{
    struct origin o = node_origin(l, n);
    const char *s;

    if (k->type == TN_CONF_LIST) {
        if (n->type == YAML_SEQUENCE_NODE)
            return apply_records(l, k, n, path);
        if (is_null(n)) {
            list_fini(k, field(l->cfg, k));
            return 0;
        }
        report(&o, path, "expected a list of mappings, got %s", node_kind(n));
        return TN_ERR_CONFIG;
    }

    if (n->type == YAML_SCALAR_NODE) {
        if ((k->type == TN_CONF_STR || k->type == TN_CONF_HOSTPORT) && is_null(n))
            return set_string(k, l->cfg, "", &o); /* unset, as the key left out */
        if ((s = scalar_text(l, n, path)) == NULL)
            return TN_ERR_CONFIG;
        return set_value(k, l->cfg, s, false, &o);
    }
    if ((k->type == TN_CONF_CIDR_LIST || k->type == TN_CONF_HOSTPORT_LIST) &&
        n->type == YAML_SEQUENCE_NODE)
        return apply_scalars(l, k, n, path);
    report(&o, path, "expected %s, got %s",
           k->type == TN_CONF_CIDR_LIST       ? "a CIDR or a list of them"
           : k->type == TN_CONF_HOSTPORT_LIST ? "HOST:PORT or a list of them"
                                              : "a single value",
           node_kind(n));
    return TN_ERR_CONFIG;
}

static bool
same_scalar(const yaml_node_t *a, const yaml_node_t *b)
{
    return a->type == YAML_SCALAR_NODE && b->type == YAML_SCALAR_NODE &&
           a->data.scalar.length == b->data.scalar.length &&
           memcmp(a->data.scalar.value, b->data.scalar.value, a->data.scalar.length) == 0;
}

/* The key that scalar key node |kn| under |prefix| names, or NULL. */
static const struct tn_conf_key *
key_of(const struct loader *l, const char *prefix, const yaml_node_t *kn)
{
    char path[MAX_PATH];
    const char *s;

    if (kn->type != YAML_SCALAR_NODE)
        return NULL;
    s = (const char *)kn->data.scalar.value;
    if (*s == '\0' || strlen(s) != kn->data.scalar.length || strchr(s, '.') != NULL ||
        (size_t)snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix != '\0' ? "." : "", s) >=
            sizeof(path))
        return NULL;
    return find_key(l->keys, path);
}

/* Applies every pair of |map|, the section named |prefix| ("" for the top level). */
static int
load_mapping(struct loader *l, const yaml_node_t *map, const char *prefix)
{
    yaml_node_pair_t *p, *q;
    yaml_node_t *kn, *vn;
    const struct tn_conf_key *k;
    struct sbuf known = { .n = 0 };
    char path[MAX_PATH], name[MAX_QUOTE];
    const char *s;
    struct origin o;
    bool is_ours;

    for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        kn = yaml_document_get_node(l->doc, p->key);
        vn = yaml_document_get_node(l->doc, p->value);
        o = node_origin(l, kn);
        if (kn->type != YAML_SCALAR_NODE) {
            report(&o, *prefix != '\0' ? prefix : NULL, "a key must be a name, not %s",
                   node_kind(kn));
            return TN_ERR_CONFIG;
        }
        s = (const char *)kn->data.scalar.value;
        quote(name, sizeof(name), s);
        snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix != '\0' ? "." : "",
                 *s != '\0' ? name : "''");
        /* A key with a dot in it would reach "tls.cert_file" a second way; treat it as unknown,
         * like one too long to be ours or with a NUL in it. */
        is_ours = *s != '\0' && strlen(s) == kn->data.scalar.length &&
                  strlen(s) < sizeof(name) - 1 && strchr(s, '.') == NULL;
        k = is_ours ? find_key(l->keys, path) : NULL;
        for (q = map->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *prev = yaml_document_get_node(l->doc, q->key);
            const struct tn_conf_key *pk;

            if (same_scalar(prev, kn)) {
                report(&o, path, "duplicate key (first at line %zu)", prev->start_mark.line + 1);
                return TN_ERR_CONFIG;
            }
            /* Two names of one setting (server_addr and servers): one would be lost. */
            if (k != NULL && (pk = key_of(l, prefix, prev)) != NULL && pk != k &&
                pk->offset == k->offset && pk->type == k->type) {
                report(&o, path, "the same setting as '%s' (line %zu): give one of them", pk->key,
                       prev->start_mark.line + 1);
                return TN_ERR_CONFIG;
            }
        }
        if (k != NULL && k->type == TN_CONF_BOOL && vn->type == YAML_MAPPING_NODE &&
            is_section(l->keys, path)) {
            /* "http: {host: ...}": a switch whose section is given is on. */
            *(bool *)field(l->cfg, k) = true;
            if (load_mapping(l, vn, path) != 0)
                return TN_ERR_CONFIG;
        } else if (k != NULL) {
            if (apply_node(l, k, vn, path) != 0)
                return TN_ERR_CONFIG;
        } else if (is_ours && is_section(l->keys, path)) {
            if (vn->type == YAML_MAPPING_NODE) {
                if (load_mapping(l, vn, path) != 0)
                    return TN_ERR_CONFIG;
            } else if (!is_null(vn)) {
                known_names(l->keys, path, &known);
                o = node_origin(l, vn);
                report(&o, path, "expected a section with keys (%s), got %s", known.s,
                       node_kind(vn));
                return TN_ERR_CONFIG;
            }
        } else {
            known_names(l->keys, prefix, &known);
            report(&o, path, "unknown key (known keys%s%s: %s)", *prefix != '\0' ? " in " : "",
                   prefix, known.s);
            return TN_ERR_CONFIG;
        }
    }
    return 0;
}

static void
report_yaml(const char *name, const yaml_parser_t *parser)
{
    if (parser->error == YAML_MEMORY_ERROR || parser->problem == NULL) {
        fprintf(conf_err, "%s: out of memory\n", name);
    } else if (parser->error == YAML_READER_ERROR) {
        fprintf(conf_err, "%s: %s at byte %zu\n", name, parser->problem, parser->problem_offset);
    } else if (parser->context != NULL) {
        fprintf(conf_err, "%s:%zu:%zu: %s (%s at %zu:%zu)\n", name, parser->problem_mark.line + 1,
                parser->problem_mark.column + 1, parser->problem, parser->context,
                parser->context_mark.line + 1, parser->context_mark.column + 1);
    } else {
        fprintf(conf_err, "%s:%zu:%zu: %s\n", name, parser->problem_mark.line + 1,
                parser->problem_mark.column + 1, parser->problem);
    }
}

/* No configuration nests lists or mappings deeper than this; libyaml's time grows with the
 * square of the depth (a 200 KB file of brackets took 50 s), so more is refused first. */
#define MAX_NESTING 64

/* Whether |text| keeps its lists and mappings within MAX_NESTING; else reports where it goes
 * deeper.  A pass over libyaml's events that stops at the first level too deep, so the
 * square stays small; a syntax error is left for the loader to report. */
static bool
nesting_ok(const char *name, const char *text, size_t len)
{
    yaml_parser_t parser;
    yaml_event_t event;
    unsigned depth = 0;
    bool ok = true, done = false;

    if (!yaml_parser_initialize(&parser))
        return true; /* the loader says it is out of memory */
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    while (!done && yaml_parser_parse(&parser, &event)) {
        switch (event.type) {
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (++depth > MAX_NESTING) {
                fprintf(conf_err, "%s:%zu:%zu: lists or mappings nested more than %d deep\n", name,
                        event.start_mark.line + 1, event.start_mark.column + 1, MAX_NESTING);
                ok = false;
                done = true;
            }
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            depth--;
            break;
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        default:
            break;
        }
        yaml_event_delete(&event);
    }
    yaml_parser_delete(&parser);
    return ok;
}

int
tn_conf_load_string(const struct tn_conf_key *keys, void *cfg, const char *name, const char *text,
                    size_t len)
{
    yaml_parser_t parser;
    yaml_document_t doc, next;
    struct loader l = { keys, cfg, name, &doc };
    const struct tn_conf_key *top;
    bool has_parser = false, has_doc = false, is_more;
    yaml_node_t *root;
    struct origin o;
    int r = TN_ERR_CONFIG;

    if (!nesting_ok(name, text, len))
        goto out;
    if (!yaml_parser_initialize(&parser)) {
        fprintf(conf_err, "%s: out of memory\n", name);
        goto out;
    }
    has_parser = true;
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    /* yaml_parser_load deletes the document itself when it fails. */
    if (!yaml_parser_load(&parser, &doc)) {
        report_yaml(name, &parser);
        goto out;
    }
    has_doc = true;
    for (top = keys; top->key != NULL && !top->is_top_list; top++)
        ;
    if ((root = yaml_document_get_root_node(&doc)) != NULL && !is_null(root)) {
        if (root->type == YAML_SEQUENCE_NODE && top->key != NULL) {
            if (apply_node(&l, top, root, top->key) != 0)
                goto out;
        } else if (root->type != YAML_MAPPING_NODE) {
            o = node_origin(&l, root);
            report(&o, NULL, "expected a mapping of keys at the top level, got %s",
                   node_kind(root));
            goto out;
        } else if (load_mapping(&l, root, "") != 0) {
            goto out;
        }
    }
    if (!yaml_parser_load(&parser, &next)) {
        report_yaml(name, &parser);
        goto out;
    }
    if ((is_more = (root = yaml_document_get_root_node(&next)) != NULL))
        o = node_origin(&l, root);
    yaml_document_delete(&next);
    if (is_more) {
        report(&o, NULL, "only one YAML document is allowed");
        goto out;
    }
    r = 0;
out:
    if (has_doc)
        yaml_document_delete(&doc);
    if (has_parser)
        yaml_parser_delete(&parser);
    return r;
}

int
tn_conf_load_file(const struct tn_conf_key *keys, void *cfg, const char *path)
{
    char *text = NULL, *grown;
    size_t len = 0, cap = 0, got;
    FILE *f;
    int r = TN_ERR_CONFIG;

    if ((f = fopen(path, "re")) == NULL) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        goto out;
    }
    for (;;) {
        if (len > MAX_FILE) {
            fprintf(stderr, "%s: file too large (at most %d bytes)\n", path, MAX_FILE);
            goto out;
        }
        if (len == cap) {
            cap = cap == 0 ? 4096 : 2 * cap;
            if ((grown = realloc(text, cap)) == NULL) {
                fprintf(stderr, "%s: out of memory\n", path);
                goto out;
            }
            text = grown;
        }
        if ((got = fread(text + len, 1, cap - len, f)) == 0)
            break;
        len += got;
    }
    if (ferror(f)) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        goto out;
    }
    r = tn_conf_load_string(keys, cfg, path, text, len);
out:
    if (f != NULL)
        fclose(f);
    free(text);
    return r;
}

/*
 * Command line.  It is read twice: first to find --help, --version and --config and to reject
 * malformed arguments before anything is loaded, then, after the defaults and the file, to apply
 * the flags in order so that they override both.
 */

enum arg_kind {
    ARG_NONE,
    ARG_KEY,
    ARG_CONFIG,
    ARG_HELP,
    ARG_VERSION
};

struct arg {
    enum arg_kind kind;
    const struct tn_conf_key *key;
    const char *value; /* NULL for a boolean flag without "=value" */
    char flag[80];     /* as typed, without "=value": "--listen-port" */
};

/* Reads the argument at argv[*i], and its value from the next one when it needs one (moving
 * *i on).  Returns 0 or TN_ERR_CONFIG (reported). */
static int
next_arg(const struct tn_cli *cli, int argc, char **argv, int *i, struct arg *a)
{
    const char *s = argv[*i], *name, *eq;
    char q[MAX_QUOTE];
    size_t n;

    memset(a, 0, sizeof(*a));
    if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0) {
        a->kind = ARG_HELP;
        return 0;
    }
    if (strcmp(s, "--version") == 0) {
        a->kind = ARG_VERSION;
        return 0;
    }
    if (strcmp(s, "--") == 0) {
        if (*i + 1 < argc) {
            fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", cli->prog,
                    quote(q, sizeof(q), argv[*i + 1]));
            return TN_ERR_CONFIG;
        }
        return 0;
    }
    if (strcmp(s, "-c") == 0) {
        a->kind = ARG_CONFIG;
        snprintf(a->flag, sizeof(a->flag), "-c");
        goto value;
    }
    if (s[0] != '-' || s[1] == '\0') {
        fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", cli->prog,
                quote(q, sizeof(q), s));
        return TN_ERR_CONFIG;
    }
    name = s + 2;
    n = (eq = strchr(name, '=')) != NULL ? (size_t)(eq - name) : strlen(name);
    snprintf(a->flag, sizeof(a->flag), "%.*s", (int)(n + 2), s);
    if (s[1] != '-') {
        fprintf(stderr, "%s: unknown option %s (see --help)\n", cli->prog, quote(q, sizeof(q), s));
        return TN_ERR_CONFIG;
    }
    if (n == 6 && strncmp(name, "config", n) == 0) {
        a->kind = ARG_CONFIG;
    } else {
        for (a->key = cli->keys; a->key->key != NULL; a->key++) {
            if (a->key->flag != NULL && strncmp(a->key->flag, name, n) == 0 &&
                a->key->flag[n] == '\0')
                break;
        }
        if (a->key->key == NULL) {
            fprintf(stderr, "%s: unknown option %s (see --help)\n", cli->prog,
                    quote(q, sizeof(q), a->flag));
            return TN_ERR_CONFIG;
        }
        a->kind = ARG_KEY;
    }
    if (eq != NULL) {
        a->value = eq + 1;
        return 0;
    }
    if (a->kind == ARG_KEY && a->key->type == TN_CONF_BOOL)
        return 0;
value:
    /* "--server --cidr x" forgot the server: do not take "--cidr" as its value. */
    if (*i + 1 >= argc || strncmp(argv[*i + 1], "--", 2) == 0) {
        fprintf(stderr, "%s: %s needs a value\n", cli->prog, a->flag);
        return TN_ERR_CONFIG;
    }
    a->value = argv[++*i];
    return 0;
}

/* The metavar shown in --help: the table's, or one that fits the type. */
static void
metavar(const struct tn_conf_key *k, struct sbuf *b)
{
    static const char *const by_type[] = {
        [TN_CONF_STR] = "VALUE",
        [TN_CONF_HOSTPORT] = "HOST:PORT",
        [TN_CONF_INT] = "N",
        [TN_CONF_BOOL] = "",
        [TN_CONF_ENUM] = "NAME",
        [TN_CONF_DURATION] = "DURATION",
        [TN_CONF_SIZE] = "SIZE",
        [TN_CONF_CIDR] = "CIDR",
        [TN_CONF_CIDR_LIST] = "CIDR",
        [TN_CONF_LIST] = "KEY=VALUE,...",
        [TN_CONF_HOSTPORT_LIST] = "HOST:PORT",
    };

    if (k->type == TN_CONF_BOOL)
        return;
    sb_add(b, " ");
    if (k->metavar != NULL)
        sb_add(b, k->metavar);
    else if ((size_t)k->type < sizeof(by_type) / sizeof(by_type[0]))
        sb_add(b, by_type[k->type]);
}

/* The environment variable of |k|: TUNNEL_ and its YAML key in capitals, dots as
 * underscores (TUNNEL_TLS_CERT_FILE). */
static void
env_name(const struct tn_conf_key *k, char *buf, size_t len)
{
    size_t i, n = (size_t)snprintf(buf, len, "TUNNEL_%s", k->key);

    for (i = 7; i < n && i < len; i++)
        buf[i] = buf[i] == '.' ? '_' : (char)toupper((unsigned char)buf[i]);
}

static bool
is_list(const struct tn_conf_key *k)
{
    return k->type == TN_CONF_CIDR_LIST || k->type == TN_CONF_LIST ||
           k->type == TN_CONF_HOSTPORT_LIST;
}

/* Applies the environment variables of |cli|'s keys: over the file, under the flags.  A list
 * variable holds its entries separated by ';', each written as its flag's value.  Returns 0 or
 * TN_ERR_CONFIG (printed). */
static int
apply_env(const struct tn_cli *cli, void *cfg)
{
    struct origin o = { .name = cli->prog };
    const struct tn_conf_key *k;
    char name[128], entry[MAX_VALUE + 1];
    const char *v;
    size_t n;
    bool is_append;

    for (k = cli->keys; k->key != NULL; k++) {
        env_name(k, name, sizeof(name));
        if ((v = getenv(name)) == NULL)
            continue;
        o.flag = name;
        if (!is_list(k)) {
            if (set_value(k, cfg, v, false, &o) != 0)
                return TN_ERR_CONFIG;
            continue;
        }
        for (is_append = false; *v != '\0'; v += n + (v[n] == ';'), is_append = true) {
            n = strcspn(v, ";");
            snprintf(entry, sizeof(entry), "%.*s", (int)n, v);
            if (set_value(k, cfg, entry, is_append, &o) != 0)
                return TN_ERR_CONFIG;
        }
    }
    return 0;
}

static void
usage_line(int width, const char *left, const struct tn_conf_key *k, const char *help)
{
    char env[128];
    size_t i;

    if ((int)strlen(left) > width) /* too long to share its line: the help goes under it */
        printf("  %s\n  %-*s  %s", left, width, "", help != NULL ? help : "");
    else
        printf("  %-*s  %s", width, left, help != NULL ? help : "");
    if (k != NULL) {
        for (i = 0; k->type == TN_CONF_ENUM && k->choices != NULL && k->choices[i] != NULL; i++)
            printf("%s%s", i == 0 ? " (one of: " : ", ", k->choices[i]);
        if (i > 0)
            printf(")");
        if (is_list(k))
            printf(" (repeatable)");
        if (k->def != NULL)
            printf(" (default: %s)", k->def);
        if (k->is_required)
            printf(" (required)");
        env_name(k, env, sizeof(env));
        printf(" [yaml: %s, env: %s]", k->key, env);
    }
    printf("\n");
}

static void
print_usage(const struct tn_cli *cli)
{
    const struct tn_conf_key *k;
    bool has_yaml_only = false;
    struct sbuf b;
    int width = (int)strlen("-c, --config FILE");

    for (k = cli->keys; k->key != NULL; k++) {
        b.n = 0;
        b.s[0] = '\0';
        if (k->flag != NULL) {
            sb_add(&b, "--");
            sb_add(&b, k->flag);
            metavar(k, &b);
        } else {
            sb_add(&b, k->key);
            has_yaml_only = true;
        }
        if ((int)b.n > width && b.n <= USAGE_WIDTH_MAX)
            width = (int)b.n;
    }
    printf("Usage: %s [OPTIONS]\n", cli->prog);
    if (cli->summary != NULL)
        printf("%s\n", cli->summary);
    printf("\nOptions:\n");
    usage_line(width, "-c, --config FILE", NULL,
               "YAML or JSON configuration file (environment and flags override it)");
    for (k = cli->keys; k->key != NULL; k++) {
        if (k->flag == NULL)
            continue;
        b.n = 0;
        sb_add(&b, "--");
        sb_add(&b, k->flag);
        metavar(k, &b);
        usage_line(width, b.s, k, k->help);
    }
    usage_line(width, "-h, --help", NULL, "show this help and exit");
    usage_line(width, "--version", NULL, "show the version and exit");
    if (has_yaml_only) {
        printf("\nConfiguration file (or environment) only:\n");
        for (k = cli->keys; k->key != NULL; k++) {
            if (k->flag == NULL)
                usage_line(width, k->key, k, k->help);
        }
    }
    printf("\nEach setting is taken from, first to last: its flag, its environment variable "
           "(TUNNEL_ and\nthe YAML key in capitals, dots as underscores; a list's entries "
           "separated by ';'), the\nconfiguration file (YAML, or JSON), the default.\n");
}

/* Whether a key without a default got a value (only pointer, network and list keys can be
 * required: every other type always holds one). */
static bool
is_set(const struct tn_conf_key *k, void *cfg)
{
    void *f = field(cfg, k);

    switch (k->type) {
    case TN_CONF_STR:
    case TN_CONF_HOSTPORT:
        return *(char **)f != NULL;
    case TN_CONF_CIDR:
        return ((struct tn_cidr *)f)->ip.family != 0;
    case TN_CONF_CIDR_LIST:
        return ((struct tn_cidr_list *)f)->n > 0;
    case TN_CONF_LIST:
        return ((struct tn_conf_list *)f)->n > 0;
    case TN_CONF_HOSTPORT_LIST:
        return ((struct tn_str_list *)f)->n > 0;
    default:
        return true;
    }
}

int
tn_cli_parse(const struct tn_cli *cli, void *cfg, int argc, char **argv)
{
    const char *config = NULL;
    bool *is_given = NULL; /* per key: a flag already replaced the list from defaults or file */
    struct origin o = { cli->prog, NULL, 0, 0 };
    char name[128];
    size_t nkeys;
    struct arg a;
    int i, r = TN_ERR_CONFIG;

    for (nkeys = 0; cli->keys[nkeys].key != NULL; nkeys++)
        ;
    if ((is_given = calloc(nkeys + 1, sizeof(*is_given))) == NULL) {
        fprintf(stderr, "%s: out of memory\n", cli->prog);
        goto out;
    }
    for (i = 1; i < argc; i++) {
        if (next_arg(cli, argc, argv, &i, &a) != 0)
            goto out;
        if (a.kind == ARG_HELP || a.kind == ARG_VERSION) {
            if (a.kind == ARG_HELP)
                print_usage(cli);
            else
                printf("%s %s\n", cli->prog, TN_VERSION);
            r = TN_CLI_EXIT;
            goto out;
        }
        if (a.kind == ARG_CONFIG) {
            if (config != NULL) {
                fprintf(stderr, "%s: %s: only one configuration file may be given\n", cli->prog,
                        a.flag);
                goto out;
            }
            config = a.value;
        }
    }
    if (tn_conf_defaults(cli->keys, cfg) != 0)
        goto out;
    if (config != NULL && tn_conf_load_file(cli->keys, cfg, config) != 0)
        goto out;
    if (apply_env(cli, cfg) != 0)
        goto out;
    for (i = 1; i < argc; i++) {
        if (next_arg(cli, argc, argv, &i, &a) != 0)
            goto out;
        if (a.kind != ARG_KEY)
            continue;
        o.flag = a.flag;
        if (set_value(a.key, cfg, a.value != NULL ? a.value : "true", is_given[a.key - cli->keys],
                      &o) != 0)
            goto out;
        is_given[a.key - cli->keys] = true;
    }
    for (i = 0; (size_t)i < nkeys; i++) {
        if (cli->keys[i].is_required && !is_set(&cli->keys[i], cfg)) {
            env_name(&cli->keys[i], name, sizeof(name));
            fprintf(stderr, "%s: --%s (%s, %s) is required (see --help)\n", cli->prog,
                    cli->keys[i].flag, cli->keys[i].key, name);
            goto out;
        }
    }
    r = 0;
out:
    free(is_given);
    if (r != 0)
        tn_conf_fini(cli->keys, cfg);
    return r;
}

int
tn_conf_load_errors(const struct tn_conf_key *keys, void *cfg, const char *name, const char *text,
                    size_t len, FILE *err)
{
    int r;

    conf_err_stream = err;
    r = tn_conf_load_string(keys, cfg, name, text, len);
    conf_err_stream = NULL;
    return r;
}
