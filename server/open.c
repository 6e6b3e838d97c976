/* SPDX-License-Identifier: MIT */
/* What a client's Open must be before the relay routes it: pure functions, fuzzed on their own
 * (tests/fuzz/fuzz_open.c). */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "relay.h"
#include "tn/addr.h"
#include "tn/err.h"

void
open_endpoint_format(const Tunnel__V1__Endpoint *ep, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    struct tn_ip ip;

    if (tn_endpoint_ip(ep, &ip) != 0) {
        snprintf(buf, len, "?");
        return;
    }
    tn_addr_from_ip(&ip, ep->port, &ss);
    tn_addr_format((struct sockaddr *)&ss, buf, len);
}

int
open_check(const struct relay_config *cfg, const char *client_id, const Tunnel__V1__Open *open,
           struct tn_ip *dst)
{
    /* A public connection's service is the relay's to name (expose.c): a client naming one
     * would reach a proxy's published service past the access rules. */
    if (tn_open_dst(open, dst) != 0 || (open->service != NULL && open->service[0] != '\0'))
        return TN_ERR_PROTO;
    if (!policy_may_reach(cfg, client_id, dst, open->dst->port))
        return TN_ERR_AUTH;
    return 0;
}
