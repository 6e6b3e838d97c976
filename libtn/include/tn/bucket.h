/* SPDX-License-Identifier: MIT */
/* A token bucket: |rate| tokens (bytes) per second accumulate up to |burst|; spending them
 * meters a flow.  Pure arithmetic on times the caller gives (seconds, e.g. ev_now), so that the
 * relay's bandwidth limits are testable without a loop. */
#ifndef TN_BUCKET_H
#define TN_BUCKET_H

#include <stdbool.h>
#include <stddef.h>

struct tn_bucket {
    double rate;   /* tokens per second; 0: unlimited (every take succeeds) */
    double burst;  /* at most this many tokens accumulate */
    double tokens; /* as of |stamp| */
    double stamp;
};

/* A full bucket at time |now|. */
void tn_bucket_init(struct tn_bucket *b, double rate, double burst, double now);
/* New |rate| and |burst| from |now| on: what accumulated at the old rate is kept, up to the new
 * burst. */
void tn_bucket_set(struct tn_bucket *b, double rate, double burst, double now);
/* The tokens at |now| (never more than the burst).  Time going backwards adds nothing. */
double tn_bucket_level(struct tn_bucket *b, double now);
/* Spends |n| tokens if the bucket holds that many at |now|.  Returns whether it did. */
bool tn_bucket_take(struct tn_bucket *b, size_t n, double now);
/* Seconds from |now| until |n| tokens are there (0: now).  |n| above the burst is waited for as
 * if it were the burst: the bucket never holds more. */
double tn_bucket_delay(struct tn_bucket *b, size_t n, double now);

#endif
