#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# metrics.sh: the admin listeners, the logs and the audit file, against a known traffic run.
#
#   - /metrics of relay, proxy and client parse with the Prometheus client's own parser, and
#     their counters move by exactly what N flows of known sizes carried (flows by result, bytes
#     by route and by proxy, the open latency histogram's count); /healthz and /readyz answer;
#   - the relay's /api/v1/status shows the proxy with its network, the client and the route;
#     'client status' (unix socket) shows the relay connection and the intercepted network;
#   - the relay logs JSON lines (time, level, component, event, fields), one flow.end per flow
#     with the audit fields, and the same lines go to the audit file;
#   - the proxy logs to a file, rotated by size (N files kept) and reopened on SIGHUP after
#     logrotate moved it;
#   - the proxy and the client log an exit summary on SIGTERM.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init
tn_python_with prometheus_client python3-prometheus-client

CHECK="$TN_E2E_DIR/obs_check.py"
FLOWS=5
UP=100000    # bytes each flow sends
REPLY=200000 # bytes the server sends back after its "sha256 n\n" line
DOWN=$((64 + 1 + ${#UP} + 1 + REPLY))
PLOG="$TN_TMP/proxy-file.log"

lan_serve sha 7001 serve-sha 7001 --reply-bytes "$REPLY"
tn_certs
start_relay --admin :9090 --log-format json --audit-output "$TN_TMP/audit.log"
start_proxy --admin :9091 --log-format json --log-output "$PLOG" --log-max-size 300 --log-keep 2 \
	--reconnect-initial 100ms
wait_registered
start_client --admin :9092 --status-socket "$TN_TMP/client.sock" --reconnect-initial 100ms
wait_client_ready

# get NS PORT PATH [OUT]: an admin page; fails unless it answers 200.
get() {
	local out=${4:-/dev/stdout}
	tn_in "$1" timeout 5 curl -sS --fail --max-time 4 -o "$out" "http://127.0.0.1:$2$3"
}
scrape() { # scrape TAG: every program's /metrics into $TN_TMP/TAG.{relay,proxy,client}.prom
	get "$TN_NS_RELAY" 9090 /metrics "$TN_TMP/$1.relay.prom" || fail "relay /metrics"
	get "$TN_NS_LAN" 9091 /metrics "$TN_TMP/$1.proxy.prom" || fail "proxy /metrics"
	get "$TN_NS_CLI" 9092 /metrics "$TN_TMP/$1.client.prom" || fail "client /metrics"
}

tn_log "health and readiness of the three programs"
for hp in "$TN_NS_RELAY 9090" "$TN_NS_LAN 9091" "$TN_NS_CLI 9092"; do
	# shellcheck disable=SC2086
	set -- $hp
	[ "$(get "$1" "$2" /healthz)" = ok ] || fail "$1: /healthz"
	[ "$(get "$1" "$2" /readyz)" = ready ] || fail "$1: /readyz"
	! get "$1" "$2" /nothing-here 2>/dev/null || fail "$1: /nothing-here answered 200"
done
code=$(n_relay timeout 5 curl -sS -o /dev/null -w '%{http_code}' -X POST http://127.0.0.1:9090/metrics) || true
[ "$code" = 405 ] || fail "POST /metrics answered $code, not 405"
code=$(n_relay timeout 5 curl -sS -o /dev/null -w '%{http_code}' -H "X-Big: $(head -c 9000 /dev/zero | tr '\0' a)" \
	http://127.0.0.1:9090/metrics) || true
[ "$code" = 431 ] || fail "a 9 KB request head answered $code, not 431"
tn_log "the admin listeners are on loopback only"
! n_cli timeout 5 curl -sS --max-time 2 -o /dev/null "http://$TN_RELAY_CLI_IP:9090/healthz" 2>/dev/null ||
	fail "the relay's admin listener answers on $TN_RELAY_CLI_IP"

scrape before
"$PY" "$CHECK" metrics "$TN_TMP/before.relay.prom" >/dev/null || fail "relay /metrics does not parse"
"$PY" "$CHECK" delta "$TN_TMP/before.relay.prom" "$TN_TMP/before.relay.prom" \
	'tunnel_limit_hits_total{limit="open_files"}==0' 'tunnel_sessions{role="proxy"}==1' \
	'tunnel_sessions{role="client"}==1' 'tunnel_proxies==1' 'tunnel_routes==1' ||
	fail "relay gauges before traffic"
"$PY" "$CHECK" delta "$TN_TMP/before.client.prom" "$TN_TMP/before.client.prom" \
	'tunnel_rules==1' 'tunnel_relay_connected==1' || fail "client gauges before traffic"

tn_log "$FLOWS flows of $UP bytes up and $DOWN bytes down"
for ((i = 0; i < FLOWS; i++)); do
	tools_in "$TN_NS_CLI" 30 send-sha "$TN_VIRT_IP" 7001 "$UP" "$i" >/dev/null || fail "flow $i failed"
done

# Every hop counts a flow when it ends, which follows the last byte by a moment.
route=100.64.2.0/24
relay_expect=("tunnel_flows_total{result=\"ok\"}=+$FLOWS"
	"tunnel_route_bytes_total{route=\"$route\",direction=\"up\"}=+$((FLOWS * UP))"
	"tunnel_route_bytes_total{route=\"$route\",direction=\"down\"}=+$((FLOWS * DOWN))"
	"tunnel_proxy_bytes_total{proxy=\"$TN_PROXY_ID\",direction=\"up\"}=+$((FLOWS * UP))"
	"tunnel_proxy_bytes_total{proxy=\"$TN_PROXY_ID\",direction=\"down\"}=+$((FLOWS * DOWN))"
	"tunnel_flow_open_seconds_count=+$FLOWS" "tunnel_flows_active==0"
	"tunnel_sessions_total{role=\"client\"}=+0")
proxy_expect=("tunnel_flows_total{result=\"ok\"}=+$FLOWS"
	"tunnel_route_bytes_total{route=\"$route\",direction=\"up\"}=+$((FLOWS * UP))"
	"tunnel_route_bytes_total{route=\"$route\",direction=\"down\"}=+$((FLOWS * DOWN))"
	"tunnel_flow_open_seconds_count=+$FLOWS" "tunnel_flows_active==0" "tunnel_relays_registered==1")
client_expect=("tunnel_flows_total{result=\"ok\"}=+$FLOWS"
	"tunnel_route_bytes_total{route=\"$TN_INTERCEPT\",direction=\"up\"}=+$((FLOWS * UP))"
	"tunnel_route_bytes_total{route=\"$TN_INTERCEPT\",direction=\"down\"}=+$((FLOWS * DOWN))"
	"tunnel_proxy_bytes_total{proxy=\"$TN_PROXY_ID\",direction=\"up\"}=+$((FLOWS * UP))"
	"tunnel_flow_open_seconds_count=+$FLOWS" "tunnel_flows_active==0")
ok=0
for ((try = 0; try < 50; try++)); do
	scrape after
	if "$PY" "$CHECK" delta "$TN_TMP/before.relay.prom" "$TN_TMP/after.relay.prom" "${relay_expect[@]}" >"$TN_TMP/delta.relay" &&
		"$PY" "$CHECK" delta "$TN_TMP/before.proxy.prom" "$TN_TMP/after.proxy.prom" "${proxy_expect[@]}" >"$TN_TMP/delta.proxy" &&
		"$PY" "$CHECK" delta "$TN_TMP/before.client.prom" "$TN_TMP/after.client.prom" "${client_expect[@]}" >"$TN_TMP/delta.client"; then
		ok=1
		break
	fi
	sleep 0.2
done
cat "$TN_TMP"/delta.* >&2
[ "$ok" = 1 ] || fail "the counters did not move by what the traffic carried"

tn_log "the relay's status API"
get "$TN_NS_RELAY" 9090 /api/v1/status "$TN_TMP/status.json" || fail "/api/v1/status"
"$PY" "$CHECK" json "$TN_TMP/status.json" \
	"[p['id'] for p in s['proxies']] == ['$TN_PROXY_ID'] and s['proxies'][0]['networks'] == [{'network': '$TN_VIRT_NET', 'real': '$TN_LAN_NET'}] and s['proxies'][0]['flows_total'] == $FLOWS and s['proxies'][0]['bytes_up'] == $((FLOWS * UP)) and [c['id'] for c in s['clients']] == ['client-1'] and s['routes'][0]['network'] == '$TN_VIRT_NET' and s['routes'][0]['proxies'] == ['$TN_PROXY_ID'] and s['exposures'] == [] and s['proxies'][0]['throughput_up'] >= 0" ||
	fail "wrong status: $(cat "$TN_TMP/status.json")"

tn_log "client status over its unix socket"
n_cli timeout 5 "$TN_BIN/client/client" status --status-socket "$TN_TMP/client.sock" >"$TN_TMP/client-status.txt" ||
	fail "client status failed"
cat "$TN_TMP/client-status.txt" >&2
grep -Eq "^relay: +connected to $TN_RELAY_CLI_IP:$TN_RELAY_PORT" "$TN_TMP/client-status.txt" || fail "client status: no relay"
grep -Eq "^intercepting: +$TN_INTERCEPT$" "$TN_TMP/client-status.txt" || fail "client status: no network"
grep -Eq "^flows: +0 active, $FLOWS since start" "$TN_TMP/client-status.txt" || fail "client status: flows"
grep -Eq "^bytes: +$((FLOWS * UP)) up, $((FLOWS * DOWN)) down" "$TN_TMP/client-status.txt" || fail "client status: bytes"

tn_log "JSON logs and the audit file"
"$PY" "$CHECK" json-log "$TN_TMP/relay.log" --event flow.end --count "$FLOWS" \
	--field client=client-1 --field proxy="$TN_PROXY_ID" --field up="$UP" --field down="$DOWN" \
	--field result=ok || fail "relay log"
"$PY" "$CHECK" json-log "$TN_TMP/audit.log" --event flow.end --count "$FLOWS" \
	--field client=client-1 --field dst="$TN_VIRT_IP:7001" --field up="$UP" --field down="$DOWN" ||
	fail "audit file"
[ "$(wc -l <"$TN_TMP/audit.log")" = "$FLOWS" ] || fail "the audit file holds more than the flows"

tn_log "the proxy's log file: rotated by size, 2 kept, reopened on SIGHUP"
if [ ! -s "$PLOG.1" ] || [ ! -s "$PLOG.2" ]; then fail "no rotated log files: $(ls "$TN_TMP")"; fi
[ ! -e "$PLOG.3" ] || fail "more than 2 rotated files kept"
for f in "$PLOG.1" "$PLOG.2"; do
	size=$(stat -c %s "$f")
	if [ "$size" -lt 300 ] || [ "$size" -ge $((300 + 2048)) ]; then fail "$f: $size bytes"; fi
	"$PY" "$CHECK" json-log "$f" >/dev/null || fail "$f: not JSON lines"
done
mv "$PLOG" "$TN_TMP/moved.log"
rm -f "$PLOG".*
kill -HUP "$(tn_pid proxy)"
wait_file "$PLOG" 5 || fail "no new log file after SIGHUP"
# plog_wait PATTERN: the proxy's log files (rotation may have moved the line to .1) get it.
plog_wait() {
	local i
	for ((i = 0; i < 50; i++)); do
		grep -Eqs -- "$1" "$PLOG" "$PLOG".1 "$PLOG".2 && return 0
		sleep 0.1
	done
	return 1
}
plog_wait '"reload: done' || fail "the new log file does not get the reload's lines"
! grep -q 'reload: done' "$TN_TMP/moved.log" || fail "the moved file still gets lines"

tn_log "the relay restarts: the client and the proxy count one reconnect each"
# SIGHUP renewed the proxy's connection: wait for it, so that the restart is the only loss.
wait_for_log "$TN_TMP/relay.log" "proxy $TN_PROXY_ID registered .*replica #2" 10 ||
	fail "the proxy did not register again after SIGHUP"
tn_stop relay TERM 10 || fail "the relay did not exit 0 on SIGTERM"
TN_RELAY_NAME=relay-2 start_relay --admin :9090
ok=0
for ((try = 0; try < 100; try++)); do
	get "$TN_NS_LAN" 9091 /metrics "$TN_TMP/again.proxy.prom" || fail "proxy /metrics"
	get "$TN_NS_CLI" 9092 /metrics "$TN_TMP/again.client.prom" || fail "client /metrics"
	if "$PY" "$CHECK" delta "$TN_TMP/before.proxy.prom" "$TN_TMP/again.proxy.prom" \
		'tunnel_reconnects_total=+1' 'tunnel_relays_registered==1' >"$TN_TMP/delta.again" &&
		"$PY" "$CHECK" delta "$TN_TMP/before.client.prom" "$TN_TMP/again.client.prom" \
			'tunnel_reconnects_total=+1' 'tunnel_relay_connected==1' >>"$TN_TMP/delta.again"; then
		ok=1
		break
	fi
	sleep 0.2
done
cat "$TN_TMP/delta.again" >&2
[ "$ok" = 1 ] || fail "the reconnects were not counted"

tn_log "exit summaries"
tn_stop "$TN_CLIENT_NAME"
tn_stop proxy
grep -Eq "exit\.summary uptime_s=[0-9]+ flows=$FLOWS active=0 bytes_up=$((FLOWS * UP)) bytes_down=$((FLOWS * DOWN)) errors=\"none\"" \
	"$TN_TMP/client.log" || fail "no exit summary from the client"
plog_wait "\"event\":\"exit.summary\",\"fields\":\\{\"uptime_s\":[0-9]+,\"flows\":$FLOWS," ||
	fail "no exit summary from the proxy"
tn_log "ok"
