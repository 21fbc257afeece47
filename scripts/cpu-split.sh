#!/usr/bin/env bash
# The bridge's steady CPU, user and system apart (BENCHMARKS.md, issue 16): runs `verbio bench` with
# <bridge> as the bridge and reads the bridge process's utime/stime from /proc 12 s and 22 s into a
# 30 s run, i.e. over calls × 10 s of steady load, set-up excluded.
#
#   bash scripts/cpu-split.sh ./target/release/verbio 300 [generator-binary]
set -euo pipefail
BRIDGE="$(realpath "$1")"
CALLS="$2"
GENERATOR="${3:-$BRIDGE}"
OUT="$(mktemp)"
VERBIO_BENCH_BRIDGE="$BRIDGE" timeout 300 "$GENERATOR" bench --calls "$CALLS" --seconds 30 >"$OUT" 2>&1 &
BENCH=$!
sleep 12
PID="$(pgrep -f "$(basename "$BRIDGE") serve" | head -1)"
read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$PID/stat")
sleep 10
read -r u2 s2 < <(awk '{print $14, $15}' "/proc/$PID/stat")
wait "$BENCH"
python3 - "$CALLS" "$(getconf CLK_TCK)" "$u1" "$s1" "$u2" "$s2" <<'PY'
import sys
calls, tck, u1, s1, u2, s2 = map(int, sys.argv[1:])
minutes = calls * 10 / 60
print(f"{calls} calls, steady: user {(u2 - u1) / tck / minutes:.4f} + sys {(s2 - s1) / tck / minutes:.4f} "
      "CPU-s per call-minute")
PY
grep -E "p99|CPU per call|RSS|other processes" "$OUT"
rm -f "$OUT"
