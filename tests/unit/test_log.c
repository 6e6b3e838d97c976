/* SPDX-License-Identifier: MIT */
/* Unit tests for libtn/log.c: JSON lines (flow id taken from a message, event fields, escaping),
 * the text form of events, rotation by size with N files kept, the audit file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tn/log.h"

static char dir[] = "/tmp/test_log.XXXXXX";

/* The whole of |name| in the test directory (freed by the caller), or NULL when absent. */
static char *
slurp(const char *name)
{
    char path[256], *s;
    FILE *f;
    long n;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if ((f = fopen(path, "r")) == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    s = calloc(1, (size_t)n + 1);
    assert_non_null(s);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return s;
}

static void
path_of(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", dir, name);
}

static void
test_log_json_lines(void **state)
{
    char path[256], *s;

    (void)state;
    path_of(path, sizeof(path), "json.log");
    assert_int_equal(tn_log_open("unit", TN_LOG_DEBUG, TN_LOG_JSON, path), 0);
    tn_log_info("flow=0123456789abcdef said \"hi\"\tand left");
    tn_log_debug("no flow here");
    tn_log_event(TN_LOG_INFO, "flow.end", 0xabcULL, "the text form",
                 "client=c-1 up=42 down=007 reason=\"reset by peer\" id=x\"y");
    /* What a peer sent stays valid UTF-8 JSON, and no control reaches a terminal: C0, DEL and
     * C1 as \u00XX; a byte of no well-formed character (overlong, surrogate, past U+10FFFF,
     * cut short) as U+FFFD. */
    tn_log_event(TN_LOG_INFO, "http.request", 0,
                 "GET /a\x1b[2J\x7f\xc2\x9b"
                 "1m \xc3\xa9",
                 "path=\xc0\xaf\xe0\x80\xaf\xed\xa0\x80\xf4\x90\x80\x80\xf0\x9f\x98\x80\xe2\x82");
    tn_log_close();
    s = slurp("json.log");
    assert_non_null(s);
    assert_non_null(
        strstr(s, "\"level\":\"info\",\"component\":\"unit\",\"flow\":\"0123456789abcdef\","
                  "\"event\":\"log\",\"fields\":{},\"msg\":\"said \\\"hi\\\"\\u0009and "
                  "left\"}\n"));
    assert_non_null(strstr(s, "\"component\":\"unit\",\"event\":\"log\",\"fields\":{},\"msg\":\"no "
                              "flow here\"}\n"));
    /* Digits are numbers, except with a leading zero; a quoted value keeps its spaces. */
    assert_non_null(strstr(s, "\"flow\":\"0000000000000abc\",\"event\":\"flow.end\",\"fields\":{"
                              "\"client\":\"c-1\",\"up\":42,\"down\":\"007\",\"reason\":\"reset by "
                              "peer\",\"id\":\"x\\\"y\"},\"msg\":\"the text form\"}\n"));
    assert_non_null(strstr(s, "\"fields\":{\"path\":\"\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd"
                              "\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\xf0\x9f\x98\x80"
                              "\\ufffd\\ufffd\"},\"msg\":\"GET /a\\u001b[2J\\u007f\\u009b1m "
                              "\xc3\xa9\"}\n"));
    free(s);
}

/* A message too long for a line once escaped still makes one whole JSON object: the fields
 * left out, the message shortened, "truncated":true. */
static void
test_log_json_cut(void **state)
{
    char path[256], msg[1000], *s, *p;
    int n = 0;

    (void)state;
    memset(msg, '\x01', sizeof(msg) - 1); /* each byte becomes \u0001: six times as long */
    msg[sizeof(msg) - 1] = '\0';
    path_of(path, sizeof(path), "cut.log");
    assert_int_equal(tn_log_open("unit", TN_LOG_INFO, TN_LOG_JSON, path), 0);
    tn_log_event(TN_LOG_INFO, "http.request", 0, msg, "path=/x status=200");
    tn_log_info("short");
    tn_log_close();
    s = slurp("cut.log");
    assert_non_null(s);
    assert_non_null(strstr(s, "\"event\":\"http.request\",\"fields\":{},\"truncated\":true,"
                              "\"msg\":\"\\u0001"));
    for (p = s; (p = strstr(p, "\\u0001")) != NULL; p++)
        n++;
    assert_int_equal(n, 256);
    assert_non_null(strstr(s, "\\u0001\"}\n{"));
    assert_non_null(strstr(s, "\"msg\":\"short\"}\n"));
    free(s);
}

/* What file |name| holds after a message past the formatting buffer (1 KiB), then a short one,
 * in |format| (freed by the caller). */
static char *
log_long_then_short(const char *name, enum tn_log_format format)
{
    char path[256], long_arg[2000], *s;

    memset(long_arg, 'x', sizeof(long_arg) - 1);
    long_arg[sizeof(long_arg) - 1] = '\0';
    path_of(path, sizeof(path), name);
    assert_int_equal(tn_log_open("unit", TN_LOG_INFO, format, path), 0);
    tn_log_info("value: %s", long_arg);
    tn_log_info("fits");
    tn_log_close();
    assert_non_null(s = slurp(name));
    return s;
}

/* A message too long is logged cut, and the line says so, in both formats; one that fits is
 * not marked. */
static void
test_log_msg_cut(void **state)
{
    char *s = log_long_then_short("msgcut.json", TN_LOG_JSON), *p;

    (void)state;
    assert_non_null(strstr(s, "\"fields\":{},\"truncated\":true,\"msg\":\"value: xxx"));
    assert_non_null(p = strstr(s, "\"msg\":\"fits\"}\n"));
    assert_null(strstr(p - 40, "truncated"));
    free(s);
    s = log_long_then_short("msgcut.txt", TN_LOG_TEXT);
    assert_non_null(strstr(s, "xxx (truncated)\n"));
    assert_non_null(strstr(s, "info: fits\n"));
    free(s);
}

/* Lines from one call site: TN_LOG_RATE_BURST a second, then the next says how many were
 * held back. */
static void
test_log_rated(void **state)
{
    struct tn_log_rate rate = { .second = INT64_MAX }; /* this second lasts */
    char path[256], *s, *p;
    int i, n = 0;

    (void)state;
    path_of(path, sizeof(path), "rated.log");
    assert_int_equal(tn_log_open("unit", TN_LOG_INFO, TN_LOG_TEXT, path), 0);
    for (i = 0; i < 25; i++)
        tn_log_rated(&rate, TN_LOG_WARN, "line %d", i);
    rate.second = 0; /* and is over */
    tn_log_rated(&rate, TN_LOG_WARN, "after");
    tn_log_close();
    s = slurp("rated.log");
    assert_non_null(s);
    for (p = s; (p = strstr(p, " line ")) != NULL; p++)
        n++;
    assert_int_equal(n, TN_LOG_RATE_BURST);
    assert_non_null(strstr(s, "after: 15 more of these not logged\n"));
    free(s);
}

static void
test_log_text_events(void **state)
{
    char path[256], *s;

    (void)state;
    path_of(path, sizeof(path), "text.log");
    assert_int_equal(tn_log_open("unit", TN_LOG_INFO, TN_LOG_TEXT, path), 0);
    tn_log_event(TN_LOG_INFO, "flow.end", 0xabcULL, "client=c-1 a -> b up=1", "client=c-1");
    tn_log_event(TN_LOG_INFO, "exit.summary", 0, NULL, "flows=3");
    tn_log_event(TN_LOG_DEBUG, "flow.end", 1, "below the level", "x=1");
    /* What a peer sent (a request's path) cannot forge a line nor drive a terminal. */
    tn_log_info("http web: GET /a\x1b[2J\nforged line\x7f\xc2\x9b"
                "2J \xc3\xa9 \x9b"
                "1m 200 \xe0\x80\xaf\xed\xa0\x80"); /* overlong, surrogate */
    tn_log_close();
    s = slurp("text.log");
    assert_non_null(s);
    assert_non_null(
        strstr(s, " unit info: http web: GET /a\\x1b[2J\\x0aforged line\\x7f\\xc2\\x9b2J \xc3\xa9 "
                  "\\x9b1m 200 \\xe0\\x80\\xaf\\xed\\xa0\\x80\n"));
    assert_null(strchr(s, '\x1b'));
    assert_non_null(strstr(s, " unit info: flow=0000000000000abc client=c-1 a -> b up=1\n"));
    assert_non_null(strstr(s, " unit info: exit.summary flows=3\n"));
    assert_null(strstr(s, "below the level"));
    free(s);
}

static void
test_log_rotation(void **state)
{
    char path[256], *s;
    struct stat st;
    int i;

    (void)state;
    path_of(path, sizeof(path), "rot.log");
    assert_int_equal(tn_log_open("unit", TN_LOG_INFO, TN_LOG_TEXT, path), 0);
    tn_log_set_rotation(300, 2);
    for (i = 0; i < 40; i++)
        tn_log_info("line %02d of a log that rotates every 300 bytes", i);
    tn_log_close();
    tn_log_set_rotation(0, 0);
    /* The current file is below the size; the newest lines are in it or, just rotated, in .1 */
    path_of(path, sizeof(path), "rot.log");
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_size < 300);
    s = slurp(st.st_size > 0 ? "rot.log" : "rot.log.1");
    assert_non_null(s);
    assert_non_null(strstr(s, "line 39"));
    free(s);
    for (i = 1; i <= 2; i++) {
        snprintf(path, sizeof(path), "%s/rot.log.%d", dir, i);
        assert_int_equal(stat(path, &st), 0);
        assert_true(st.st_size >= 300 && st.st_size < 300 + 120);
    }
    snprintf(path, sizeof(path), "%s/rot.log.3", dir);
    assert_int_not_equal(stat(path, &st), 0);
    s = slurp("rot.log.1"); /* the newer of the two kept */
    assert_non_null(s);
    assert_null(strstr(s, "line 00"));
    free(s);
}

