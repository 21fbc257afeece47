#!/usr/bin/env bash
# The bridge's steady CPU, user and system apart (BENCHMARKS.md, issue 16): runs `verbio bench` with
# <bridge> as the bridge and reads the bridge process's utime/stime from /proc 12 s into the run and
# <window> seconds later (default 30), over calls × window of steady load, set-up excluded. The kernel
# splits user from system by sampling at each tick, so a longer window is a steadier split. Also per
# thread (the async worker, the library's store thread, the recording writer), so a change can be
# seen where it lands.
#
#   bash scripts/cpu-split.sh ./target/release/verbio 300 [generator-binary] [window]
set -euo pipefail
BRIDGE="$(realpath "$1")"
CALLS="$2"
GENERATOR="${3:-$BRIDGE}"
WINDOW="${4:-30}"
OUT="$(mktemp)"
VERBIO_BENCH_BRIDGE="$BRIDGE" timeout 600 "$GENERATOR" bench --calls "$CALLS" --seconds $((WINDOW + 20)) \
  >"$OUT" 2>&1 &
BENCH=$!
sleep 12
PID="$(pgrep -f "$(basename "$BRIDGE") serve" | head -1)"
# "<name> <utime> <stime>" for the process and for each of its threads.
snapshot() {
  awk '{print "process", $14, $15}' "/proc/$PID/stat"
  for t in /proc/"$PID"/task/*; do
    # A thread may end between the listing and the read (a blocking-pool thread): skip it.
    local comm stat
    comm="$(tr ' ' '_' <"$t/comm" 2>/dev/null)" || continue
    stat="$(sed 's/^.*) //' "$t/stat" 2>/dev/null)" || continue
    echo "$comm $(awk '{print $12, $13}' <<<"$stat")"
  done
}
BEFORE="$(snapshot)"
sleep "$WINDOW"
AFTER="$(snapshot)"
wait "$BENCH"
python3 - "$CALLS" "$(getconf CLK_TCK)" "$BEFORE" "$AFTER" "$WINDOW" <<'PY'
import sys
from collections import defaultdict
calls, tck = int(sys.argv[1]), int(sys.argv[2])
minutes = calls * int(sys.argv[5]) / 60
def totals(text):
    out = defaultdict(lambda: [0, 0])
    for line in text.splitlines():
        name, u, s = line.split()
        out[name][0] += int(u)
        out[name][1] += int(s)
    return out
before, after = totals(sys.argv[3]), totals(sys.argv[4])
def per(name):
    u = (after[name][0] - before[name][0]) / tck / minutes
    s = (after[name][1] - before[name][1]) / tck / minutes
    return u, s
u, s = per("process")
print(f"{calls} calls, steady: user {u:.4f} + sys {s:.4f} CPU-s per call-minute")
for name in sorted(k for k in after if k != "process"):
    u, s = per(name)
    if u + s > 0.0001:
        print(f"  {name:<16} user {u:.4f} + sys {s:.4f}")
PY
grep -E "p99|CPU per call|RSS|other processes" "$OUT"
rm -f "$OUT"
