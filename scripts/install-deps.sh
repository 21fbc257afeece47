#!/usr/bin/env bash
# Installs what building, testing and running Verbio needs on Debian 12 / Ubuntu 22.04+.
# Idempotent and non-interactive: safe to run on every CI run. It skips apt when every package is
# installed, pip when the package is there, and npm when ui/node_modules matches the lock file.
#
#   install-deps.sh            system packages (apt; as root, or through sudo), then the Python and npm packages
#                              (run through sudo by a user with cargo and npm: those as that user)
#   install-deps.sh --system   only the system packages
#   install-deps.sh --user     only the Python and npm packages, for the current user
#
# Works as root without sudo installed, through sudo, and as a user (sudo is asked for apt only when a
# package is missing).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PHASE="${1:-all}"

APT_PACKAGES=(
  libwebkit2gtk-4.1-dev        # the webview (Tauri 2 on Linux)
  libayatana-appindicator3-dev # tray icon support
  librsvg2-dev                 # SVG icons in GTK
  libssl-dev
  libxdo-dev                   # keyboard shortcuts in menus
  libasound2-dev               # audio (cpal/ALSA)
  pulseaudio                   # a null sink for the audio device tests (playback, listen-in)
  pulseaudio-utils             # parec: captures what the app played
  libasound2-plugins           # routes ALSA's default device (what cpal opens) to PulseAudio
  build-essential
  pkg-config
  xvfb                         # a display for the window smoke test
  x11-utils                    # xwininfo
  imagemagick                  # `import` for screenshots
  curl
  ca-certificates
  gnome-keyring                # a real Secret Service for the keychain tests
  dbus
  dbus-x11                     # dbus-run-session for the keychain and end-to-end tests
  libsecret-tools              # secret-tool: the e2e test checks keys really are in the keychain
  webkit2gtk-driver            # WebKitWebDriver, driven by tauri-driver in the e2e test
)
# The desktop end-to-end test's WebDriver client and Tauri's WebDriver bridge.
SELENIUM_PY_VERSION="4.51.0"
XLIB_PY_VERSION="0.33"
TAURI_DRIVER_VERSION="2.1.0"
# The `openai` package whose Realtime event types an integration test validates the bridge's events against.
OPENAI_PY_VERSION="3.57.0"
NODE_MIN="20.19"

log() { printf '==> %s\n' "$*"; }
die() {
  printf 'install-deps: %s\n' "$*" >&2
  exit 1
}

# as_root, continue_as_invoking_user
# shellcheck source=scripts/privileges.sh
source "$ROOT/scripts/privileges.sh"

install_system() {
  if ! python3 -m pip --version >/dev/null 2>&1; then
    APT_PACKAGES+=(python3-pip)
  fi
  local missing=() pkg
  for pkg in "${APT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$pkg")
    fi
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    log "apt: all ${#APT_PACKAGES[@]} packages already installed"
    return
  fi
  log "apt: installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${APT_PACKAGES[@]}"
}

install_user() {
  local tool
  for tool in cargo node npm python3; do
    command -v "$tool" >/dev/null 2>&1 ||
      die "'$tool' is not on PATH; install the Rust toolchain (rustup), Node.js $NODE_MIN+ with npm, and Python 3"
  done

  if python3 -c "import importlib.metadata as m, sys; sys.exit(m.version('openai') != '$OPENAI_PY_VERSION')" 2>/dev/null; then
    log "pip: openai==$OPENAI_PY_VERSION already installed"
  else
    log "pip: installing openai==$OPENAI_PY_VERSION"
    local pip_args=(install --quiet --disable-pip-version-check --no-input "openai==$OPENAI_PY_VERSION")
    if ! python3 -m pip "${pip_args[@]}"; then
      # Debian's own Python refuses pip installs into it (PEP 668); install beside its packages instead.
      log "pip: retrying with --break-system-packages"
      [ "$(id -u)" -eq 0 ] || pip_args+=(--user)
      python3 -m pip "${pip_args[@]}" --break-system-packages
    fi
  fi

  if python3 -c "import importlib.metadata as m, sys; sys.exit(m.version('selenium') != '$SELENIUM_PY_VERSION' or m.version('python-xlib') != '$XLIB_PY_VERSION')" 2>/dev/null; then
    log "pip: selenium==$SELENIUM_PY_VERSION and python-xlib==$XLIB_PY_VERSION already installed"
  else
    log "pip: installing selenium==$SELENIUM_PY_VERSION"
    local sel_args=(install --quiet --disable-pip-version-check --no-input "selenium==$SELENIUM_PY_VERSION" "python-xlib==$XLIB_PY_VERSION")
    python3 -m pip "${sel_args[@]}" 2>/dev/null || {
      [ "$(id -u)" -eq 0 ] || sel_args+=(--user)
      python3 -m pip "${sel_args[@]}" --break-system-packages
    }
  fi

  if command -v tauri-driver >/dev/null 2>&1; then
    log "cargo: tauri-driver already installed"
  else
    log "cargo: installing tauri-driver $TAURI_DRIVER_VERSION"
    cargo install --quiet --locked tauri-driver --version "$TAURI_DRIVER_VERSION"
  fi

  if ! node -e "const [a, b] = process.versions.node.split('.').map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)"; then
    die "Node.js $(node --version) is too old for the UI's tools (Vite 8 needs $NODE_MIN+ or 22.12+)"
  fi
  npm_install "$ROOT/ui" "the UI's packages"
  npm_install "$ROOT/tests/prism" "Stoplight Prism (the Twilio REST stand-in for tests)"
}

# `npm ci` always reinstalls from scratch; skip it when node_modules came from this very lock file.
npm_install() {
  local dir="$1" what="$2" lock_sum stamp="$1/node_modules/.verbio-lock.sha256"
  lock_sum="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$lock_sum" ]; then
    log "npm: $what already match ${dir#"$ROOT"/}/package-lock.json"
  else
    log "npm: installing $what (npm ci in ${dir#"$ROOT"/})"
    npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
    echo "$lock_sum" >"$stamp"
  fi
}

case "$PHASE" in
  --system) install_system ;;
  --user) install_user ;;
  all)
    install_system
    # Through sudo, the user's own toolchains install the Python and npm packages (files they own).
    continue_as_invoking_user scripts/install-deps.sh --user
    install_user
    ;;
  *) die "usage: $0 [--system | --user]" ;;
esac
