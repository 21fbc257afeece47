#!/usr/bin/env bash
# The short soak (issue 16): `verbio bench --soak` for a couple of minutes on a debug build.
#
#   bash scripts/soak.sh                 20 recorded calls for 1.5 min (about 2.5 min in all)
#   bash scripts/soak.sh --calls 50 --minutes 5 --rollover-secs 60   other `verbio bench --soak` flags
#                                         instead of the defaults (see BENCHMARKS.md)
#
# Calls of mixed length are started and ended continuously; a tenth outlive the fake model's session cap
# (rollover every 20 s here, cap 80 s), every other turn barges in, every third answer calls the
# built-in `transfer_call`. Fails (exit 1) unless every call completes with a finalized WAV of its
# length in the recordings folder and the library, no audio is lost, and the bridge's RSS and open
# descriptors stay flat. A debug build: the test command has compiled most of it already, where a
# release build (thin LTO) takes ~9 min on the 2-core machine; 20 calls are light for either.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/verbio-target}"
cargo build --no-default-features --features sim --bin verbio
if [ "$#" -eq 0 ]; then
  set -- --calls 20 --minutes 1.5 --rollover-secs 20 --sample-secs 2
fi
# Ordinary heap pages for the short soak's bridge: with huge pages (serve's default) RSS moves in 2 MiB
# steps as khugepaged collapses the heap and the trim splits it (BENCHMARKS.md, seventh stretch), and one
# step is 5 % of a 20-call bridge: the leak check would read page granularity, not growth. The hour-long
# soak runs with the default.
export VERBIO_HUGE_PAGES="${VERBIO_HUGE_PAGES:-0}"
exec "$CARGO_TARGET_DIR/debug/verbio" bench --soak "$@"
