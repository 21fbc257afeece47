#!/usr/bin/env bash
# THE run command: installs what is missing, builds the UI and starts the Verbio desktop app (release build).
#
#   bash scripts/run-app.sh [-- app arguments]        as root (sudo need not be installed)
#   sudo bash scripts/run-app.sh [-- app arguments]   as a user with sudo
#
# Root is needed only for the system packages. When started through sudo by a desktop user who has the
# Rust and Node toolchains, the build and the app run as that user (their files, their settings, their
# display); otherwise everything runs as the current user (a user without sudo can run it once the
# system packages are installed).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  cat >&2 <<'MSG'

run-app: there is no graphical display here (neither DISPLAY nor WAYLAND_DISPLAY is set), so the
desktop window cannot open. Run this from a desktop session, or run the call bridge headless:

    cargo run --release --no-default-features -- serve

It prints the addresses it listens on (Twilio's routes, then the local API); README.md lists its
settings (VERBIO_PORT, VERBIO_API_PORT, VERBIO_PUBLIC_URL, OPENAI_API_KEY, TWILIO_AUTH_TOKEN, ...).
MSG
  exit 1
fi

# shellcheck source=scripts/privileges.sh
source scripts/privileges.sh
if [ "$(id -u)" -eq 0 ] && [ -n "${SUDO_USER:-}" ]; then
  # Through sudo: the system packages as root, then build and run as the desktop user when they can.
  bash scripts/install-deps.sh --system
  continue_as_invoking_user scripts/run-app.sh "$@"
fi

bash scripts/install-deps.sh

echo "==> building the UI"
npm run build --prefix ui

echo "==> building and starting Verbio (release build; the first build takes several minutes)"
exec cargo run --release -- "$@"
