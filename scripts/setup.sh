#!/usr/bin/env bash
# Installs everything the platform and its tests need on this machine kind. Idempotent and quiet on success:
# node modules (from the lockfile), the Temporal CLI, FerretDB, the Python services (moto, Qdrant stand-in)
# and the embedding model. Safe to run before every command.
set -euo pipefail
cd "$(dirname "$0")/.."

export TWIN_HOME=${TWIN_HOME:-$HOME/.cache/llm-twin}
# onnxruntime-node's install script would download CUDA libraries; the CPU build ships in the package.
export ONNXRUNTIME_NODE_INSTALL_CUDA=skip

lock_hash=$(sha256sum package-lock.json | cut -c1-16)
if [ ! -f node_modules/.twin-lock-hash ] || [ "$(cat node_modules/.twin-lock-hash)" != "$lock_hash" ]; then
  echo "setup: installing node modules (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_hash" > node_modules/.twin-lock-hash
fi

for script in install-services.sh install-embedding-model.sh install-local-llm.sh install-chromium.sh install-hadolint.sh install-training.sh; do
  if [ -f "scripts/$script" ]; then bash "scripts/$script"; fi
done
bash scripts/install-reranker-model.sh  # RAG cross-encoder: only with RERANKER_SOURCE or RERANKER_DOWNLOAD=1 (docs/rag.md)
