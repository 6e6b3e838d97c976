#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# reload.sh: SIGHUP reads the configuration again without dropping established flows.  The
# relay's access rules change under way; the proxy's networks change (it registers again on a
# new connection while the old one finishes its flows); the client re-reads its file; a broken
# file changes nothing.
#
#   curl ─▶ client ══▶ relay (--config relay.yaml) ══▶ proxy (--config proxy.yaml) ─▶ lan
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init

get() { # get PORT [HOST]: the body, or fail
	n_cli timeout 10 curl -sS --max-time 5 "http://${2:-$TN_VIRT_IP}:$1/"
}
download() { # 20 MiB at 8 MiB/s in the background; sets DL_PID
	n_cli timeout 30 curl -sS --limit-rate 8M -o "$TN_TMP/$1.out" \
		"http://$TN_VIRT_IP:8080/big.bin" 2>"$TN_TMP/$1.err" &
	DL_PID=$!
	sleep 0.7
}
finished() {
	local rc=0
	wait "$DL_PID" || rc=$?
	[ "$rc" = 0 ] && cmp -s "$TN_TMP/www/big.bin" "$TN_TMP/$1.out" ||
		fail "$1: the download in flight was hurt by the reload (curl $rc)"
	tn_log "$1: the download in flight completed, all bytes"
}

lan_http 8080
ns_http second "$TN_NS_LAN" 8081 "second server"
head -c 20971520 /dev/urandom >"$TN_TMP/www/big.bin"
tn_certs

cat >"$TN_TMP/relay.yaml" <<YAML
access:
  - {client: client-1, networks: [100.64.0.0/10], ports: "8080"}
YAML
start_relay --config "$TN_TMP/relay.yaml"
cat >"$TN_TMP/proxy.yaml" <<YAML
networks:
  - {cidr: $TN_LAN_NET, virtual_cidr: 100.64.2.0/24}
YAML
TN_PROXY_MANAGED='' start_proxy --config "$TN_TMP/proxy.yaml"
wait_registered
cat >"$TN_TMP/client.yaml" <<YAML
target_cidr: [100.64.0.0/10]
YAML
start_client --config "$TN_TMP/client.yaml"
wait_client_ready
[ "$(get 8080)" = "$TN_HTTP_BODY" ] || fail "no traffic to :8080"
! get 8081 >/dev/null 2>&1 || fail ":8081 reached although the access rules forbid it"

tn_log "relay: allow :8081 too, SIGHUP during a download"
download relay-reload
cat >"$TN_TMP/relay.yaml" <<YAML
access:
  - {client: client-1, networks: [100.64.0.0/10], ports: "8080 8081"}
YAML
kill -HUP "$(tn_pid relay)"
wait_for_log "$TN_TMP/relay.log" "reload: done" 5 || fail "the relay did not reload"
finished relay-reload
get 8081 >/dev/null || fail ":8081 still refused after the reload"

tn_log "relay: a broken file changes nothing"
echo "access: [{client: client-1, ports: 99999}]" >"$TN_TMP/relay.yaml"
kill -HUP "$(tn_pid relay)"
wait_for_log "$TN_TMP/relay.log" "nothing changed" 5 || fail "the relay took a broken file"
get 8081 >/dev/null || fail "a broken reload changed the rules"
tn_alive "$(tn_pid relay)" || fail "the relay died on a broken reload"

tn_log "proxy: serve the LAN as 100.64.5.0/24 instead, SIGHUP during a download"
download proxy-reload
cat >"$TN_TMP/proxy.yaml" <<YAML
networks:
  - {cidr: $TN_LAN_NET, virtual_cidr: 100.64.5.0/24}
YAML
kill -HUP "$(tn_pid "$TN_PROXY_NAME")"
wait_for_log "$TN_TMP/relay.log" "registered 100\.64\.5\.0/24" 10 || fail "the proxy did not register its new network"
finished proxy-reload
[ "$(get 8080 100.64.5.2)" = "$TN_HTTP_BODY" ] || fail "the new virtual range does not work"
! get 8080 100.64.2.2 >/dev/null 2>&1 || fail "the old virtual range still works"

tn_log "client: SIGHUP keeps it working"
kill -HUP "$(tn_pid "$TN_CLIENT_NAME")"
wait_for_log "$TN_TMP/$TN_CLIENT_NAME.log" "reload: done" 5 || fail "the client did not reload"
[ "$(get 8080 100.64.5.2)" = "$TN_HTTP_BODY" ] || fail "no traffic after the client's reload"
