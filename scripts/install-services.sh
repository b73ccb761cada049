#!/usr/bin/env bash
# Installs every local service the tests and `twin dev` start: Temporal dev server + Web UI, FerretDB, moto,
# and the Qdrant stand-in (when its installer exists). Idempotent; prints only what it installs.
#
# The Python installers (network-bound pip) run alongside the Go builds (CPU-bound).
# Env: TWIN_HOME (default ~/.cache/llm-twin).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

python_installers() {
  bash "$here/install-moto.sh" || return 1
  if [ -f "$here/install-qdrant-standin.sh" ]; then
    bash "$here/install-qdrant-standin.sh" || return 1
  fi
}

python_installers &
python_pid=$!

status=0
bash "$here/install-temporal.sh" || status=1
bash "$here/install-ferretdb.sh" || status=1
wait "$python_pid" || status=1

if [ "$status" -ne 0 ]; then
  echo "install-services: some services failed to install (see the messages above)" >&2
fi
exit "$status"
