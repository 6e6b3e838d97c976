#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bulk.sh: 100 MiB each way through the tunnel, byte for byte (SHA-256 on both ends).
#
#   tn-cli-$$                                   tn-lan-$$
#   send-sha ══ client ═ relay ═ proxy ══▶ serve-sha 7002     (hashes what came, replies)
#   recv-sha ◀═ client ═ relay ═ proxy ═══ serve-source 7003  (deterministic 100 MiB)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tn_init

size=$((100 * 1024 * 1024))
lan_serve sha 7002 serve-sha 7002
lan_serve source 7003 serve-source 7003 "$size" 2
tn_certs
start_tunnel

tn_log "client -> lan: $size bytes"
out=$(tools_in "$TN_NS_CLI" 60 send-sha "$TN_VIRT_IP" 7002 "$size" 1 --timeout 20) ||
	fail "upload: the LAN server did not get the same bytes"
read -r sha n secs mibs _ <<<"$out"
tn_log "upload ok: sha256 $sha, $n bytes in $secs s ($mibs MiB/s)"
grep -q "got $size bytes sha256 $sha" "$TN_TMP/sha.log" || fail "the LAN server logged another hash"

tn_log "lan -> client: $size bytes"
want=$(tmo 30 "$TN_PYTHON" "$TN_TOOLS" stream-sha "$size" 2)
out=$(tools_in "$TN_NS_CLI" 60 recv-sha "$TN_VIRT_IP" 7003 --timeout 20) || fail "download failed"
read -r sha n secs mibs _ <<<"$out"
[ "$n" = "$size" ] || fail "download: got $n bytes, expected $size"
[ "$sha" = "$want" ] || fail "download: sha256 $sha, expected $want"
wait_for_log "$TN_TMP/source.log" "sent $size bytes sha256 $want" 5 || fail "the LAN server logged another hash"
tn_log "download ok: sha256 $sha, $n bytes in $secs s ($mibs MiB/s)"
