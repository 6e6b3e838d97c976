/* SPDX-License-Identifier: MIT */
/* Unit tests for libtn/metrics.c: series made once per label set, the exposition text (HELP,
 * TYPE, escaping, cumulative histogram buckets), the series cap, close reasons as results. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tn/buf.h"
#include "tn/metrics.h"

/* The registry's text, NUL-terminated (freed by the caller). */
static char *
render(void)
{
    struct tn_buf b;
    size_t n;
    char *s;

    tn_buf_init(&b);
    assert_int_equal(tn_metrics_render(&b), 0);
    n = tn_buf_len(&b);
    s = malloc(n + 1);
    assert_non_null(s);
    tn_buf_copy(&b, (uint8_t *)s, n);
    s[n] = '\0';
    tn_buf_fini(&b);
    return s;
}

static struct tn_metric m_bytes = {
    .name = "test_bytes_total",
    .help = "Bytes.\nSecond line with a \\ backslash.",
    .type = TN_METRIC_COUNTER,
    .labels = { "route", "direction" },
};
static struct tn_metric m_up = {
    .name = "test_up",
    .help = "Up.",
    .type = TN_METRIC_GAUGE,
};
static const double bounds[] = { 0.1, 1 };
static struct tn_metric m_lat = {
    .name = "test_seconds",
    .help = "Latency.",
    .type = TN_METRIC_HISTOGRAM,
    .buckets = bounds,
    .nbuckets = 2,
};

static void
test_metrics_render(void **state)
{
    struct tn_metric_series *a, *b;
    char *s;

    (void)state;
    tn_metrics_register(&m_bytes);
    tn_metrics_register(&m_up);
    tn_metrics_register(&m_lat);
    tn_metrics_register(&m_up); /* again: no-op */
    a = tn_metric_at(&m_bytes, "10.0.0.0/8", "up");
    b = tn_metric_at(&m_bytes, "x\"y\\z\n", "down");
    assert_ptr_equal(tn_metric_at(&m_bytes, "10.0.0.0/8", "up"), a);
    assert_ptr_not_equal(a, b);
    tn_metric_add(a, 5);
    tn_metric_add(a, 7);
    tn_metric_add(b, 1);
    tn_metric_observe(&m_lat, tn_metric_at(&m_lat, NULL, NULL), 0.05);
    tn_metric_observe(&m_lat, tn_metric_at(&m_lat, NULL, NULL), 0.5);
    tn_metric_observe(&m_lat, tn_metric_at(&m_lat, NULL, NULL), 3);
    s = render();
    assert_string_equal(s, "# HELP test_bytes_total Bytes.\\nSecond line with a \\\\ backslash.\n"
                           "# TYPE test_bytes_total counter\n"
                           "test_bytes_total{route=\"10.0.0.0/8\",direction=\"up\"} 12\n"
                           "test_bytes_total{route=\"x\\\"y\\\\z\\n\",direction=\"down\"} 1\n"
                           "# HELP test_up Up.\n"
                           "# TYPE test_up gauge\n"
                           "test_up 0\n"
                           "# HELP test_seconds Latency.\n"
                           "# TYPE test_seconds histogram\n"
                           "test_seconds_bucket{le=\"0.1\"} 1\n"
                           "test_seconds_bucket{le=\"1\"} 2\n"
                           "test_seconds_bucket{le=\"+Inf\"} 3\n"
                           "test_seconds_sum 3.55\n"
                           "test_seconds_count 3\n");
    free(s);
    tn_metrics_free();
}

static void
test_metrics_series_cap(void **state)
{
    struct tn_metric_series *other, *s;
    char label[32];
    size_t i;

    (void)state;
    tn_metrics_register(&m_bytes);
    for (i = 0; i < TN_METRIC_MAX_SERIES; i++) {
        snprintf(label, sizeof(label), "r%zu", i);
        s = tn_metric_at(&m_bytes, label, "up");
        assert_string_equal(s->values[0], label);
    }
    assert_null(tn_metric_find(&m_bytes, "one more", "up")); /* looking makes nothing */
    other = tn_metric_at(&m_bytes, "one more", "up");
    assert_string_equal(other->values[0], "other");
    assert_string_equal(other->values[1], "up");
    assert_ptr_equal(tn_metric_at(&m_bytes, "and another", "up"), other);
    /* The second label survives the cap: down is not added to up. */
    s = tn_metric_at(&m_bytes, "and another", "down");
    assert_ptr_not_equal(s, other);
    assert_string_equal(s->values[0], "other");
    assert_string_equal(s->values[1], "down");
    assert_ptr_equal(tn_metric_find(&m_bytes, "r0", "up"), tn_metric_at(&m_bytes, "r0", "up"));
    tn_metric_add(other, 3);
    tn_metrics_free();
}

