#!/usr/bin/env bash
# THE run command: installs what is missing, builds the UI and starts the Verbio desktop app (release build).
#
#   sudo bash scripts/run-app.sh [-- app arguments]
#
# Root is needed only for the system packages. When started through sudo by a desktop user who has the
# Rust and Node toolchains, the build and the app run as that user (their files, their settings, their
# display); otherwise everything runs as the current user.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  cat >&2 <<'MSG'

run-app: there is no graphical display here (neither DISPLAY nor WAYLAND_DISPLAY is set), so the
desktop window cannot open. Run this from a desktop session, or run the call bridge headless:

    cargo run --release --no-default-features -- serve

It prints the address it listens on; README.md lists its settings (VERBIO_PORT, VERBIO_PUBLIC_URL,
OPENAI_API_KEY, TWILIO_AUTH_TOKEN, ...).
MSG
  exit 1
fi

if [ "$(id -u)" -eq 0 ] && [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != "root" ] && command -v sudo >/dev/null 2>&1; then
  bash scripts/install-deps.sh --system
  # A login shell, so the user's ~/.profile puts rustup's cargo on PATH.
  if sudo -u "$SUDO_USER" -H bash -lc 'command -v cargo && command -v npm' >/dev/null 2>&1; then
    echo "==> continuing as $SUDO_USER"
    session=()
    for var in DISPLAY XAUTHORITY WAYLAND_DISPLAY XDG_RUNTIME_DIR DBUS_SESSION_BUS_ADDRESS CARGO_TARGET_DIR; do
      [ -n "${!var:-}" ] && session+=("$var=${!var}")
    done
    exec sudo -u "$SUDO_USER" -H env "${session[@]}" \
      bash -lc 'cd "$1" && shift && exec bash scripts/run-app.sh "$@"' run-app "$ROOT" "$@"
  fi
  echo "==> $SUDO_USER has no cargo and npm on PATH; building and running as root"
fi

bash scripts/install-deps.sh

echo "==> building the UI"
npm run build --prefix ui

echo "==> building and starting Verbio (release build; the first build takes several minutes)"
exec cargo run --release -- "$@"
