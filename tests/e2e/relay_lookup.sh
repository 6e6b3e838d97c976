#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# relay_lookup.sh: looking up the relay's name never stops the flows.  The proxy names its relay
# and renews its connection (SIGHUP) while its resolver does not answer: the old connection
# still carries a flow, which must go on echoing at once while the name is looked up (a lookup on
# the loop would freeze it for the resolver's whole timeout), and after 10 s without an answer
# the proxy must come back on the addresses the name had.
#
#   python (held echo flow) ─▶ client ══▶ relay ◀══ proxy (--server relay.tunnel.test, SIGHUP)
#                                                    └─ resolver: dnsmasq in the LAN, then mute
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init
command -v dnsmasq >/dev/null || tn_skip "dnsmasq is not installed"

lan_dns "$TN_LAN_IP" "$TN_RELAY_LAN_IP"
mkdir -p "/etc/netns/$TN_NS_LAN" # removed with the namespace (tn_ns_delete)
# A mute resolver costs a blocking lookup 5 s x 3 attempts: past the link's 10 s for a lookup.
printf 'nameserver %s\noptions timeout:5 attempts:3\n' "$TN_LAN_IP" >"/etc/netns/$TN_NS_LAN/resolv.conf"
lan_serve echo 7001 serve-echo 7001
tn_certs
start_relay
TN_PROXY_RELAY=relay.tunnel.test start_proxy --server-name "$TN_RELAY_LAN_IP"
wait_registered
start_client
wait_client_ready
PROXY=$(tn_pid "$TN_PROXY_NAME")

# One echo flow: a round trip, "open"; once $TN_TMP/go exists, 3 s of round trips every 50 ms,
# then "ok" and the slowest one in ms.
tools_in "$TN_NS_CLI" 40 held-echo "$TN_VIRT_IP" 7001 --go "$TN_TMP/go" --for 3 >"$TN_TMP/held.out" \
	2>"$TN_TMP/held.err" &
HELD=$!
wait_for_log "$TN_TMP/held.out" '^open$' 10 || fail "the held flow did not open: $(cat "$TN_TMP/held.err")"

tn_log "the resolver goes mute; SIGHUP to the proxy: a new connection, whose name needs a lookup"
n_lan iptables -I INPUT -p udp --dport 53 -j DROP
kill -HUP "$PROXY"
touch "$TN_TMP/go"
rc=0
wait "$HELD" || rc=$?
[ "$rc" = 0 ] || fail "the held flow broke during the lookup (rc $rc): $(cat "$TN_TMP/held.err")"
slowest=$(sed -n 's/^ok //p' "$TN_TMP/held.out")
tn_log "slowest round trip on the held flow during the lookup: $slowest ms"
[ "$slowest" -lt 1000 ] || fail "the held flow stalled for $slowest ms while the relay's name was looked up"

tn_log "the proxy comes back on the addresses the name had"
wait_count "$TN_TMP/relay.log" "proxy $TN_PROXY_ID registered" 2 20 ||
	fail "the proxy did not register again: $(tail -n 5 "$TN_TMP/$TN_PROXY_NAME.log")"
grep -q "the resolver did not answer in 10 s" "$TN_TMP/$TN_PROXY_NAME.log" ||
	fail "the proxy did not give up on the mute resolver after 10 s"
grep -q "its name cannot be resolved now" "$TN_TMP/$TN_PROXY_NAME.log" ||
	fail "the proxy registered again without needing the addresses the name had: the test tests nothing"
out=$(tools_in "$TN_NS_CLI" 20 ping-pong "$TN_VIRT_IP" 7001 --count 5 --timeout 5) ||
	fail "a new flow after the lookup failed"
tn_log "ok: new flow: $out"
