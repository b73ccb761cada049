"""CPU tests of train.py: SFT then DPO end to end on a tiny random Llama, run as SageMaker and the local backend run it.

    $TWIN_HOME/venv-train/bin/python -m pytest jobs/finetune/tests -q
"""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
JOB = HERE.parent
FIXTURES = JOB.parents[1] / "test" / "fixtures" / "datasets"
sys.path[:0] = [str(JOB), str(HERE)]

import tiny_model  # noqa: E402
import train  # noqa: E402

INSTRUCTION = next((FIXTURES / "instruction").iterdir())
PREFERENCE = next((FIXTURES / "preference").iterdir())
GENERAL = FIXTURES / "general" / "alpaca-sample.jsonl"
# Small, fast settings for a 2-core machine; everything else is the job's defaults.
FAST = ["--per_device_train_batch_size", "4", "--gradient_accumulation_steps", "1", "--max_length", "256",
        "--gradient_checkpointing", "false", "--warmup_steps", "0", "--learning_rate", "1e-3"]


def count_rows(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines() if line.strip())


class Run:
    def __init__(self, proc: subprocess.CompletedProcess[str]):
        self.proc = proc
        self.events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{\"")]
        self.metrics: dict[str, list[dict]] = {}
        for event in self.events:
            if "metric" in event:
                self.metrics.setdefault(event["metric"], []).append(event)

    def last(self, name: str) -> float:
        assert name in self.metrics, f"no {name} metric; got {sorted(self.metrics)}\n{self.proc.stderr[-3000:]}"
        return self.metrics[name][-1]["value"]

    def phases(self) -> list[str]:
        return [e["phase"] for e in self.events if e.get("event") == "phase"]


def run_job(args: list[str], env: dict[str, str] | None = None) -> Run:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SM_")}
    proc = subprocess.run([sys.executable, str(JOB / "train.py"), *args], capture_output=True, text=True,
                          env={**clean, "HF_HUB_OFFLINE": "1", **(env or {})}, timeout=900)
    return Run(proc)


@pytest.fixture(scope="module")
def base_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny-base")
    return tiny_model.build(out, [INSTRUCTION / "train.jsonl", PREFERENCE / "train.jsonl", GENERAL])


def safetensors(model_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(model_dir / "model.safetensors"))


def test_defaults_are_the_reference_values_and_overrides_apply_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    parser = train.build_parser()
    sft = train.resolve_hyperparameters(parser.parse_args(["--mode", "sft"]))
    assert (sft["lora_r"], sft["lora_alpha"], sft["lora_dropout"], sft["max_length"]) == (32, 32, 0.0, 2048)
    assert sft["lora_target_modules"].split(",") == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    assert (sft["learning_rate"], sft["num_train_epochs"]) == (3e-4, 3)
    assert (sft["per_device_train_batch_size"], sft["gradient_accumulation_steps"]) == (2, 8)
    assert "beta" not in sft
    dpo = train.resolve_hyperparameters(parser.parse_args(["--mode", "dpo"]))
    assert (dpo["beta"], dpo["learning_rate"], dpo["num_train_epochs"]) == (0.5, 2e-6, 1)

    # SageMaker: SM_HPS (JSON values) over the defaults, explicit `--name value` arguments over SM_HPS.
    monkeypatch.setenv("SM_HPS", json.dumps({"beta": 0.1, "lora_r": 8, "sagemaker_program": "train.py"}))
    args = parser.parse_args(["--mode", "dpo", "--lora_r", "16", "--gradient-checkpointing", "False", "--bf16", "auto"])
    merged = train.resolve_hyperparameters(args)
    assert (merged["beta"], merged["lora_r"], merged["gradient_checkpointing"], merged["bf16"]) == (0.1, 16, False, "auto")


def test_bad_rows_fail_with_the_file_and_line(tmp_path: Path) -> None:
    data = tmp_path / "train.jsonl"
    data.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "only a question"}\n')
    run = run_job(["--mode", "sft", "--base-model", "unused", "--train", str(data), "--model-dir", str(tmp_path / "m")])
    assert run.proc.returncode == 1
    errors = [e for e in run.events if e.get("event") == "error"]
    assert errors and f"{data}:2: missing or empty output" in errors[0]["message"]


def test_a_generation_prompt_ending_in_a_space_is_caught(base_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_model)
    examples = [train.sft_example(json.loads(line)) for line in (INSTRUCTION / "train.jsonl").read_text().splitlines()]
    tokenizer.chat_template = train.CHAT_TEMPLATE
    assert train.check_prompt_prefix(tokenizer, examples) == 0
    tokenizer.chat_template = train.CHAT_TEMPLATE.replace("'### Response:\\n'", "'### Response: '")
    with pytest.raises(SystemExit, match="must not end in a space"):
        train.check_prompt_prefix(tokenizer, examples)


