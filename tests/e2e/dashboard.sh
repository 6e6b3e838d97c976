#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# dashboard.sh: the relay's dashboard in a headless Chromium (driven by the DevTools protocol):
# the page the relay serves from its binary shows the proxy the test started, with its network
# and route, and a live throughput while a paced transfer runs; the screenshot is kept in the
# build tree (artifacts/dashboard.png).
#
#   chromium (tn-relay-$$, loopback) ── GET / , /api/v1/status ──▶ relay admin 127.0.0.1:9090
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROMIUM" ] || tn_skip "no chromium (deploy/install-deps.sh installs it)"
tn_python_with websocket python3-websocket
ARTIFACTS="$TN_BUILD_DIR/artifacts"
mkdir -p "$ARTIFACTS"
rm -f "$ARTIFACTS/dashboard.png"

lan_serve soak 7002 serve-soak 7002 --results "$TN_TMP/soak.results"
tn_certs
start_relay --admin :9090
start_proxy
wait_registered
start_client
wait_client_ready

tn_log "the page is self-contained: nothing it loads comes from elsewhere"
n_relay timeout 5 curl -sS --fail --max-time 4 -o "$TN_TMP/page.html" http://127.0.0.1:9090/ ||
	fail "GET / failed"
grep -q '<title>Tunnel relay</title>' "$TN_TMP/page.html" || fail "GET / is not the dashboard"
! grep -Eiq '(src|href)="(https?:)?//' "$TN_TMP/page.html" || fail "the page loads something from elsewhere"

tn_log "paced transfers both ways for the throughput graph"
tools_in "$TN_NS_CLI" 60 soak-xfer "$TN_VIRT_IP" 7002 up $((3 << 20)) 1 --rate $((256 << 10)) \
	>"$TN_TMP/xfer-up.out" 2>&1 &
xfer_up=$!
tools_in "$TN_NS_CLI" 60 soak-xfer "$TN_VIRT_IP" 7002 down $((6 << 20)) 2 --rate $((512 << 10)) \
	>"$TN_TMP/xfer-down.out" 2>&1 &
xfer_down=$!

tn_log "headless chromium in the relay's namespace"
# No sandbox: we run as root in a throwaway namespace; no background traffic of its own.
tn_spawn chromium "$TN_NS_RELAY" "$CHROMIUM" --headless=new --no-sandbox --disable-gpu \
	--no-first-run --disable-background-networking --disable-component-update --disable-sync \
	--disable-default-apps --disable-extensions --metrics-recording-only --mute-audio \
	--user-data-dir="$TN_TMP/chromium" --remote-debugging-address=127.0.0.1 \
	--remote-debugging-port=9222 about:blank
n_relay "$PY" "$TN_E2E_DIR/dashboard_check.py" 9222 http://127.0.0.1:9090/ \
	"$ARTIFACTS/dashboard.png" --expect "$TN_PROXY_ID" --expect "$TN_VIRT_NET" \
	--expect "$TN_LAN_NET" --expect client-1 --rate-up --min-samples 5 --timeout 40 ||
	fail "the dashboard did not show the proxy, its network and live throughput"
[ -s "$ARTIFACTS/dashboard.png" ] || fail "no screenshot"
tn_stop chromium || true
wait "$xfer_up" || fail "the paced upload failed: $(cat "$TN_TMP/xfer-up.out")"
wait "$xfer_down" || fail "the paced download failed: $(cat "$TN_TMP/xfer-down.out")"
tn_log "screenshot: $ARTIFACTS/dashboard.png ($(stat -c %s "$ARTIFACTS/dashboard.png") bytes)"
tn_log "ok"
