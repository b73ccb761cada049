"""Batch generation of the candidate's answers for evaluateModel (local backend), with the twin's chat template.

    python generate.py --model-dir DIR --input samples.jsonl --output answers.jsonl \
        [--chat-template chat_template.jinja] [--max-new-tokens 512] [--temperature 0] [--batch-size 8] [--device auto]

Input rows: {"id", "instruction"}. Output rows (appended, one per sample, flushed): {"id", "answer", "output_tokens",
"finish_reason"}. Rows already in the output are skipped, so a re-run after a crash resumes where it stopped.
stdout carries one JSON event per line: {"event": "start", ...}, {"event": "progress", "done", "total"},
{"event": "done", ...} or {"event": "error", "message"}.

The prompt is the model's own chat template (saved by train.py) — or --chat-template, which must be the same file
(jobs/finetune/chat_template.jinja); the script reports whether they were equal.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import traceback
from pathlib import Path


def emit(event: dict) -> None:
    print(json.dumps(event), flush=True)


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            # A line cut by a crash mid-write: everything before it is kept, the rest is regenerated.
            if number == len(path.read_text(encoding="utf-8").splitlines()):
                break
            raise
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--chat-template")
    parser.add_argument("--max-new-tokens", type=int, default=512)
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(args.seed)
    device = "cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()) else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    saved = tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else None
    template_matches = None
    if args.chat_template:
        wanted = Path(args.chat_template).read_text(encoding="utf-8")
        template_matches = saved == wanted
        tokenizer.chat_template = wanted
    elif not saved:
        raise SystemExit("the model has no chat template and --chat-template was not given")
    dtype = torch.bfloat16 if device == "cuda" and torch.cuda.is_bf16_supported() else (torch.float16 if device == "cuda" else torch.float32)
    model = AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=dtype).to(device)
    model.eval()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"  # decoder-only: pad on the left so every prompt ends where generation starts

    samples = read_jsonl(Path(args.input))
    output = Path(args.output)
    done_ids = {row["id"] for row in read_jsonl(output)}
    # Drop a half-written last line before appending.
    if output.exists():
        kept = [json.dumps(r) for r in read_jsonl(output)]
        output.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
    todo = [s for s in samples if s["id"] not in done_ids]
    template_sha = hashlib.sha256(tokenizer.chat_template.encode()).hexdigest()
    emit({"event": "start", "device": device, "total": len(samples), "resumed": len(samples) - len(todo),
          "chat_template_sha256": template_sha, "saved_template_matches": template_matches})

    started = time.time()
    generated_tokens = 0
    done = len(samples) - len(todo)
    with output.open("a", encoding="utf-8") as out:
        for start in range(0, len(todo), args.batch_size):
            batch = todo[start:start + args.batch_size]
            prompts = [
                tokenizer.apply_chat_template([{"role": "user", "content": s["instruction"]}], tokenize=False, add_generation_prompt=True)
                for s in batch
            ]
            # The template renders bos itself when the tokenizer has one; do not add a second.
            encoded = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            sampling = {"do_sample": True, "temperature": args.temperature, "top_p": 0.95} if args.temperature > 0 else {"do_sample": False}
            with torch.no_grad():
                result = model.generate(**encoded, max_new_tokens=args.max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                                        eos_token_id=tokenizer.eos_token_id, **sampling)
            new_tokens = result[:, encoded["input_ids"].shape[1]:]
            for sample, tokens in zip(batch, new_tokens):
                ids = tokens.tolist()
                finished = tokenizer.eos_token_id in ids
                if finished:
                    ids = ids[: ids.index(tokenizer.eos_token_id)]
                while ids and ids[-1] == tokenizer.pad_token_id:
                    ids.pop()
                generated_tokens += len(ids)
                answer = tokenizer.decode(ids, skip_special_tokens=True).strip()
                out.write(json.dumps({"id": sample["id"], "answer": answer, "output_tokens": len(ids),
                                      "finish_reason": "stop" if finished else "length"}) + "\n")
            out.flush()
            done += len(batch)
            emit({"event": "progress", "done": done, "total": len(samples)})
    seconds = time.time() - started
    emit({"event": "done", "total": len(samples), "generated": len(todo), "seconds": round(seconds, 3),
          "output_tokens": generated_tokens, "tokens_per_second": round(generated_tokens / seconds, 2) if seconds > 0 else None})
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SystemExit:
        raise
    except BaseException as error:  # noqa: BLE001 - reported as a line the activity reads, then re-raised
        emit({"event": "error", "message": f"{type(error).__name__}: {error}"[:2000]})
        traceback.print_exc()
        sys.exit(1)