def test_sft_then_dpo_on_top(base_model: Path, tmp_path: Path) -> None:
    # SFT, the way the local backend runs it: explicit paths and `--name value` hyperparameters, general mixing on.
    sft_dir = tmp_path / "sft"
    sft = run_job(["--mode", "sft", "--base-model", str(base_model), "--train", str(INSTRUCTION / "train.jsonl"),
                   "--test", str(INSTRUCTION / "test.jsonl"), "--model-dir", str(sft_dir), "--num_train_epochs", "2",
                   "--general_dataset", str(GENERAL), "--general_dataset_ratio", "0.25", *FAST])
    assert sft.proc.returncode == 0, sft.proc.stderr[-4000:]
    own = count_rows(INSTRUCTION / "train.jsonl")
    assert sft.last("own_samples") == own
    assert sft.last("general_samples") == round(0.25 * own)
    assert sft.last("train_samples") == own + round(0.25 * own)
    assert sft.last("template_prefix_mismatches") == 0
    losses = [m["value"] for m in sft.metrics["train_loss"]]
    assert len(losses) >= 2 and all(math.isfinite(v) for v in losses)
    assert [m["step"] for m in sft.metrics["train_loss"]] == sorted(m["step"] for m in sft.metrics["train_loss"])
    assert math.isfinite(sft.last("eval_loss"))
    assert sft.last("train_tokens_per_second") > 0 and sft.last("peak_memory_gb") > 0
    assert sft.phases() == ["Starting", "Downloading", "Training", "Evaluating", "Merging", "Saving"]

    # The merged model: plain Llama weights (no LoRA tensors left), changed by training, tokenizer with our template.
    weights = safetensors(sft_dir)
    assert not [k for k in weights if "lora" in k]
    base_weights = safetensors(base_model)
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not weights[q].equal(base_weights[q]), "LoRA delta merged into q_proj"
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(sft_dir)
    assert tokenizer.chat_template == train.CHAT_TEMPLATE
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": "Hi?"}], tokenize=False, add_generation_prompt=True)
    assert rendered == "<s>### Instruction:\nHi?\n\n### Response:\n"
    summary = json.loads((sft_dir / "twin_training.json").read_text())
    assert summary["mode"] == "sft" and summary["hyperparameters"]["lora_r"] == 32
    assert summary["samples"] == {"train": own + round(0.25 * own), "own": own, "general": round(0.25 * own),
                                  "test": count_rows(INSTRUCTION / "test.jsonl")}
    assert summary["versions"]["trl"] == "0.29.1"

    # DPO on top, the way SageMaker runs it: channels, SM_MODEL_DIR, SM_HPS, the SFT model as model.tar.gz in the
    # 'model' channel and the script-mode arguments the training toolkit passes.
    channels = tmp_path / "channels"
    for name, source in (("train", PREFERENCE / "train.jsonl"), ("test", PREFERENCE / "test.jsonl")):
        (channels / name).mkdir(parents=True)
        shutil.copy(source, channels / name / source.name)
    (channels / "model").mkdir()
    with tarfile.open(channels / "model" / "model.tar.gz", "w:gz") as tar:
        for file in sft_dir.iterdir():
            tar.add(file, arcname=file.name)
    sm_model_dir = tmp_path / "opt-ml-model"
    hps = {"beta": 0.5, "learning_rate": 1e-3, "max_length": 256, "per_device_train_batch_size": 4,
           "gradient_accumulation_steps": 1, "gradient_checkpointing": False, "warmup_steps": 0}
    env = {"SM_CHANNEL_TRAIN": str(channels / "train"), "SM_CHANNEL_TEST": str(channels / "test"),
           "SM_CHANNEL_MODEL": str(channels / "model"), "SM_MODEL_DIR": str(sm_model_dir), "SM_HPS": json.dumps(hps),
           "TMPDIR": str(tmp_path)}
    toolkit_args = ["--mode", "dpo", "--base_model", "s3://bucket/models/sft/output/model.tar.gz"]
    for name, value in hps.items():
        toolkit_args += [f"--{name}", str(value)]
    dpo = run_job(toolkit_args, env)
    assert dpo.proc.returncode == 0, dpo.proc.stderr[-4000:]
    assert dpo.last("train_samples") == count_rows(PREFERENCE / "train.jsonl")
    for name in ("train_loss", "rewards_chosen", "rewards_rejected", "rewards_accuracies", "rewards_margins", "eval_loss"):
        assert math.isfinite(dpo.last(name)), name
    assert dpo.last("template_prefix_mismatches") == 0
    dpo_weights = safetensors(sm_model_dir)
    assert not [k for k in dpo_weights if "lora" in k]
    assert not dpo_weights[q].equal(weights[q]), "DPO changed the SFT model"
    dpo_summary = json.loads((sm_model_dir / "twin_training.json").read_text())
    assert dpo_summary["mode"] == "dpo" and dpo_summary["hyperparameters"]["beta"] == 0.5
    assert dpo_summary["base_model"] == str(tmp_path / "base_model"), "the SFT model came from the model channel"


def test_random_init_from_config_reports_throughput(tmp_path: Path) -> None:
    config = tiny_model.tiny_llama_config(vocab_size=1024, bos=0, eos=1, pad=2)
    (tmp_path / "config.json").write_text(json.dumps(config))
    run = run_job(["--mode", "sft", "--random-init-from-config", str(tmp_path / "config.json"),
                   "--train", str(INSTRUCTION / "train.jsonl"), "--model-dir", str(tmp_path / "m"),
                   "--max_steps", "2", "--save_model", "false", *FAST])
    assert run.proc.returncode == 0, run.proc.stderr[-4000:]
    assert run.last("train_tokens_per_second") > 0
    assert run.last("peak_memory_gb") > 0
    done = [e for e in run.events if e.get("event") == "done"]
    assert done == [{"event": "done", "model_dir": None, "global_step": 2}]
    assert not (tmp_path / "m").exists()
