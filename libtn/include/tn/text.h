/* SPDX-License-Identifier: MIT */
/* Text from peers, made safe to show: UTF-8 well-formedness, control characters, JSON strings
 * (the JSON log lines and the admin endpoints' answers share one escaper). */
#ifndef TN_TEXT_H
#define TN_TEXT_H

#include <stddef.h>

/* The length (1-4) of the well-formed UTF-8 character at |p| (Unicode table 3-7: no overlong
 * form, no surrogate, nothing past U+10FFFF), or 0 when |p| starts none.  |p| is
 * NUL-terminated: a NUL ends a character too, being no continuation byte. */
size_t tn_utf8_len(const unsigned char *p);

/* How many bytes at |p| are a control character: a C0 control or DEL (1), a C1 control in
 * UTF-8 (2: U+009B is CSI to a terminal); 0 for anything else. */
size_t tn_control_len(const unsigned char *p);

typedef void (*tn_text_out)(void *arg, const char *s, size_t n);

/* Writes the first |n| bytes of |s| (fewer at a NUL) through |out| as the inside of a JSON
 * string that is always valid UTF-8: '"' and '\' escaped, controls (C1 too: a terminal showing
 * the text would obey them) as \u00XX, a byte that starts no character as \ufffd. */
void tn_json_escape(const char *s, size_t n, tn_text_out out, void *arg);

#endif
