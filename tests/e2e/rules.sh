#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# rules.sh: the client removes exactly the netfilter rules it installed: on SIGTERM at once,
# after a SIGKILL on its next start. Rules that are not its own are never touched.
#
#   tn-cli-$$ netfilter:  sentinel rules of ours (nat OUTPUT, PREROUTING, chain E2E_OTHER,
#                         mangle OUTPUT, where the client's NFQUEUE chain hangs too; ip6tables
#                         nat and mangle OUTPUT: the clients intercept an IPv6 network too)
#                         + the client's chain TUNNEL_CLIENT (comment tunnel-client) while it runs
#   run 1: start, traffic, SIGTERM  → exit 0, state equal to the one before
#   run 2: start, SIGKILL           → its rules remain (nothing could remove them)
#   run 3: start                    → stale rules replaced (not doubled), traffic; a second client
#                                     and a --cleanup beside it are refused and touch nothing;
#                                     SIGTERM → clean
#   tn-cli-$$ ── client ══ tn-relay-$$ ══ proxy ── tn-lan-$$ (web server 8080)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init

# iptables-save and ip6tables-save without their timestamp comments and packet counters.
nf_state() {
	{
		n_cli timeout 10 iptables-save
		echo "# ip6tables"
		n_cli timeout 10 ip6tables-save
	} | grep -v '^# [GC]' | sed -E 's/\[[0-9]+:[0-9]+\]/[0:0]/'
}

get_ok() {
	local body
	body=$(n_cli timeout 10 curl -sS --max-time 8 "http://$TN_VIRT_IP:8080/") || fail "$1: curl failed"
	[ "$body" = "$TN_HTTP_BODY" ] || fail "$1: wrong body '$body'"
}

n_rules() { rules_of_client | grep -c -- '^-A' || true; }

# Rules that belong to someone else; they must survive every client run unchanged.
n_cli timeout 10 iptables -t nat -N E2E_OTHER
n_cli timeout 10 iptables -t nat -A E2E_OTHER -d 192.0.2.0/24 -p tcp -j RETURN
n_cli timeout 10 iptables -t nat -A OUTPUT -d 192.0.2.0/24 -p tcp -m comment --comment e2e-sentinel -j E2E_OTHER
n_cli timeout 10 iptables -t nat -A PREROUTING -d 192.0.2.0/24 -p tcp -m comment --comment e2e-sentinel -j RETURN
n_cli timeout 10 iptables -t filter -A OUTPUT -d 192.0.2.0/24 -m comment --comment e2e-sentinel -j ACCEPT
n_cli timeout 10 iptables -t mangle -A OUTPUT -d 192.0.2.0/24 -p udp -m comment --comment e2e-sentinel -j RETURN
# The clients intercept an IPv6 network too: ip6tables gets the same chains.
n_sysctl "$TN_NS_CLI" net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0
n_cli timeout 10 ip6tables -t nat -A OUTPUT -d 2001:db8::/32 -p tcp -m comment --comment e2e-sentinel -j RETURN
n_cli timeout 10 ip6tables -t mangle -A OUTPUT -d 2001:db8::/32 -p udp -m comment --comment e2e-sentinel -j RETURN
nf_state >"$TN_TMP/nf.before"
[ -z "$(rules_of_client)" ] || fail "client rules before any client ran"

lan_http 8080
tn_certs
start_relay
start_proxy
wait_registered

# ---- run 1: SIGTERM
tn_log "run 1: start, use, SIGTERM"
TN_CLIENT_NAME=client-run1 # used by start_client, wait_client_ready
start_client --cidr fd00:64::/32
wait_client_ready
nf_state >"$TN_TMP/nf.during1"
n1=$(n_rules)
[ "$n1" -gt 0 ] || fail "the running client has no rule tagged TUNNEL_CLIENT / tunnel-client"
n_cli timeout 10 ip6tables-save | grep -q -- '-j TUNNEL_CLIENT_Q' || fail "no ip6tables rules for the IPv6 network"
tn_log "the client installed $n1 rules:"
rules_of_client >&2
get_ok "run 1"
rc=0
tn_stop client-run1 TERM 10 || rc=$?
[ "$rc" = 0 ] || fail "the client exited with status $rc on SIGTERM (124: still running)"
[ -z "$(rules_of_client)" ] || fail "rules left after SIGTERM: $(rules_of_client)"
nf_state >"$TN_TMP/nf.after1"
diff -u "$TN_TMP/nf.before" "$TN_TMP/nf.after1" >&2 || fail "netfilter state differs after run 1"
! n_cli timeout 6 curl -sS --max-time 3 "http://$TN_VIRT_IP:8080/" || false

