#!/usr/bin/env bash
# Installs moto's stand-alone server (S3, SageMaker, SageMaker Runtime, Application Auto Scaling, ...) into the
# project's Python virtual environment $TWIN_HOME/venv (shared with the Qdrant stand-in's installer).
#
# Idempotent and quiet: prints nothing when the pinned version is already installed.
# Needs python3 with the venv module and PyPI.
set -euo pipefail

MOTO_VERSION=5.2.5
MOTO_SPEC="moto[server]==$MOTO_VERSION"

TWIN_HOME=${TWIN_HOME:-$HOME/.cache/llm-twin}
VENV=$TWIN_HOME/venv
STAMP=$VENV/.llm-twin-moto

die() { echo "install-moto: $*" >&2; exit 1; }

# The stamp records that pip finished installing the spec with its [server] extra; the metadata check catches a
# later pip run in the same venv that changed moto's version.
is_installed() {
  [ -x "$VENV/bin/moto_server" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$MOTO_SPEC" ] &&
    "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('moto') != '$MOTO_VERSION')" 2>/dev/null
}

is_installed && exit 0

mkdir -p "$TWIN_HOME" || die "cannot create $TWIN_HOME"
# The venv is shared with other installers: one pip at a time.
exec 9>"$TWIN_HOME/.venv.lock"
flock 9
is_installed && exit 0

log=$TWIN_HOME/install-moto.log
start=$(date +%s)
if [ ! -x "$VENV/bin/python" ]; then
  command -v python3 >/dev/null 2>&1 || die "python3 not found on PATH; install Python >= 3.9 and rerun"
  python3 -m venv "$VENV" >"$log" 2>&1 ||
    { cat "$log" >&2; die "python3 -m venv $VENV failed (on Debian/Ubuntu: apt-get install python3-venv)"; }
fi
echo "install-moto: installing $MOTO_SPEC into $VENV..."
if ! "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q "$MOTO_SPEC" >>"$log" 2>&1; then
  tail -n 30 "$log" >&2
  die "pip install $MOTO_SPEC failed (full log: $log)"
fi
echo "$MOTO_SPEC" >"$STAMP"
is_installed || die "pip installed $MOTO_SPEC but $VENV/bin/moto_server or moto $MOTO_VERSION is missing (log: $log)"
echo "install-moto: installed moto $MOTO_VERSION ($VENV/bin/moto_server) in $(( $(date +%s) - start ))s"