static void
test_log_audit(void **state)
{
    char path[256], audit[256], *s;

    (void)state;
    path_of(path, sizeof(path), "main.log");
    path_of(audit, sizeof(audit), "audit.log");
    assert_int_equal(tn_log_open("unit", TN_LOG_WARN, TN_LOG_TEXT, path), 0);
    assert_int_equal(tn_log_audit_open(audit), 0);
    tn_log_event(TN_LOG_INFO, "flow.end", 7, "text", "up=1"); /* below warn: audit only */
    tn_log_event(TN_LOG_INFO, "other.event", 7, "text", "up=2");
    /* Reopening the log (SIGHUP) reopens the audit file: logrotate moved it. */
    snprintf(path, sizeof(path), "%s/audit.log.moved", dir);
    assert_int_equal(rename(audit, path), 0);
    path_of(path, sizeof(path), "main.log");
    assert_int_equal(tn_log_open("unit", TN_LOG_WARN, TN_LOG_TEXT, path), 0);
    tn_log_event(TN_LOG_INFO, "flow.end", 8, "text", "up=3");
    tn_log_close();
    s = slurp("audit.log.moved");
    assert_non_null(s);
    assert_non_null(
        strstr(s, "\"flow\":\"0000000000000007\",\"event\":\"flow.end\",\"fields\":{\"up\":1}"));
    assert_null(strstr(s, "other.event"));
    assert_null(strstr(s, "\"up\":3"));
    free(s);
    s = slurp("audit.log");
    assert_non_null(s);
    assert_non_null(strstr(s, "\"fields\":{\"up\":3}"));
    free(s);
    s = slurp("main.log");
    assert_true(s == NULL || s[0] == '\0');
    free(s);
}

