#!/usr/bin/env bash
# Installs the RAG cross-encoder (reranker) as ONNX files for the in-process TypeScript reranker (src/rag/reranker.ts):
#
#   ${RAG_RERANKER_MODEL_DIR:-$TWIN_HOME/models/ms-marco-MiniLM-L-4-v2}/
#     config.json tokenizer.json tokenizer_config.json vocab.txt special_tokens_map.json
#     onnx/model.onnx     the sequence-classification graph (logits: one relevance score per query/passage pair)
#     reranker.json       {"modelId": …, "source": …}
#
# Source of the weights (a Hugging Face cross-encoder, BertForSequenceClassification with one label):
#   - RERANKER_SOURCE: a local folder with the model (config.json + weights + tokenizer), or
#   - RERANKER_DOWNLOAD=1: RERANKER_MODEL_ID (default cross-encoder/ms-marco-MiniLM-L-4-v2) from the Hugging Face
#     Hub (needs Hub access).
# No package on the registries this project can reach carries ms-marco cross-encoder weights, so without either
# (this project's machines and CI) there is nothing to install: the script exits 0 quietly and the RAG service keeps
# the search order (RAG_RERANKER=auto). With Hub access, `RERANKER_DOWNLOAD=1 scripts/install-reranker-model.sh`.
#
# The export reuses the embedding model's export venv ($TWIN_HOME/venv-export: torch, transformers, optimum),
# made by scripts/install-embedding-model.sh, and validates ONNX against PyTorch (optimum's validation).
# Idempotent: a stamp file records what was installed.
set -euo pipefail

TWIN_HOME="${TWIN_HOME:-$HOME/.cache/llm-twin}"
MODEL_ID="${RERANKER_MODEL_ID:-cross-encoder/ms-marco-MiniLM-L-4-v2}"
MODEL_DIR="${RAG_RERANKER_MODEL_DIR:-$TWIN_HOME/models/ms-marco-MiniLM-L-4-v2}"
SOURCE="${RERANKER_SOURCE:-}"
VENV="$TWIN_HOME/venv-export"
STAMP_VALUE="${SOURCE:-$MODEL_ID}; optimum-onnx==0.1.0; text-classification; layout=v1"
STAMP="$MODEL_DIR/.installed"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$STAMP_VALUE" && -f "$MODEL_DIR/onnx/model.onnx" \
      && -f "$MODEL_DIR/tokenizer.json" ]]; then
  exit 0
fi
if [[ -z "$SOURCE" && "${RERANKER_DOWNLOAD:-0}" != "1" ]]; then
  exit 0
fi
if [[ ! -x "$VENV/bin/python" ]]; then
  bash "$(dirname "$0")/install-embedding-model.sh"
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT

if [[ -z "$SOURCE" ]]; then
  # Hub download (a few seconds' timeout): offline machines skip the reranker rather than fail the setup.
  dl="$TWIN_HOME/models/.reranker-download"
  rm -rf "$dl"
  if ! HF_HUB_DISABLE_TELEMETRY=1 HF_HUB_ETAG_TIMEOUT=5 HF_HUB_DOWNLOAD_TIMEOUT=20 "$VENV/bin/python" - "$MODEL_ID" "$dl" \
      >"$log" 2>&1 <<'PY'
import sys
from huggingface_hub import snapshot_download
snapshot_download(sys.argv[1], local_dir=sys.argv[2],
                  allow_patterns=["config.json", "*.safetensors", "pytorch_model.bin", "tokenizer*", "vocab.txt",
                                  "special_tokens_map.json"])
PY
  then
    rm -rf "$dl"
    echo "install-reranker-model: $MODEL_ID is not reachable (no Hugging Face Hub access, and no package carries" \
         "its weights); RAG reranking stays off (RAG_RERANKER=auto keeps the search order)." >&2
    exit 0
  fi
  SOURCE="$dl"
fi

tmp="$MODEL_DIR.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
if ! "$VENV/bin/python" - "$SOURCE" "$tmp" "${RERANKER_SOURCE:-$MODEL_ID}" >"$log" 2>&1 <<'PY'
import json, shutil, sys
from pathlib import Path
from optimum.exporters.onnx import main_export
from transformers import AutoTokenizer

src, out, model_id = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
export_dir = out / "_export"
main_export(str(src), output=str(export_dir), task="text-classification", opset=17, device="cpu",
            library_name="transformers", do_validation=True)
(out / "onnx").mkdir(parents=True, exist_ok=True)
shutil.move(str(export_dir / "model.onnx"), out / "onnx" / "model.onnx")
for item in export_dir.iterdir():
    if item.is_file():
        shutil.copy2(item, out / item.name)
shutil.rmtree(export_dir)
# a fast tokenizer file for transformers.js, whatever the source folder had
AutoTokenizer.from_pretrained(str(src)).save_pretrained(str(out))
(out / "reranker.json").write_text(json.dumps({"modelId": model_id, "source": str(src)}))
PY
then
  rm -rf "$tmp"
  echo "install-reranker-model: export of ${RERANKER_SOURCE:-$MODEL_ID} failed" >&2
  cat "$log" >&2
  exit 1
fi
rm -rf "$TWIN_HOME/models/.reranker-download"
rm -rf "$MODEL_DIR.old"
if [[ -d "$MODEL_DIR" ]]; then mv "$MODEL_DIR" "$MODEL_DIR.old"; fi
mkdir -p "$(dirname "$MODEL_DIR")"
mv "$tmp" "$MODEL_DIR"
rm -rf "$MODEL_DIR.old"
printf '%s' "$STAMP_VALUE" >"$MODEL_DIR/.installed"
