#!/usr/bin/env bash
# What kept the bridge's worker waiting for a core (BENCHMARKS.md, issue 16, ninth stretch).
#
# Records the scheduler for <seconds> (default 3) while `verbio serve` runs under load (`verbio bench`
# or the soak), then prints, for the bridge's own threads, how many times each ran and for how long at
# most, and for the worker's waits for a core longer than 0.3 ms (woken, not yet running: a frame that
# arrived then waits too) which tasks held the cores meanwhile. `<idle>` there means a core was idle
# and the wake-up itself was slow (an idle virtual CPU must be woken by the host).
#
#   bash scripts/sched-blame.sh [seconds]        # needs perf (Debian: linux-perf) and root
set -euo pipefail
SECONDS_TO_RECORD="${1:-3}"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
perf sched record -o "$OUT/sched.data" -- sleep "$SECONDS_TO_RECORD" >/dev/null 2>&1
perf sched timehist -i "$OUT/sched.data" 2>/dev/null | tail -n +4 >"$OUT/timehist.txt"
python3 - "$OUT/timehist.txt" <<'PY'
import collections
import sys

# timehist columns: time (switched out), cpu, task [tid/pid], wait, scheduling delay, run (ms)
rows = []
for line in open(sys.argv[1]):
    parts = line.split()
    if len(parts) < 6:
        continue
    try:
        end, delay, run = float(parts[0]), float(parts[-2]), float(parts[-1])
    except ValueError:
        continue
    name = " ".join(parts[2:-3]).split("[")[0]
    rows.append((end, name, delay, run))

runs = collections.defaultdict(list)
for _, name, _, run in rows:
    if name.startswith("verbio-"):
        runs[name].append(run)
for name, r in sorted(runs.items()):
    longer = sum(1 for x in r if x > 0.5)
    print(f"{name:<18} runs {len(r):>6}  busy {sum(r):8.1f} ms  longest {max(r):6.2f} ms  over 0.5 ms: {longer}")

blame = collections.Counter()
waits = 0
for end, name, delay, run in rows:
    if name != "verbio-worker" or delay <= 0.3:
        continue
    waits += 1
    start, stop = end - (run + delay) / 1000, end - run / 1000
    for end2, name2, _, run2 in rows:
        begin2 = end2 - run2 / 1000
        if name2 != "verbio-worker" and begin2 < stop and end2 > start:
            blame[name2] += (min(stop, end2) - max(start, begin2)) * 1000
print(f"worker waits for a core over 0.3 ms: {waits}; who held the cores meanwhile (ms):")
for name, ms in blame.most_common(8):
    print(f"  {name:<24} {ms:7.2f}")
PY
