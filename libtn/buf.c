/* SPDX-License-Identifier: MIT */
/* The chunked byte queue: reserve/commit at the tail, peek/consume at the head. */
#include "tn/buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

struct tn_buf_chunk {
    struct tn_buf_chunk *next;
    size_t start, end, cap; /* readable bytes are data[start, end) */
    uint8_t data[];
};

/* Drained standard-size chunks wait here for reuse: a busy flow cycles through the same few
 * chunks instead of asking malloc (and the kernel, for fresh pages) for every 64 KiB.  Each
 * process runs one loop on one thread, so the cache needs no lock. */
#define CACHE_MAX 8
static struct tn_buf_chunk *cache;
static size_t ncached;

static struct tn_buf_chunk *
chunk_new(size_t cap)
{
    struct tn_buf_chunk *c;

    if (cap == TN_BUF_CHUNK && cache != NULL) {
        c = cache;
        cache = c->next;
        ncached--;
    } else if ((c = malloc(sizeof(*c) + cap)) == NULL) {
        return NULL;
    }
    c->next = NULL;
    c->start = c->end = 0;
    c->cap = cap;
    return c;
}

static void
chunk_free(struct tn_buf_chunk *c)
{
    if (c->cap == TN_BUF_CHUNK && ncached < CACHE_MAX) {
        c->next = cache;
        cache = c;
        ncached++;
        return;
    }
    free(c);
}

void
tn_buf_init(struct tn_buf *b)
{
    b->head = b->tail = NULL;
    b->len = 0;
}

void
tn_buf_fini(struct tn_buf *b)
{
    struct tn_buf_chunk *c, *next;

    for (c = b->head; c != NULL; c = next) {
        next = c->next;
        chunk_free(c);
    }
    tn_buf_init(b);
}

uint8_t *
tn_buf_reserve(struct tn_buf *b, size_t n, size_t *avail)
{
    struct tn_buf_chunk *c = b->tail;
    size_t cap;

    if (c == NULL || c->cap - c->end < n) {
        cap = n > TN_BUF_CHUNK ? n : TN_BUF_CHUNK;
        if ((c = chunk_new(cap)) == NULL)
            return NULL;
        if (b->tail != NULL)
            b->tail->next = c;
        else
            b->head = c;
        b->tail = c;
    }
    *avail = c->cap - c->end;
    return c->data + c->end;
}

void
tn_buf_commit(struct tn_buf *b, size_t n)
{
    b->tail->end += n;
    b->len += n;
}

int
tn_buf_append(struct tn_buf *b, const void *p, size_t n)
{
    size_t avail;
    uint8_t *dst;

    if (n == 0)
        return 0;
    if ((dst = tn_buf_reserve(b, n, &avail)) == NULL)
        return -ENOMEM;
    memcpy(dst, p, n);
    tn_buf_commit(b, n);
    return 0;
}

void
tn_buf_move(struct tn_buf *b, struct tn_buf *from)
{
    if (from->head == NULL)
        return;
    if (b->tail != NULL)
        b->tail->next = from->head;
    else
        b->head = from->head;
    b->tail = from->tail;
    b->len += from->len;
    tn_buf_init(from);
}

const uint8_t *
tn_buf_peek(const struct tn_buf *b, size_t *n)
{
    struct tn_buf_chunk *c = b->head;

    /* The head chunk is never left empty with data behind it (see tn_buf_consume). */
    if (c == NULL || c->end == c->start) {
        *n = 0;
        return NULL;
    }
    *n = c->end - c->start;
    return c->data + c->start;
}

size_t
tn_buf_copy(const struct tn_buf *b, uint8_t *dst, size_t n)
{
    const struct tn_buf_chunk *c;
    size_t done = 0, k;

    for (c = b->head; c != NULL && done < n; c = c->next) {
        k = c->end - c->start;
        if (k > n - done)
            k = n - done;
        memcpy(dst + done, c->data + c->start, k);
        done += k;
    }
    return done;
}

int
tn_buf_iov(const struct tn_buf *b, struct iovec *iov, int max)
{
    const struct tn_buf_chunk *c;
    int n = 0;

    for (c = b->head; c != NULL && n < max; c = c->next) {
        if (c->end == c->start)
            continue;
        iov[n].iov_base = (void *)(uintptr_t)(c->data + c->start);
        iov[n].iov_len = c->end - c->start;
        n++;
    }
    return n;
}

void
tn_buf_consume(struct tn_buf *b, size_t n)
{
    struct tn_buf_chunk *c;
    size_t k;

    while (n > 0 && (c = b->head) != NULL) {
        k = c->end - c->start;
        if (k > n)
            k = n;
        c->start += k;
        b->len -= k;
        n -= k;
        if (c->start == c->end && (c->next != NULL || c->end == c->cap)) {
            b->head = c->next;
            if (b->head == NULL)
                b->tail = NULL;
            chunk_free(c);
        }
    }
    /* An empty queue frees its last chunk too: an idle flow holds no buffer memory. */
    if (b->len == 0 && b->head != NULL) {
        chunk_free(b->head);
        tn_buf_init(b);
    }
}
