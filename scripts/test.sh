#!/usr/bin/env bash
# The one command that runs every test: installs what is missing, type-checks and lints, starts the real
# services and runs the suite. Arguments (test files or folders) narrow the run and skip the static checks.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ "$#" -eq 0 ]; then
  echo "[test] typecheck"
  node_modules/.bin/tsc -p tsconfig.json --noEmit
  echo "[test] lint"
  node_modules/.bin/eslint . --max-warnings=0
  echo "[test] format"
  node_modules/.bin/prettier --check --log-level warn "**/*.ts"
fi
exec node_modules/.bin/tsx scripts/run-tests.ts "$@"
