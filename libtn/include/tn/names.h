/* SPDX-License-Identifier: MIT */
/* The names a proxy publishes its services under: the proxy checks its configuration and the
 * relay each registration by the same rules, so that a proxy never starts with a service the
 * relay will refuse. */
#ifndef TN_NAMES_H
#define TN_NAMES_H

#include <stdbool.h>

#define TN_SERVICE_NAME_MAX 64
#define TN_HOST_NAME_MAX    253

/* 1-64 printable ASCII characters, no space. */
bool tn_service_name_valid(const char *s);
/* An HTTP Host or TLS SNI name as the relay routes by: 1-253 lowercase letters, digits, '-'
 * and '.', not starting with '.' or '-'. */
bool tn_host_name_valid(const char *s);

#endif
