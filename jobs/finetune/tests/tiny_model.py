"""A tiny random Llama with a tokenizer trained offline, for CPU tests of train.py (no downloads).

    python tests/tiny_model.py --out DIR TEXT_FILE...   (JSONL or plain text files; every string is training text)
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import train  # noqa: E402  (the job's own tokenizer trainer and chat template)


def corpus(files: list[Path]) -> list[str]:
    texts: list[str] = []
    for file in files:
        for line in file.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                texts.extend(str(v) for v in row.values()) if isinstance(row, dict) else texts.append(line)
            except json.JSONDecodeError:
                texts.append(line)
    # The template's own markers, so they get compact tokens like a real vocabulary would have.
    texts.extend(["### Instruction:\n", "### Response:\n"] * 20)
    return texts


def tiny_llama_config(vocab_size: int, bos: int, eos: int, pad: int) -> dict:
    return {
        "model_type": "llama",
        "vocab_size": vocab_size,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 1024,
        "rms_norm_eps": 1e-5,
        "tie_word_embeddings": False,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "pad_token_id": pad,
    }


def build(out: Path, files: list[Path], vocab_size: int = 600, seed: int = 0) -> Path:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    tokenizer = train.train_tokenizer(corpus(files), vocab_size)
    tokenizer.chat_template = train.CHAT_TEMPLATE
    config_data = tiny_llama_config(len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id)
    model_type = config_data.pop("model_type")
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model(model_type, **config_data))
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--vocab-size", type=int, default=600)
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args()
    print(build(args.out, args.files, args.vocab_size))
