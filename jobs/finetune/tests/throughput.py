"""Throughput check of train.py on a random-initialised model of a real architecture (no weights needed).

    python tests/throughput.py --config tests/configs/llama-3.1-8b.json --steps 6 --seq-len 2048 --out /tmp/tp

Writes a synthetic instruction set whose every sample fills --seq-len tokens, runs train.py (LoRA r 32 on the seven
projections, the job's defaults otherwise) for --steps optimiser steps without saving a model, and prints one JSON
summary line: tokens/s over the whole run and at steady state (median step, first step excluded), peak memory.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parents[2] / "test" / "fixtures" / "datasets"


def synthetic_rows(count: int, words: int) -> list[dict[str, str]]:
    text = " ".join(
        json.loads(line)["output"]
        for line in next((FIXTURES / "instruction").iterdir()).joinpath("train.jsonl").read_text().splitlines()
        if line.strip()
    ).split()
    rows = []
    for i in range(count):
        body = [text[(i * 7 + j) % len(text)] for j in range(words)]
        rows.append({"instruction": f"Write part {i} of the essay.", "output": " ".join(body)})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--gradient-checkpointing", default="true")
    parser.add_argument("--out", type=Path, default=Path("/tmp/twin-throughput"))
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    data = args.out / "train.jsonl"
    samples = args.steps * args.batch * args.grad_accum + args.batch
    data.write_text("".join(json.dumps(r) + "\n" for r in synthetic_rows(samples, args.seq_len)))
    command = [
        sys.executable, str(HERE.parent / "train.py"), "--mode", "sft", "--random-init-from-config", str(args.config),
        "--train", str(data), "--model-dir", str(args.out / "model"), "--save_model", "false",
        "--max_steps", str(args.steps), "--max_length", str(args.seq_len), "--warmup_steps", "0",
        "--per_device_train_batch_size", str(args.batch), "--gradient_accumulation_steps", str(args.grad_accum),
        "--gradient_checkpointing", args.gradient_checkpointing,
    ]
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    metrics: dict[str, float] = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        if line.startswith('{"metric"'):
            event = json.loads(line)
            if event["value"] is not None:
                metrics[event["metric"]] = event["value"]
    code = proc.wait()
    summary = {
        "config": str(args.config), "seq_len": args.seq_len, "batch": args.batch, "grad_accum": args.grad_accum,
        "steps": args.steps, "exit_code": code, "wall_s": round(time.perf_counter() - started, 1),
        **{k: metrics.get(k) for k in ("train_tokens_per_second", "steady_tokens_per_second", "peak_memory_gb",
                                         "trainable_parameters", "train_loss")},
    }
    print(json.dumps({"throughput": summary}))
    return code


if __name__ == "__main__":
    sys.exit(main())
