/* SPDX-License-Identifier: MIT */
/* Unit tests for libtn/grpc.c: framing, the Data fast path against protobuf-c, and bad input
 * (truncated, oversized, compressed, undecodable). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "tn/buf.h"
#include "tn/cidr.h"
#include "tn/err.h"
#include "tn/grpc.h"

/* What a reader delivered: payload bytes concatenated, and the kinds of other frames. */
struct sink {
    uint8_t data[1 << 16];
    size_t ndata;
    int kinds[16];
    size_t nkinds;
    uint64_t last_flow_id;
    int pause_after_frame;
};

static int
sink_data(void *arg, const uint8_t *p, size_t n)
{
    struct sink *s = arg;

    assert_true(s->ndata + n <= sizeof(s->data));
    memcpy(s->data + s->ndata, p, n);
    s->ndata += n;
    return 0;
}

static int
sink_frame(void *arg, Tunnel__V1__Frame *f)
{
    struct sink *s = arg;

    s->kinds[s->nkinds++] = f->kind_case;
    if (f->kind_case == TUNNEL__V1__FRAME__KIND_OPEN)
        s->last_flow_id = f->open->flow_id;
    return s->pause_after_frame ? TN_GRPC_PAUSE : 0;
}

/* Feeds |b| to a fresh reader |step| bytes at a time; returns the reader's last result. */
static int
feed(struct sink *s, const uint8_t *p, size_t n, size_t step, size_t max_msg)
{
    struct tn_grpc_reader rd;
    size_t off = 0, used, k;
    int r = 0;

    tn_grpc_reader_init(&rd, sink_data, sink_frame, s);
    if (max_msg != 0)
        rd.max_msg = max_msg;
    while (off < n) {
        k = n - off < step ? n - off : step;
        r = tn_grpc_reader_feed(&rd, p + off, k, &used);
        off += used;
        if (r != 0 && r != TN_GRPC_PAUSE)
            break;
    }
    if (r == 0 && !tn_grpc_reader_idle(&rd))
        r = TN_ERR_SHORT;
    tn_grpc_reader_fini(&rd);
    return r;
}

static size_t
flatten(struct tn_buf *b, uint8_t *out, size_t cap)
{
    size_t n = tn_buf_copy(b, out, cap);

    assert_int_equal(n, tn_buf_len(b));
    return n;
}

static void
append_open(struct tn_buf *b, uint64_t flow_id)
{
    Tunnel__V1__Frame fr = TUNNEL__V1__FRAME__INIT;
    Tunnel__V1__Open open = TUNNEL__V1__OPEN__INIT;

    open.flow_id = flow_id;
    fr.kind_case = TUNNEL__V1__FRAME__KIND_OPEN;
    fr.open = &open;
    assert_int_equal(tn_grpc_append(b, &fr.base), 0);
}

static void
append_data(struct tn_buf *b, const uint8_t *p, size_t n)
{
    size_t avail;
    uint8_t *dst = tn_buf_reserve(b, TN_GRPC_DATA_PFX + n, &avail);

    assert_non_null(dst);
    tn_grpc_data_prefix(dst, n);
    memcpy(dst + TN_GRPC_DATA_PFX, p, n);
    tn_buf_commit(b, TN_GRPC_DATA_PFX + n);
}

static void
test_grpc_data_prefix_decodes_with_protobuf_c(void **state)
{
    static const size_t lens[] = { 0, 1, 127, 128, 16383, 16384, 65536, TN_GRPC_DATA_MAX };
    uint8_t *msg = malloc(TN_GRPC_DATA_PFX + TN_GRPC_DATA_MAX);
    Tunnel__V1__Frame *f;
    size_t i, j;

    (void)state;
    assert_non_null(msg);
    for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        tn_grpc_data_prefix(msg, lens[i]);
        for (j = 0; j < lens[i]; j++)
            msg[TN_GRPC_DATA_PFX + j] = (uint8_t)(j * 7);
        /* The 5-byte header announces the rest exactly. */
        assert_int_equal((size_t)msg[1] << 24 | (size_t)msg[2] << 16 | (size_t)msg[3] << 8 | msg[4],
                         TN_GRPC_DATA_PFX - TN_GRPC_HDR + lens[i]);
        f = tunnel__v1__frame__unpack(NULL, TN_GRPC_DATA_PFX - TN_GRPC_HDR + lens[i],
                                      msg + TN_GRPC_HDR);
        assert_non_null(f);
        assert_int_equal(f->kind_case, TUNNEL__V1__FRAME__KIND_DATA);
        assert_int_equal(f->data.len, lens[i]);
        if (lens[i] > 0)
            assert_memory_equal(f->data.data, msg + TN_GRPC_DATA_PFX, lens[i]);
        tunnel__v1__frame__free_unpacked(f, NULL);
    }
    free(msg);
}

