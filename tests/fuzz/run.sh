#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# run.sh CLANG BUILD-DIR SECONDS: builds the fuzz targets of this directory with CLANG in
# BUILD-DIR and fuzzes the packet parser for SECONDS, starting from the seeds (new inputs go to
# BUILD-DIR/corpus, kept between runs).  A crash, a leak or a failed check fails the test and
# leaves the input in BUILD-DIR/crash-*.
set -euo pipefail
clang=$1 dir=$2 secs=$3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# A sanitizer of the surrounding test run must not reach clang's own build of the target.
unset ASAN_OPTIONS UBSAN_OPTIONS
cmake -S "$here" -B "$dir" -DCMAKE_C_COMPILER="$clang" -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$dir" >/dev/null
mkdir -p "$dir/corpus"
cd "$dir"
exec ./fuzz_packet -max_total_time="$secs" -timeout=5 -rss_limit_mb=1024 -max_len=70000 \
	-print_final_stats=1 corpus "$here/seeds"
