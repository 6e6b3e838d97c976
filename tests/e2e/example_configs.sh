#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# example_configs.sh: the three example configs of deploy/configs (the package's
# /etc/tunnel/*.yaml) run together as a tunnel.  Each program loads its file as it is; flags
# override only what ties a file to a real deployment: the relay's address and the
# certificates (and, for the proxy, managed_cidr: the test LAN is 10.201.2.0/24, not
# 192.168.1.0/24).  Everything else comes from the files: the relay's proxies and access
# lists, the proxy's id, virtual range and extra network, the client's networks and port.
#
#   client (client.yaml) ══▶ relay (server.yaml) ◀══ proxy lan-1 (proxy.yaml) ──▶ 10.201.2.2
#   curl 100.64.1.2:80 goes through (access: "*" may reach 100.64.1.0/24 on 22 80 443);
#   100.64.1.2:8080 is refused by the relay's access rules.  Each program runs with the
#   user and capabilities its unit in deploy/systemd gives it, and no more.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init

CONFIGS=$TN_E2E_DIR/../../deploy/configs
for f in server proxy client; do
	[ -f "$CONFIGS/$f.yaml" ] || fail "no deploy/configs/$f.yaml"
done
VIRT_IP=100.64.1.2 # 10.201.2.2 as clients address it: virtual_cidr 100.64.1.0/24 of proxy.yaml

tn_certs
# proxy.yaml's proxy_id is lan-1: its certificate must carry that id.
tmo 30 "$TN_BIN/certs-tool/certs-tool" issue --role proxy --id lan-1 --ca "$TN_CERTS/ca" \
	--out "$TN_CERTS/proxy-lan-1" >>"$TN_TMP/certs-tool.log" 2>&1 || fail "certs-tool issue lan-1"
lan_http 80
lan_http_8080() {
	tn_spawn http8080 "$TN_NS_LAN" "$TN_PYTHON" -m http.server --bind 0.0.0.0 \
		--directory "$TN_TMP/www" 8080
	wait_port "$TN_NS_LAN" 8080 10 || fail "the web server does not listen on 8080"
}
lan_http_8080

# The relay and the proxy run as tunnel-server.service and tunnel-proxy.service run them: an
# unprivileged user (here nobody) without any capability, whose group may read its key (as
# README.md says to set up /etc/tunnel).
UNPRIV=(setpriv --reuid=nobody --regid=nogroup --clear-groups --nnp --bounding-set=-all
	--inh-caps=-all)
