#!/usr/bin/env python3
"""LLM Twin fine-tuning job: SFT or DPO with LoRA (TRL + PEFT), merged into the base model at the end.

Runs the same way in three places:
  * SageMaker script mode (Hugging Face PyTorch training image): hyperparameters arrive as `--name value`
    arguments (and as JSON in SM_HPS), data in SM_CHANNEL_TRAIN / SM_CHANNEL_TEST (/ SM_CHANNEL_MODEL for a base
    model from S3, SM_CHANNEL_GENERAL for a general instruction set), output goes to SM_MODEL_DIR;
  * the local backend of the platform (src/training/local.ts), with the same arguments plus explicit paths;
  * by hand: python train.py --mode sft --base-model <id|dir> --train data/train.jsonl --model-dir out/

Data (the dataset contract of src/datasets): JSONL, one object per line; instruction datasets have
{"instruction", "output"}, preference datasets {"prompt", "chosen", "rejected"}. Both are formatted with ONE chat
template (chat_template.jinja, also used for evaluation and serving) and trained on the answer tokens only.

Progress is printed one JSON object per line, so SageMaker metric regexes and the TypeScript side read it:
  {"metric": "train_loss", "value": 1.234, "step": 10, "epoch": 0.5}
  {"event": "phase", "phase": "Training"}
  {"event": "error", "message": "..."}
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import sys
import tarfile
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULTS: dict[str, dict[str, Any]] = json.loads((HERE / "defaults.json").read_text())
CHAT_TEMPLATE = (HERE / "chat_template.jinja").read_text()

# Trainer log keys → metric names (SageMaker metric names and the TypeScript side use these).
METRIC_NAMES = {"loss": "train_loss", "train_loss": "train_loss_mean"}


# ---------------------------------------------------------------------------------------------------------------
# Output: one JSON object per line.


def emit(obj: dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)


def to_number(value: Any) -> float | None:
    """Numbers as floats; numeric strings too (transformers 5 formats some logged numbers as text)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if hasattr(value, "item"):
        try:
            return float(value.item())
        except (TypeError, ValueError):
            return None
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def emit_metric(name: str, value: Any, step: int | None = None, epoch: float | None = None) -> None:
    number = to_number(value)
    if number is None:
        return
    line: dict[str, Any] = {"metric": name, "value": number if math.isfinite(number) else None}
    if not math.isfinite(number):
        line["note"] = str(number)
    if step is not None:
        line["step"] = step
    if epoch is not None:
        line["epoch"] = round(float(epoch), 4)
    emit(line)


def emit_phase(phase: str, **details: Any) -> None:
    emit({"event": "phase", "phase": phase, **details})


def metric_name(key: str) -> str:
    return METRIC_NAMES.get(key, key.replace("/", "_"))


# ---------------------------------------------------------------------------------------------------------------
# Arguments: defaults.json ← SM_HPS ← command line.


def str2bool(value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in ("true", "1", "yes", "y", "on"):
        return True
    if lowered in ("false", "0", "no", "n", "off", ""):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def bool_or_auto(value: str | bool) -> str:
    if str(value).strip().lower() == "auto":
        return "auto"
    return "true" if str2bool(value) else "false"


def hyperparameter_types() -> dict[str, Any]:
    types: dict[str, Any] = {}
    for section in ("common", "sft", "dpo"):
        for name, value in DEFAULTS[section].items():
            if name == "bf16":
                types[name] = bool_or_auto
            elif isinstance(value, bool):
                types[name] = str2bool
            elif isinstance(value, int):
                types[name] = int
            elif isinstance(value, float):
                types[name] = float
            else:
                types[name] = str
    # learning rates and betas may be written as integers ("1") by hand; parse them as floats.
    for name in ("learning_rate", "beta", "lora_dropout", "weight_decay", "general_dataset_ratio", "num_train_epochs"):
        types[name] = float
    return types


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])

    def option(name: str, **kwargs: Any) -> None:
        flags = sorted({f"--{name.replace('_', '-')}", f"--{name}"})
        parser.add_argument(*flags, dest=name, **kwargs)

    option("mode", choices=("sft", "dpo"), help="sft: instruction dataset; dpo: preference dataset")
    option("base_model", help="Hugging Face id or local directory; s3://… means the 'model' channel carries it")
    parser.add_argument("--train", "--train-dir", "--train_dir", dest="train", default=os.environ.get("SM_CHANNEL_TRAIN"))
    parser.add_argument("--test", "--test-dir", "--test_dir", dest="test", default=os.environ.get("SM_CHANNEL_TEST"))
    parser.add_argument("--model-dir", "--model_dir", dest="model_dir", default=os.environ.get("SM_MODEL_DIR"))
    parser.add_argument("--checkpoint-dir", "--checkpoint_dir", dest="checkpoint_dir", default=None,
                        help="trainer checkpoints; kept (and resumed from) when set, default /opt/ml/checkpoints on SageMaker")
    parser.add_argument("--tokenizer", default=None, help="tokenizer directory or id (default: the base model's)")
    for name, kind in hyperparameter_types().items():
        option(name, type=kind, default=None)
    return parser


