/* SPDX-License-Identifier: MIT */
/* Token bucket arithmetic (see tn/bucket.h). */
#include "tn/bucket.h"

void
tn_bucket_init(struct tn_bucket *b, double rate, double burst, double now)
{
    b->rate = rate;
    b->burst = burst;
    b->tokens = burst;
    b->stamp = now;
}

double
tn_bucket_level(struct tn_bucket *b, double now)
{
    if (now > b->stamp) {
        b->tokens += (now - b->stamp) * b->rate;
        b->stamp = now;
    }
    if (b->tokens > b->burst)
        b->tokens = b->burst;
    return b->tokens;
}

void
tn_bucket_set(struct tn_bucket *b, double rate, double burst, double now)
{
    tn_bucket_level(b, now);
    b->rate = rate;
    b->burst = burst;
    if (b->tokens > burst)
        b->tokens = burst;
}

bool
tn_bucket_take(struct tn_bucket *b, size_t n, double now)
{
    if (b->rate == 0)
        return true;
    if (tn_bucket_level(b, now) < (double)n)
        return false;
    b->tokens -= (double)n;
    return true;
}

double
tn_bucket_delay(struct tn_bucket *b, size_t n, double now)
{
    double want = (double)n < b->burst ? (double)n : b->burst;
    double lack;

    if (b->rate == 0)
        return 0;
    lack = want - tn_bucket_level(b, now);
    return lack > 0 ? lack / b->rate : 0;
}
