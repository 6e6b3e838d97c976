/* SPDX-License-Identifier: MIT */
/* What a client's Open must be before the relay routes it: pure functions, fuzzed on their own
 * (tests/fuzz/fuzz_open.c). */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "relay.h"
#include "tn/addr.h"
#include "tn/err.h"

int
open_endpoint_ip(const Tunnel__V1__Endpoint *ep, struct tn_ip *ip)
{
    memset(ip, 0, sizeof(*ip));
    if (ep == NULL || ep->port > 65535) /* 0: ICMP has no port; open_check checks */
        return TN_ERR_PROTO;
    if (ep->ip.len == 4)
        ip->family = AF_INET;
    else if (ep->ip.len == 16)
        ip->family = AF_INET6;
    else
        return TN_ERR_PROTO;
    memcpy(ip->bytes, ep->ip.data, ep->ip.len);
    return 0;
}

void
open_endpoint_format(const Tunnel__V1__Endpoint *ep, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    struct tn_ip ip;

    if (open_endpoint_ip(ep, &ip) != 0) {
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
    if (open_endpoint_ip(open->dst, dst) != 0 ||
        (open->protocol != TUNNEL__V1__PROTOCOL__PROTOCOL_TCP &&
         open->protocol != TUNNEL__V1__PROTOCOL__PROTOCOL_UDP &&
         open->protocol != TUNNEL__V1__PROTOCOL__PROTOCOL_ICMP) ||
        (open->dst->port == 0) != (open->protocol == TUNNEL__V1__PROTOCOL__PROTOCOL_ICMP))
        return TN_ERR_PROTO;
    if (!policy_may_reach(cfg, client_id, dst, open->dst->port))
        return TN_ERR_AUTH;
    return 0;
}