static void
test_grpc_reader_splits_any_way(void **state)
{
    static uint8_t wire[8192], payload[3000];
    static struct sink s;
    struct tn_buf b;
    size_t n, i, step;

    (void)state;
    for (i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)(i * 31 + 7);
    tn_buf_init(&b);
    append_open(&b, 0x1122334455667788ULL);
    append_data(&b, payload, 1000);
    append_data(&b, payload + 1000, 0);
    append_data(&b, payload + 1000, 2000);
    n = flatten(&b, wire, sizeof(wire));
    for (step = 1; step <= n; step += step < 16 ? 1 : 97) {
        memset(&s, 0, sizeof(s));
        assert_int_equal(feed(&s, wire, n, step, 0), 0);
        assert_int_equal(s.nkinds, 1);
        assert_int_equal(s.kinds[0], TUNNEL__V1__FRAME__KIND_OPEN);
        assert_true(s.last_flow_id == 0x1122334455667788ULL);
        assert_int_equal(s.ndata, sizeof(payload));
        assert_memory_equal(s.data, payload, sizeof(payload));
    }
    tn_buf_fini(&b);
}

/* The relay's meter counts Data payload only, however the bytes are split, whatever the
 * varint's encoding, and skips other messages (Open) whole. */
static void
test_grpc_meter_counts_payload_only(void **state)
{
    static uint8_t wire[8192], payload[3000];
    Tunnel__V1__Frame fr = TUNNEL__V1__FRAME__INIT;
    struct tn_grpc_meter m;
    struct tn_buf b;
    uint64_t got;
    size_t n, off, step;

    (void)state;
    tn_buf_init(&b);
    append_open(&b, 42);
    append_data(&b, payload, 1000);
    append_data(&b, payload, 0);
    fr.kind_case = TUNNEL__V1__FRAME__KIND_DATA; /* minimal varint, by protobuf-c */
    fr.data.data = payload;
    fr.data.len = 300;
    assert_int_equal(tn_grpc_append(&b, &fr.base), 0);
    append_open(&b, 43);
    append_data(&b, payload, 1700);
    n = flatten(&b, wire, sizeof(wire));
    for (step = 1; step <= n; step += step < 16 ? 1 : 97) {
        memset(&m, 0, sizeof(m));
        for (got = 0, off = 0; off < n; off += step)
            got += tn_grpc_meter_feed(&m, wire + off, off + step < n ? step : n - off);
        assert_int_equal(got, 3000);
    }
    tn_buf_fini(&b);
}

/* A Data frame packed by protobuf-c (minimal varint) takes the same fast path. */
static void
test_grpc_reader_takes_protobuf_c_data(void **state)
{
    Tunnel__V1__Frame fr = TUNNEL__V1__FRAME__INIT;
    uint8_t payload[300], wire[512];
    static struct sink s;
    struct tn_buf b;
    size_t n;

    (void)state;
    memset(payload, 0x5a, sizeof(payload));
    fr.kind_case = TUNNEL__V1__FRAME__KIND_DATA;
    fr.data.data = payload;
    fr.data.len = sizeof(payload);
    tn_buf_init(&b);
    assert_int_equal(tn_grpc_append(&b, &fr.base), 0);
    n = flatten(&b, wire, sizeof(wire));
    memset(&s, 0, sizeof(s));
    assert_int_equal(feed(&s, wire, n, 3, 0), 0);
    assert_int_equal(s.ndata, sizeof(payload));
    assert_memory_equal(s.data, payload, sizeof(payload));
    tn_buf_fini(&b);
}

/* Where each message ended, as seen through is_msg_end: datagrams depend on it. */
struct ends {
    struct tn_grpc_reader rd;
    size_t ndata;
    size_t at[8];
    size_t nat;
};

static int
ends_data(void *arg, const uint8_t *p, size_t n)
{
    struct ends *e = arg;

    (void)p;
    assert_true(n > 0);
    e->ndata += n;
    if (e->rd.is_msg_end) {
        assert_true(e->nat < 8);
        e->at[e->nat++] = e->ndata;
    }
    return 0;
}

static int
ends_frame(void *arg, Tunnel__V1__Frame *f)
{
    (void)arg;
    (void)f;
    return 0;
}

