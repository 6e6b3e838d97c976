#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# replicas.sh: two proxies announcing the same network are replicas. The relay spreads flows
# over them by rendezvous hashing of the flow id (a hash of the 4-tuple), so the same 4-tuple
# always lands on the same replica; when one dies or hangs, new connections go to the other
# after a short detection window, which the test measures.
#
#   tn-cli-$$                                   tn-lan-$$
#   conns ─▶ 100.64.2.2:7001 ══ client ═ relay ═╦═ proxy rep-1 ─┐
#                                               ╚═ proxy rep-2 ─┴▶ serve-echo 7001
#                                                                  serve-source 7002
#   both: 10.201.2.0/24 as 100.64.2.0/24
#   1. 200 connections one after another (distinct source ports): each replica >= 30 %
#   2. 8 source ports, each used twice in a row (same 4-tuple): same flow id, same replica
#   3. one connection every 20 ms for 8 s; kill -9 rep-1 at 1.5 s: after at most 6 s every
#      new connection succeeds (through rep-2); prints the measured failover time
#   4. rep-1 again; the same run with rep-2 frozen (SIGSTOP) at 1.5 s: its TCP connection stays
#      up, the heartbeat drops it within 8 s, and no connection fails (flows sent to it move
#      to rep-1 before they were opened)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init

lan_serve echo 7001 serve-echo 7001
lan_serve source 7002 serve-source 7002 1000 5
tn_certs
tn_issue proxy rep-1
tn_issue proxy rep-2
start_relay
for id in rep-1 rep-2; do
	TN_PROXY_ID=$id TN_PROXY_NAME=$id TN_PROXY_CERTS="$TN_CERTS/proxy-$id" start_proxy
