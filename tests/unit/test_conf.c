/* SPDX-License-Identifier: MIT */
/* Unit tests for libtn/conf.c: every value type, YAML errors with positions, and flags. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tn/cidr.h"
#include "tn/conf.h"
#include "tn/err.h"
#include "tn/log.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

#ifndef TN_VERSION
#define TN_VERSION "0.0.0"
#endif

struct tcfg {
    char *name;
    char *server;
    int64_t port;
    int64_t count;
    bool is_verbose;
    int level;
    int64_t timeout_ms;
    int64_t window;
    struct tn_cidr net;
    struct tn_cidr_list cidrs;
    char *cert_file;
    char *key_file;
    char *deep;
    struct tn_conf_list records; /* of struct rec */
};

struct rec {
    char *id;
    struct tn_cidr_list nets;
    int64_t weight;
};

static const struct tn_conf_key rec_keys[] = {
    { .key = "id", .type = TN_CONF_STR, .offset = offsetof(struct rec, id), .is_required = true },
    { .key = "nets", .type = TN_CONF_CIDR_LIST, .offset = offsetof(struct rec, nets) },
    { .key = "weight",
      .type = TN_CONF_INT,
      .offset = offsetof(struct rec, weight),
      .def = "1",
      .min = 1,
      .max = 9 },
    { .key = NULL },
};

#define OFF(f) offsetof(struct tcfg, f)

static const struct tn_conf_key keys[] = {
    { .key = "name",
      .flag = "name",
      .type = TN_CONF_STR,
      .offset = OFF(name),
      .def = "tunnel",
      .help = "instance name" },
    { .key = "server_addr",
      .flag = "server",
      .type = TN_CONF_HOSTPORT,
      .offset = OFF(server),
      .metavar = "ADDR:PORT",
      .help = "relay address" },
    { .key = "listen_port",
      .flag = "listen-port",
      .type = TN_CONF_INT,
      .offset = OFF(port),
      .def = "9999",
      .metavar = "PORT",
      .help = "local port for redirected connections",
      .min = 1,
      .max = 65535 },
    { .key = "count",
      .type = TN_CONF_INT,
      .offset = OFF(count),
      .help = "a small number",
      .min = -5,
      .max = 5 },
    { .key = "verbose",
      .flag = "verbose",
      .type = TN_CONF_BOOL,
      .offset = OFF(is_verbose),
      .def = "false",
      .help = "say more" },
    { .key = "log.level",
      .flag = "log-level",
      .type = TN_CONF_ENUM,
      .offset = OFF(level),
      .def = "info",
      .help = "log threshold",
      .choices = tn_log_level_names },
    { .key = "timeout",
      .flag = "timeout",
      .type = TN_CONF_DURATION,
      .offset = OFF(timeout_ms),
      .def = "10s",
      .help = "idle timeout",
      .min = 100,
      .max = 3600000 },
    { .key = "window",
      .flag = "window",
      .type = TN_CONF_SIZE,
      .offset = OFF(window),
      .def = "1MiB",
      .help = "stream window",
      .min = 1024,
      .max = INT64_C(1) << 30 },
    { .key = "net",
      .flag = "net",
      .type = TN_CONF_CIDR,
      .offset = OFF(net),
      .help = "one network" },
    { .key = "target_cidr",
      .flag = "cidr",
      .type = TN_CONF_CIDR_LIST,
      .offset = OFF(cidrs),
      .def = "10.0.0.0/8",
      .help = "networks to intercept" },
    { .key = "tls.cert_file",
      .flag = "tls-cert",
      .type = TN_CONF_STR,
      .offset = OFF(cert_file),
      .metavar = "FILE",
      .help = "certificate" },
    { .key = "tls.key_file",
      .flag = "tls-key",
      .type = TN_CONF_STR,
      .offset = OFF(key_file),
      .metavar = "FILE",
      .help = "private key" },
    { .key = "a.b.c", .type = TN_CONF_STR, .offset = OFF(deep), .help = "deeply nested" },
    { .key = "records",
      .flag = "record",
      .type = TN_CONF_LIST,
      .offset = OFF(records),
      .help = "a list of records",
      .sub = rec_keys,
      .elem_size = sizeof(struct rec) },
    { .key = NULL },
};

static const struct tn_cli cli = { "prog", "Tests the configuration module.", keys };

/* What the last load or parse printed. */
static char err[8192], out[8192];

/* Sends |fd| (1 or 2) to a temporary file until capture_end reads it back into |buf|. */
struct capture {
    int fd, saved;
    FILE *tmp;
};

static void
capture_start(struct capture *c, int fd)
{
    fflush(stdout);
    fflush(stderr);
    c->fd = fd;
    c->tmp = tmpfile();
    assert_non_null(c->tmp);
    c->saved = dup(fd);
    assert_true(c->saved >= 0);
    assert_true(dup2(fileno(c->tmp), fd) >= 0);
}

static void
capture_end(struct capture *c, char *buf, size_t size)
{
    size_t n;

    fflush(stdout);
    fflush(stderr);
    dup2(c->saved, c->fd);
    close(c->saved);
    rewind(c->tmp);
    n = fread(buf, 1, size - 1, c->tmp);
    buf[n] = '\0';
    fclose(c->tmp);
}

static int
load(struct tcfg *c, const char *text)
{
    struct capture cap;
    int r;

    capture_start(&cap, 2);
    r = tn_conf_load_string(keys, c, "t.yaml", text, strlen(text));
    capture_end(&cap, err, sizeof(err));
    return r;
}

/* Loads |text| into a fresh struct and expects the error |want| (a substring of stderr). */
static void
expect_error(const char *text, const char *want)
{
    struct tcfg c = { 0 };

    if (load(&c, text) != TN_ERR_CONFIG)
        fail_msg("accepted: %s", text);
    if (strstr(err, want) == NULL)
        fail_msg("for %s\nwanted: %s\ngot: %s", text, want, err);
    /* Exactly one line: the first error stops the load. */
    assert_non_null(strchr(err, '\n'));
    assert_string_equal(strchr(err, '\n'), "\n");
    tn_conf_fini(keys, &c);
}

static int
run_argv(struct tcfg *c, char **argv)
{
    struct capture cap_out, cap_err;
    int argc = 0, r;

    while (argv[argc] != NULL)
        argc++;
    capture_start(&cap_out, 1);
    capture_start(&cap_err, 2);
    r = tn_cli_parse(&cli, c, argc, argv);
    capture_end(&cap_err, err, sizeof(err));
    capture_end(&cap_out, out, sizeof(out));
    return r;
}

