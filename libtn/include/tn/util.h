/* SPDX-License-Identifier: MIT */
/* Small macros every module uses. */
#ifndef TN_UTIL_H
#define TN_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define TN_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* The struct that holds member |member| at |ptr|. */
#define tn_container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* An nghttp2_nv for constant or long-lived strings (nghttp2 copies them). */
#define TN_NV(name, value)                                                             \
    {                                                                                  \
        (uint8_t *)(uintptr_t)(name), (uint8_t *)(uintptr_t)(value), sizeof(name) - 1, \
            strlen(value), NGHTTP2_NV_FLAG_NO_COPY_NAME                                \
    }

/* Exchanges two lvalues of one type (configuration fields on reload). */
#define TN_SWAP(a, b)             \
    do {                          \
        __typeof__(a) tmp_ = (a); \
        (a) = (b);                \
        (b) = tmp_;               \
    } while (0)

/* Whether two optional strings (settings, NULL when unset) are the same. */
static inline bool
tn_str_same(const char *a, const char *b)
{
    return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

/* protobuf-c's generated structs take char * for strings they only read when packing. */
#define TN_UNCONST(p) ((void *)(uintptr_t)(p))

/* A macro's value as a string literal: TN_STR(10) is "10". */
#define TN_STR_(x) #x
#define TN_STR(x)  TN_STR_(x)

#endif