static void
test_metrics_flow_result(void **state)
{
    (void)state;
    assert_string_equal(tn_metric_flow_result(NULL), "ok");
    assert_string_equal(tn_metric_flow_result("no route"), "no_route");
    assert_string_equal(tn_metric_flow_result("relay connection ended"), "reset");
    assert_string_equal(tn_metric_flow_result("the target's name does not resolve"), "unreachable");
    assert_string_equal(tn_metric_flow_result("forbidden by the relay's access rules"),
                        "forbidden");
    /* The three programs name a failed dial alike: the relay's summary by its last replica,
     * the client by the relay's answer, the proxy by its own reason. */
    assert_string_equal(tn_metric_flow_result("2 proxies failed, the last: p: refused"), "refused");
    assert_string_equal(tn_metric_flow_result("refused: 1 proxy failed, the last: p: refused: "
                                              "dial [fd33:64:2::2]:8099: Connection refused"),
                        "refused");
    assert_string_equal(tn_metric_flow_result("dial 10.0.0.2:80: Connection refused"), "refused");
    assert_string_equal(tn_metric_flow_result("timeout: 1 proxy failed, the last: p: timeout: "
                                              "dial 10.0.0.2:80: timed out"),
                        "timeout");
    assert_string_equal(tn_metric_flow_result("dial [fd33::77]:80: No route to host"),
                        "unreachable");
    assert_string_equal(tn_metric_flow_result("unreachable: 1 proxy failed, the last: p: "
                                              "unreachable: No route to host"),
                        "unreachable");
    assert_string_equal(tn_metric_flow_result("1 proxy failed, the last: p: left"), "error");
    assert_string_equal(tn_metric_flow_result("idle timeout"), "idle");
    assert_string_equal(tn_metric_flow_result("connection reset"), "reset");
    assert_string_equal(tn_metric_flow_result("no Open"), "timeout");
    assert_string_equal(tn_metric_flow_result("out of memory"), "error");
}

/* The flow helpers: started/ended move the gauge and the result counter, bytes go to the bound
 * series. */
static void
test_metrics_flows(void **state)
{
    struct tn_flow_metrics fm = { 0 };

    (void)state;
    tn_metrics_register_common();
    tn_metric_flow_started();
    tn_metric_flow_started();
    tn_metric_flow_ended(NULL);
    tn_metric_flow_ended("reset by client");
    tn_flow_metrics_add(&fm, 1, 1); /* nothing bound: nothing counted, no crash */
    tn_flow_metrics_bind(&fm, "10.0.0.0/8", "p1");
    tn_flow_metrics_add(&fm, 10, 20);
    tn_flow_metrics_bind(&fm, NULL, "p2"); /* the route stays */
    tn_flow_metrics_add(&fm, 1, 2);
    assert_int_equal(tn_metric_at(&tn_metric_flows_active, NULL, NULL)->value, 0);
    assert_int_equal(tn_metric_at(&tn_metric_flows, "ok", NULL)->value, 1);
    assert_int_equal(tn_metric_at(&tn_metric_flows, "reset", NULL)->value, 1);
    assert_int_equal(tn_metric_at(&tn_metric_route_bytes, "10.0.0.0/8", "up")->value, 11);
    assert_int_equal(tn_metric_at(&tn_metric_route_bytes, "10.0.0.0/8", "down")->value, 22);
    assert_int_equal(tn_metric_at(&tn_metric_proxy_bytes, "p1", "down")->value, 20);
    assert_int_equal(tn_metric_at(&tn_metric_proxy_bytes, "p2", "up")->value, 1);
    tn_metrics_free();
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_render),
        cmocka_unit_test(test_metrics_series_cap),
        cmocka_unit_test(test_metrics_flow_result),
        cmocka_unit_test(test_metrics_flows),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
