/* SPDX-License-Identifier: MIT */
/* Unit tests for libtn/text.c: UTF-8 well-formedness at every boundary of Unicode table 3-7,
 * control characters, JSON strings that stay valid UTF-8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tn/text.h"

static void
test_utf8_len(void **state)
{
    static const struct {
        const char *s;
        size_t len;
    } cases[] = {
        { "A", 1 },
        { "\x7f", 1 },
        { "\xc2\x80", 2 },         /* U+0080 */
        { "\xdf\xbf", 2 },         /* U+07FF */
        { "\xe0\xa0\x80", 3 },     /* U+0800 */
        { "\xed\x9f\xbf", 3 },     /* U+D7FF, below the surrogates */
        { "\xee\x80\x80", 3 },     /* U+E000, above them */
        { "\xef\xbf\xbf", 3 },     /* U+FFFF */
        { "\xf0\x90\x80\x80", 4 }, /* U+10000 */
        { "\xf4\x8f\xbf\xbf", 4 }, /* U+10FFFF */
        { "\x80", 0 },             /* a continuation byte alone */
        { "\xbf", 0 },
        { "\xc0\x80", 0 },         /* overlong U+0000 */
        { "\xc1\xbf", 0 },         /* overlong U+007F */
        { "\xe0\x9f\xbf", 0 },     /* overlong U+07FF */
        { "\xed\xa0\x80", 0 },     /* U+D800, a surrogate */
        { "\xed\xbf\xbf", 0 },     /* U+DFFF */
        { "\xf0\x8f\xbf\xbf", 0 }, /* overlong U+FFFF */
        { "\xf4\x90\x80\x80", 0 }, /* U+110000 */
        { "\xf5\x80\x80\x80", 0 },
        { "\xfe", 0 },
        { "\xff", 0 },
        { "\xe2\x82", 0 }, /* cut short by the NUL */
        { "\xc3", 0 },
    };

    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (tn_utf8_len((const unsigned char *)cases[i].s) != cases[i].len)
            fail_msg("case %zu: %zu, not %zu", i, tn_utf8_len((const unsigned char *)cases[i].s),
                     cases[i].len);
    }
}

static void
test_control_len(void **state)
{
    (void)state;
    assert_int_equal(tn_control_len((const unsigned char *)"\n"), 1);
    assert_int_equal(tn_control_len((const unsigned char *)"\x1b["), 1);
    assert_int_equal(tn_control_len((const unsigned char *)"\x7f"), 1);
    assert_int_equal(tn_control_len((const unsigned char *)"\xc2\x9b"), 2); /* CSI */
    assert_int_equal(tn_control_len((const unsigned char *)"\xc2\xa0"), 0); /* NBSP */
    assert_int_equal(tn_control_len((const unsigned char *)" "), 0);
    assert_int_equal(tn_control_len((const unsigned char *)"\x9b"), 0); /* not UTF-8 at all */
}

static void
collect(void *arg, const char *s, size_t n)
{
    char *buf = arg;

    assert_true(strlen(buf) + n < 256);
    strncat(buf, s, n);
}

static void
test_json_escape(void **state)
{
    char buf[256];

    (void)state;
    buf[0] = '\0';
    tn_json_escape("say \"hi\"\\ \xc3\xa9\xf0\x9f\x98\x80\t\x7f\xc2\x9b"
                   "1m",
                   SIZE_MAX, collect, buf);
    assert_string_equal(buf, "say \\\"hi\\\"\\\\ \xc3\xa9\xf0\x9f\x98\x80\\u0009\\u007f\\u009b1m");
    buf[0] = '\0';
    tn_json_escape("\xc0\xaf\xed\xa0\x80 \x9b\xff", SIZE_MAX, collect, buf);
    assert_string_equal(buf, "\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd \\ufffd\\ufffd");
    /* Cut by the length in the middle of a character: what is left of it is no character. */
    buf[0] = '\0';
    tn_json_escape("ab\xc3\xa9", 3, collect, buf);
    assert_string_equal(buf, "ab\\ufffd");
    buf[0] = '\0';
    tn_json_escape("x\xc2\x9b", 2, collect, buf);
    assert_string_equal(buf, "x\\ufffd");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_len),
        cmocka_unit_test(test_control_len),
        cmocka_unit_test(test_json_escape),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