def resolve_hyperparameters(args: argparse.Namespace) -> dict[str, Any]:
    """defaults.json (common + mode) ← SM_HPS ← explicit command-line values."""
    types = hyperparameter_types()
    from_env: dict[str, Any] = {}
    if os.environ.get("SM_HPS"):
        for name, value in json.loads(os.environ["SM_HPS"]).items():
            if name.startswith("sagemaker_") or name in ("mode", "base_model"):
                continue
            if name not in types:
                raise SystemExit(f"unknown hyperparameter {name!r} in SM_HPS")
            from_env[name] = types[name](value) if isinstance(value, str) else value
    mode = args.mode
    hp: dict[str, Any] = {**DEFAULTS["common"], **DEFAULTS[mode]}
    hp.update(from_env)
    for name in types:
        value = getattr(args, name)
        if value is not None:
            hp[name] = value
    if mode == "sft":
        for name in DEFAULTS["dpo"]:
            if name not in DEFAULTS["sft"] and name not in DEFAULTS["common"]:
                hp.pop(name, None)
    return hp


# ---------------------------------------------------------------------------------------------------------------
# Data


def jsonl_files(location: str, split: str) -> list[Path]:
    path = Path(location)
    if path.is_file():
        return [path]
    if path.is_dir():
        preferred = path / f"{split}.jsonl"
        if preferred.exists():
            return [preferred]
        files = sorted(path.glob("*.jsonl"))
        if files:
            return files
    raise SystemExit(f"no {split} data: {location} is not a .jsonl file or a directory with .jsonl files")


def read_rows(location: str, split: str, required: tuple[str, ...]) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for file in jsonl_files(location, split):
        with file.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    raise SystemExit(f"{file}:{number}: not JSON ({error})") from error
                missing = [key for key in required if not isinstance(row.get(key), str) or not row[key].strip()]
                if missing:
                    raise SystemExit(f"{file}:{number}: missing or empty {', '.join(missing)} (expected {required})")
                rows.append(row)
    if not rows:
        raise SystemExit(f"no {split} rows in {location}")
    return rows


def read_general_rows(location: str) -> list[dict[str, str]]:
    """A general instruction set: Alpaca-style rows (instruction, optional input, output), local or from the Hub."""
    path = Path(location)
    if path.exists():
        raw = []
        for file in jsonl_files(location, "train"):
            raw.extend(json.loads(line) for line in file.open(encoding="utf-8") if line.strip())
    else:  # a Hugging Face dataset id (needs network; on SageMaker prefer the 'general' channel)
        from datasets import load_dataset

        raw = list(load_dataset(location, split="train"))
    rows = []
    for row in raw:
        instruction = str(row.get("instruction", "")).strip()
        extra = str(row.get("input", "") or "").strip()
        output = str(row.get("output", "")).strip()
        if instruction and output:
            rows.append({"instruction": f"{instruction}\n\n{extra}" if extra else instruction, "output": output})
    if not rows:
        raise SystemExit(f"general dataset {location}: no rows with instruction and output")
    return rows


def sft_example(row: dict[str, str]) -> dict[str, Any]:
    return {
        "prompt": [{"role": "user", "content": row["instruction"]}],
        "completion": [{"role": "assistant", "content": row["output"]}],
    }


def dpo_example(row: dict[str, str]) -> dict[str, Any]:
    return {
        "prompt": [{"role": "user", "content": row["prompt"]}],
        "chosen": [{"role": "assistant", "content": row["chosen"]}],
        "rejected": [{"role": "assistant", "content": row["rejected"]}],
    }


# ---------------------------------------------------------------------------------------------------------------
# Model and tokenizer


def resolve_base_model(base_model: str | None) -> str | None:
    """A local dir, a Hub id, or (s3://…, or unset on SageMaker) the 'model' channel, unpacking model.tar.gz."""
    channel = os.environ.get("SM_CHANNEL_MODEL")
    if channel and (base_model is None or base_model.startswith("s3://")):
        archive = Path(channel) / "model.tar.gz"
        if archive.exists():
            target = Path(os.environ.get("TMPDIR", "/tmp")) / "base_model"
            if not (target / "config.json").exists():
                target.mkdir(parents=True, exist_ok=True)
                with tarfile.open(archive) as tar:
                    tar.extractall(target, filter="data")
            return str(target)
        return channel
    if base_model and base_model.startswith("s3://"):
        raise SystemExit(f"base model {base_model} is on S3 but no 'model' channel was given")
    if base_model and base_model.startswith("file://"):
        return base_model[len("file://"):]
    return base_model


