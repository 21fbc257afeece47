#!/usr/bin/env bash
# Builds and starts the Verbio desktop app (release build) on this machine.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash scripts/install-deps.sh

echo "==> building the UI"
npm run build --prefix ui

if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  cat >&2 <<'MSG'
run-app: there is no graphical display (neither DISPLAY nor WAYLAND_DISPLAY is set), so the
desktop window cannot open. Run it from a desktop session, or run the call bridge headless:

    cargo run --release --no-default-features -- serve

(see README.md for its settings: VERBIO_PORT, VERBIO_PUBLIC_URL, OPENAI_API_KEY, ...).
MSG
  exit 1
fi

echo "==> starting Verbio"
exec cargo run --release "$@"
