#!/usr/bin/env bash
# Desktop smoke test: builds the debug app, opens it on a virtual display and checks that
# the window "Verbio" appears and the core accepts connections on its port; then takes a screenshot.
#
# Outside CI the screenshot replaces docs/screenshots/main.png; in CI (CI=true) it goes to a temp dir.
# Needs: xvfb, x11-utils (xwininfo), imagemagick (import), the UI built into ui/dist.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# Through sudo: as the user who asked, when they have the toolchains (scripts/privileges.sh).
# shellcheck source=scripts/privileges.sh
source scripts/privileges.sh
continue_as_invoking_user scripts/smoke-window.sh "$@"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
DISPLAY_NUM="${SMOKE_DISPLAY:-:99}"
TIMEOUT_SECS="${SMOKE_TIMEOUT_SECS:-60}"

log() { printf '==> smoke: %s\n' "$*"; }
fail() {
  printf 'smoke-window: FAILED: %s\n' "$*" >&2
  if [ -n "${APP_LOG:-}" ] && [ -s "$APP_LOG" ]; then
    printf -- '--- last lines of the app log (%s) ---\n' "$APP_LOG" >&2
    tail -n 40 "$APP_LOG" >&2
  fi
  exit 1
}

for tool in Xvfb xwininfo import; do
  command -v "$tool" >/dev/null 2>&1 || fail "'$tool' is missing; run scripts/install-deps.sh"
done
[ -f ui/dist/index.html ] || fail "ui/dist is missing; run 'npm run build --prefix ui' first"

log "building the debug app"
cargo build --quiet --bin verbio
APP="$TARGET_DIR/debug/verbio"
[ -x "$APP" ] || fail "no binary at $APP"

WORK="$(mktemp -d -t verbio-smoke.XXXXXX)"
APP_LOG="$WORK/app.log"
XVFB_PID=""
APP_PID=""
cleanup() {
  if [ -n "$APP_PID" ] && kill -0 "$APP_PID" 2>/dev/null; then
    kill "$APP_PID" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$APP_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$APP_PID" 2>/dev/null || true
  fi
  if [ -n "$XVFB_PID" ]; then
    kill "$XVFB_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK/data"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A display: reuse one that answers, otherwise start Xvfb (and stop it afterwards).
if xwininfo -display "$DISPLAY_NUM" -root >/dev/null 2>&1; then
  log "using the running X display $DISPLAY_NUM"
else
  log "starting Xvfb $DISPLAY_NUM"
  # -noreset: Xvfb resets when its last client leaves (the readiness probe is one), and a client
  # connecting during that reset fails (seen: "Failed to initialize GTK" in CI).
  Xvfb "$DISPLAY_NUM" -screen 0 1280x800x24 -nolisten tcp -noreset >"$WORK/xvfb.log" 2>&1 &
  XVFB_PID=$!
  for _ in $(seq 1 50); do
    xwininfo -display "$DISPLAY_NUM" -root >/dev/null 2>&1 && break
    kill -0 "$XVFB_PID" 2>/dev/null || fail "Xvfb exited: $(cat "$WORK/xvfb.log")"
    sleep 0.1
  done
  xwininfo -display "$DISPLAY_NUM" -root >/dev/null 2>&1 || fail "Xvfb did not come up on $DISPLAY_NUM"
fi

PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
log "starting the app (VERBIO_PORT=$PORT, data in $WORK/data)"
mkdir -p "$WORK/data"
# The local API on any free port: 8082 may be taken by another Verbio on this machine.
DISPLAY="$DISPLAY_NUM" \
  VERBIO_PORT="$PORT" \
  VERBIO_API_PORT=0 \
  VERBIO_DATA_DIR="$WORK/data" \
  VERBIO_CONFIG="$WORK/no-config.toml" \
  VERBIO_LOG="${VERBIO_LOG:-info}" \
  NO_AT_BRIDGE=1 \
  "$APP" >"$APP_LOG" 2>&1 &
APP_PID=$!

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }
window_up() { xwininfo -display "$DISPLAY_NUM" -root -tree 2>/dev/null | grep -q '"Verbio"'; }

