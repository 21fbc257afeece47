#!/usr/bin/env bash
# THE test command (CI runs it through .ci/run on a fresh Debian 12 machine as root, CI=true).
# Installs dependencies, then: format check, UI checks/lint/tests/build, clippy for the headless core
# and the desktop build, the Rust tests, and the desktop window smoke test.
#
#   bash scripts/test.sh        as root (sudo need not be installed)
#   sudo bash scripts/test.sh   as a user with sudo: the system packages as root, then everything else as
#                               that user when their login shell has cargo and npm (else as root)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
START=$SECONDS

# shellcheck source=scripts/privileges.sh
source scripts/privileges.sh
if [ "$(id -u)" -eq 0 ] && [ -n "${SUDO_USER:-}" ]; then
  bash scripts/install-deps.sh --system
  continue_as_invoking_user scripts/test.sh "$@"
fi

section() {
  printf '\n==================== %s  [+%ss] ====================\n' "$*" "$((SECONDS - START))"
}

# A real audio device for the playback and listen-in tests (PulseAudio with a null sink).
# shellcheck source=scripts/test-audio.sh
source scripts/test-audio.sh
trap 'stop_test_audio; bash scripts/prism.sh stop' EXIT

section "Dependencies"
bash scripts/install-deps.sh

# Outside the clone, so CI runs reuse the (large) build cache; one's own if another user (root through
# an earlier run, say) made the shared one.
if [ -z "${CARGO_TARGET_DIR:-}" ]; then
  CARGO_TARGET_DIR=/var/tmp/verbio-target
  if [ -e "$CARGO_TARGET_DIR" ] && [ ! -w "$CARGO_TARGET_DIR" ]; then
    CARGO_TARGET_DIR="/var/tmp/verbio-target-$(id -un)"
  fi
fi
export CARGO_TARGET_DIR
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
echo "CARGO_TARGET_DIR=$CARGO_TARGET_DIR"

section "Rust formatting (cargo fmt --check)"
cargo fmt --all -- --check

section "UI: type check (svelte-check)"
npm run --prefix ui check

section "UI: lint (eslint)"
npm run --prefix ui lint

section "UI: unit tests (vitest)"
npm run --prefix ui test

section "UI: production build (vite)"
npm run --prefix ui build

section "Layering: no import cycle between the core's rooms"
python3 scripts/room-cycles.py

section "Clippy: lean headless core (--no-default-features: no window, no tunnel, no simulators)"
cargo clippy --no-default-features --lib --bins -- -D warnings

section "Docs: the core's API docs build without a broken link"
RUSTDOCFLAGS="-D warnings" cargo doc --no-default-features --no-deps --lib

section "Clippy: headless core with its tests (the tests turn the simulators on)"
cargo clippy --no-default-features --all-targets -- -D warnings

section "Clippy: desktop app (default features)"
cargo clippy --all-targets -- -D warnings

section "Desktop smoke test (window under Xvfb)"
bash scripts/smoke-window.sh

section "Desktop end-to-end test (WebDriver in the real window, keychain, simulated call)"
bash scripts/test-e2e.sh

section "Secrets against a real Secret Service (gnome-keyring)"
bash scripts/test-keychain.sh

section "Rust tests: desktop, ngrok tunnel and TLS set-up (default features)"
cargo test --lib -- desktop tunnel tls 2>&1

# Last, so that cargo test's own summary lines end the output.
section "Soak (short): 20 recorded calls for 1.5 min, rollover under load, barge-ins, tool calls (scripts/soak.sh)"
bash scripts/soak.sh

section "Rust tests (cargo test --no-default-features), with Prism as Twilio's REST API and a PulseAudio null sink"
start_test_audio
bash scripts/prism.sh start
cargo test --no-default-features 2>&1
