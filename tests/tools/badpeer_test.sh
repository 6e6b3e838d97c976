#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Regression tests driven by badpeer, a misbehaving peer: each scenario runs the real relay
# (server) and/or the real proxy on 127.0.0.1, lets badpeer send what the programs themselves
# never send, then checks that the programs under test are alive and exit 0 on SIGTERM (in an
# ASan build, a sanitizer report or a leak makes that exit status non-zero).
#
#   client_rst_noerror   badpeer (client) ══▶ server ◀══ proxy ──▶ badpeer (target)
#                        RST_STREAM(NO_ERROR) on Connect, client leaves, target closes
#   proxy_rst_noerror    proxy ══▶ badpeer (fake relay), proxy ──▶ badpeer (target)
#                        RST_STREAM(NO_ERROR) on a flow's Accept stream while the target talks
#   accept_pool_refill   proxy ══▶ badpeer (fake relay): idle Accept streams reset, pool refills
#   relay_bad_frame      proxy ══▶ badpeer (fake relay): DATA on an idle stream; the proxy
#                        logs the protocol error and dials again
#   double_register      badpeer (proxy: two Register calls at once, then client) ══▶ server
#   register_refused     badpeer (client, impostor proxy, undecodable Hello) ══▶ server
#   register_pile        badpeer (proxy: 50 Register calls, one byte of Hello each) ══▶ server
#   bad_frame            badpeer (client: DATA on a stream never opened) ══▶ server, which
#                        must log the protocol error it ended the session for
#   many_resets          badpeer (client: 2000 streams reset at once, which must pass, then a
#                        flood, which must end its connection) ══▶ server
#   stuck_refusals       badpeer (client: 200 flows refused for no route, whose end it never
#                        reads) ══▶ server, which must reset them after 30 s (about 40 s)
#   open_pile            badpeer (client: 4096 Connect streams without an Open, then 50 more,
#                        which must be refused) ══▶ server
#   slow_client          badpeer (client: 80 flows it never reads) ══▶ server ◀══ proxy ──▶
#                        badpeer (targets pushing 2 MiB each); another flow must still work
#   open_service         badpeer (client: an Open naming the proxy's service) ══▶ server
#                        ◀══ proxy, which publishes "secret" ──▶ badpeer (its target)
#   key_update           badpeer (client) ══▶ server ◀══ proxy ──▶ badpeer (target)
#                        TLS KeyUpdates asking for the relay's, data both ways after each
#
# Usage: badpeer_test.sh SCENARIO BUILD_DIR
# TN_KEEP_TMP=1 keeps the temporary directory (certificates, logs).
set -euo pipefail

usage="usage: $0 client_rst_noerror|proxy_rst_noerror|accept_pool_refill|relay_bad_frame|double_register|register_refused|register_pile|many_resets|stuck_refusals|open_pile|bad_frame|slow_client|open_service|key_update BUILD_DIR"
scenario=${1:?$usage}
build=$(realpath "${2:?$usage}")
# shellcheck source-path=SCRIPTDIR source=regress_lib.sh
. "$(dirname "$0")/regress_lib.sh"

timeout 30 "$certs_tool" --out "$certs" >/dev/null

case $scenario in
client_rst_noerror | key_update)
	start_relay
	start_proxy "127.0.0.1:$relay_port"
	wait_log proxy 'registered with relay' 15
	wait_log relay 'proxy proxy-1 registered' 15
	run_badpeer "${scenario//_/-}" "127.0.0.1:$relay_port" "$certs" "127.0.0.1:$(free_port)"
	alive relay
	alive proxy
	# The proxy leaving ends every Accept stream at the relay: a flow still holding the freed
	# client session is touched now.
	stop proxy
	wait_log relay 'proxy proxy-1(#[0-9]+)? left' 15
	alive relay
	stop relay
	;;
proxy_rst_noerror | accept_pool_refill | relay_bad_frame)
	fake_port=$(free_port)
	if [[ $scenario == proxy_rst_noerror ]]; then
		start badpeer "$badpeer" fake-relay-rst "127.0.0.1:$fake_port" "$certs" "127.0.0.1:$(free_port)"
	elif [[ $scenario == accept_pool_refill ]]; then
		start badpeer "$badpeer" fake-relay-refill "127.0.0.1:$fake_port" "$certs"
	else
		start badpeer "$badpeer" fake-relay-bad-frame "127.0.0.1:$fake_port" "$certs"
	fi
	wait_log badpeer 'listening on' 15
	start_proxy "127.0.0.1:$fake_port"
	wait_log badpeer 'checks passed' 60
	show badpeer
	if [[ $scenario == relay_bad_frame ]]; then
		grep -q "HTTP/2 error, GOAWAY sent: PROTOCOL_ERROR" "$tmp/proxy.log" ||
			fail "the proxy did not log the protocol error it ended the connection for"
		grep -qE "relay 127.0.0.1:$fake_port: PROTOCOL_ERROR: .*; attempt" "$tmp/proxy.log" ||
			fail "the proxy did not give the protocol error as the reason it dials again"
	fi
	alive proxy
	stop proxy
	wait_exit badpeer 15
	;;
double_register)
	start_relay
	run_badpeer double-register "127.0.0.1:$relay_port" "$certs"
	alive relay
	stop relay
	;;
register_refused | register_pile | many_resets | stuck_refusals | open_pile)
	start_relay
	run_badpeer "${scenario//_/-}" "127.0.0.1:$relay_port" "$certs"
	alive relay
	stop relay
	;;
bad_frame)
	start_relay
	run_badpeer bad-frame "127.0.0.1:$relay_port" "$certs"
	wait_log relay 'HTTP/2 error, GOAWAY sent: PROTOCOL_ERROR' 5
	wait_log relay '\(client-1\) closed: PROTOCOL_ERROR' 5
	alive relay
	stop relay
	;;
slow_client)
	start_relay
	start_proxy "127.0.0.1:$relay_port"
	wait_log relay 'proxy proxy-1 registered' 15
	run_badpeer slow-client "127.0.0.1:$relay_port" "$certs" "127.0.0.1:$(free_port)" \
		"127.0.0.1:$(free_port)"
	grep -q "untaken while the connection holds .*: reset, so that the other streams go on" \
		"$tmp/relay.log" || fail "the relay did not say which streams it reset"
	alive relay
	alive proxy
	stop proxy
	stop relay
	;;
open_service)
	target_port=$(free_port)
	start_relay
	start_proxy "127.0.0.1:$relay_port" --expose "name=secret,target=127.0.0.1:$target_port"
	wait_log relay 'proxy proxy-1 registered' 15
	run_badpeer open-service "127.0.0.1:$relay_port" "$certs" "127.0.0.1:$target_port"
	alive relay
	alive proxy
	stop proxy
	stop relay
	;;
*)
	fail "unknown scenario '$scenario'; $usage"
	;;
esac
log "passed"
