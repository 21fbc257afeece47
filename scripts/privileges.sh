# shellcheck shell=bash
# Sourced by the scripts: who runs what. Every script works run as root (sudo need not be installed) and
# run through sudo by a user; only installing system packages needs root.
#
#   as_root CMD...        runs CMD as root: directly when root, else through sudo, else a clear error.
#   continue_as_invoking_user SCRIPT [ARGS...]
#                         when this runs as root *through sudo* for a normal user whose login shell has cargo
#                         and npm and who can write to the repository, runs `bash SCRIPT ARGS` as that user
#                         instead (their toolchains, their caches, files they own) and exits with its status.
#                         Otherwise it returns and the caller goes on as the current user, root included.
#                         Run directly as root (no SUDO_USER) it always returns.

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    printf '%s: need root to run: %s (run this script as root, or install sudo)\n' "$(basename "$0")" "$*" >&2
    exit 1
  fi
}

# Runs CMD as USER (from root): sudo when it is there, else runuser (util-linux), each with USER's HOME.
_as_user() {
  local user="$1"
  shift
  if command -v sudo >/dev/null 2>&1; then
    sudo -u "$user" -H "$@"
  else
    runuser -u "$user" -- env HOME="$(getent passwd "$user" | cut -d: -f6)" "$@"
  fi
}

continue_as_invoking_user() {
  local script="$1" root user
  shift
  [ "$(id -u)" -eq 0 ] && [ -z "${VERBIO_STAY_ROOT:-}" ] || return 0
  user="${SUDO_USER:-}"
  { [ -n "$user" ] && [ "$user" != "root" ] && getent passwd "$user" >/dev/null; } || return 0
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  # A login shell, so the user's ~/.profile puts rustup's cargo (and nvm's npm) on PATH.
  # shellcheck disable=SC2016
  if ! _as_user "$user" bash -lc 'command -v cargo && command -v npm && [ -w "$1" ]' check "$root" >/dev/null 2>&1; then
    echo "==> $user has no cargo and npm on PATH (or cannot write to $root); going on as root"
    # The scripts this one runs need not ask again.
    export VERBIO_STAY_ROOT=1
    return 0
  fi
  echo "==> continuing as $user"
  # sudo resets the environment: hand over what the scripts and the app read.
  local session=() var
  for var in DISPLAY XAUTHORITY WAYLAND_DISPLAY XDG_RUNTIME_DIR DBUS_SESSION_BUS_ADDRESS CARGO_TARGET_DIR \
    CARGO_TERM_COLOR CI PRISM_PORT VERBIO_TEST_PRISM_URL SMOKE_DISPLAY SMOKE_TIMEOUT_SECS E2E_DISPLAY; do
    [ -n "${!var:-}" ] && session+=("$var=${!var}")
  done
  # shellcheck disable=SC2016
  _as_user "$user" env "${session[@]}" bash -lc 'cd "$1" && shift && exec bash "$@"' continue "$root" "$script" "$@"
  exit $?
}
