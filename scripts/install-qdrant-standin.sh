#!/usr/bin/env bash
# Installs what the Qdrant REST stand-in (scripts/services/qdrant_standin/server.py) needs into the project's
# Python virtual environment $TWIN_HOME/venv, shared with the other Python services (moto).
#
# Idempotent and quiet: the venv is created only if missing, and a pinned requirement (name==version in
# scripts/services/qdrant_standin/requirements.txt) is installed only when that exact version is missing.
# Prints nothing when there is nothing to do. Needs python3 (>= 3.10) with the venv module and PyPI.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REQUIREMENTS=$repo_root/scripts/services/qdrant_standin/requirements.txt
TWIN_HOME=${TWIN_HOME:-$HOME/.cache/llm-twin}
VENV=$TWIN_HOME/venv

die() { echo "install-qdrant-standin: $*" >&2; exit 1; }

# Prints the requirement lines whose exact version is not installed in the venv (all of them when there is no venv).
missing_requirements() {
  if [ ! -x "$VENV/bin/python" ]; then
    grep -Ev '^[[:space:]]*(#|$)' "$REQUIREMENTS"
    return
  fi
  "$VENV/bin/python" - "$REQUIREMENTS" <<'PY'
import re
import sys
from importlib.metadata import PackageNotFoundError, version

for raw in open(sys.argv[1], encoding="utf-8"):
    line = raw.split("#", 1)[0].strip()
    if not line:
        continue
    match = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*==\s*(\S+)", line)
    if match is None:
        sys.exit(f"install-qdrant-standin: requirements must be pinned as name==version, got: {line}")
    try:
        installed = version(match.group(1))
    except PackageNotFoundError:
        installed = None
    if installed != match.group(3):
        print(line)
PY
}

missing=$(missing_requirements) || die "cannot read $REQUIREMENTS"
[ -z "$missing" ] && exit 0

mkdir -p "$TWIN_HOME" || die "cannot create $TWIN_HOME"
# The venv is shared with other installers (install-moto.sh): one pip at a time.
exec 9>"$TWIN_HOME/.venv.lock"
flock 9
missing=$(missing_requirements) || die "cannot read $REQUIREMENTS"
[ -z "$missing" ] && exit 0

log=$TWIN_HOME/install-qdrant-standin.log
start=$(date +%s)
: >"$log"
if [ ! -x "$VENV/bin/python" ]; then
  command -v python3 >/dev/null 2>&1 || die "python3 not found on PATH; install Python >= 3.10 and rerun"
  python3 -m venv "$VENV" >>"$log" 2>&1 ||
    { cat "$log" >&2; die "python3 -m venv $VENV failed (on Debian/Ubuntu: apt-get install python3-venv)"; }
fi
# shellcheck disable=SC2086 # one word per requirement line
echo "install-qdrant-standin: installing" $missing "into $VENV..."
# shellcheck disable=SC2086
if ! "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q $missing >>"$log" 2>&1; then
  tail -n 30 "$log" >&2
  die "pip install failed (full log: $log)"
fi
still_missing=$(missing_requirements)
[ -z "$still_missing" ] || die "pip ran but these are still missing: $still_missing (log: $log)"
echo "install-qdrant-standin: installed in $(( $(date +%s) - start ))s"
