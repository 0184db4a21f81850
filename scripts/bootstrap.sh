#!/usr/bin/env bash
# Makes a fresh machine ready: pnpm (through npm), the workspace's packages (frozen lockfile), the
# build, and a redis-server binary when none is installed: always for --redis-for test (the fault
# tests start and restart servers of their own, even with REDIS_URL set), and for --redis-for demo
# unless HEDGEYARD_REDIS_URL names a Redis to use.
set -euo pipefail
cd "$(dirname "$0")/.."

configured=""
case "${1:-} ${2:-}" in
  "--redis-for demo") configured="${HEDGEYARD_REDIS_URL:-}" ; want_redis=1 ;;
  "--redis-for test") want_redis=1 ;;
  *) want_redis=0 ;;
esac

PNPM_VERSION=10.34.8
if ! command -v pnpm >/dev/null 2>&1; then
  echo "bootstrap: installing pnpm@$PNPM_VERSION with npm" >&2
  npm install -g "pnpm@$PNPM_VERSION" >/dev/null 2>&1 || npm install -g "pnpm@$PNPM_VERSION"
fi

if [ "$want_redis" = 1 ] && [ -z "$configured" ] && ! command -v redis-server >/dev/null 2>&1; then
  echo "bootstrap: installing redis-server with apt-get" >&2
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
  # The package starts a system service on 6379; Hedgeyard's tests and demo start their own.
fi

# The tests also drive `hedgeyard top` in a terminal (tmux) and the dashboard in a browser (chromium).
if [ "${1:-} ${2:-}" = "--redis-for test" ]; then
  missing=""
  command -v tmux >/dev/null 2>&1 || missing="$missing tmux"
  [ -x /usr/bin/chromium ] || missing="$missing chromium"
  if [ -n "$missing" ]; then
    echo "bootstrap: installing$missing with apt-get" >&2
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq >/dev/null
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
  fi
fi

if [ ! -d node_modules/.pnpm ] || [ pnpm-lock.yaml -nt node_modules/.modules.yaml ]; then
  echo "bootstrap: installing packages" >&2
  pnpm install --frozen-lockfile --reporter=silent
fi

echo "bootstrap: building" >&2
pnpm run --silent build
