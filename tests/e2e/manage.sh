#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# manage.sh: the relay's management API (admin listener, bearer token): a call without the
# token or with a wrong one is refused with 401; a service added through the API is reached on
# its port and closed by DELETE; proxy rules are listed, added and removed (a removed rule takes
# the proxy out); a client's session is disconnected; SIGHUP goes back to the file.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init

relay=$TN_RELAY_CLI_IP
token=manage-test-token-$$
lan_http 8080
tn_certs
echo "public_ports: \"10000-10020\"" >"$TN_TMP/relay.yaml"
start_relay --config "$TN_TMP/relay.yaml" --admin :9190 --admin-token "$token"
start_proxy --expose name=own,target=127.0.0.1:8080,public_port=10015
wait_registered
start_client
wait_client_ready

api() { # api METHOD PATH [BODY] [TOKEN]: prints "STATUS BODY"
	local args=(-s -o "$TN_TMP/api.out" -w '%{http_code}' -X "$1")
	[ -n "${3:-}" ] && args+=(-H 'Content-Type: application/json' --data "$3")
	args+=(-H "Authorization: Bearer ${4-$token}")
	local code
	code=$(n_relay timeout 5 curl "${args[@]}" "http://127.0.0.1:9190/api/v1/manage/$2") || true
	echo "$code $(cat "$TN_TMP/api.out")"
}

out=$(api GET services "" "") && [ "${out%% *}" = 401 ] || fail "a call without a token answered: $out"
out=$(api GET services "" wrong-token) && [ "${out%% *}" = 401 ] || fail "a wrong token answered: $out"
wait_for_log "$TN_TMP/relay.log" "management API \(127.0.0.1:[0-9]+\): GET /api/v1/manage/services refused" 5 ||
	fail "the refused call was not logged"

tn_log "a service through the API: reached, listed, then removed"
out=$(api POST services '{"proxy": "proxy-1", "name": "web", "public_port": 10007, "target": "'"$TN_VIRT_IP"':8080"}')
[ "${out%% *}" = 201 ] && [[ $out == *'"published":true'* ]] || fail "POST services: $out"
[ "$(n_cli timeout 5 curl -sS "http://$relay:10007/")" = "$TN_HTTP_BODY" ] ||
	fail "the service added through the API does not answer on port 10007"
out=$(api GET services) && [[ $out == 200*'"name":"web"'*'"port":10007'* ]] || fail "GET services: $out"
big=$(head -c 9000 /dev/zero | tr '\0' ' ')
out=$(api POST services "{\"proxy\": \"proxy-1\",$big \"name\": \"x\"}") && [ "${out%% *}" = 413 ] ||
	fail "a body past the request limit did not answer 413: ${out:0:80}"
out=$(api POST services '{"proxy": "ghost", "name": "db", "public_port": 10015, "target": "10.9.9.9:1"}')
[ "${out%% *}" = 409 ] && [[ $out == *"port 10015 is held by proxy 'proxy-1' (service 'own')"* ]] ||
	fail "a port a connected proxy holds was given to an offline one: $out"
out=$(api POST services '{"proxy": "proxy-1", "name": "web2", "public_port": 99999, "target": "x:1"}')
[ "${out%% *}" = 400 ] && [[ $out == *"public_port"* ]] || fail "a bad body was not refused with the reason: $out"
out=$(api POST services '{"proxy": "proxy-1", "name": "web2", "public_port": 10016, "target": "db.lan:5432"}')
[ "${out%% *}" = 400 ] && [[ $out == *"target 'db.lan:5432' is not IP:PORT"* ]] ||
	fail "a target that is a name was not refused as a bad request: $out"
out=$(api DELETE "services/web?proxy=proxy-1") && [ "${out%% *}" = 200 ] || fail "DELETE services: $out"
out=$(tools_in "$TN_NS_CLI" 10 probe "$relay" 10007 --expect refused) ||
	fail "port 10007 still accepts after DELETE: $out"
out=$(api DELETE "services/web?proxy=proxy-1") && [ "${out%% *}" = 404 ] || fail "a second DELETE: $out"

tn_log "network permissions: rules added, listed, one removed takes its proxy out"
out=$(api POST proxies '{"id": "proxy-1", "networks": ["100.64.2.0/24"]}') && [ "${out%% *}" = 201 ] ||
	fail "POST proxies: $out"
out=$(api POST proxies '{"id": "proxy-2", "networks": ["10.99.0.0/16"]}') && [ "${out%% *}" = 201 ] ||
	fail "POST proxies (2): $out"
out=$(api GET proxies) && [[ $out == 200*'"id":"proxy-1","networks":["100.64.2.0/24"]'*'"id":"proxy-2"'* ]] ||
	fail "GET proxies: $out"
[ "$(n_cli timeout 5 curl -sS "http://$TN_VIRT_IP:8080/")" = "$TN_HTTP_BODY" ] ||
	fail "the tunnel stopped although proxy-1's rule allows it"

tn_log "a client's session is disconnected; it comes back"
out=$(api DELETE sessions/client-1) && [ "${out%% *}" = 200 ] || fail "DELETE sessions: $out"
wait_for_log "$TN_TMP/relay.log" "client-1.* closed: disconnected by the management API" 5 ||
	fail "the relay did not close the client's session"
wait_tunnel 15 || fail "the client did not come back after being disconnected"

out=$(api DELETE proxies/proxy-1) && [ "${out%% *}" = 200 ] || fail "DELETE proxies: $out"
wait_for_log "$TN_TMP/relay.log" "proxy proxy-1#[0-9]+ left" 10 || fail "proxy-1 stayed after its rule was removed"
tn_exit_of proxy 15
[ "$TN_RC" = 1 ] || fail "proxy-1 did not give up (status $TN_RC) when the relay refused it"
grep -q "proxy id 'proxy-1' is not in the relay's proxies list" "$TN_TMP/proxy.log" ||
	fail "proxy-1 was not told why"
out=$(api DELETE proxies/proxy-2) && [ "${out%% *}" = 409 ] && [[ $out == *"any proxy may announce"* ]] ||
	fail "removing the last rule (which would let any proxy in) was not refused: $out"
out=$(api GET proxies) && [[ $out == 200*'"id":"proxy-2"'* ]] || fail "the last rule is gone: $out"

tn_log "SIGHUP: the file's configuration again (the API's changes were in memory only)"
kill -HUP "$(tn_pid relay)"
wait_for_log "$TN_TMP/relay.log" "reload: done" 5 || fail "no reload"
out=$(api GET proxies) && [ "$out" = '200 {"proxies":[]}' ] || fail "GET proxies after SIGHUP: $out"
tn_log "ok"
