#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# relay_name.sh: the client names its relay, and its resolver sits inside a network it
# intercepts (here on the relay's own address, whose DNS port the client's rules take into the
# tunnel).  While the relay is away the resolver is out of reach too: when the relay comes
# back, the client must reconnect to the addresses the name had, not fail to resolve for ever.
#
#   client (--server relay.tunnel.test, --cidr RELAY/32) ══▶ relay (+ dnsmasq :53) ◀══ proxy
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init
command -v dnsmasq >/dev/null || tn_skip "dnsmasq is not installed"

relay=$TN_RELAY_CLI_IP
get() { n_cli timeout 10 curl -sS --max-time 5 "http://$TN_VIRT_IP:8080/"; }

tn_spawn dnsmasq "$TN_NS_RELAY" dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv \
	--no-hosts --bind-interfaces --listen-address="$relay" --port 53 --user=root \
	--pid-file= --log-facility=- --log-queries --address="/tunnel.test/$relay"
mkdir -p "/etc/netns/$TN_NS_CLI" # removed with the namespace (tn_ns_delete)
printf 'nameserver %s\noptions timeout:1 attempts:1\n' "$relay" >"/etc/netns/$TN_NS_CLI/resolv.conf"
lan_http 8080
tn_certs
start_relay
start_proxy
wait_registered
tn_spawn "$TN_CLIENT_NAME" "$TN_NS_CLI" "$TN_BIN/client/client" \
	--server "relay.tunnel.test:$TN_RELAY_PORT" --cidr "$TN_INTERCEPT" --cidr "$relay/32" \
	--listen-port "$TN_CLIENT_PORT" --reconnect-max 2s --server-name "$relay" \
	--tls-cert "$TN_CERTS/client/cert.pem" --tls-key "$TN_CERTS/client/key.pem" \
	--tls-ca "$TN_CERTS/ca/cert.pem" --log-level debug
TN_PROGS+=("$TN_LAST_PID")
wait_client_ready
[ "$(get)" = "$TN_HTTP_BODY" ] || fail "no traffic through the relay named relay.tunnel.test"

tn_log "the relay goes away and comes back; its name cannot be resolved meanwhile"
tn_stop relay KILL 5 || true
wait_for_log "$TN_TMP/$TN_CLIENT_NAME.log" "relay connection lost" 10 ||
	fail "the client did not notice the relay going away"
sleep 2 # a few attempts while the relay and the resolver are both away
relay_again relay-2
wait_back relay-2
grep -q "its name cannot be resolved now" "$TN_TMP/$TN_CLIENT_NAME.log" ||
	fail "the client came back without needing the addresses the name had: the test tests nothing"
[ "$(get)" = "$TN_HTTP_BODY" ] || fail "no traffic after the relay came back"
tn_log "ok: $(grep -m1 'its name cannot be resolved now' "$TN_TMP/$TN_CLIENT_NAME.log" | cut -d' ' -f3-)"
