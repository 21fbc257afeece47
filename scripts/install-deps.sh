#!/usr/bin/env bash
# Installs what building, testing and running Verbio needs on Debian 12 / Ubuntu 22.04+.
# Idempotent and non-interactive: safe to run on every CI run (skips apt when nothing is missing).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

APT_PACKAGES=(
  libwebkit2gtk-4.1-dev        # the webview (Tauri 2 on Linux)
  libayatana-appindicator3-dev # tray icon support
  librsvg2-dev                 # SVG icons in GTK
  libssl-dev
  libxdo-dev                   # keyboard shortcuts in menus
  libasound2-dev               # audio (cpal/ALSA)
  build-essential
  pkg-config
  xvfb                         # a display for the window smoke test
  x11-utils                    # xwininfo
  imagemagick                  # `import` for screenshots
  curl
  ca-certificates
)
OPENAI_PY_VERSION="3.57.0" # the `openai` package whose Realtime event types the integration tests check against

log() { printf '==> %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    echo "install-deps: need root (or sudo) to run: $*" >&2
    return 1
  fi
}

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "apt: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  as_root apt-get install -y -qq --no-install-recommends "${APT_PACKAGES[@]}"
else
  log "apt: all ${#APT_PACKAGES[@]} packages already installed"
fi

for tool in cargo node npm python3; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "install-deps: '$tool' is not on PATH; install the Rust toolchain (rustup), Node.js 20.19+ and Python 3" >&2
    exit 1
  fi
done

if python3 -c "import importlib.metadata as m, sys; sys.exit(m.version('openai') != '$OPENAI_PY_VERSION')" 2>/dev/null; then
  log "pip: openai==$OPENAI_PY_VERSION already installed"
else
  log "pip: installing openai==$OPENAI_PY_VERSION"
  python3 -m pip install --quiet --disable-pip-version-check --no-input "openai==$OPENAI_PY_VERSION"
fi

log "npm: installing the UI's packages (npm ci)"
npm ci --prefix "$ROOT/ui" --no-audit --no-fund --loglevel=error