#define RUN(c, ...) run_argv((c), (char *[]){ "prog", __VA_ARGS__, NULL })

static const char *
tmp_dir(void)
{
    const char *d = getenv("TMPDIR");

    return d != NULL && *d != '\0' ? d : P_tmpdir;
}

/* Writes |text| to a new temporary file whose name goes to |path|. */
static void
write_file(char *path, size_t size, const char *text)
{
    int fd;

    snprintf(path, size, "%s/test_conf_XXXXXX", tmp_dir());
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void
test_conf_defaults_fill_struct(void **state)
{
    struct tcfg c = { 0 };
    char buf[TN_CIDR_STRLEN];

    (void)state;
    assert_int_equal(tn_conf_defaults(keys, &c), 0);
    assert_string_equal(c.name, "tunnel");
    assert_null(c.server);
    assert_int_equal(c.port, 9999);
    assert_false(c.is_verbose);
    assert_int_equal(c.level, TN_LOG_INFO);
    assert_int_equal(c.timeout_ms, 10000);
    assert_int_equal(c.window, 1 << 20);
    assert_int_equal(c.net.ip.family, 0);
    assert_int_equal(c.cidrs.n, 1);
    assert_string_equal(tn_cidr_format(&c.cidrs.v[0], buf, sizeof(buf)), "10.0.0.0/8");
    /* Applying them again replaces, and frees, what the first pass set. */
    assert_int_equal(tn_conf_defaults(keys, &c), 0);
    assert_int_equal(c.cidrs.n, 1);
    tn_conf_fini(keys, &c);
    assert_null(c.name);
    assert_null(c.cidrs.v);
    assert_int_equal(c.cidrs.n, 0);
}

static void
test_conf_bad_default_is_reported(void **state)
{
    static const struct tn_conf_key bad[] = {
        { .key = "port",
          .type = TN_CONF_INT,
          .offset = OFF(port),
          .def = "0",
          .min = 1,
          .max = 65535 },
        { .key = NULL },
    };
    struct capture cap;
    struct tcfg c = { 0 };
    int r;

    (void)state;
    capture_start(&cap, 2);
    r = tn_conf_defaults(bad, &c);
    capture_end(&cap, err, sizeof(err));
    assert_int_equal(r, TN_ERR_CONFIG);
    assert_string_equal(err, "default: port: '0' is not a port (1-65535)\n");
}

static void
test_conf_loads_every_type(void **state)
{
    struct tcfg c = { 0 };
    char buf[TN_CIDR_STRLEN];

    (void)state;
    assert_int_equal(load(&c, "name: edge-1\n"
                              "server_addr: relay.example.com:443\n"
                              "listen_port: 12345\n"
                              "count: -5\n"
                              "verbose: yes\n"
                              "log:\n"
                              "  level: debug\n"
                              "timeout: 250ms\n"
                              "window: 16MiB\n"
                              "net: fd00:1::/32\n"
                              "target_cidr:\n"
                              "  - 100.64.0.0/10\n"
                              "  - 192.168.1.5\n"
                              "tls:\n"
                              "  cert_file: /etc/tn/cert.pem\n"
                              "  key_file: \"key file.pem\"\n"),
                     0);
    assert_string_equal(err, "");
    assert_string_equal(c.name, "edge-1");
    assert_string_equal(c.server, "relay.example.com:443");
    assert_int_equal(c.port, 12345);
    assert_int_equal(c.count, -5);
    assert_true(c.is_verbose);
    assert_int_equal(c.level, TN_LOG_DEBUG);
    assert_int_equal(c.timeout_ms, 250);
    assert_int_equal(c.window, 16 << 20);
    assert_string_equal(tn_cidr_format(&c.net, buf, sizeof(buf)), "fd00:1::/32");
    assert_int_equal(c.cidrs.n, 2);
    assert_string_equal(tn_cidr_format(&c.cidrs.v[0], buf, sizeof(buf)), "100.64.0.0/10");
    assert_string_equal(tn_cidr_format(&c.cidrs.v[1], buf, sizeof(buf)), "192.168.1.5/32");
    assert_string_equal(c.cert_file, "/etc/tn/cert.pem");
    assert_string_equal(c.key_file, "key file.pem");
    tn_conf_fini(keys, &c);
}

static void
test_conf_nested_keys_follow_dots(void **state)
{
    struct tcfg c = { 0 };

    (void)state;
    assert_int_equal(load(&c, "a:\n  b:\n    c: deep\ntls: {cert_file: c.pem}\n"), 0);
    assert_string_equal(c.deep, "deep");
    assert_string_equal(c.cert_file, "c.pem");
    assert_null(c.key_file);
    tn_conf_fini(keys, &c);
    /* A dotted key is not a second way to reach a nested one. */
    expect_error("tls.cert_file: x\n", "t.yaml:1:1: tls.cert_file: unknown key");
}

static void
test_conf_empty_documents_set_nothing(void **state)
{
    static const char *const docs[] = { "",    "---\n",  "# only a comment\n",
                                        "~\n", "tls:\n", "a:\n  b:\n" };
    struct tcfg c = { 0 };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        assert_int_equal(load(&c, docs[i]), 0);
        assert_string_equal(err, "");
    }
    assert_null(c.name);
    assert_int_equal(c.port, 0);
}

static void
test_conf_int_rejects_bad_values(void **state)
{
    struct tcfg c = { 0 };

    (void)state;
    expect_error("listen_port: 70000\n",
                 "t.yaml:1:14: listen_port: '70000' is not a port (1-65535)\n");
    expect_error("listen_port: 0\n", "listen_port: '0' is not a port (1-65535)");
    expect_error("listen_port: -1\n", "'-1' is not a port");
    expect_error("listen_port: 80a\n", "listen_port: '80a' is not an integer");
    expect_error("listen_port: 0x50\n", "'0x50' is not an integer");
    expect_error("listen_port: +80\n", "'+80' is not an integer");
    expect_error("listen_port: 99999999999999999999\n", "is not an integer");
    expect_error("listen_port:\n", "t.yaml:1:13: listen_port: needs a value");
    expect_error("count: 6\n", "count: '6' is out of range (-5 to 5)");
    expect_error("count: -6\n", "'-6' is out of range (-5 to 5)");
    assert_int_equal(load(&c, "count: 5\nlisten_port: 65535\n"), 0);
    assert_int_equal(c.count, 5);
    assert_int_equal(c.port, 65535);
    assert_int_equal(load(&c, "listen_port: \"443\"\n"), 0);
    assert_int_equal(c.port, 443);
}

