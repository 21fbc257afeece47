#!/usr/bin/env bash
# Runs the secrets module's tests against a real Secret Service: a private D-Bus session with
# gnome-keyring unlocked (a throwaway login keyring in a temporary XDG_DATA_HOME). Needs Debian's
# gnome-keyring, dbus and dbus-x11 (scripts/install-deps.sh installs them).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# Through sudo: as the user who asked, when they have the toolchains (scripts/privileges.sh).
# shellcheck source=scripts/privileges.sh
source scripts/privileges.sh
continue_as_invoking_user scripts/test-keychain.sh "$@"
for tool in dbus-run-session gnome-keyring-daemon; do
  command -v "$tool" >/dev/null 2>&1 || { echo "test-keychain: '$tool' is missing; run scripts/install-deps.sh" >&2; exit 1; }
done
KEYRING_HOME="$(mktemp -d -t verbio-keyring.XXXXXX)"
trap 'rm -rf "$KEYRING_HOME"' EXIT
export VERBIO_KEYRING_HOME="$KEYRING_HOME"
# shellcheck disable=SC2016
dbus-run-session -- bash -c '
  set -euo pipefail
  export XDG_DATA_HOME="$VERBIO_KEYRING_HOME/share" XDG_RUNTIME_DIR="$VERBIO_KEYRING_HOME/run"
  mkdir -p -m 700 "$XDG_RUNTIME_DIR"
  mkdir -p "$XDG_DATA_HOME"
  printf "verbio-test\n" | gnome-keyring-daemon --daemonize --unlock --components=secrets >/dev/null
  cargo test --no-default-features --test keychain -- --ignored 2>&1
'
