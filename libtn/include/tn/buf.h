/* SPDX-License-Identifier: MIT */
/* A byte queue of chunks allocated on demand and freed as soon as they are read: memory follows
 * what is buffered, and an idle flow holds none. */
#ifndef TN_BUF_H
#define TN_BUF_H

#include <stddef.h>
#include <stdint.h>

#define TN_BUF_CHUNK (64 * 1024 + 64) /* one 64 KiB read and its framing */

struct iovec;
struct tn_buf_chunk;

struct tn_buf {
    struct tn_buf_chunk *head, *tail;
    size_t len; /* readable bytes in all chunks */
};

void tn_buf_init(struct tn_buf *b);
/* Frees every chunk. */
void tn_buf_fini(struct tn_buf *b);

/* Returns room for at least |n| contiguous bytes at the tail (at most TN_BUF_CHUNK unless |n|
 * is larger), setting |*avail| to the room there is, or NULL when out of memory.  Nothing is
 * readable until tn_buf_commit(). */
uint8_t *tn_buf_reserve(struct tn_buf *b, size_t n, size_t *avail)
    __attribute__((warn_unused_result));
/* Makes |n| bytes of the last reservation readable. */
void tn_buf_commit(struct tn_buf *b, size_t n);
/* Appends a copy of |p|.  Returns 0 or -ENOMEM. */
int tn_buf_append(struct tn_buf *b, const void *p, size_t n) __attribute__((warn_unused_result));
/* Moves every byte of |from| to the end of |b| without copying. */
void tn_buf_move(struct tn_buf *b, struct tn_buf *from);

/* The first contiguous readable span and its length (NULL, 0 when empty). */
const uint8_t *tn_buf_peek(const struct tn_buf *b, size_t *n);
/* Copies up to |n| readable bytes into |dst| without consuming them; returns how many. */
size_t tn_buf_copy(const struct tn_buf *b, uint8_t *dst, size_t n);
/* Fills up to |max| iovecs with the readable spans, in order; returns how many. */
int tn_buf_iov(const struct tn_buf *b, struct iovec *iov, int max);
/* Drops |n| readable bytes (at most tn_buf_len()) from the head. */
void tn_buf_consume(struct tn_buf *b, size_t n);

static inline size_t
tn_buf_len(const struct tn_buf *b)
{
    return b->len;
}

#endif