def train_tokenizer(texts: list[str], vocab_size: int):
    """A byte-level BPE tokenizer trained on the job's own text (random-init runs have no tokenizer to load)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<s>", "</s>", "<pad>"]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>")


def load_model_and_tokenizer(args: argparse.Namespace, hp: dict[str, Any], texts: list[str], dtype: Any, use_cuda: bool):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    base = resolve_base_model(args.base_model)
    if hp["random_init_from_config"]:
        config_data = json.loads(Path(hp["random_init_from_config"]).read_text())
        model_type = config_data.pop("model_type")
        for key in ("architectures", "transformers_version", "torch_dtype", "dtype"):
            config_data.pop(key, None)
        config = AutoConfig.for_model(model_type, **config_data)
        source = args.tokenizer or base
        tokenizer = AutoTokenizer.from_pretrained(source) if source else train_tokenizer(texts, min(config.vocab_size, 8000))
        with torch.device("cuda" if use_cuda else "cpu"):
            model = AutoModelForCausalLM.from_config(config, dtype=dtype)
        emit_phase("Downloading", model=f"random init from {hp['random_init_from_config']}",
                   parameters=sum(p.numel() for p in model.parameters()))
        return model, tokenizer, f"random-init:{model_type}"
    if not base:
        raise SystemExit("--base-model is required (or --random-init-from-config)")
    emit_phase("Downloading", model=base)
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer or base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype)
    return model, tokenizer, base


def prepare_tokenizer(tokenizer) -> None:
    if tokenizer.eos_token is None:
        raise SystemExit("the tokenizer has no eos token; the chat template ends every answer with it")
    tokenizer.chat_template = CHAT_TEMPLATE
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token


# ---------------------------------------------------------------------------------------------------------------
# Training


def make_callback():
    from transformers import TrainerCallback

    class JsonMetrics(TrainerCallback):
        """Every trainer log becomes one JSON metric line per value; each optimiser step's wall time too."""

        def __init__(self) -> None:
            self.step_seconds: list[float] = []
            self._step_started = 0.0

        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                emit_phase("Training", max_steps=state.max_steps)

        def on_step_begin(self, args, state, control, **kwargs):
            self._step_started = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            if self._step_started:
                self.step_seconds.append(time.perf_counter() - self._step_started)
                if state.is_world_process_zero:
                    emit_metric("step_seconds", self.step_seconds[-1], step=state.global_step)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero:
                return
            for key, value in (logs or {}).items():
                if key in ("epoch", "step"):
                    continue
                emit_metric(metric_name(key), value, step=state.global_step, epoch=state.epoch)

    return JsonMetrics()


def peak_memory_gb(use_cuda: bool) -> float:
    if use_cuda:
        import torch

        return torch.cuda.max_memory_allocated() / 1024**3
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux: KiB


def sequence_tokens(dataset, mode: str) -> list[int]:
    """Tokens of each training sample as the model sees them (DPO: prompt+chosen and prompt+rejected)."""
    if mode == "sft":
        return [len(ids) for ids in dataset["input_ids"]]
    return [2 * len(p) + len(c) + len(r) for p, c, r in zip(dataset["prompt_ids"], dataset["chosen_ids"], dataset["rejected_ids"])]


def check_prompt_prefix(tokenizer, examples: list[dict[str, Any]], limit: int = 64) -> int:
    """How many samples tokenise their prompt differently alone than in front of the answer.

    The trainers mask the loss by the prompt's token count, so a template whose generation prompt does not
    tokenise as a prefix (e.g. one ending in a space) trains on the wrong tokens. chat_template.jinja ends the
    prompt with a newline and trims answers, so with byte-level BPE and SentencePiece tokenizers this never happens:
    any mismatch fails the job before GPU time is spent (TRL itself would only log a warning).
    """
    checked = examples[:limit]
    mismatches = 0
    for example in checked:
        answer = example.get("completion") or example["chosen"]
        prompt_ids = tokenizer.apply_chat_template(example["prompt"], add_generation_prompt=True, tokenize=True, return_dict=False)
        full_ids = tokenizer.apply_chat_template(example["prompt"] + answer, tokenize=True, return_dict=False)
        if full_ids[: len(prompt_ids)] != prompt_ids:
            mismatches += 1
    emit_metric("template_prefix_mismatches", mismatches)
    if mismatches:
        raise SystemExit(f"chat template: in {mismatches} of {len(checked)} samples the prompt does not tokenise as a "
                         "prefix of prompt+answer, so the loss mask would be wrong; fix chat_template.jinja "
                         "(a generation prompt must not end in a space)")
    return mismatches