static void
test_grpc_reader_marks_message_ends(void **state)
{
    static const size_t want[] = { 1000, 1001, 3001, 3301 };
    Tunnel__V1__Frame fr = TUNNEL__V1__FRAME__INIT;
    static uint8_t wire[8192], payload[3000];
    static struct ends e;
    struct tn_buf b;
    size_t n, off, step, used, k;

    (void)state;
    tn_buf_init(&b);
    append_data(&b, payload, 1000);
    append_data(&b, payload, 1);
    append_data(&b, payload, 0); /* an empty message delivers nothing */
    append_data(&b, payload, 2000);
    fr.kind_case = TUNNEL__V1__FRAME__KIND_DATA; /* protobuf-c's encoding: the slow path */
    fr.data.data = payload;
    fr.data.len = 300;
    assert_int_equal(tn_grpc_append(&b, &fr.base), 0);
    n = flatten(&b, wire, sizeof(wire));
    for (step = 1; step <= n; step += step < 16 ? 1 : 101) {
        memset(&e, 0, sizeof(e));
        tn_grpc_reader_init(&e.rd, ends_data, ends_frame, &e);
        for (off = 0; off < n; off += used) {
            k = n - off < step ? n - off : step;
            assert_int_equal(tn_grpc_reader_feed(&e.rd, wire + off, k, &used), 0);
        }
        assert_int_equal(e.ndata, 3301);
        assert_int_equal(e.nat, 4);
        assert_memory_equal(e.at, want, sizeof(want));
        tn_grpc_reader_fini(&e.rd);
    }
    tn_buf_fini(&b);
}

static void
test_grpc_reader_rejects_compressed(void **state)
{
    static const uint8_t wire[] = { 1, 0, 0, 0, 2, 0x1a, 0 };
    static struct sink s;

    (void)state;
    memset(&s, 0, sizeof(s));
    assert_int_equal(feed(&s, wire, sizeof(wire), sizeof(wire), 0), TN_ERR_PROTO);
}

static void
test_grpc_reader_rejects_oversized_control_message(void **state)
{
    struct tn_buf b;
    uint8_t wire[256];
    static struct sink s;
    size_t n;

    (void)state;
    tn_buf_init(&b);
    append_open(&b, 42);
    n = flatten(&b, wire, sizeof(wire));
    memset(&s, 0, sizeof(s));
    assert_int_equal(feed(&s, wire, n, n, 4), TN_ERR_LIMIT);
    assert_int_equal(s.nkinds, 0);
    tn_buf_fini(&b);
}

static void
test_grpc_reader_rejects_undecodable_message(void **state)
{
    /* Field 1 (Open) claims 10 bytes but the message holds 2. */
    static const uint8_t wire[] = { 0, 0, 0, 0, 4, 0x0a, 10, 0x08, 1 };
    static struct sink s;

    (void)state;
    memset(&s, 0, sizeof(s));
    assert_int_equal(feed(&s, wire, sizeof(wire), 1, 0), TN_ERR_PROTO);
}

static void
test_grpc_reader_reports_truncation(void **state)
{
    struct tn_buf b;
    uint8_t wire[256], payload[100] = { 0 };
    static struct sink s;
    size_t n, cut;

    (void)state;
    tn_buf_init(&b);
    append_open(&b, 7);
    append_data(&b, payload, sizeof(payload));
    n = flatten(&b, wire, sizeof(wire));
    for (cut = 1; cut < n; cut++) {
        memset(&s, 0, sizeof(s));
        int r = feed(&s, wire, cut, 5, 0);
        /* A cut at a message boundary is a clean end; anywhere else the reader is mid-message. */
        if (r == 0)
            assert_true(s.nkinds == 1 && (s.ndata == 0 || s.ndata == sizeof(payload)));
        else
            assert_int_equal(r, TN_ERR_SHORT);
    }
    tn_buf_fini(&b);
}

static void
test_grpc_reader_pauses_after_frame(void **state)
{
    struct tn_grpc_reader rd;
    struct tn_buf b;
    uint8_t wire[256], payload[10] = { 1, 2, 3 };
    static struct sink s;
    size_t n, used;

    (void)state;
    tn_buf_init(&b);
    append_open(&b, 9);
    append_data(&b, payload, sizeof(payload));
    n = flatten(&b, wire, sizeof(wire));
    memset(&s, 0, sizeof(s));
    s.pause_after_frame = 1;
    tn_grpc_reader_init(&rd, sink_data, sink_frame, &s);
    assert_int_equal(tn_grpc_reader_feed(&rd, wire, n, &used), TN_GRPC_PAUSE);
    /* The relay forwards what follows Open as opaque bytes: it must start at a frame. */
    assert_int_equal(used, n - TN_GRPC_DATA_PFX - sizeof(payload));
    assert_int_equal(s.ndata, 0);
    assert_true(tn_grpc_reader_idle(&rd));
    tn_grpc_reader_fini(&rd);
    tn_buf_fini(&b);
}

