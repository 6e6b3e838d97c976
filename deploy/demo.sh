#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# demo.sh: the quick-start demo. Builds a client machine, a relay and a remote LAN out of network
# namespaces on this one host, runs the real programs, and shows traffic going through the tunnel.
#
#   tn-cli-PID                          tn-relay-PID                         tn-lan-PID
#   curl, client ══ h2/mTLS ══▶ server 10.201.1.2:8443 ◀══ h2/mTLS ══ proxy, web server
#   10.201.1.1                  10.201.2.1                                   10.201.2.2
#
#   The LAN is reached from cli as 100.64.2.0/24 (100.64.2.2 is the web server 10.201.2.2).
#
# Usage: sudo deploy/demo.sh [--keep]
#   --keep   leave everything running afterwards, until Ctrl-C
# Env: TN_BUILD_DIR  the CMake build tree (default: build/ at the top of the repository)
#      TN_DEMO_MB    size of the bulk transfer in MiB (default 200)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export TN_BUILD_DIR=${TN_BUILD_DIR:-$ROOT/build}
KEEP=0
MB=${TN_DEMO_MB:-200}

usage() { sed -n '3,17s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }
for arg in "$@"; do
	case $arg in
	--keep) KEEP=1 ;;
	-h | --help) usage; exit 0 ;;
	*) echo "demo.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
	esac
done

die() {
	echo "demo.sh: $*" >&2
	exit 1
}
[ "$(id -u)" = 0 ] || die "run me as root (sudo): I create network namespaces and iptables rules"
for b in certs-tool/certs-tool server/server proxy/proxy client/client; do
	[ -x "$TN_BUILD_DIR/$b" ] ||
		die "$TN_BUILD_DIR/$b is missing: build first (cmake -B build && cmake --build build) or set TN_BUILD_DIR"
done
if ! [[ $MB =~ ^[1-9][0-9]*$ ]]; then die "TN_DEMO_MB must be a positive number of MiB"; fi

TN_NAME=demo
TN_VERBOSE=0
TN_SKIP_RC=1    # a missing tool is an error here, not a skipped test
TN_CHECK_EXIT=0 # the tests check how the programs stop; the demo only reports it
# shellcheck source-path=SCRIPTDIR source=../tests/e2e/lib.sh
. "$ROOT/tests/e2e/lib.sh"

if [ -t 1 ]; then B=$'\033[1m' N=$'\033[0m'; else B="" N=""; fi
step() { printf '\n%s==> %s%s\n' "$B" "$*" "$N"; }
say() { printf '    %s\n' "$*"; }

tn_init

step "The network: three namespaces on this host"
cat <<EOF
    $TN_NS_CLI                      $TN_NS_RELAY                  $TN_NS_LAN
    "your laptop"                   "the relay"                   "the remote LAN"
    apps + client  ── $TN_CLI_IP ─── $TN_RELAY_CLI_IP   $TN_RELAY_LAN_IP ─── $TN_LAN_IP  proxy + web server
                                    (does not forward)            (no route back)

    The client intercepts $TN_INTERCEPT; the proxy serves $TN_LAN_NET as $TN_VIRT_NET,
    so $TN_VIRT_IP on the laptop is $TN_LAN_IP in the LAN.
EOF

step "Certificates: a CA, and one certificate each for the relay, the proxy and the client"
tn_certs
for d in ca server proxy client; do say "$d: $TN_CERTS/$d/cert.pem"; done

step "A web server inside the LAN ($TN_LAN_IP:8080)"
lan_http 8080
say "serving: $TN_HTTP_BODY"

step "Starting the relay in $TN_NS_RELAY (listens on :$TN_RELAY_PORT)"
start_relay
say "relay pid $(tn_pid relay)"

step "Starting the proxy in $TN_NS_LAN (it dials out to the relay, it opens no port)"
start_proxy
wait_registered
say "relay: $(grep -m1 "proxy $TN_PROXY_ID registered" "$TN_TMP/relay.log")"

step "Starting the client in $TN_NS_CLI (intercepts $TN_INTERCEPT with iptables)"
start_client
wait_client_ready
say "client: $(grep -E -m1 "$TN_READY_RE" "$TN_TMP/client.log")"
say "its rules:"
rules_of_client | sed 's/^/      /'

step "curl http://$TN_VIRT_IP:8080/ from the laptop, through the tunnel"
say "\$ ip netns exec $TN_NS_CLI curl http://$TN_VIRT_IP:8080/"
body=$(n_cli timeout 10 curl -sS --max-time 8 "http://$TN_VIRT_IP:8080/") ||
	fail "curl through the tunnel failed"
say "$body"
[ "$body" = "$TN_HTTP_BODY" ] || fail "unexpected response '$body'"
say "(the web server saw the request come from $(grep -m1 -oE '^[0-9.]+ - - ' "$TN_TMP/http.log" | cut -d' ' -f1), the proxy: the app never left the laptop)"

step "The LAN's real address is not reachable from the laptop on its own"
say "\$ ip netns exec $TN_NS_CLI curl --max-time 2 http://$TN_LAN_IP:8080/"
if n_cli timeout 5 curl -sS --max-time 2 "http://$TN_LAN_IP:8080/" >/dev/null 2>&1; then
	fail "$TN_LAN_IP answered directly: the namespaces are not isolated"
fi
say "no answer, as expected: only the tunnel leads into the LAN"

step "Moving $MB MiB each way through the tunnel (SHA-256 checked on both ends)"
size=$((MB * 1024 * 1024))
lan_serve sha 7002 serve-sha 7002
lan_serve source 7003 serve-source 7003 "$size" 2
read -r sha _ secs mibs _ < <(tools_in "$TN_NS_CLI" 300 send-sha "$TN_VIRT_IP" 7002 "$size" 1 --timeout 30) ||
	fail "the upload failed or arrived damaged"
say "laptop -> LAN: $MB MiB in $secs s = $mibs MiB/s (sha256 ${sha:0:16}... matches)"
want=$(tmo 60 "$TN_PYTHON" "$TN_TOOLS" stream-sha "$size" 2)
read -r sha n secs mibs _ < <(tools_in "$TN_NS_CLI" 300 recv-sha "$TN_VIRT_IP" 7003 --timeout 30) ||
	fail "the download failed"
if [ "$sha" != "$want" ] || [ "$n" != "$size" ]; then
	fail "the download arrived damaged ($n bytes, sha256 $sha)"
fi
say "LAN -> laptop: $MB MiB in $secs s = $mibs MiB/s (sha256 ${sha:0:16}... matches)"

step "What the relay logged about these flows"
if grep -q 'flow' "$TN_TMP/relay.log"; then
	grep 'flow' "$TN_TMP/relay.log" | tail -n 12 | sed 's/^/    /'
else
	tail -n 12 "$TN_TMP/relay.log" | sed 's/^/    /'
fi

if [ "$KEEP" = 1 ]; then
	step "Everything keeps running. Try, in another terminal:"
	say "sudo ip netns exec $TN_NS_CLI curl http://$TN_VIRT_IP:8080/"
	say "logs: $TN_TMP/*.log"
	say "Press Ctrl-C to tear it all down (or wait an hour)."
	trap 'echo; exit 0' INT
	for ((i = 0; i < 3600; i++)); do sleep 1; done
fi

step "Done: tearing down (processes, namespaces, certificates)"