# ---- run 2: SIGKILL leaves the rules
tn_log "run 2: start, SIGKILL"
TN_CLIENT_NAME=client-run2 # used by start_client, wait_client_ready
start_client --cidr fd00:64::/32
wait_client_ready
rc=0
tn_stop client-run2 KILL 10 || rc=$?
[ "$rc" = 137 ] || fail "the client did not die of SIGKILL (status $rc)"
n2=$(n_rules)
[ "$n2" = "$n1" ] || fail "after SIGKILL $n2 client rules remain, expected the $n1 it had"
tn_log "the killed client left its $n2 rules, as expected"

# ---- run 3: a new client removes the stale rules at start
tn_log "run 3: start over the stale rules"
TN_CLIENT_NAME=client-run3 # used by start_client, wait_client_ready
start_client --cidr fd00:64::/32
wait_client_ready
n3=$(n_rules)
[ "$n3" = "$n1" ] || fail "with stale rules present the new client has $n3 rules, expected $n1"
nf_state >"$TN_TMP/nf.during3"
diff -u "$TN_TMP/nf.during1" "$TN_TMP/nf.during3" >&2 ||
	fail "the rules of run 3 (started over stale ones) differ from those of run 1"
get_ok "run 3"
# A reload installs the rules again: the jumps to our chains must not pile up.
for i in 1 2 3; do
	kill -HUP "$(tn_pid client-run3)"
	wait_count "$TN_TMP/client-run3.log" "reload: done" "$i" 10 || fail "the client did not reload ($i)"
done
n_hup=$(n_rules)
[ "$n_hup" = "$n1" ] || fail "after 3 reloads the client has $n_hup rules, expected $n1: $(rules_of_client)"
# A second client in the namespace (another port, even a --cleanup) must leave these rules be.
for extra in "--listen-port $((TN_CLIENT_PORT + 1)) --status-socket $TN_TMP/second.sock" --cleanup; do
	rc=0
	# shellcheck disable=SC2086 # $extra: the options, split on purpose
	out=$(n_cli timeout 20 "$TN_BIN/client/client" --server "$TN_RELAY_CLI_IP:$TN_RELAY_PORT" \
		--cidr "$TN_INTERCEPT" --tls-cert "$TN_CERTS/client/cert.pem" \
		--tls-key "$TN_CERTS/client/key.pem" --tls-ca "$TN_CERTS/ca/cert.pem" $extra 2>&1) || rc=$?
	if [ "$rc" != 1 ] || [[ $out != *"another client runs in this network namespace"* ]]; then
		fail "a second client ($extra) beside a running one: status $rc: $out"
	fi
	nf_state >"$TN_TMP/nf.second"
	diff -u "$TN_TMP/nf.during3" "$TN_TMP/nf.second" >&2 ||
		fail "a second client ($extra) changed the running client's rules"
done
get_ok "run 3, after the second clients"
tn_log "a second client, and --cleanup, beside a running client: refused, its rules intact"
rc=0
tn_stop client-run3 TERM 10 || rc=$?
[ "$rc" = 0 ] || fail "the client exited with status $rc on SIGTERM (124: still running)"
[ -z "$(rules_of_client)" ] || fail "rules left after run 3: $(rules_of_client)"
nf_state >"$TN_TMP/nf.after3"
diff -u "$TN_TMP/nf.before" "$TN_TMP/nf.after3" >&2 || fail "netfilter state differs after run 3"
