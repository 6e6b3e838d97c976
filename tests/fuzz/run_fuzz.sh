#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# run_fuzz.sh FUZZER SEED_DIR SECONDS: runs a libFuzzer target for SECONDS on a copy of its seed
# corpus (the repository's is never written; its output goes to a temporary log), failing on any crash, leak, sanitizer report or
# input slower than 10 s.  The inputs that fail are kept in the temporary directory it prints.
set -euo pipefail
fuzzer=${1:?usage: run_fuzz.sh FUZZER SEED_DIR SECONDS}
seeds=${2:?}
secs=${3:?}
[[ -x $fuzzer ]] || { echo "run_fuzz.sh: $fuzzer is not built" >&2; exit 1; }
tmp=$(mktemp -d -t tn-fuzz.XXXXXX)
mkdir -p "$tmp/corpus"
rc=0
(cd "$tmp" && timeout --kill-after=10 $((secs + 60)) "$fuzzer" -max_total_time="$secs" -timeout=10 \
	-rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 corpus "$seeds" ) 2>"$tmp/log" ||
	rc=$?
# The targets' own complaints about bad input (conf.c reports each) fill the log: show the end,
# where libFuzzer's report and statistics are.
tail -n 30 "$tmp/log" >&2
if ((rc != 0)); then
	echo "run_fuzz.sh: $(basename "$fuzzer") failed (exit $rc); inputs and log kept in $tmp" >&2
	exit 1
fi
echo "run_fuzz.sh: $(basename "$fuzzer"): $(grep -c '' <(ls "$tmp/corpus")) inputs in the corpus after $secs s, nothing found" >&2
rm -rf "$tmp"
