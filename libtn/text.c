/* SPDX-License-Identifier: MIT */
/* Text from peers, made safe to show: see tn/text.h. */
#include "tn/text.h"

#include <stdio.h>
#include <string.h>

size_t
tn_utf8_len(const unsigned char *p)
{
    unsigned char lo = 0x80, hi = 0xbf;
    size_t n, i;

    if (p[0] < 0x80)
        return 1;
    n = p[0] >= 0xc2 && p[0] <= 0xdf   ? 2
        : p[0] >= 0xe0 && p[0] <= 0xef ? 3
        : p[0] >= 0xf0 && p[0] <= 0xf4 ? 4
                                       : 0;
    if (p[0] == 0xe0)
        lo = 0xa0; /* below: overlong */
    else if (p[0] == 0xed)
        hi = 0x9f; /* above: a surrogate */
    else if (p[0] == 0xf0)
        lo = 0x90; /* below: overlong */
    else if (p[0] == 0xf4)
        hi = 0x8f; /* above: past U+10FFFF */
    for (i = 1; i < n; i++, lo = 0x80, hi = 0xbf) {
        if (p[i] < lo || p[i] > hi)
            return 0;
    }
    return n;
}

size_t
tn_control_len(const unsigned char *p)
{
    if (p[0] < 0x20 || p[0] == 0x7f)
        return 1;
    return p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f ? 2 : 0;
}

void
tn_json_escape(const char *s, size_t n, tn_text_out out, void *arg)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + strnlen(s, n), *run = p;
    char esc[8];
    size_t k;

    while (p < end) {
        if (*p == '"' || *p == '\\') {
            snprintf(esc, sizeof(esc), "\\%c", *p);
            k = 1;
        } else if ((k = tn_control_len(p)) > 0 && k <= (size_t)(end - p)) {
            snprintf(esc, sizeof(esc), "\\u%04x", p[k - 1]);
        } else if ((k = tn_utf8_len(p)) == 0 || k > (size_t)(end - p)) {
            snprintf(esc, sizeof(esc), "\\ufffd");
            k = 1;
        } else {
            p += k; /* part of the run written as it is */
            continue;
        }
        if (p > run)
            out(arg, (const char *)run, (size_t)(p - run));
        out(arg, esc, strlen(esc));
        p += k;
        run = p;
    }
    if (p > run)
        out(arg, (const char *)run, (size_t)(p - run));
}