done
for id in rep-1 rep-2; do TN_PROXY_ID=$id wait_registered; done
start_client
wait_client_ready
status=$(relay_status)
tn_log "relay routing table:"$'\n'"$status"
[ "$(grep -Ec "100\.64\.2\.0/24 -> 10\.201\.2\.0/24: rep-[12]#" <<<"$status")" = 2 ] ||
	fail "the relay does not list both replicas of 100.64.2.0/24"

# ---- 1. spread
tn_log "200 connections one after another"
tools_in "$TN_NS_CLI" 60 conns "$TN_VIRT_IP" 7001 --count 200 --timeout 5 --out "$TN_TMP/spread.txt" ||
	fail "not every one of 200 connections echoed (see spread.txt)"
ports=$(awk '{ print $3 }' "$TN_TMP/spread.txt" | sort -u | wc -l)
[ "$ports" = 200 ] || fail "the 200 connections used only $ports source ports"
wait_count "$TN_TMP/relay.log" "-> $TN_VIRT_IP:7001 proxy=" 200 10 || fail "the relay did not log 200 flows"
n1=$(relay_flows "$TN_VIRT_IP:7001" | awk '$3 == "rep-1"' | wc -l)
n2=$(relay_flows "$TN_VIRT_IP:7001" | awk '$3 == "rep-2"' | wc -l)
tn_log "spread over the replicas: rep-1 $n1, rep-2 $n2"
[ $((n1 + n2)) = 200 ] || fail "$((n1 + n2)) of 200 flows went to rep-1 or rep-2"
if [ "$n1" -lt 60 ] || [ "$n2" -lt 60 ]; then fail "uneven spread: rep-1 $n1, rep-2 $n2 (each needs >= 60 of 200)"; fi
# The proxies carried exactly the flows the relay says it gave them.
wait_count "$TN_TMP/rep-1.log" "flow=[0-9a-f]{16} client=.*:7001 " "$n1" 5 || fail "rep-1 logged fewer than $n1 flows"
wait_count "$TN_TMP/rep-2.log" "flow=[0-9a-f]{16} client=.*:7001 " "$n2" 5 || fail "rep-2 logged fewer than $n2 flows"
for id in rep-1 rep-2; do
	[ "$(proxy_flow_ids "$id")" = "$(relay_flows "$TN_VIRT_IP:7001" | awk -v p="$id" '$3 == p { print $1 }' | sort)" ] ||
		fail "$id's flows are not the ones the relay gave it"
done

# ---- 2. the same 4-tuple twice
tn_log "8 source ports, each twice in a row (the server closes first, so the port is free again)"
for port in 65101 65102 65103 65104 65105 65106 65107 65108; do
	for try in 1 2; do
		tools_in "$TN_NS_CLI" 10 conns "$TN_VIRT_IP" 7002 --count 1 --bind-port "$port" \
			--expect-bytes 1000 --timeout 5 --out "$TN_TMP/tuple.$port.$try" ||
			fail "connection $try from source port $port failed: $(cat "$TN_TMP/tuple.$port.$try" 2>/dev/null)"
	done
done
wait_count "$TN_TMP/relay.log" "-> $TN_VIRT_IP:7002 proxy=" 16 10 || fail "the relay did not log 16 flows"
relay_flows "$TN_VIRT_IP:7002" >"$TN_TMP/tuples.txt"
for port in 65101 65102 65103 65104 65105 65106 65107 65108; do
	pair=$(awk -v s="$TN_CLI_IP:$port" '$2 == s' "$TN_TMP/tuples.txt")
	[ "$(wc -l <<<"$pair")" = 2 ] || fail "source port $port: not 2 flows in the relay's log: $pair"
	[ "$(awk '{ print $1 }' <<<"$pair" | sort -u | wc -l)" = 1 ] || fail "source port $port: two flow ids for one 4-tuple: $pair"
	[ "$(awk '{ print $3 }' <<<"$pair" | sort -u | wc -l)" = 1 ] || fail "source port $port: the same 4-tuple went to two replicas: $pair"
	tn_log "source port $port: flow=$(awk 'NR == 1 { print $1 }' <<<"$pair") twice to $(awk 'NR == 1 { print $3 }' <<<"$pair")"
done
[ "$(awk '{ print $1 }' "$TN_TMP/tuples.txt" | sort -u | wc -l)" = 8 ] || fail "8 distinct 4-tuples did not make 8 distinct flow ids"

# ---- 3. failover after SIGKILL, 4. after SIGSTOP
# paced NAME TIMEOUT: one connection every 20 ms for 8 s in the background (results NAME.txt).
paced() {
	tn_spawn "$1" "$TN_NS_CLI" timeout --kill-after=2 40 "$TN_PYTHON" "$TN_TOOLS" conns \
		"$TN_VIRT_IP" 7001 --count 400 --interval 0.02 --timeout "$2" --out "$TN_TMP/$1.txt"
}

# paced_wait NAME: wait for it; its results must be there.
paced_wait() {
	local rc=0
	tn_wait_exit "$(tn_pid "$1")" 45 || rc=$?
	[ "$rc" = 0 ] || [ "$rc" = 1 ] || fail "$1: the paced connections ended with status $rc"
	[ "$(wc -l <"$TN_TMP/$1.txt")" = 400 ] || fail "$1: not 400 results"
}

# analyse NAME EVENT_MS: "FAILED_BEFORE FAILED_AFTER FAILOVER_MS LATE MAX_MS" over the
# connections started before and after EVENT_MS. FAILOVER_MS: from the event to the first
# connection after the last failed one (0 when none failed after the event, -1 when none
# succeeded after it); LATE: connections started 6 s or more after the event; MAX_MS: the
# longest a connection started after the event took.
analyse() {
	awk -v k="$2" '
		$2 < k { if ($4 != "ok") fb++; next }
		{ n++; t[n] = $2; ok[n] = ($4 == "ok"); if ($5 > mx) mx = $5; if ($2 >= k + 6000) late++ }
		$4 != "ok" { fa++; if ($2 > lf) lf = $2 }
		END {
			fo = 0
			if (lf) {
				fo = -1
				for (i = 1; i <= n; i++) if (ok[i] && t[i] > lf) { fo = t[i] - k; break }
			}
			printf "%d %d %d %d %d\n", fb, fa, fo, late, mx
		}' "$TN_TMP/$1.txt"
}

tn_log "one connection every 20 ms for 8 s; rep-1 is killed (SIGKILL) after 1.5 s"
paced paced-kill 3
sleep 1.5
kill_ms=$(tn_now_ms)
rc=0
tn_stop rep-1 KILL 5 || rc=$?
[ "$rc" = 137 ] || fail "rep-1 did not die of SIGKILL (status $rc)"
wait_for_log "$TN_TMP/relay.log" "proxy rep-1#[0-9]+ left" 6 || fail "the relay did not notice rep-1 leave"
left_ms=$(($(tn_now_ms) - kill_ms))
paced_wait paced-kill
read -r fb fa failover late max <<<"$(analyse paced-kill "$kill_ms")"
tn_log "SIGKILL failover: the relay dropped rep-1 within ${left_ms} ms; every connection started" \
	"${failover} ms or more after the kill succeeded; failed connections: $fa started after" \
	"the kill, $fb before it (of 400); slowest after the kill: ${max} ms"
grep -v ' ok ' "$TN_TMP/paced-kill.txt" | head -n 10 | sed 's/^/    failed: /' >&2 || true
[ "$failover" -ge 0 ] || fail "no connection succeeded after the last failure"
[ "$failover" -le 6000 ] || fail "failover took $failover ms (more than 6000)"
[ "$late" -ge 10 ] || fail "only $late connections started 6 s after the kill: the run is too short to tell"
status=$(relay_status)
tn_log "relay routing table after the kill:"$'\n'"$status"
grep -Eq "100\.64\.2\.0/24 -> 10\.201\.2\.0/24: rep-2#" <<<"$status" || fail "rep-2 is not in the routing table"
! grep -Eq "rep-1#" <<<"$status" || fail "rep-1 is still in the routing table after it was killed"

# A frozen replica keeps its TCP connection: only the heartbeat (PING every 2 s of silence,
# 3 s to answer) tells the relay it is gone, and the flows sent to it meanwhile must move to
# the other replica before they were opened, so the apps see a delay, not a failure.
tn_log "rep-1 again; one connection every 20 ms for 8 s; rep-2 is frozen (SIGSTOP) after 1.5 s"
TN_PROXY_ID=rep-1 TN_PROXY_NAME=rep-1-again TN_PROXY_CERTS="$TN_CERTS/proxy-rep-1" start_proxy
wait_count "$TN_TMP/relay.log" "proxy rep-1 registered" 2 10 || fail "rep-1 did not register again"
paced paced-stop 10
sleep 1.5
stop_ms=$(tn_now_ms)
kill -STOP "$(tn_pid rep-2)"
wait_for_log "$TN_TMP/relay.log" "proxy rep-2#[0-9]+ left" 10 || {
	kill -CONT "$(tn_pid rep-2)"
	fail "the relay did not drop the frozen rep-2 within 10 s"
}
left_ms=$(($(tn_now_ms) - stop_ms))
paced_wait paced-stop
status=$(relay_status)
grep -Eq "100\.64\.2\.0/24 -> 10\.201\.2\.0/24: rep-1#" <<<"$status" || fail "rep-1 is not in the routing table"
! grep -Eq "rep-2#" <<<"$status" || fail "rep-2 is still in the routing table while frozen"
kill -CONT "$(tn_pid rep-2)"
read -r fb fa failover late max <<<"$(analyse paced-stop "$stop_ms")"
tn_log "SIGSTOP failover: the relay dropped rep-2 within ${left_ms} ms; failed connections: $fa" \
	"started after the freeze, $fb before it (of 400); every connection started ${failover} ms" \
	"or more after it succeeded; slowest after the freeze: ${max} ms"
grep -v ' ok ' "$TN_TMP/paced-stop.txt" | head -n 10 | sed 's/^/    failed: /' >&2 || true
[ "$left_ms" -le 8000 ] || fail "the relay took $left_ms ms to drop the frozen rep-2 (PING after 2 s, 3 s to answer, 1 s ticks)"
[ "$fa" = 0 ] || fail "$fa connections started after rep-2 froze failed; they should have moved to rep-1"
[ "$max" -le 9000 ] || fail "a connection started after the freeze took $max ms"
# Thawed, rep-2 finds its connection closed by the relay, reconnects and registers again.
wait_count "$TN_TMP/relay.log" "proxy rep-2 registered" 2 15 ||
	fail "the thawed rep-2 did not reconnect and register again within 15 s"
tn_alive "$(tn_pid rep-2)" || fail "the thawed rep-2 exited instead of reconnecting"
tn_log "thawed rep-2 reconnected: $(grep -E 'relay .*attempt' "$TN_TMP/rep-2.log" | tail -n 1)"