/* A log on stderr reopened (SIGHUP) keeps its audit file. */
static void
test_log_audit_with_stderr(void **state)
{
    char audit[256], *s;

    (void)state;
    path_of(audit, sizeof(audit), "audit2.log");
    assert_int_equal(tn_log_open("unit", TN_LOG_ERR, TN_LOG_TEXT, NULL), 0);
    assert_int_equal(tn_log_audit_open(audit), 0);
    assert_int_equal(tn_log_open("unit", TN_LOG_ERR, TN_LOG_TEXT, "stderr"), 0);
    tn_log_event(TN_LOG_INFO, "flow.end", 9, "text", "up=9");
    tn_log_close();
    s = slurp("audit2.log");
    assert_non_null(s);
    assert_non_null(strstr(s, "\"fields\":{\"up\":9}"));
    free(s);
}

static int
setup(void **state)
{
    (void)state;
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
    char cmd[300];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_json_lines),  cmocka_unit_test(test_log_json_cut),
        cmocka_unit_test(test_log_text_events), cmocka_unit_test(test_log_rotation),
        cmocka_unit_test(test_log_audit),       cmocka_unit_test(test_log_audit_with_stderr),
        cmocka_unit_test(test_log_rated),       cmocka_unit_test(test_log_msg_cut),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
