#!/usr/bin/env bash
# Stoplight Prism serving Twilio's own OpenAPI description: the Twilio REST stand-in for tests.
#
#   prism.sh start   start it on $PRISM_PORT (default 4010) and wait until it answers
#   prism.sh stop    stop the one this script started
#
# The test command starts it before the Rust tests and stops it after. Installed by install-deps.sh
# (tests/prism/package-lock.json pins the version).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Through sudo: as the user who asked, when they have the toolchains (scripts/privileges.sh), so the
# state below belongs to whoever stops it.
# shellcheck source=scripts/privileges.sh
source "$ROOT/scripts/privileges.sh"
continue_as_invoking_user scripts/prism.sh "$@"
PORT="${PRISM_PORT:-4010}"
SPEC="$ROOT/tests/fixtures/specs/twilio_api_v2010.json"
STATE="${TMPDIR:-/tmp}/verbio-prism-$PORT"
PRISM="$ROOT/tests/prism/node_modules/.bin/prism"

case "${1:-}" in
  start)
    [ -x "$PRISM" ] || { echo "prism.sh: Prism is not installed; run scripts/install-deps.sh" >&2; exit 1; }
    [ -f "$SPEC" ] || { echo "prism.sh: no spec at $SPEC" >&2; exit 1; }
    if [ -f "$STATE.pid" ] && kill -0 "$(cat "$STATE.pid")" 2>/dev/null; then
      kill "$(cat "$STATE.pid")" 2>/dev/null || true
      sleep 0.5
    fi
    "$PRISM" mock -h 127.0.0.1 -p "$PORT" --errors "$SPEC" >"$STATE.log" 2>&1 &
    echo $! >"$STATE.pid"
    for _ in $(seq 1 120); do
      if curl -s -o /dev/null "http://127.0.0.1:$PORT/2010-04-01/Accounts.json"; then
        echo "Prism is serving Twilio's API description on http://127.0.0.1:$PORT"
        exit 0
      fi
      kill -0 "$(cat "$STATE.pid")" 2>/dev/null || break
      sleep 0.5
    done
    echo "prism.sh: Prism did not start; its log:" >&2
    tail -20 "$STATE.log" >&2
    exit 1
    ;;
  stop)
    if [ -f "$STATE.pid" ]; then
      kill "$(cat "$STATE.pid")" 2>/dev/null || true
      rm -f "$STATE.pid"
    fi
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
