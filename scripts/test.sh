#!/usr/bin/env bash
# The one command that runs every test: installs what is missing, starts the real services, runs the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node_modules/.bin/tsx scripts/run-tests.ts "$@"
