#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# half_close.sh: a TCP half-close crosses the tunnel in each direction without closing the other.
#
#   client shuts write first:  request ─▶ FIN ─▶ serve-sha 7002 sees EOF, then answers 1 MiB ─▶ app
#   server shuts write first:  serve-early-close 7004 sends 1 MiB + FIN ─▶ app reads EOF, then
#                              still sends 500 kB + FIN ─▶ the server receives all of it
#   tn-cli-$$ ══ client ═ relay ═ proxy ══ tn-lan-$$
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init

lan_serve sha 7002 serve-sha 7002 --reply-bytes 1048576
lan_serve early 7004 serve-early-close 7004 1048576 --result-file "$TN_TMP/early.result"
tn_certs
start_tunnel

for round in 1 2 3; do
	tn_log "round $round: the app shuts its write side first, then reads the whole answer"
	tools_in "$TN_NS_CLI" 30 half-close "$TN_VIRT_IP" 7002 --timeout 10 ||
		fail "the answer sent after the app's FIN did not arrive whole"

	tn_log "round $round: the server shuts its write side first, then still receives"
	rm -f "$TN_TMP/early.result"
	out=$(tools_in "$TN_NS_CLI" 30 early-close "$TN_VIRT_IP" 7004 500000 --timeout 10) ||
		fail "the app could not read the server's data to EOF, or not send after it"
	wait_file "$TN_TMP/early.result" 10 || fail "the server never saw the app's EOF after its own"
	[ "$(cat "$TN_TMP/early.result")" = "$out" ] ||
		fail "after its own FIN the server got '$(cat "$TN_TMP/early.result")', the app sent '$out'"
done
