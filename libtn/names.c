/* SPDX-License-Identifier: MIT */
/* Names of published services: see tn/names.h. */
#include "tn/names.h"

#include <string.h>

bool
tn_service_name_valid(const char *s)
{
    size_t n = strlen(s), i;

    if (n == 0 || n > TN_SERVICE_NAME_MAX)
        return false;
    for (i = 0; i < n; i++) {
        if (s[i] <= ' ' || s[i] > '~')
            return false;
    }
    return true;
}

bool
tn_host_name_valid(const char *s)
{
    size_t n = strlen(s);

    return n > 0 && n <= TN_HOST_NAME_MAX &&
           strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-.") == n && s[0] != '.' && s[0] != '-';
}
