#!/usr/bin/env bash
# Installs the Python environment that runs jobs/finetune (TRL + PEFT SFT/DPO) on this machine: the local
# training backend and the CPU test use it. Venv: ${TWIN_HOME:-$HOME/.cache/llm-twin}/venv-train, pins from
# jobs/finetune/requirements-local.txt (the versions of the SageMaker Hugging Face training image, see
# docs/training.md).
#
# Idempotent and quiet on success: a stamp in the venv records the sha256 of the requirements file(s) it was
# installed from; a second run with the same pins prints nothing and takes well under a second.
# torch from PyPI is the CUDA build (a few GB with its nvidia-* wheels): the first install is network-bound.
# Env: TWIN_HOME, PYTHON (interpreter that creates the venv, default python3).
set -euo pipefail
cd "$(dirname "$0")/.."

TWIN_HOME=${TWIN_HOME:-$HOME/.cache/llm-twin}
VENV=$TWIN_HOME/venv-train
PYTHON=${PYTHON:-python3}
REQ_DIR=jobs/finetune
STAMP=$VENV/.llm-twin-train

die() { echo "install-training: $*" >&2; exit 1; }

want=$(cat "$REQ_DIR/requirements.txt" "$REQ_DIR/requirements-local.txt" | sha256sum | cut -c1-16)

is_installed() {
  [ -x "$VENV/bin/python" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ]
}

is_installed && exit 0

mkdir -p "$TWIN_HOME" || die "cannot create $TWIN_HOME"
exec 9>"$TWIN_HOME/.install-training.lock"
flock 9
is_installed && exit 0

log=$TWIN_HOME/install-training.log
start=$(date +%s)
if [ ! -x "$VENV/bin/python" ]; then
  command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found on PATH; install Python >= 3.10 and rerun"
  "$PYTHON" -m venv "$VENV" >"$log" 2>&1 ||
    { cat "$log" >&2; die "$PYTHON -m venv $VENV failed (on Debian/Ubuntu: apt-get install python3-venv)"; }
fi
echo "install-training: installing $REQ_DIR/requirements-local.txt into $VENV (torch with CUDA wheels: a few GB, first time only)..."
if ! "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q -r "$REQ_DIR/requirements-local.txt" >>"$log" 2>&1; then
  tail -n 30 "$log" >&2
  die "pip install -r $REQ_DIR/requirements-local.txt failed (full log: $log)"
fi
# The pins must be what is importable (a later pip run in the venv could have changed them).
if ! "$VENV/bin/python" - "$REQ_DIR/requirements-local.txt" "$REQ_DIR/requirements.txt" >>"$log" 2>&1 <<'PY'; then
import importlib.metadata as m, re, sys
bad = []
for path in sys.argv[1:]:
    for line in open(path):
        found = re.match(r"^\s*([A-Za-z0-9_.\-]+)==([^\s#;]+)", line)
        if found and m.version(found[1]).split("+")[0] != found[2]:
            bad.append(f"{found[1]} {m.version(found[1])} != {found[2]}")
if bad:
    sys.exit("version mismatch: " + ", ".join(bad))
import torch, transformers, peft, datasets  # noqa: F401  (imports work)
from trl import SFTTrainer, DPOTrainer  # noqa: F401  (both trainers import with these pins)
PY
  tail -n 10 "$log" >&2
  die "installed packages do not match the pins (log: $log)"
fi
echo "$want" >"$STAMP"
echo "install-training: installed $VENV in $(( $(date +%s) - start ))s"