def run(args: argparse.Namespace) -> dict[str, Any]:
    if not args.mode:
        raise SystemExit("--mode sft|dpo is required")
    hp = resolve_hyperparameters(args)
    model_dir = Path(args.model_dir or "model")
    on_sagemaker = bool(os.environ.get("SM_MODEL_DIR")) and Path("/opt/ml").exists()
    checkpoint_dir = args.checkpoint_dir or ("/opt/ml/checkpoints" if on_sagemaker else None)
    emit_phase("Starting", mode=args.mode, hyperparameters=hp)

    if not args.train:
        raise SystemExit("no training data: pass --train <file|dir> or set SM_CHANNEL_TRAIN")
    required = ("instruction", "output") if args.mode == "sft" else ("prompt", "chosen", "rejected")
    train_rows = read_rows(args.train, "train", required)
    test_rows = read_rows(args.test, "test", required) if args.test and Path(args.test).exists() else []
    rng = random.Random(hp["seed"])
    if hp["max_train_samples"] > 0:
        train_rows = train_rows[: hp["max_train_samples"]]
    own_samples = len(train_rows)
    general_samples = 0
    general_location = hp["general_dataset"] or os.environ.get("SM_CHANNEL_GENERAL", "")
    if hp["general_dataset_ratio"] > 0 and general_location:
        if args.mode != "sft":
            raise SystemExit("general_dataset mixing applies to sft only")
        general = read_general_rows(general_location)
        rng.shuffle(general)
        general_samples = min(len(general), round(hp["general_dataset_ratio"] * own_samples))
        train_rows = train_rows + general[:general_samples]
    rng.shuffle(train_rows)
    emit_metric("train_samples", len(train_rows))
    emit_metric("own_samples", own_samples)
    emit_metric("general_samples", general_samples)
    emit_metric("test_samples", len(test_rows))

    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import set_seed

    set_seed(hp["seed"])
    use_cuda = torch.cuda.is_available()
    bf16 = hp["bf16"] == "true" or (hp["bf16"] == "auto" and use_cuda and torch.cuda.is_bf16_supported())
    fp16 = use_cuda and not bf16
    dtype = torch.bfloat16 if bf16 else (torch.float16 if fp16 else torch.float32)

    texts = [" ".join(str(v) for v in row.values()) for row in train_rows[:2000]]
    model, tokenizer, base_name = load_model_and_tokenizer(args, hp, texts, dtype, use_cuda)
    prepare_tokenizer(tokenizer)

    to_example = sft_example if args.mode == "sft" else dpo_example
    train_examples = [to_example(row) for row in train_rows]
    check_prompt_prefix(tokenizer, train_examples)
    train_dataset = Dataset.from_list(train_examples)
    eval_dataset = Dataset.from_list([to_example(row) for row in test_rows]) if test_rows else None

    lora = LoraConfig(
        r=hp["lora_r"],
        lora_alpha=hp["lora_alpha"],
        lora_dropout=hp["lora_dropout"],
        target_modules=[m.strip() for m in hp["lora_target_modules"].split(",") if m.strip()],
        bias="none",
        task_type="CAUSAL_LM",
    )
    keep_checkpoints = checkpoint_dir is not None
    output_dir = checkpoint_dir or str(model_dir.parent / f".{model_dir.name}-trainer")
    common = dict(
        output_dir=output_dir,
        num_train_epochs=hp["num_train_epochs"],
        max_steps=hp["max_steps"],
        learning_rate=hp["learning_rate"],
        per_device_train_batch_size=hp["per_device_train_batch_size"],
        per_device_eval_batch_size=hp["per_device_train_batch_size"],
        gradient_accumulation_steps=hp["gradient_accumulation_steps"],
        warmup_steps=hp["warmup_steps"],
        lr_scheduler_type=hp["lr_scheduler_type"],
        weight_decay=hp["weight_decay"],
        optim=hp["optim"],
        seed=hp["seed"],
        logging_steps=hp["logging_steps"],
        bf16=bf16,
        fp16=fp16,
        use_cpu=not use_cuda,
        gradient_checkpointing=hp["gradient_checkpointing"],
        max_length=hp["max_length"],
        report_to=[],
        disable_tqdm=True,
        save_strategy="epoch" if keep_checkpoints else "no",
        save_total_limit=1,
        eval_strategy="no",
        dataloader_pin_memory=use_cuda,
    )
    callback = make_callback()
    if args.mode == "sft":
        from trl import SFTConfig, SFTTrainer

        config = SFTConfig(**common, packing=False, completion_only_loss=True)
        trainer = SFTTrainer(model=model, args=config, train_dataset=train_dataset, eval_dataset=eval_dataset,
                             processing_class=tokenizer, peft_config=lora, callbacks=[callback])
    else:
        from trl import DPOConfig, DPOTrainer

        config = DPOConfig(**common, beta=hp["beta"])
        trainer = DPOTrainer(model=model, args=config, train_dataset=train_dataset, eval_dataset=eval_dataset,
                             processing_class=tokenizer, peft_config=lora, callbacks=[callback])
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    emit_metric("trainable_parameters", trainable)
    sample_tokens = sequence_tokens(trainer.train_dataset, args.mode)

    resume = keep_checkpoints and any(Path(output_dir).glob("checkpoint-*"))
    if use_cuda:
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=True if resume else None)
    runtime = time.perf_counter() - started
    samples_seen = min(
        result.global_step * hp["per_device_train_batch_size"] * hp["gradient_accumulation_steps"] * max(1, trainer.args.world_size),
        math.ceil(trainer.args.num_train_epochs) * len(sample_tokens) if hp["max_steps"] <= 0 else 10**12,
    )
    mean_tokens = sum(sample_tokens) / max(1, len(sample_tokens))
    emit_metric("train_tokens_per_second", mean_tokens * samples_seen / max(runtime, 1e-9), step=result.global_step)
    steady = sorted(callback.step_seconds[1:])  # the first step pays for warm-up (CUDA context, allocator)
    if steady:
        samples_per_step = hp["per_device_train_batch_size"] * hp["gradient_accumulation_steps"] * max(1, trainer.args.world_size)
        median = steady[len(steady) // 2]
        emit_metric("steady_tokens_per_second", mean_tokens * samples_per_step / max(median, 1e-9), step=result.global_step)
    emit_metric("peak_memory_gb", peak_memory_gb(use_cuda), step=result.global_step)
    if eval_dataset is not None:
        emit_phase("Evaluating")
        trainer.evaluate()

    summary: dict[str, Any] = {
        "mode": args.mode,
        "base_model": base_name,
        "hyperparameters": hp,
        "samples": {"train": len(train_rows), "own": own_samples, "general": general_samples, "test": len(test_rows)},
        "global_step": result.global_step,
        "train_runtime_s": round(runtime, 3),
        "chat_template_sha256": __import__("hashlib").sha256(CHAT_TEMPLATE.encode()).hexdigest(),
        "versions": versions(),
        "final_metrics": last_metrics(trainer.state.log_history),
    }
    if hp["save_model"]:
        model_dir.mkdir(parents=True, exist_ok=True)
        model = trainer.model
        if hp["merge"]:
            emit_phase("Merging")
            model = model.merge_and_unload()
        emit_phase("Saving", model_dir=str(model_dir))
        model.save_pretrained(model_dir, safe_serialization=True)
        tokenizer.save_pretrained(model_dir)
        (model_dir / "twin_training.json").write_text(json.dumps(summary, indent=2, default=str))
    emit({"event": "done", "model_dir": str(model_dir) if hp["save_model"] else None, "global_step": result.global_step})
    return summary


def last_metrics(history: list[dict[str, Any]]) -> dict[str, float]:
    final: dict[str, float] = {}
    for entry in history:
        for key, value in entry.items():
            number = to_number(value)
            if key not in ("step", "epoch") and number is not None and math.isfinite(number):
                final[metric_name(key)] = number
    return final


def versions() -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name) for name in ("torch", "transformers", "trl", "peft", "datasets", "accelerate")}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        run(args)
        return 0
    except BaseException as error:  # report every failure the same way, then exit non-zero
        message = str(error) if isinstance(error, SystemExit) else f"{type(error).__name__}: {error}"
        if isinstance(error, KeyboardInterrupt):
            message = "interrupted"
        emit({"event": "error", "message": message})
        if not isinstance(error, SystemExit):
            traceback.print_exc()
        failure_file = Path("/opt/ml/output/failure")
        if failure_file.parent.exists() and os.environ.get("SM_MODEL_DIR"):
            failure_file.write_text(message[:1000])  # SageMaker shows this as the job's FailureReason
        return 1


if __name__ == "__main__":
    sys.exit(main())
