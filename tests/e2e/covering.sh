#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# covering.sh: the relay routes by longest prefix. Proxy "wide" announces 100.64.0.0/16 and
# proxy "narrow" 100.64.2.0/24, both reaching the same host: flows to 100.64.2.2 go to narrow;
# when narrow is killed they go to wide (the covering route); when narrow is back, to narrow
# again. 100.64.4.2, which only wide covers, goes to wide throughout. Finally narrow is frozen
# (SIGSTOP: its connection stays up, it answers nothing): with --open-timeout 1s the relay
# gives each flow sent to it to wide after 1 s, long before the heartbeat notices.
#
#   tn-cli-$$                                      tn-lan-$$
#   conns ─▶ 100.64.2.2:7001 ┐                     ┌─ proxy narrow 10.201.2.0/24 as 100.64.2.0/24
#   conns ─▶ 100.64.4.2:7001 ┴═ client ═ relay ═╦══┤                                  ─▶ 10.201.2.2
#                                                ╚══└─ proxy wide   10.201.0.0/16 as 100.64.0.0/16
#                                                                  ─▶ 10.201.2.2, 10.201.4.2 (lo)
#   serve-echo 7001 on every address of tn-lan-$$
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init

n_lan timeout 5 ip addr add 10.201.4.2/32 dev lo
lan_serve echo 7001 serve-echo 7001
tn_certs
tn_issue proxy wide
tn_issue proxy narrow
start_relay --open-timeout 1s
TN_PROXY_ID=wide TN_PROXY_NAME=wide TN_PROXY_CERTS="$TN_CERTS/proxy-wide" \
	TN_PROXY_MANAGED=10.201.0.0/16 TN_PROXY_VIRTUAL=100.64.0.0/16 start_proxy
TN_PROXY_ID=wide wait_registered
start_narrow() {
	TN_PROXY_ID=narrow TN_PROXY_NAME=$1 TN_PROXY_CERTS="$TN_CERTS/proxy-narrow" start_proxy
	wait_count "$TN_TMP/relay.log" "proxy narrow registered 100\.64\.2\.0/24 -> 10\.201\.2\.0/24" "$2" 10 ||
		fail "narrow did not register 100.64.2.0/24"
}
start_narrow narrow 1
start_client
wait_client_ready
status=$(relay_status)
tn_log "relay routing table:"$'\n'"$status"
grep -Eq "status:   100\.64\.0\.0/16 -> 10\.201\.0\.0/16: wide#" <<<"$status" || fail "no route 100.64.0.0/16 to wide"
grep -Eq "status:   100\.64\.2\.0/24 -> 10\.201\.2\.0/24: narrow#" <<<"$status" || fail "no route 100.64.2.0/24 to narrow"

# through STEP HOST N PROXY: N echo connections to HOST:7001, one after another, all succeed
# and the relay logs every one of them as carried by PROXY.
through() {
	local step=$1 host=$2 n=$3 px=$4 before got
	before=$(relay_flows "$host:7001" | wc -l)
	tools_in "$TN_NS_CLI" 30 conns "$host" 7001 --count "$n" --timeout 5 --out "$TN_TMP/$step.txt" ||
		fail "$step: not every connection to $host echoed: $(grep -v ' ok ' "$TN_TMP/$step.txt" | head -n 3)"
	wait_count "$TN_TMP/relay.log" "-> ${host//./\\.}:7001 proxy=" $((before + n)) 10 ||
		fail "$step: the relay did not log $n flows to $host"
	got=$(relay_flows "$host:7001" | tail -n "+$((before + 1))" | awk '{ print $3 }' | sort | uniq -c | xargs)
	tn_log "$step: $n connections to $host: $got"
	[ "$got" = "$n $px" ] || fail "$step: flows to $host went to '$got', expected all $n to $px"
}

through "both up" 100.64.2.2 20 narrow
through "both up" 100.64.4.2 10 wide
# The proxies agree with the relay, flow id for flow id.
wait_count "$TN_TMP/narrow.log" "flow=[0-9a-f]{16} " 20 5 || fail "narrow did not log its 20 flows"
[ "$(proxy_flow_ids narrow)" = "$(relay_flows 100.64.2.2:7001 | awk '{ print $1 }' | sort)" ] ||
	fail "narrow's flows are not the relay's flows to 100.64.2.2"
[ "$(count_lines "$TN_TMP/wide.log" "flow=[0-9a-f]{16} .*-> 10\.201\.2\.2:")" = 0 ] || fail "wide carried a flow to 10.201.2.2"

tn_log "narrow killed (SIGKILL)"
rc=0
tn_stop narrow KILL 5 || rc=$?
[ "$rc" = 137 ] || fail "narrow did not die of SIGKILL (status $rc)"
wait_for_log "$TN_TMP/relay.log" "proxy narrow#[0-9]+ left" 6 || fail "the relay did not notice narrow leave"
through "narrow gone" 100.64.2.2 20 wide
through "narrow gone" 100.64.4.2 10 wide
status=$(relay_status)
! grep -q "narrow#" <<<"$status" || fail "narrow is still in the routing table: $status"

tn_log "narrow back"
start_narrow narrow-again 2
through "narrow back" 100.64.2.2 20 narrow
through "narrow back" 100.64.4.2 10 wide
wait_count "$TN_TMP/echo.log" "^echo " 90 5 || fail "the echo server did not see the 90 connections"

tn_log "narrow frozen (SIGSTOP): 5 connections, 200 ms apart"
kill -STOP "$(tn_pid narrow-again)"
before=$(relay_flows 100.64.2.2:7001 | wc -l)
rc=0
tools_in "$TN_NS_CLI" 30 conns 100.64.2.2 7001 --count 5 --interval 0.2 --timeout 10 --out "$TN_TMP/frozen.txt" || rc=$?
kill -CONT "$(tn_pid narrow-again)"
[ "$rc" = 0 ] || fail "a connection failed while narrow was frozen: $(grep -v ' ok ' "$TN_TMP/frozen.txt" | head -n 3)"
slowest=$(awk '$5 > m { m = $5 } END { print m + 0 }' "$TN_TMP/frozen.txt")
wait_count "$TN_TMP/relay.log" "-> 100\.64\.2\.2:7001 proxy=" $((before + 5)) 10 || fail "the relay did not log 5 flows"
got=$(relay_flows 100.64.2.2:7001 | tail -n "+$((before + 1))" | awk '{ print $3 }' | sort | uniq -c | xargs)
tn_log "frozen narrow: 5 connections to 100.64.2.2: $got; slowest $slowest ms"
[ "$got" = "5 wide" ] || fail "flows to 100.64.2.2 went to '$got' while narrow was frozen, expected wide"
[ "$slowest" -lt 4000 ] || fail "a connection took $slowest ms: the 1 s open timeout did not move it"
[ "$(count_lines "$TN_TMP/relay.log" "proxy narrow failed \(.*\): trying the next")" -ge 1 ] ||
	fail "the relay did not log giving up on narrow"
tn_log "relay: $(grep -E "proxy narrow failed" "$TN_TMP/relay.log" | head -n 1 | sed -E 's/.*(flow=)/\1/')"