chmod 0755 "$TN_TMP" "$TN_CERTS" "$TN_CERTS"/*/
chgrp nogroup "$TN_CERTS/server/key.pem" "$TN_CERTS/proxy-lan-1/key.pem"
chmod 0640 "$TN_CERTS/server/key.pem" "$TN_CERTS/proxy-lan-1/key.pem"
tn_spawn relay "$TN_NS_RELAY" "${UNPRIV[@]}" "$TN_BIN/server/server" --config "$CONFIGS/server.yaml" \
	--listen "0.0.0.0:$TN_RELAY_PORT" \
	--tls-cert "$TN_CERTS/server/cert.pem" --tls-key "$TN_CERTS/server/key.pem" \
	--tls-ca "$TN_CERTS/ca/cert.pem" --log-level debug
TN_PROGS+=("$TN_LAST_PID")
wait_port "$TN_NS_RELAY" "$TN_RELAY_PORT" 10 || fail "the relay does not listen"
# shellcheck disable=SC2034 # read by wait_registered (lib.sh)
TN_PROXY_ID=lan-1
TN_PROXY_CERTS=$TN_CERTS/proxy-lan-1
tn_spawn proxy "$TN_NS_LAN" "${UNPRIV[@]}" "$TN_BIN/proxy/proxy" --config "$CONFIGS/proxy.yaml" \
	--server "$TN_RELAY_LAN_IP:$TN_RELAY_PORT" --managed-cidr "$TN_LAN_NET" \
	--tls-cert "$TN_PROXY_CERTS/cert.pem" --tls-key "$TN_PROXY_CERTS/key.pem" \
	--tls-ca "$TN_CERTS/ca/cert.pem" --log-level debug
TN_PROGS+=("$TN_LAST_PID")
wait_registered
# As tunnel-client.service runs it: root with exactly CAP_NET_ADMIN and CAP_NET_RAW (in the
# bounding set, so iptables, which it runs, has no more either) and no new privileges.
CAPS=$(sed -n 's/^CapabilityBoundingSet=//p' "$TN_E2E_DIR/../../deploy/systemd/tunnel-client.service")
[ "$CAPS" = "CAP_NET_ADMIN CAP_NET_RAW" ] || fail "tunnel-client.service's capabilities are '$CAPS'"
# shellcheck disable=SC2054 # the commas belong to setpriv's arguments
SETPRIV=(setpriv --nnp --bounding-set=-all,+net_admin,+net_raw --inh-caps=-all,+net_admin,+net_raw
	--ambient-caps=-all,+net_admin,+net_raw)
command -v setpriv >/dev/null || tn_skip "setpriv (util-linux) is missing"
tn_spawn client "$TN_NS_CLI" "${SETPRIV[@]}" "$TN_BIN/client/client" --config "$CONFIGS/client.yaml" \
	--server "$TN_RELAY_CLI_IP:$TN_RELAY_PORT" \
	--tls-cert "$TN_CERTS/client/cert.pem" --tls-key "$TN_CERTS/client/key.pem" \
	--tls-ca "$TN_CERTS/ca/cert.pem" --log-level debug
TN_PROGS+=("$TN_LAST_PID")
wait_client_ready
# caps NAME SET MASK: the capability set SET of a running program is MASK.
caps() {
	local v
	v=$(awk -v k="$2:" '$1 == k { print $2 }' "/proc/$(tn_pid "$1")/status")
	[ "$((16#$v))" = "$(($3))" ] || fail "the $1's $2 is $v, expected $3"
}
# CAP_NET_ADMIN is bit 12, CAP_NET_RAW bit 13: 0x3000.
for set in CapEff CapBnd; do
	caps client "$set" 0x3000
	caps relay "$set" 0
	caps proxy "$set" 0
done
for prog in relay proxy; do
	[ "$(stat -c %U "/proc/$(tn_pid "$prog")")" = nobody ] || fail "the $prog does not run as nobody"
done

# The client intercepts both networks of client.yaml.
for net in 100.64.0.0/10 10.10.0.0/16; do
	rules_of_client | grep -q -- "-d $net " || fail "client.yaml's $net is not intercepted: $(rules_of_client)"
done
tn_log "the client intercepts 100.64.0.0/10 and 10.10.0.0/16 (client.yaml)"

body=$(n_cli timeout 10 curl -sS --max-time 8 "http://$VIRT_IP:80/") || fail "curl $VIRT_IP:80 failed"
[ "$body" = "$TN_HTTP_BODY" ] || fail "wrong body through the tunnel: '$body'"
tn_log "$VIRT_IP:80 reaches $TN_LAN_IP:80 through the proxy lan-1 (proxy.yaml)"

out=$(tools_in "$TN_NS_CLI" 10 probe "$VIRT_IP" 8080 --timeout 5 --expect refused,reset) ||
	fail "$VIRT_IP:8080 (not in server.yaml's access ports) gave '$out', expected a reset or a refusal"
wait_for_log "$TN_TMP/relay.log" "${VIRT_IP//./\\.}:8080: refused by the access rules" 5 ||
	fail "the relay did not refuse $VIRT_IP:8080 by the access rules of server.yaml"
tn_log "$VIRT_IP:8080 refused by server.yaml's access rules"
tn_log "the example configs work together"
