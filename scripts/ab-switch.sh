#!/usr/bin/env bash
# One bridge binary with and without an environment setting, alternated (BENCHMARKS.md, issue 16):
# each round runs `scripts/cpu-split.sh` once per arm, the order swapped every round, so a machine that
# drifts over the minutes hits both arms alike. Prints each run's CPU split and latency lines.
#
#   bash scripts/ab-switch.sh ./target/release/verbio VERBIO_THREAD_SCHED=off 500 4 [generator]
set -euo pipefail
BRIDGE="$(realpath "$1")"
SETTING="$2"
CALLS="$3"
ROUNDS="$4"
GENERATOR="${5:-$BRIDGE}"
HERE="$(cd "$(dirname "$0")" && pwd)"
ARMS="$(mktemp -d)"
trap 'rm -rf "$ARMS"' EXIT
# cpu-split.sh finds the bridge by its name on the command line, so each arm is a wrapper that runs
# the same binary under its own name.
for arm in default changed; do
  {
    echo '#!/usr/bin/env bash'
    [ "$arm" = changed ] && echo "export $SETTING"
    echo "exec -a \"$ARMS/verbio-$arm\" \"$BRIDGE\" \"\$@\""
  } >"$ARMS/verbio-$arm"
  chmod +x "$ARMS/verbio-$arm"
done
for round in $(seq 1 "$ROUNDS"); do
  order="default changed"
  [ $((round % 2)) = 0 ] && order="changed default"
  for arm in $order; do
    label="$arm"
    [ "$arm" = changed ] && label="$SETTING"
    echo "== round $round: $label, $CALLS calls"
    bash "$HERE/cpu-split.sh" "$ARMS/verbio-$arm" "$CALLS" "$GENERATOR" 30 2>&1 |
      grep -E "steady|verbio-worker|p99|bridge alone|other processes" | sed 's/, max.*//'
  done
done