window=no
port=no
deadline=$((SECONDS + TIMEOUT_SECS))
while [ "$SECONDS" -lt "$deadline" ]; do
  if ! kill -0 "$APP_PID" 2>/dev/null; then
    status=0
    wait "$APP_PID" || status=$?
    APP_PID=""
    fail "the app exited early (exit status $status)"
  fi
  [ "$window" = yes ] || { window_up && window=yes && log "window \"Verbio\" is open"; } || true
  [ "$port" = yes ] || { port_open && port=yes && log "core accepts connections on 127.0.0.1:$PORT"; } || true
  [ "$window" = yes ] && [ "$port" = yes ] && break
  sleep 0.25
done
[ "$window" = yes ] || fail "no window named \"Verbio\" on $DISPLAY_NUM after ${TIMEOUT_SECS}s"
[ "$port" = yes ] || fail "nothing accepts connections on 127.0.0.1:$PORT after ${TIMEOUT_SECS}s"

# No session bus and no notification server here: the shell must have degraded with a warning, not crashed.
grep -q "desktop notifications are off" "$APP_LOG" || fail "no warning about the missing notification server"
log "notifications degraded with a logged warning (no session bus)"

# /healthz on the public listener (no figures); report it, but only the open port is required.
if command -v curl >/dev/null 2>&1; then
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$PORT/healthz" || true)"
  log "GET /healthz answered HTTP ${code:-none}"
fi

# Let the webview render the UI before the screenshot.
sleep "${SMOKE_SETTLE_SECS:-3}"
if [ "${CI:-}" = "true" ]; then
  SHOT="$WORK/main.png"
else
  mkdir -p docs/screenshots
  SHOT="docs/screenshots/main.png"
fi
import -display "$DISPLAY_NUM" -window root "$SHOT" || fail "screenshot failed"
log "screenshot: $SHOT"

# The window follows the OS theme: the same first page under GTK's dark theme must come out dark, and the
# light one light (mean brightness of the window alone, 0 = black, 1 = white).
window_brightness() {
  local id shot="$1"
  id="$(xwininfo -display "$DISPLAY_NUM" -name Verbio 2>/dev/null | sed -n 's/^xwininfo: Window id: \(0x[0-9a-f]*\).*/\1/p')"
  [ -n "$id" ] || fail "cannot find the Verbio window for a screenshot"
  import -display "$DISPLAY_NUM" -window "$id" "$shot" || fail "window screenshot failed"
  convert "$shot" -colorspace Gray -format '%[fx:mean]' info:
}
light="$(window_brightness "$WORK/light.png")"
stop_app() {
  kill "$APP_PID" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$APP_PID" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$APP_PID" 2>/dev/null || true
  wait "$APP_PID" 2>/dev/null || true
  APP_PID=""
}
stop_app
rm -rf "$WORK/data" && mkdir -p "$WORK/data"
log "starting the app again under GTK_THEME=Adwaita:dark"
DISPLAY="$DISPLAY_NUM" GTK_THEME=Adwaita:dark VERBIO_PORT="$PORT" VERBIO_API_PORT=0 VERBIO_DATA_DIR="$WORK/data" \
  VERBIO_CONFIG="$WORK/no-config.toml" VERBIO_LOG="${VERBIO_LOG:-info}" NO_AT_BRIDGE=1 \
  "$APP" >"$WORK/app-dark.log" 2>&1 &
APP_PID=$!
deadline=$((SECONDS + TIMEOUT_SECS))
until window_up && port_open; do
  [ "$SECONDS" -lt "$deadline" ] || fail "the dark-theme window did not come up"
  kill -0 "$APP_PID" 2>/dev/null || fail "the app exited early under the dark theme"
  sleep 0.25
done
sleep "${SMOKE_SETTLE_SECS:-3}"
if [ "${CI:-}" = "true" ]; then DARK_SHOT="$WORK/setup-dark.png"; else DARK_SHOT="docs/screenshots/setup-dark.png"; fi
dark="$(window_brightness "$DARK_SHOT")"
log "window brightness: light theme $light, dark theme $dark (screenshot: $DARK_SHOT)"
python3 -c "import sys; l, d = float(sys.argv[1]), float(sys.argv[2]); sys.exit(0 if l > 0.6 and d < 0.35 else 1)" "$light" "$dark" ||
  fail "the window does not follow the OS theme (brightness light $light, dark $dark)"
log "the window follows the OS light/dark theme"
log "OK"
