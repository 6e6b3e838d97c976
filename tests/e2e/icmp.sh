#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# icmp.sh: ping through the tunnel.  The client takes echo requests to the networks from
# NFQUEUE; the proxy sends them with an unprivileged ICMP socket (net.ipv4.ping_group_range
# allows it in the LAN's namespace), or with a raw socket when the system does not allow that;
# the client injects the replies with the original destination as their source.
#
#   ping 100.64.2.2 ─▶ client ══▶ relay ══▶ proxy ─▶ 10.201.2.2 (the LAN's own address)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init
command -v ping >/dev/null || tn_skip "ping is not installed (deploy/install-deps.sh)"

# ping_ok WHAT: 5 echo requests, 5 replies, from the virtual address.
ping_ok() {
	local out
	out=$(n_cli timeout 20 ping -n -c 5 -i 0.2 -W 2 "$TN_VIRT_IP" 2>&1) || {
		echo "$out" >&2
		fail "$1: ping through the tunnel failed"
	}
	echo "$out" >&2
	grep -q '5 packets transmitted, 5 received' <<<"$out" || fail "$1: not 5 replies"
	[ "$(grep -c "bytes from $TN_VIRT_IP: icmp_seq=" <<<"$out")" = 5 ] ||
		fail "$1: replies do not come from $TN_VIRT_IP"
}

n_sysctl "$TN_NS_LAN" net.ipv4.ping_group_range="0 2147483647"
tn_certs
start_tunnel
rules_of_client | grep -q -- '-p icmp .*-j NFQUEUE' || fail "no NFQUEUE rule for ICMP echo"

tn_log "ping with an unprivileged ICMP socket at the proxy"
ping_ok "ICMP socket"
wait_for_log "$TN_TMP/client.log" "-> $TN_VIRT_IP:0 icmp: open" 5 || fail "the client opened no ICMP flow"
grep -q "ICMP sockets not allowed here" "$TN_TMP/proxy.log" && fail "the proxy used a raw socket though ICMP sockets are allowed"

tn_log "ping with the proxy's raw socket fallback (ping_group_range forbids ICMP sockets)"
n_sysctl "$TN_NS_LAN" net.ipv4.ping_group_range="1 0"
ping_ok "raw socket"
wait_for_log "$TN_TMP/proxy.log" "ICMP sockets not allowed here" 5 || fail "the proxy did not fall back to a raw socket"

tn_log "a larger payload (one datagram of 4000 bytes each way)"
out=$(n_cli timeout 20 ping -n -c 2 -i 0.2 -W 2 -s 4000 "$TN_VIRT_IP" 2>&1) || fail "ping -s 4000 failed: $out"
grep -q '2 received' <<<"$out" || fail "ping -s 4000: $out"

tn_log "a packet larger than a netfilter queue carries is named so, not carried cut"
n_cli timeout 10 ping -n -c 1 -W 1 -s 65507 "$TN_VIRT_IP" >/dev/null 2>&1 || true
wait_for_log "$TN_TMP/client.log" "packet not carried \(65535 bytes, more than a netfilter queue carries\)" 5 ||
	fail "the client did not name the oversized packet: $(grep 'not carried' "$TN_TMP/client.log")"
