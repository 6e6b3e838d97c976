/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the gRPC message reader (libtn/grpc.c, with its Data fast path) and
 * protobuf-c's unpacking of Frame and Hello, as the relay runs them on a peer's bytes.
 *
 * The first input byte picks the chunk size the stream is fed in (1-256 bytes), so that every
 * split of a header, a length or a payload across reads is tried. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tn/err.h"
#include "tn/grpc.h"
#include "tunnel.pb-c.h"

struct sink {
    size_t data, frames;
};

static int
on_data(void *arg, const uint8_t *p, size_t n)
{
    struct sink *s = arg;
    volatile uint8_t x = 0;

    if (n > 0) /* touch both ends: ASan checks the range is valid */
        x = (uint8_t)(p[0] ^ p[n - 1]);
    (void)x;
    s->data += n;
    return 0;
}

static int
on_frame(void *arg, Tunnel__V1__Frame *f)
{
    struct sink *s = arg;

    s->frames++;
    if (f->kind_case == TUNNEL__V1__FRAME__KIND_OPEN && f->open != NULL && f->open->dst != NULL)
        s->data += f->open->dst->ip.len;
    return s->frames % 7 == 3 ? TN_GRPC_PAUSE : 0; /* resume after a pause, as the relay does */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tn_grpc_reader rd;
    struct sink sink = { 0 };
    size_t chunk, off, used, n;
    Tunnel__V1__Hello *hello;
    Tunnel__V1__Frame *frame;
    int r = 0;

    if (size < 1)
        return 0;
    chunk = (size_t)data[0] + 1;
    data++;
    size--;
    tn_grpc_reader_init(&rd, on_data, on_frame, &sink);
    for (off = 0; off < size && (r == 0 || r == TN_GRPC_PAUSE);) {
        n = size - off < chunk ? size - off : chunk;
        used = 0;
        r = tn_grpc_reader_feed(&rd, data + off, n, &used);
        if (used == 0 && r == TN_GRPC_PAUSE) /* a pause consumes at least the message */
            break;
        off += r == TN_GRPC_PAUSE ? used : n;
    }
    (void)tn_grpc_reader_idle(&rd);
    tn_grpc_reader_fini(&rd);
    /* The same bytes as one message of each kind the relay unpacks whole. */
    if ((frame = tunnel__v1__frame__unpack(NULL, size, data)) != NULL)
        tunnel__v1__frame__free_unpacked(frame, NULL);
    if ((hello = tunnel__v1__hello__unpack(NULL, size, data)) != NULL) {
        for (n = 0; n < hello->n_networks; n++)
            sink.data += strlen(hello->networks[n]->cidr);
        tunnel__v1__hello__free_unpacked(hello, NULL);
    }
    return 0;
}
