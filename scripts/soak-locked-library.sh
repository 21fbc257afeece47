#!/usr/bin/env bash
# A short soak while another process holds the bridge's library write-locked, as a backup tool or a
# long checkpoint would (BENCHMARKS.md, issue 16, tenth stretch). The recording writer must keep draining
# every live call's feed meanwhile: the soak's WAV and library checks fail if any audio was dropped.
#
# Runs `verbio bench --soak --calls <calls> --minutes 3` and, at 60, 90 and 120 s, takes
# `BEGIN IMMEDIATE` on the bridge's SQLite file for <hold> seconds (below the library's 5 s busy
# timeout, so every insert still succeeds once the lock is gone). A 3-minute soak also fails its
# rollover check (the model's session cap is an hour); read the WAV and library lines.
#
#   bash scripts/soak-locked-library.sh <verbio binary> [calls] [hold seconds]   # needs python3
set -euo pipefail
VERBIO="$1"
CALLS="${2:-200}"
HOLD="${3:-4}"
START=$SECONDS
"$VERBIO" bench --soak --calls "$CALLS" --minutes 3 --prune --sample-secs 5 &
SOAK=$!
sleep 55
DB=""
for pid in $(pgrep -f -- "serve --port 0" || true); do
  for fd in /proc/"$pid"/fd/*; do
    target="$(readlink "$fd" 2>/dev/null || true)"
    case "$target" in *.sqlite3) DB="$target" ;; esac
  done
done
if [ -z "$DB" ]; then
  echo "soak-locked-library: the bridge's library was not found" >&2
  kill "$SOAK" 2>/dev/null || true
  exit 1
fi
for at in 60 90 120; do
  while ((SECONDS - START < at)); do sleep 0.2; done
  python3 - "$DB" "$HOLD" <<'PY'
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
conn.execute("BEGIN IMMEDIATE")
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
print(f"soak-locked-library: held the library for {sys.argv[2]} s, until {time.strftime('%H:%M:%S')}")
PY
done
wait "$SOAK"