static void
test_conf_bool_accepts_yaml_words(void **state)
{
    static const struct {
        const char *text;
        bool want;
    } cases[] = {
        { "verbose: true", true }, { "verbose: False", false }, { "verbose: YES", true },
        { "verbose: no", false },  { "verbose: On", true },     { "verbose: off", false },
    };
    struct tcfg c = { 0 };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        c.is_verbose = !cases[i].want;
        assert_int_equal(load(&c, cases[i].text), 0);
        assert_int_equal(c.is_verbose, cases[i].want);
    }
    expect_error("verbose: maybe\n",
                 "t.yaml:1:10: verbose: 'maybe' is not a boolean (true/false, yes/no, on/off)");
    expect_error("verbose: 1\n", "'1' is not a boolean");
}

static void
test_conf_enum_lists_choices(void **state)
{
    struct tcfg c = { 0 };

    (void)state;
    assert_int_equal(load(&c, "log: {level: error}\n"), 0);
    assert_int_equal(c.level, TN_LOG_ERR);
    expect_error("log:\n  level: loud\n",
                 "t.yaml:2:10: log.level: 'loud' is not one of: debug, info, warn, error\n");
    expect_error("log:\n  level: DEBUG\n", "'DEBUG' is not one of");
}

static void
test_conf_duration_units(void **state)
{
    static const struct {
        const char *text;
        int64_t want;
    } cases[] = {
        { "timeout: 250ms", 250 },  { "timeout: 10s", 10000 }, { "timeout: 2m", 120000 },
        { "timeout: 1h", 3600000 }, { "timeout: 30", 30000 },  { "timeout: 100ms", 100 },
    };
    struct tcfg c = { 0 };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(load(&c, cases[i].text), 0);
        assert_int_equal(c.timeout_ms, cases[i].want);
    }
    expect_error("timeout: 10x\n",
                 "t.yaml:1:10: timeout: '10x' is not a duration (e.g. 250ms, 10s, 2m, 1h)");
    expect_error("timeout: 1.5s\n", "'1.5s' is not a duration");
    expect_error("timeout: -1s\n", "'-1s' is not a duration");
    expect_error("timeout: s\n", "'s' is not a duration");
    expect_error("timeout: 10 s\n", "'10 s' is not a duration");
    expect_error("timeout: 99999999999999999h\n", "is not a duration");
    expect_error("timeout: 50ms\n", "timeout: '50ms' is too short (at least 100ms)");
    expect_error("timeout: 2h\n", "timeout: '2h' is too long (at most 1h)");
}

static void
test_conf_size_units(void **state)
{
    static const struct {
        const char *text;
        int64_t want;
    } cases[] = {
        { "window: 2048", 2048 },      { "window: 64KiB", 65536 },  { "window: 1MiB", 1 << 20 },
        { "window: 16MiB", 16 << 20 }, { "window: 1GiB", 1 << 30 }, { "window: 10KB", 10000 },
        { "window: 2MB", 2000000 },    { "window: 4096B", 4096 },
    };
    struct tcfg c = { 0 };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(load(&c, cases[i].text), 0);
        assert_int_equal(c.window, cases[i].want);
    }
    expect_error("window: 1XB\n",
                 "t.yaml:1:9: window: '1XB' is not a size (e.g. 512, 64KiB, 16MiB, 1GiB, 10MB)");
    expect_error("window: 1.5MiB\n", "'1.5MiB' is not a size");
    expect_error("window: -1\n", "'-1' is not a size");
    expect_error("window: 64kib\n", "'64kib' is not a size");
    expect_error("window: 99999999999GiB\n", "is not a size");
    expect_error("window: 512\n", "window: '512' is too small (at least 1KiB)");
    expect_error("window: 2GiB\n", "window: '2GiB' is too large (at most 1GiB)");
}

static void
test_conf_hostport_forms(void **state)
{
    static const char *const good[] = {
        "relay.example.com:443", "[::1]:8443",  ":9000", "10.0.0.1:1",
        "[fe80::1%eth0]:65535",  "my_host-2:80"
    };
    static const char *const bad[] = { "relay", "relay:0",  "relay:65536", "relay:",
                                       "[::1]", "[::1]443", "[zz]:1",      "::1:443",
                                       "a b:1", "host:+80", "host:8O",     "[::1:80" };
    struct tcfg c = { 0 };
    char doc[128];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        snprintf(doc, sizeof(doc), "server_addr: \"%s\"\n", good[i]);
        assert_int_equal(load(&c, doc), 0);
        assert_string_equal(c.server, good[i]);
    }
    tn_conf_fini(keys, &c);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(doc, sizeof(doc), "server_addr: \"%s\"\n", bad[i]);
        expect_error(doc, "t.yaml:1:14: server_addr: '");
        assert_non_null(strstr(err, bad[i]));
    }
    expect_error("server_addr: relay\n", "'relay' is not HOST:PORT");
    expect_error("server_addr: relay:70000\n", "'relay:70000' has no valid port (1-65535)");
    expect_error("server_addr: \"::1:443\"\n", "an IPv6 address goes in brackets");
    expect_error("server_addr: \"[zz]:1\"\n", "'zz' is not an IPv6 address");
}

static void
test_conf_string_limits(void **state)
{
    char *doc = malloc(4096 + 32);
    struct tcfg c = { 0 };

    (void)state;
    assert_non_null(doc);
    strcpy(doc, "name: ");
    memset(doc + 6, 'x', 4096);
    strcpy(doc + 6 + 4096, "\n");
    assert_int_equal(load(&c, doc), 0);
    assert_int_equal(strlen(c.name), 4096);
    strcpy(doc + 6 + 4096, "y\n");
    expect_error(doc, "t.yaml:1:7: name: the value is too long (at most 4096 bytes)");
    free(doc);
    expect_error("name: \"a\\0b\"\n", "t.yaml:1:7: name: the value contains a NUL character");
    /* An empty string, or YAML's null, is the key left out: its default (name's is "tunnel"),
     * else nothing at all: an empty token is no token, "output: null" no file named null. */
    for (const char *const *doc_ = (const char *const[]){ "\"\"", "", "~", "null", NULL };
         *doc_ != NULL; doc_++) {
        char text[64];

        assert_int_equal(load(&c, "name: x\ntls: {cert_file: x}\n"), 0);
        assert_string_equal(c.name, "x");
        snprintf(text, sizeof(text), "name: %s\ntls: {cert_file: %s}\n", *doc_, *doc_);
        assert_int_equal(load(&c, text), 0); /* over them, as a later source would */
        assert_string_equal(c.name, "tunnel");
        assert_null(c.cert_file);
    }
    assert_int_equal(load(&c, "name: \"null\"\n"), 0); /* quoted: the word itself */
    assert_string_equal(c.name, "null");
    tn_conf_fini(keys, &c);
}

