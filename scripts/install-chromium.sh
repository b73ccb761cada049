#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests of the Temporal Web UI (playwright-core drives it).
# Idempotent and quiet when it is already there. `npx playwright install` cannot work offline; this can.
set -euo pipefail
[ -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-chromium: no apt-get here; install Chromium yourself and set CHROMIUM_PATH" >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
echo "install-chromium: installing Debian chromium (a few minutes the first time)"
log=$(mktemp)
if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium; } >"$log" 2>&1; then
  tail -20 "$log" >&2
  echo "install-chromium: apt-get install chromium failed (log above)" >&2
  exit 1
fi
rm -f "$log"
