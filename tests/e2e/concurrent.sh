#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# concurrent.sh: 50 connections open at once through the tunnel, each echoing its own payload
# of 2-8 KiB; every one must come back intact (no mixed-up flows, no lost connection).
#
#   tn-cli-$$                                                    tn-lan-$$
#   50 × connect 100.64.2.2:7001 ══ client ═ relay ═ proxy ══▶ serve-echo 7001
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init

lan_serve echo 7001 serve-echo 7001
tn_certs
start_tunnel

for round in 1 2; do
	tn_log "round $round: 50 concurrent echo connections"
	tools_in "$TN_NS_CLI" 45 concurrent "$TN_VIRT_IP" 7001 --count 50 --timeout 20 ||
		fail "round $round: not every connection echoed its payload"
done
for ((i = 0; i < 50; i++)); do
	n=$(grep -c "^echo $TN_LAN_IP:" "$TN_TMP/echo.log" || true)
	[ "$n" -ge 100 ] && break
	sleep 0.1
done
[ "$n" = 100 ] || fail "the echo server saw $n connections from the proxy, expected 100"