static void
test_conf_cidr_values(void **state)
{
    struct tcfg c = { 0 };
    char buf[TN_CIDR_STRLEN];

    (void)state;
    assert_int_equal(load(&c, "net: 192.168.0.0/16\n"), 0);
    assert_string_equal(tn_cidr_format(&c.net, buf, sizeof(buf)), "192.168.0.0/16");
    expect_error("net: 10.0.0.1/8\n",
                 "t.yaml:1:6: net: '10.0.0.1/8' has host bits set (the network is 10.0.0.0/8)");
    expect_error("net: fd00::1/64\n", "'fd00::1/64' has host bits set (the network is fd00::/64)");
    expect_error("net: junk\n", "net: 'junk' is not a CIDR (a network like 10.0.0.0/8 or "
                                "fd00::/64, or one address)");
    expect_error("net: 10.0.0.0/08\n", "'10.0.0.0/08' is not a CIDR");
    expect_error("net: 10.0.0.0/33\n", "'10.0.0.0/33' is not a CIDR");
    expect_error("net: [10.0.0.0/8]\n", "t.yaml:1:6: net: expected a single value, got a list");
}

static void
test_conf_cidr_list_scalar_or_sequence(void **state)
{
    struct tcfg c = { 0 };
    char buf[TN_CIDR_STRLEN];

    (void)state;
    assert_int_equal(tn_conf_defaults(keys, &c), 0);
    assert_int_equal(load(&c, "target_cidr: 172.16.0.0/12\n"), 0);
    assert_int_equal(c.cidrs.n, 1);
    assert_string_equal(tn_cidr_format(&c.cidrs.v[0], buf, sizeof(buf)), "172.16.0.0/12");
    assert_int_equal(load(&c, "target_cidr: [10.1.0.0/16, \"fd00::/8\", 1.2.3.4]\n"), 0);
    assert_int_equal(c.cidrs.n, 3);
    assert_string_equal(tn_cidr_format(&c.cidrs.v[1], buf, sizeof(buf)), "fd00::/8");
    assert_int_equal(load(&c, "target_cidr: 10.0.0.0/8, 192.168.0.0/16\n"), 0);
    assert_int_equal(c.cidrs.n, 2);
    assert_string_equal(tn_cidr_format(&c.cidrs.v[1], buf, sizeof(buf)), "192.168.0.0/16");
    assert_int_equal(load(&c, "target_cidr: []\n"), 0);
    assert_int_equal(c.cidrs.n, 0);
    tn_conf_fini(keys, &c);
    expect_error("target_cidr:\n  - 10.0.0.0/8\n  - 10.0.0.1/8\n",
                 "t.yaml:3:5: target_cidr: '10.0.0.1/8' has host bits set");
    expect_error("target_cidr:\n  - 10.0.0.0/8\n  - {a: 1}\n",
                 "t.yaml:3:5: target_cidr: expected a CIDR in the list, got a mapping");
    expect_error("target_cidr: {a: 1}\n",
                 "t.yaml:1:14: target_cidr: expected a CIDR or a list of them, got a mapping");
    expect_error("target_cidr: 10.0.0.0/8,,nope\n", "'nope' is not a CIDR");
}

static void
test_conf_error_names_file_line_col(void **state)
{
    (void)state;
    expect_error("name: ok\n"
                 "tls:\n"
                 "  key_file: k.pem\n"
                 "  cert_file: [a, b]\n",
                 "t.yaml:4:14: tls.cert_file: expected a single value, got a list\n");
    expect_error("name: {a: 1}\n", "t.yaml:1:7: name: expected a single value, got a mapping\n");
}

static void
test_conf_unknown_key_lists_known_ones(void **state)
{
    (void)state;
    expect_error("name: x\nbogus: 1\n",
                 "t.yaml:2:1: bogus: unknown key (known keys: name, server_addr, listen_port, "
                 "count, verbose, log, timeout, window, net, target_cidr, tls, a, records)\n");
    expect_error("tls:\n  cert: x\n",
                 "t.yaml:2:3: tls.cert: unknown key (known keys in tls: cert_file, key_file)\n");
    expect_error("a:\n  b:\n    d: 1\n", "t.yaml:3:5: a.b.d: unknown key (known keys in a.b: c)");
    expect_error("log: {level: info, format: json}\n", "log.format: unknown key");
    expect_error("\"\": 1\n", "'': unknown key");
}

static void
test_conf_wrong_type_is_rejected(void **state)
{
    (void)state;
    expect_error("tls: x.pem\n",
                 "t.yaml:1:6: tls: expected a section with keys (cert_file, key_file), got a "
                 "single value\n");
    expect_error("tls: [a]\n",
                 "tls: expected a section with keys (cert_file, key_file), got a list");
    expect_error("listen_port: [1]\n", "listen_port: expected a single value, got a list");
    expect_error("- a\n- b\n",
                 "t.yaml:1:1: expected a mapping of keys at the top level, got a list");
    expect_error("just text\n", "expected a mapping of keys at the top level, got a single value");
    expect_error("? [a, b]\n: 1\n", "t.yaml:1:3: a key must be a name, not a list");
}

static void
test_conf_duplicate_key_is_rejected(void **state)
{
    (void)state;
    expect_error("name: a\nlisten_port: 1\nname: b\n",
                 "t.yaml:3:1: name: duplicate key (first at line 1)\n");
    expect_error("tls: {cert_file: a}\ntls: {key_file: b}\n",
                 "t.yaml:2:1: tls: duplicate key (first at line 1)");
    expect_error("tls:\n  cert_file: a\n  cert_file: b\n",
                 "t.yaml:3:3: tls.cert_file: duplicate key");
}

static void
test_conf_syntax_error_has_position(void **state)
{
    (void)state;
    expect_error("name: [a\n",
                 "t.yaml:2:1: did not find expected ',' or ']' (while parsing a flow sequence at "
                 "1:7)\n");
    expect_error("name: a\n bad: b\n",
                 "t.yaml:2:5: mapping values are not allowed in this context");
    expect_error("tls:\n\tcert_file: a\n",
                 "t.yaml:2:1: found character that cannot start any token");
    expect_error("name: *nope\n", "t.yaml:1:7: found undefined alias");
    expect_error("name: a\n---\nname: b\n", "t.yaml:3:1: only one YAML document is allowed");
    expect_error("name: \xff\n", "t.yaml: invalid leading UTF-8 octet at byte 6");
}