/* Every hop reads an Open's destination the same way: sizes, ports, ICMP without a port. */
/* ::ffff:10.1.2.3 is IPv4 10.1.2.3: checked against IPv4 networks, as the kernel dials it. */
static void
test_endpoint_v4_mapped(void **state)
{
    struct tn_ip mapped = { .family = AF_INET6 }, got;
    Tunnel__V1__Endpoint ep;

    (void)state;
    mapped.bytes[10] = mapped.bytes[11] = 0xff;
    memcpy(mapped.bytes + 12, "\x0a\x01\x02\x03", 4);
    tn_endpoint_set(&ep, &mapped, 443);
    assert_int_equal(tn_endpoint_ip(&ep, &got), 0);
    assert_int_equal(got.family, AF_INET);
    assert_memory_equal(got.bytes, "\x0a\x01\x02\x03\0\0\0\0\0\0\0\0\0\0\0\0", 16);
    mapped.bytes[10] = 0; /* ::fe:a01:203 is IPv6 */
    tn_endpoint_set(&ep, &mapped, 443);
    assert_int_equal(tn_endpoint_ip(&ep, &got), 0);
    assert_int_equal(got.family, AF_INET6);
}

static void
test_open_destination_checks(void **state)
{
    Tunnel__V1__Endpoint ep;
    Tunnel__V1__Open open = TUNNEL__V1__OPEN__INIT;
    struct tn_ip ip = { .family = AF_INET6 }, got;
    uint8_t odd[5] = { 1, 2, 3, 4, 5 };

    (void)state;
    ip.bytes[15] = 1;
    tn_endpoint_set(&ep, &ip, 443);
    assert_int_equal(ep.ip.len, 16);
    assert_int_equal(tn_endpoint_ip(&ep, &got), 0);
    assert_int_equal(got.family, AF_INET6);
    assert_memory_equal(got.bytes, ip.bytes, 16);
    assert_int_equal(tn_endpoint_ip(NULL, &got), TN_ERR_PROTO);
    ep.port = 65536;
    assert_int_equal(tn_endpoint_ip(&ep, &got), TN_ERR_PROTO);
    ep.port = 443;
    ep.ip.data = odd;
    ep.ip.len = sizeof(odd);
    assert_int_equal(tn_endpoint_ip(&ep, &got), TN_ERR_PROTO);

    tn_endpoint_set(&ep, &ip, 443);
    open.dst = &ep;
    open.protocol = TUNNEL__V1__PROTOCOL__PROTOCOL_TCP;
    assert_int_equal(tn_open_dst(&open, &got), 0);
    open.protocol = TUNNEL__V1__PROTOCOL__PROTOCOL_ICMP; /* ICMP has no port */
    assert_int_equal(tn_open_dst(&open, &got), TN_ERR_PROTO);
    ep.port = 0;
    assert_int_equal(tn_open_dst(&open, &got), 0);
    open.protocol = TUNNEL__V1__PROTOCOL__PROTOCOL_UDP; /* UDP needs one */
    assert_int_equal(tn_open_dst(&open, &got), TN_ERR_PROTO);
    ep.port = 53;
    open.protocol = 7; /* unknown */
    assert_int_equal(tn_open_dst(&open, &got), TN_ERR_PROTO);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grpc_data_prefix_decodes_with_protobuf_c),
        cmocka_unit_test(test_grpc_reader_splits_any_way),
        cmocka_unit_test(test_grpc_meter_counts_payload_only),
        cmocka_unit_test(test_grpc_reader_takes_protobuf_c_data),
        cmocka_unit_test(test_grpc_reader_marks_message_ends),
        cmocka_unit_test(test_grpc_reader_rejects_compressed),
        cmocka_unit_test(test_grpc_reader_rejects_oversized_control_message),
        cmocka_unit_test(test_grpc_reader_rejects_undecodable_message),
        cmocka_unit_test(test_grpc_reader_reports_truncation),
        cmocka_unit_test(test_grpc_reader_pauses_after_frame),
        cmocka_unit_test(test_open_destination_checks),
        cmocka_unit_test(test_endpoint_v4_mapped),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
