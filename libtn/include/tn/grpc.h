/* SPDX-License-Identifier: MIT */
/* gRPC message framing (1 flag byte, 4-byte big-endian length, protobuf) for tunnel.v1 Frames,
 * with a fast path for Data frames that never copies or allocates the payload. */
#ifndef TN_GRPC_H
#define TN_GRPC_H

#include <stddef.h>
#include <stdint.h>

#include "tunnel.pb-c.h"

struct tn_buf;
struct tn_ip;

#define TN_GRPC_HDR      5
#define TN_GRPC_DATA_PFX (TN_GRPC_HDR + 1 + 3) /* header, tag, 3-byte varint length */
#define TN_GRPC_DATA_MAX ((1 << 21) - 1)       /* what a 3-byte varint holds */
#define TN_GRPC_MSG_MAX  (64 * 1024)           /* default limit for control messages */

/* gRPC status codes we send (https://grpc.github.io/grpc/core/md_doc_statuscodes.html). */
enum {
    TN_GRPC_OK = 0,
    TN_GRPC_NOT_FOUND = 5,
    TN_GRPC_PERMISSION_DENIED = 7,
    TN_GRPC_RESOURCE_EXHAUSTED = 8,
    TN_GRPC_UNIMPLEMENTED = 12,
    TN_GRPC_INTERNAL = 13,
    TN_GRPC_UNAVAILABLE = 14,
    TN_GRPC_UNAUTHENTICATED = 16
};

/* Writes the TN_GRPC_DATA_PFX bytes that precede a Data frame of |len| (at most
 * TN_GRPC_DATA_MAX) payload bytes.  The length is always a 3-byte varint, padded when shorter
 * (protobuf parsers accept it), so a payload can be read straight into place behind it. */
void tn_grpc_data_prefix(uint8_t *out, size_t len);

/* Appends |msg| framed.  Returns 0 or -ENOMEM. */
int tn_grpc_append(struct tn_buf *b, const ProtobufCMessage *msg);

/* Called with each piece of a Data payload, in order (a frame may come in several pieces;
 * the reader's |is_msg_end| tells the last one).  Returns 0, or an error that stops the
 * reader. */
typedef int (*tn_grpc_data_cb)(void *arg, const uint8_t *p, size_t n);
/* Called with every other complete Frame; |f| is freed after it returns.  Returns 0, an error
 * that stops the reader, or TN_GRPC_PAUSE to return from tn_grpc_reader_feed at once. */
typedef int (*tn_grpc_frame_cb)(void *arg, Tunnel__V1__Frame *f);

#define TN_GRPC_PAUSE 1

struct tn_grpc_reader {
    tn_grpc_data_cb on_data;
    tn_grpc_frame_cb on_frame;
    void *arg;
    size_t max_msg; /* limit for non-Data messages */
    int state;
    uint8_t hdr[TN_GRPC_HDR + 1 + 5];
    size_t have;    /* bytes gathered in |hdr| or |msg| */
    size_t msg_len; /* length of the current message */
    size_t data_left;
    int is_msg_end; /* during on_data: this piece ends its message */
    uint8_t *msg;   /* a non-Data message being gathered */
};

void tn_grpc_reader_init(struct tn_grpc_reader *rd, tn_grpc_data_cb on_data,
                         tn_grpc_frame_cb on_frame, void *arg);
void tn_grpc_reader_fini(struct tn_grpc_reader *rd);
/* Parses |n| bytes of a stream's DATA.  Sets |*used| to the bytes consumed (less than |n| only
 * after TN_GRPC_PAUSE).  Returns 0, TN_GRPC_PAUSE, TN_ERR_PROTO (compressed or undecodable
 * message), TN_ERR_LIMIT (message over |max_msg|), -ENOMEM, or a callback's error. */
int tn_grpc_reader_feed(struct tn_grpc_reader *rd, const uint8_t *p, size_t n, size_t *used);
/* True between messages: a stream may end here cleanly. */
int tn_grpc_reader_idle(const struct tn_grpc_reader *rd);

/* Counts the payload of the Data messages in a stream of gRPC messages that someone else
 * forwards as opaque bytes (the relay): header, tag and length are not counted, nor is any
 * other message.  Starts at a message boundary; zero-initialised. */
struct tn_grpc_meter {
    uint8_t state;
    uint8_t have; /* header bytes gathered */
    uint8_t shift;
    uint8_t hdr[TN_GRPC_HDR];
    uint32_t left;  /* bytes left in the message */
    uint64_t field; /* the Data field's length, as decoded so far */
};

/* Returns how many payload bytes |p| holds. */
uint64_t tn_grpc_meter_feed(struct tn_grpc_meter *m, const uint8_t *p, size_t n);

/* An Endpoint naming |ip| (whose bytes it points at: |ip| must outlive it) and |port|. */
void tn_endpoint_set(Tunnel__V1__Endpoint *ep, const struct tn_ip *ip, unsigned port);
/* The address of |ep| (4 or 16 bytes) into |ip|.  Returns 0, or TN_ERR_PROTO for a missing
 * endpoint, an address of another size or a port above 65535. */
int tn_endpoint_ip(const Tunnel__V1__Endpoint *ep, struct tn_ip *ip);
/* The destination of |open|, checked as every hop checks it: a known protocol, and a port
 * unless it is ICMP (which has none).  Returns 0 or TN_ERR_PROTO. */
int tn_open_dst(const Tunnel__V1__Open *open, struct tn_ip *dst);

#endif