/* Deep nesting is refused before libyaml, whose time grows with the square of the depth. */
static void
test_conf_deep_nesting_is_refused(void **state)
{
    char doc[512];
    struct tcfg c = { 0 };

    (void)state;
    snprintf(
        doc, sizeof(doc), "name: rock 'n roll\nnet: %.65s%.65s\n",
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
        "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
    expect_error(doc, "t.yaml:2:69: lists or mappings nested more than 64 deep");
    /* Brackets in quotes and comments are text. */
    assert_int_equal(
        load(&c, "name: \"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\" "
                 "# [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n"),
        0);
    tn_conf_fini(keys, &c);
}

static void
test_conf_load_file_names_the_file(void **state)
{
    struct tcfg c = { 0 };
    struct capture cap;
    char path[256], want[512];
    int r;

    (void)state;
    write_file(path, sizeof(path), "name: from-file\nlisten_port: 70000\n");
    capture_start(&cap, 2);
    r = tn_conf_load_file(keys, &c, path);
    capture_end(&cap, err, sizeof(err));
    assert_int_equal(r, TN_ERR_CONFIG);
    snprintf(want, sizeof(want), "%s:2:14: listen_port: '70000' is not a port (1-65535)\n", path);
    assert_string_equal(err, want);
    assert_string_equal(c.name, "from-file");
    tn_conf_fini(keys, &c);
    unlink(path);

    capture_start(&cap, 2);
    r = tn_conf_load_file(keys, &c, path);
    capture_end(&cap, err, sizeof(err));
    assert_int_equal(r, TN_ERR_CONFIG);
    snprintf(want, sizeof(want), "%s: No such file or directory\n", path);
    assert_string_equal(err, want);
}

static void
test_cli_flags_override_file(void **state)
{
    struct tcfg c = { 0 };
    char path[256], arg[300];

    (void)state;
    write_file(path, sizeof(path), "name: file\nlisten_port: 1000\ntimeout: 1m\nverbose: true\n");
    assert_int_equal(RUN(&c, "--listen-port", "2000", "-c", path, "--name=flag"), 0);
    assert_string_equal(err, "");
    assert_int_equal(c.port, 2000);
    assert_string_equal(c.name, "flag");
    assert_int_equal(c.timeout_ms, 60000);
    assert_true(c.is_verbose);
    assert_int_equal(c.window, 1 << 20); /* the default stays */
    tn_conf_fini(keys, &c);

    snprintf(arg, sizeof(arg), "--config=%s", path);
    assert_int_equal(RUN(&c, arg, "--verbose=false", "--timeout", "5s", "--tls-cert", "c.pem"), 0);
    assert_int_equal(c.port, 1000);
    assert_false(c.is_verbose);
    assert_int_equal(c.timeout_ms, 5000);
    assert_string_equal(c.cert_file, "c.pem");
    tn_conf_fini(keys, &c);

    assert_int_equal(RUN(&c, "--config", path, "--name", "a", "--name", "b"), 0);
    assert_string_equal(c.name, "b");
    tn_conf_fini(keys, &c);
    unlink(path);
}

static void
test_cli_bool_flag_takes_no_value(void **state)
{
    struct tcfg c = { 0 };

    (void)state;
    assert_int_equal(RUN(&c, "--verbose", "--listen-port", "5"), 0);
    assert_true(c.is_verbose);
    assert_int_equal(c.port, 5);
    tn_conf_fini(keys, &c);
    assert_int_equal(RUN(&c, "--verbose", "x"), TN_ERR_CONFIG);
    assert_string_equal(err, "prog: unexpected argument 'x' (see --help)\n");
}

static void
test_cli_list_replaced_by_first_flag_then_appended(void **state)
{
    struct tcfg c = { 0 };
    char path[256], buf[TN_CIDR_STRLEN];

    (void)state;
    write_file(path, sizeof(path), "target_cidr: [10.1.0.0/16, 172.16.0.0/12]\n");
    assert_int_equal(RUN(&c, "-c", path), 0);
    assert_int_equal(c.cidrs.n, 2);
    tn_conf_fini(keys, &c);

    assert_int_equal(RUN(&c, "--cidr", "192.168.0.0/16", "-c", path, "--cidr=fd00::/8"), 0);
    assert_int_equal(c.cidrs.n, 2);
    assert_string_equal(tn_cidr_format(&c.cidrs.v[0], buf, sizeof(buf)), "192.168.0.0/16");
    assert_string_equal(tn_cidr_format(&c.cidrs.v[1], buf, sizeof(buf)), "fd00::/8");
    tn_conf_fini(keys, &c);
    unlink(path);

    /* Without a file, the first flag replaces the default list. */
    assert_int_equal(RUN(&c, "--cidr", "100.64.0.0/10"), 0);
    assert_int_equal(c.cidrs.n, 1);
    assert_string_equal(tn_cidr_format(&c.cidrs.v[0], buf, sizeof(buf)), "100.64.0.0/10");
    tn_conf_fini(keys, &c);
}

static void
test_cli_help_prints_usage_from_table(void **state)
{
    struct tcfg c = { 0 };

    (void)state;
    assert_int_equal(RUN(&c, "--help"), TN_CLI_EXIT);
    assert_string_equal(err, "");
    assert_non_null(strstr(out, "Usage: prog [OPTIONS]\nTests the configuration module.\n"));
    assert_non_null(strstr(out, "  --listen-port PORT"));
    assert_non_null(strstr(out, "local port for redirected connections (default: 9999) "
                                "[yaml: listen_port, env: TUNNEL_LISTEN_PORT]\n"));
    assert_non_null(strstr(out, "--server ADDR:PORT"));
    assert_non_null(strstr(out, "--log-level NAME"));
    assert_non_null(
        strstr(out, "log threshold (one of: debug, info, warn, error) (default: info)"));
    assert_non_null(strstr(out, "--cidr CIDR"));
    assert_non_null(strstr(out, "[yaml: tls.cert_file, env: TUNNEL_TLS_CERT_FILE]"));
    assert_non_null(strstr(out, "-c, --config FILE"));
    assert_non_null(strstr(out, "-h, --help"));
    assert_non_null(strstr(out, "--version"));
    assert_non_null(strstr(out, "a.b.c"));
    assert_null(c.name); /* nothing was loaded */

    assert_int_equal(RUN(&c, "--listen-port", "1", "-h"), TN_CLI_EXIT);
    assert_non_null(strstr(out, "Usage: prog [OPTIONS]"));
}

static void
test_cli_version_prints_version(void **state)
{
    struct tcfg c = { 0 };

    (void)state;
    assert_int_equal(RUN(&c, "--version"), TN_CLI_EXIT);
    assert_string_equal(out, "prog " TN_VERSION "\n");
    assert_string_equal(err, "");
}

static void
test_cli_missing_value_is_an_error(void **state)
{
    struct tcfg c = { 0 };

    (void)state;
    assert_int_equal(RUN(&c, "--listen-port"), TN_ERR_CONFIG);
    assert_string_equal(err, "prog: --listen-port needs a value\n");
    assert_int_equal(RUN(&c, "--server", "--cidr", "10.0.0.0/8"), TN_ERR_CONFIG);
    assert_string_equal(err, "prog: --server needs a value\n");
    assert_int_equal(RUN(&c, "-c"), TN_ERR_CONFIG);
    assert_string_equal(err, "prog: -c needs a value\n");
    assert_int_equal(RUN(&c, "--listen-port="), TN_ERR_CONFIG);
    assert_string_equal(err, "prog: --listen-port: needs a value\n");
}

static void
test_cli_unknown_option_and_argument(void **state)
{
    struct tcfg c = { 0 };

    (void)state;
    assert_int_equal(RUN(&c, "--foo"), TN_ERR_CONFIG);
    assert_string_equal(err, "prog: unknown option --foo (see --help)\n");
    assert_int_equal(RUN(&c, "--foo=bar"), TN_ERR_CONFIG);
    assert_string_equal(err, "prog: unknown option --foo (see --help)\n");
    assert_int_equal(RUN(&c, "-x"), TN_ERR_CONFIG);
    assert_string_equal(err, "prog: unknown option -x (see --help)\n");
    assert_int_equal(RUN(&c, "--count", "1"), TN_ERR_CONFIG); /* a key without a flag */
    assert_string_equal(err, "prog: unknown option --count (see --help)\n");
    assert_int_equal(RUN(&c, "stray"), TN_ERR_CONFIG);
    assert_string_equal(err, "prog: unexpected argument 'stray' (see --help)\n");
    assert_int_equal(RUN(&c, "--", "stray"), TN_ERR_CONFIG);
    assert_string_equal(err, "prog: unexpected argument 'stray' (see --help)\n");
    assert_int_equal(RUN(&c, "-"), TN_ERR_CONFIG);
    assert_string_equal(err, "prog: unexpected argument '-' (see --help)\n");
}

static void
test_cli_bad_value_names_the_flag(void **state)
{
    struct tcfg c = { 0 };

    (void)state;
    assert_int_equal(RUN(&c, "--name", "x", "--listen-port", "0"), TN_ERR_CONFIG);
    assert_string_equal(err, "prog: --listen-port: '0' is not a port (1-65535)\n");
    assert_null(c.name); /* released on error */
    assert_int_equal(c.cidrs.n, 0);
    assert_int_equal(RUN(&c, "--cidr", "10.0.0.0/8", "--cidr=10.0.0.1/8"), TN_ERR_CONFIG);
    assert_string_equal(err, "prog: --cidr: '10.0.0.1/8' has host bits set (the network is "
                             "10.0.0.0/8)\n");
    assert_int_equal(RUN(&c, "--log-level", "loud"), TN_ERR_CONFIG);
    assert_string_equal(err, "prog: --log-level: 'loud' is not one of: debug, info, warn, error\n");
}

static void
test_cli_config_errors(void **state)
{
    struct tcfg c = { 0 };
    char path[256], want[512];

    (void)state;
    write_file(path, sizeof(path), "name: a\ntls:\n  cert: x\n");
    assert_int_equal(RUN(&c, "-c", path, "--name", "b"), TN_ERR_CONFIG);
    snprintf(want, sizeof(want),
             "%s:3:3: tls.cert: unknown key (known keys in tls: cert_file, key_file)\n", path);
    assert_string_equal(err, want);
    assert_null(c.name);
    assert_int_equal(RUN(&c, "-c", path, "--config", path), TN_ERR_CONFIG);
    assert_string_equal(err, "prog: --config: only one configuration file may be given\n");
    unlink(path);
}

/* Every error path above, once more, with a leak check when built with AddressSanitizer. */
static void
test_conf_list_of_mappings(void **state)
{
    struct tcfg c = { 0 };
    struct rec *r;
    char buf[TN_CIDR_STRLEN];

    (void)state;
    assert_int_equal(load(&c, "records:\n"
                              "  - id: a\n"
                              "    nets: [10.0.0.0/8, 192.168.0.0/16]\n"
                              "  - id: b\n"
                              "    weight: 3\n"),
                     0);
    assert_int_equal(c.records.n, 2);
    r = c.records.v;
    assert_string_equal(r[0].id, "a");
    assert_int_equal(r[0].nets.n, 2);
    assert_int_equal(r[0].weight, 1); /* the record's default */
    assert_string_equal(r[1].id, "b");
    assert_int_equal(r[1].nets.n, 0);
    assert_int_equal(r[1].weight, 3);
    assert_string_equal(tn_cidr_format(&r[0].nets.v[1], buf, sizeof(buf)), "192.168.0.0/16");
    /* A second document replaces the list. */
    assert_int_equal(load(&c, "records: [{id: z}]\n"), 0);
    assert_int_equal(c.records.n, 1);
    tn_conf_fini(keys, &c);
    assert_null(c.records.v);

    expect_error("records:\n  - nets: 10.0.0.0/8\n", "t.yaml:2:5: records: 'id' is required");
    expect_error("records:\n  - id: a\n    colour: red\n", "t.yaml:3:5: colour: unknown key");
    expect_error("records:\n  - id: a\n    weight: 10\n",
                 "t.yaml:3:13: weight: '10' is out of range");
    expect_error("records: [a, b]\n", "t.yaml:1:11: records: expected a mapping in the list");
    expect_error("records: x\n", "t.yaml:1:10: records: expected a list of mappings");
}

static void
test_cli_list_of_mappings_from_flags(void **state)
{
    struct tcfg c = { 0 };
    struct rec *r;
    char path[256];

    (void)state;
    write_file(path, sizeof(path), "records: [{id: file}]\n");
    assert_int_equal(RUN(&c, "-c", path, "--record", "id=a,nets=10.0.0.0/8,nets=172.16.0.0/12",
                         "--record=id=b,weight=2"),
                     0);
    assert_int_equal(c.records.n, 2); /* the first flag replaced the file's list */
    r = c.records.v;
    assert_string_equal(r[0].id, "a");
    assert_int_equal(r[0].nets.n, 2); /* a list key repeats within one record */
    assert_int_equal(r[1].weight, 2);
    tn_conf_fini(keys, &c);
    unlink(path);

    assert_int_equal(RUN(&c, "--record", "nets=10.0.0.0/8"), TN_ERR_CONFIG);
    assert_non_null(strstr(err, "prog: --record: 'id' is required"));
    assert_int_equal(RUN(&c, "--record", "id=a,colour=red"), TN_ERR_CONFIG);
    assert_non_null(strstr(err, "unknown key 'colour'"));
    assert_int_equal(RUN(&c, "--record", "id"), TN_ERR_CONFIG);
    assert_non_null(strstr(err, "'id' is not key=value"));
    /* As strict as YAML: a key twice, or a value past the limit, is refused, not cut. */
    assert_int_equal(RUN(&c, "--record", "id=a,id=b"), TN_ERR_CONFIG);
    assert_non_null(strstr(err, "prog: --record: 'id' is given twice"));
    {
        char *big = malloc(5000 + 8);

        assert_non_null(big);
        memcpy(big, "id=", 3);
        memset(big + 3, 'x', 5000);
        big[5003] = '\0';
        assert_int_equal(RUN(&c, "--record", big), TN_ERR_CONFIG);
        assert_non_null(strstr(err, "a key=value is too long"));
        free(big);
    }
}

static void
test_cli_list_flag_short_form_splits_fields(void **state)
{
    static const char *const fields[] = { "weight", "id", NULL };
    static const struct tn_conf_key short_keys[] = {
        { .key = "records",
          .flag = "record",
          .type = TN_CONF_LIST,
          .offset = OFF(records),
          .metavar = "WEIGHT:ID",
          .sub = rec_keys,
          .elem_size = sizeof(struct rec),
          .flag_fields = fields },
        { .key = NULL },
    };
    static const struct tn_cli short_cli = { "prog", NULL, short_keys };
    char *argv[] = { "prog", "--record", "3:a:b", "--record", "id=c", NULL };
    char *bad[] = { "prog", "--record", "3", NULL };
    char *range[] = { "prog", "--record", "12:x", NULL };
    struct tcfg c = { 0 };
    struct capture cap;
    struct rec *r;
    int rc;

    (void)state;
    assert_int_equal(tn_cli_parse(&short_cli, &c, 5, argv), 0);
    assert_int_equal(c.records.n, 2);
    r = c.records.v;
    assert_int_equal(r[0].weight, 3);
    assert_string_equal(r[0].id, "a:b"); /* the last field takes the rest */
    assert_string_equal(r[1].id, "c");   /* key=value still works */
    tn_conf_fini(short_keys, &c);
    capture_start(&cap, 2);
    rc = tn_cli_parse(&short_cli, &c, 3, bad);
    capture_end(&cap, err, sizeof(err));
    assert_int_equal(rc, TN_ERR_CONFIG);
    assert_non_null(strstr(err, "'3' is too short: give WEIGHT:ID"));
    capture_start(&cap, 2);
    rc = tn_cli_parse(&short_cli, &c, 3, range);
    capture_end(&cap, err, sizeof(err));
    assert_int_equal(rc, TN_ERR_CONFIG);
    assert_non_null(strstr(err, "--record"));
}

static void
test_conf_top_level_list_fills_its_key(void **state)
{
    static const struct tn_conf_key top_keys[] = {
        { .key = "name", .type = TN_CONF_STR, .offset = OFF(name) },
        { .key = "records",
          .type = TN_CONF_LIST,
          .offset = OFF(records),
          .sub = rec_keys,
          .elem_size = sizeof(struct rec),
          .is_top_list = true },
        { .key = NULL },
    };
    static const char json[] = "[{\"id\": \"x\", \"weight\": 2}, {\"id\": \"y\"}]";
    static const char bad[] = "[{\"id\": \"x\", \"colour\": 2}]";
    struct tcfg c = { 0 };
    struct capture cap;
    struct rec *r;
    int rc;

    (void)state;
    assert_int_equal(tn_conf_load_string(top_keys, &c, "m.json", json, strlen(json)), 0);
    assert_int_equal(c.records.n, 2);
    r = c.records.v;
    assert_string_equal(r[0].id, "x");
    assert_int_equal(r[0].weight, 2);
    assert_string_equal(r[1].id, "y");
    tn_conf_fini(top_keys, &c);
    capture_start(&cap, 2);
    rc = tn_conf_load_string(top_keys, &c, "m.json", bad, strlen(bad));
    capture_end(&cap, err, sizeof(err));
    tn_conf_fini(top_keys, &c);
    assert_int_equal(rc, TN_ERR_CONFIG);
    assert_non_null(strstr(err, "m.json:1:14: colour: unknown key (known keys: id, nets, weight)"));
}

static void
test_conf_bool_with_a_section_turns_on(void **state)
{
    static const struct tn_conf_key sw_keys[] = {
        { .key = "verbose", .type = TN_CONF_BOOL, .offset = OFF(is_verbose) },
        { .key = "verbose.name", .type = TN_CONF_STR, .offset = OFF(name) },
        { .key = NULL },
    };
    static const char on[] = "verbose: {name: x}\n", off[] = "verbose: false\n";
    static const char bad[] = "verbose: {colour: x}\n";
    struct tcfg c = { 0 };
    struct capture cap;
    int rc;

    (void)state;
    assert_int_equal(tn_conf_load_string(sw_keys, &c, "t.yaml", on, strlen(on)), 0);
    assert_true(c.is_verbose);
    assert_string_equal(c.name, "x");
    tn_conf_fini(sw_keys, &c);
    assert_int_equal(tn_conf_load_string(sw_keys, &c, "t.yaml", off, strlen(off)), 0);
    assert_false(c.is_verbose);
    capture_start(&cap, 2);
    rc = tn_conf_load_string(sw_keys, &c, "t.yaml", bad, strlen(bad));
    capture_end(&cap, err, sizeof(err));
    tn_conf_fini(sw_keys, &c);
    assert_int_equal(rc, TN_ERR_CONFIG);
    assert_non_null(strstr(err, "verbose.colour: unknown key"));
}

static void
test_cli_precedence_flag_env_file(void **state)
{
    struct tcfg c = { 0 };
    struct rec *r;
    char path[256];

    (void)state;
    write_file(
        path, sizeof(path),
        "{\"listen_port\": 1111, \"name\": \"file\", \"tls\": {\"cert_file\": \"f.pem\"}}\n");
    unsetenv("TUNNEL_LISTEN_PORT");
    unsetenv("TUNNEL_NAME");
    /* A JSON file alone. */
    assert_int_equal(RUN(&c, "-c", path), 0);
    assert_int_equal(c.port, 1111);
    assert_string_equal(c.cert_file, "f.pem");
    tn_conf_fini(keys, &c);
    /* The environment over the file, for nested keys too. */
    setenv("TUNNEL_LISTEN_PORT", "2222", 1);
    setenv("TUNNEL_TLS_CERT_FILE", "e.pem", 1);
    setenv("TUNNEL_RECORDS", "id=a,weight=2;id=b", 1);
    assert_int_equal(RUN(&c, "-c", path), 0);
    assert_int_equal(c.port, 2222);
    assert_string_equal(c.cert_file, "e.pem");
    assert_string_equal(c.name, "file");
    assert_int_equal(c.records.n, 2);
    r = c.records.v;
    assert_int_equal(r[0].weight, 2);
    assert_string_equal(r[1].id, "b");
    tn_conf_fini(keys, &c);
    /* A flag over both. */
    assert_int_equal(RUN(&c, "-c", path, "--listen-port", "3333"), 0);
    assert_int_equal(c.port, 3333);
    tn_conf_fini(keys, &c);
    /* A bad value names the variable. */
    setenv("TUNNEL_LISTEN_PORT", "70000", 1);
    assert_int_equal(RUN(&c, "-c", path), TN_ERR_CONFIG);
    assert_non_null(strstr(err, "prog: TUNNEL_LISTEN_PORT: '70000' is not a port"));
    unsetenv("TUNNEL_LISTEN_PORT");
    unsetenv("TUNNEL_TLS_CERT_FILE");
    unsetenv("TUNNEL_RECORDS");
    unlink(path);
}

static void
test_cli_required_key_must_be_set(void **state)
{
    static const struct tn_conf_key req_keys[] = {
        { .key = "server_addr",
          .flag = "server",
          .type = TN_CONF_HOSTPORT,
          .offset = OFF(server),
          .is_required = true },
        { .key = NULL },
    };
    static const struct tn_cli req_cli = { "prog", NULL, req_keys };
    struct tcfg c = { 0 };
    struct capture cap;
    char *argv[] = { "prog", "--server", "r:1", NULL };
    int r;

    (void)state;
    capture_start(&cap, 2);
    r = tn_cli_parse(&req_cli, &c, 1, argv);
    capture_end(&cap, err, sizeof(err));
    assert_int_equal(r, TN_ERR_CONFIG);
    assert_string_equal(
        err, "prog: --server (server_addr, TUNNEL_SERVER_ADDR) is required (see --help)\n");
    assert_int_equal(tn_cli_parse(&req_cli, &c, 3, argv), 0);
    assert_string_equal(c.server, "r:1");
    tn_conf_fini(req_keys, &c);
}

static void
test_conf_error_paths_do_not_leak(void **state)
{
    static const char *const docs[] = {
        "name: a\nname: b\n",
        "name: a\ntarget_cidr: [10.0.0.0/8, nope]\n",
        "name: a\ntls: {cert_file: a, key_file: [b]}\n",
        "name: [a\n",
        "- a\n",
        "name: a\n---\nname: b\n",
        "name: a\nbogus: 1\n",
        "tls: {cert_file: a}\nnet: 1.2.3.4/0\n",
    };
    struct tcfg c = { 0 };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        assert_int_equal(tn_conf_defaults(keys, &c), 0);
        assert_int_equal(load(&c, docs[i]), TN_ERR_CONFIG);
        tn_conf_fini(keys, &c);
    }
    assert_int_equal(RUN(&c, "--name", "a", "--cidr", "10.0.0.0/8", "--cidr", "x"), TN_ERR_CONFIG);
    assert_int_equal(RUN(&c, "--name", "a", "--tls-cert", "c", "--bogus"), TN_ERR_CONFIG);
    assert_int_equal(RUN(&c, "--name", "a", "--help"), TN_CLI_EXIT);
    assert_int_equal(RUN(&c, "--name", "a", "--tls-cert", "c", "--cidr", "1.2.3.4"), 0);
    tn_conf_fini(keys, &c);
#if defined(__SANITIZE_ADDRESS__)
    assert_int_equal(__lsan_do_recoverable_leak_check(), 0);
#endif
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conf_defaults_fill_struct),
        cmocka_unit_test(test_conf_bad_default_is_reported),
        cmocka_unit_test(test_conf_loads_every_type),
        cmocka_unit_test(test_conf_nested_keys_follow_dots),
        cmocka_unit_test(test_conf_empty_documents_set_nothing),
        cmocka_unit_test(test_conf_int_rejects_bad_values),
        cmocka_unit_test(test_conf_bool_accepts_yaml_words),
        cmocka_unit_test(test_conf_enum_lists_choices),
        cmocka_unit_test(test_conf_duration_units),
        cmocka_unit_test(test_conf_size_units),
        cmocka_unit_test(test_conf_hostport_forms),
        cmocka_unit_test(test_conf_string_limits),
        cmocka_unit_test(test_conf_cidr_values),
        cmocka_unit_test(test_conf_cidr_list_scalar_or_sequence),
        cmocka_unit_test(test_conf_error_names_file_line_col),
        cmocka_unit_test(test_conf_unknown_key_lists_known_ones),
        cmocka_unit_test(test_conf_wrong_type_is_rejected),
        cmocka_unit_test(test_conf_duplicate_key_is_rejected),
        cmocka_unit_test(test_conf_syntax_error_has_position),
        cmocka_unit_test(test_conf_deep_nesting_is_refused),
        cmocka_unit_test(test_conf_load_file_names_the_file),
        cmocka_unit_test(test_cli_flags_override_file),
        cmocka_unit_test(test_cli_bool_flag_takes_no_value),
        cmocka_unit_test(test_cli_list_replaced_by_first_flag_then_appended),
        cmocka_unit_test(test_cli_help_prints_usage_from_table),
        cmocka_unit_test(test_cli_version_prints_version),
        cmocka_unit_test(test_cli_missing_value_is_an_error),
        cmocka_unit_test(test_cli_unknown_option_and_argument),
        cmocka_unit_test(test_cli_bad_value_names_the_flag),
        cmocka_unit_test(test_cli_config_errors),
        cmocka_unit_test(test_conf_list_of_mappings),
        cmocka_unit_test(test_cli_list_of_mappings_from_flags),
        cmocka_unit_test(test_cli_list_flag_short_form_splits_fields),
        cmocka_unit_test(test_conf_top_level_list_fills_its_key),
        cmocka_unit_test(test_cli_precedence_flag_env_file),
        cmocka_unit_test(test_conf_bool_with_a_section_turns_on),
        cmocka_unit_test(test_cli_required_key_must_be_set),
        cmocka_unit_test(test_conf_error_paths_do_not_leak),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
