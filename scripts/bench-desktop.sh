#!/usr/bin/env bash
# Desktop measurements for BENCHMARKS.md: installer sizes, start-up to interactive, idle CPU and memory
# with the window open and hidden in the tray. Uses the release build (`tauri build` / `cargo build --release`)
# under Xvfb with a private D-Bus session (as a headless CI desktop; WebKit renders in software).
#
#   bash scripts/bench-desktop.sh [runs (default 5)] [idle seconds (default 20)]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# Through sudo: as the user who asked, when they have the toolchains (scripts/privileges.sh).
# shellcheck source=scripts/privileges.sh
source scripts/privileges.sh
continue_as_invoking_user scripts/bench-desktop.sh "$@"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
APP="$TARGET_DIR/release/verbio"
RUNS="${1:-5}"
IDLE="${2:-20}"
[ -x "$APP" ] || { echo "bench-desktop: no release build at $APP (run the tauri build first)" >&2; exit 1; }

echo "## installer sizes"
for f in "$TARGET_DIR"/release/bundle/deb/*.deb "$TARGET_DIR"/release/bundle/appimage/*.AppImage; do
  [ -f "$f" ] && printf '%s\t%s bytes (%s)\n' "$(basename "$f")" "$(stat -c %s "$f")" "$(du -h "$f" | cut -f1)"
done
printf 'binary %s\t%s bytes\n' "$APP" "$(stat -c %s "$APP")"

WORK="$(mktemp -d -t verbio-bench.XXXXXX)"
mkdir -p "$WORK/run" && chmod 700 "$WORK/run"
# -noreset: Xvfb resets when its last client leaves (the readiness probe is one), and a client
# connecting during that reset fails (seen: "Failed to initialize GTK" in CI).
Xvfb :96 -screen 0 1280x800x24 -nolisten tcp -noreset >"$WORK/xvfb.log" 2>&1 &
XVFB=$!
trap 'kill $XVFB 2>/dev/null || true; rm -rf "$WORK"' EXIT
sleep 1

export BENCH_APP="$APP" BENCH_WORK="$WORK" BENCH_RUNS="$RUNS" BENCH_IDLE="$IDLE"
# shellcheck disable=SC2016
dbus-run-session -- bash -c '
  set -euo pipefail
  export XDG_DATA_HOME="$BENCH_WORK/share" XDG_RUNTIME_DIR="$BENCH_WORK/run" DISPLAY=:96 NO_AT_BRIDGE=1
  mkdir -p "$XDG_DATA_HOME"
  printf "bench\n" | gnome-keyring-daemon --daemonize --unlock --components=secrets >/dev/null
  export VERBIO_DATA_DIR="$BENCH_WORK/data" VERBIO_CONFIG="$BENCH_WORK/config.toml" VERBIO_KEYCHAIN_SERVICE=app.verbio.bench
  export VERBIO_PORT="$(python3 -c "import socket; s=socket.socket(); s.bind((\"127.0.0.1\",0)); print(s.getsockname()[1])")"
  export VERBIO_API_PORT=0

  tree_pids() { # the app and every process below it (WebKit web and network processes)
    local all=("$1") queue=("$1") p kids
    while [ "${#queue[@]}" -gt 0 ]; do
      p="${queue[0]}"; queue=("${queue[@]:1}")
      kids="$(pgrep -P "$p" || true)"
      for k in $kids; do all+=("$k"); queue+=("$k"); done
    done
    echo "${all[@]}"
  }
  cpu_ticks() { local t=0 p; for p in $(tree_pids "$1"); do
      [ -r "/proc/$p/stat" ] && t=$((t + $(awk "{print \$14 + \$15}" "/proc/$p/stat"))); done; echo "$t"; }
  mem_kb() { local rss=0 pss=0 p; for p in $(tree_pids "$1"); do
      [ -r "/proc/$p/smaps_rollup" ] || continue
      rss=$((rss + $(awk "/^Rss:/ {print \$2}" "/proc/$p/smaps_rollup")))
      pss=$((pss + $(awk "/^Pss:/ {print \$2}" "/proc/$p/smaps_rollup"))); done; echo "$rss $pss"; }
  idle() { # CPU % of one core over BENCH_IDLE seconds, then RSS/PSS
    local hz t0 t1; hz=$(getconf CLK_TCK); t0=$(cpu_ticks "$1"); sleep "$BENCH_IDLE"; t1=$(cpu_ticks "$1")
    awk -v a="$t0" -v b="$t1" -v hz="$hz" -v s="$BENCH_IDLE" "BEGIN { printf \"%.2f\", (b - a) / hz / s * 100 }"
  }

  echo "## start-up to interactive (process spawn → the window rendered and the core answered)"
  for i in $(seq 1 "$BENCH_RUNS"); do
    rm -rf "$VERBIO_DATA_DIR"
    start=$(date +%s%N)
    "$BENCH_APP" >"$BENCH_WORK/app.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 1500); do grep -q "window interactive" "$BENCH_WORK/app.log" && break; sleep 0.01; done
    seen=$(date +%s%N)
    inside=$(grep -o "startup_ms=[0-9]*" "$BENCH_WORK/app.log" | cut -d= -f2 || echo "?")
    echo "run $i: $(( (seen - start) / 1000000 )) ms measured outside (in-app: ${inside} ms)"
    if [ "$i" -lt "$BENCH_RUNS" ]; then kill "$pid"; wait "$pid" 2>/dev/null || true; fi
  done

  sleep 5
  echo "## idle, window open (${BENCH_IDLE} s)"
  echo "cpu_percent_of_one_core $(idle "$pid")"
  echo "rss_kb pss_kb $(mem_kb "$pid")"
  echo "processes $(tree_pids "$pid" | wc -w)"
  python3 tests/e2e/window_tool.py close Verbio
  sleep 5
  echo "## idle, hidden in the tray (${BENCH_IDLE} s)"
  echo "window $(python3 tests/e2e/window_tool.py state Verbio)"
  echo "cpu_percent_of_one_core $(idle "$pid")"
  echo "rss_kb pss_kb $(mem_kb "$pid")"
  kill "$pid"; wait "$pid" 2>/dev/null || true
'
