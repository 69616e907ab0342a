"""RLHF against TRL: the ``reward_model`` stage vs TRL's ``RewardTrainer``, and a ``ppo`` step vs TRL's ``PPOTrainer``.

    .venv/bin/python benchmarks/rlhf_vs_trl.py [--model DIR] [--rm-steps 100] [--ppo-steps 6] [--warmup 2]
        [--sides rm-raylign,rm-trl,ppo-raylign,ppo-trl] [--reward-model DIR] [--trl-ppo-path DIR]

Needs TRL (the ``bench`` extra: ``pip install trl``; keep the CPU torch). TRL removed ``PPOTrainer`` after 1.12.0
(it lived in ``trl.experimental.ppo`` from 0.2x to 1.12.0); when the installed TRL has none, the ``ppo-trl`` side
imports TRL 1.12.0 from a separate folder, never from the venv::

    .venv/bin/pip install --no-deps --target ~/.cache/raylign/trl-ppo trl==1.12.0   # the default --trl-ppo-path

Both parts start from the same HF causal-LM directory (``--model``; without it a from-scratch tiny Qwen2 is built
here, which gives timings but meaningless accuracies: pass the main job's SFT model, runs/assistant/models/sft,
after ``raylign run examples/assistant.toml``).

1. Reward model, the same data (examples/data/prefs_train.jsonl; held out: prefs_eval.jsonl, 400 pairs, 200 in
   the ``longer_worse`` subset, where the rejected reply is the longer one), ``--rm-steps`` optimizer steps of
   ``--rm-batch`` pairs (micro-batches of ``--rm-micro`` pairs), AdamW lr ``--rm-lr`` constant, no warm-up, no
   weight decay, betas 0.9/0.95, grad clip 1, pairs with a side over ``--max-len`` tokens skipped, every row
   rendered with the model's chat template (string prompts/replies become one user/assistant message).

   - rm-raylign: the real ``reward_model`` stage through ``raylign.engine.driver.run_pipeline``; held-out
     accuracy and ``longer_worse`` accuracy (``eval_accuracy``, ``eval_accuracy_length_confounded``: the same
     200 pairs) from the run's summary.json.
   - rm-trl: ``RewardTrainer`` on ``AutoModelForSequenceClassification`` (num_labels=1, pad token set) made
     from the causal LM; accuracy computed here on the same held-out pairs: reward = the trained model's logit,
     a pair is right when chosen > rejected.

   Training time: from the end of step 1 to the end of the last step (every later step; start-up, data
   preparation, the first step and evaluation excluded on both sides), per step and in all; "wall" is the side's
   whole subprocess.

2. PPO step time, the same workload: ``--prompts`` prompts per step from examples/data/rlhf_train.jsonl, one
   sample each, temperature 1, at most ``--max-new`` tokens (stopping at the chat template's end-of-turn token),
   ``--epochs`` passes of one mini-batch, micro-batches of ``--micro`` sequences, KL coefficient ``--kl-coef``
   (k1, in the reward), GAE gamma 1 / lambda 0.95, clip 0.2, value clip 0.2; policy and reference = ``--model``;
   reward model and critic initialised from the same reward model directory (``--reward-model``, else the one
   rm-raylign trained, else a quick 20-step raylign one trained first).

   - ppo-raylign: the real ``ppo`` stage (vLLM rollout worker, reward model in its own actor, policy / critic /
     reference learners, weight sync); ``step_seconds`` from metrics.jsonl.
   - ppo-trl: ``PPOTrainer`` (HF generate), timed between consecutive ``on_step_end`` callbacks; its
     generation time and reply lengths measured by wrapping its ``batch_generation``. TRL's policy and value
     model share one AdamW (lr ``--ppo-lr``; value loss x 0.1); raylign runs two, both at ``--ppo-lr`` here.

Each side runs in its own subprocess, one at a time; the first ``--warmup`` PPO steps are not timed. The table shows
the 1-minute load average before and after each side: run it on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grpo_vs_trl import model_params, run_in_subprocess  # benchmarks/ is on sys.path when a script here runs

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples" / "data"
SIDES = ("rm-raylign", "rm-trl", "ppo-raylign", "ppo-trl")
DEFAULT_TRL_PPO = Path.home() / ".cache" / "raylign" / "trl-ppo"
BETAS = (0.9, 0.95)


# ---------------------------------------------------------------------------------------------- shared set-up
def build_model(directory: Path) -> None:
    """A from-scratch tiny Qwen2 (head dim 32) with its own BPE and chat template (timings only)."""
    from raylign.engine.modeling import ModelSize, build_qwen2, save_model_dir
    from raylign.engine.tokenizer import train_bpe

    texts = []
    for name in ("pretrain.jsonl", "prefs_train.jsonl"):
        path = DATA / name
        if path.exists():
            with open(path) as fh:
                for line, _ in zip(fh, range(400)):
                    row = json.loads(line)
                    texts.append(row["text"] if "text" in row else json.dumps(row))
    tok = train_bpe(texts or ["What is a fish? A fish is an animal."], 1024)
    size = ModelSize(hidden_size=128, num_layers=4, num_heads=4, num_kv_heads=2, intermediate_size=384,
                     max_position_embeddings=512)
    save_model_dir(build_qwen2(size, tok, seed=0), tok, directory)


def read_jsonl(path: Path) -> list[dict]:
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def as_chat(row: dict) -> dict:
    """A preference row with prompt / chosen / rejected as chat messages (TRL's conversational format)."""
    def msgs(x, role):
        return [{"role": role, "content": x}] if isinstance(x, str) else [{"role": m["role"], "content": m["content"]}
                                                                          for m in x]
    return {"prompt": msgs(row["prompt"], "user"), "chosen": msgs(row["chosen"], "assistant"),
            "rejected": msgs(row["rejected"], "assistant")}


def optim(lr: float) -> dict:
    return {"lr": lr, "warmup_steps": 0, "schedule": "constant", "weight_decay": 0.0, "beta1": BETAS[0],
            "beta2": BETAS[1], "eps": 1e-8, "grad_clip": 1.0}


class StepClock:
    """A raylign hook plugin: the time each training step of a stage was logged (log_every = 1)."""

    def __init__(self, stage: str):
        self.stage, self.ends = stage, []

    def hookimpl(self):
        from raylign.engine import hookimpl

        clock = self

        class Plugin:
            @hookimpl
            def raylign_step_end(self, stage, step, metrics):
                if stage == clock.stage and "loss" in metrics:  # a training step (the final eval has no loss)
                    clock.ends.append(time.perf_counter())
        return Plugin()


# ---------------------------------------------------------------------------------------------- reward model
def run_rm_raylign(args, work: Path, tag: str, steps: int) -> dict:
    from raylign.engine.config import build_config
    from raylign.engine.driver import run_pipeline
    from raylign.engine.plugins import build_registry

    t_start = time.perf_counter()
    out = work / tag
    data = {
        "run": {"name": "rm", "output_dir": str(out), "seed": 0, "pipeline": ["reward_model"],
                "base_model": str(args.model), "probes": []},
        "reward_model": {
            "data": [str(DATA / "prefs_train.jsonl")], "eval_data": [str(DATA / "prefs_eval.jsonl")],
            "eval_pairs": 400, "max_len": args.max_len, "steps": steps, "batch_size": args.rm_batch,
            "micro_batch_size": args.rm_micro, "eval_every": 0, "checkpoint_every": 0, "log_every": 1,
            "optim": optim(args.rm_lr),
        },
    }
    clock = StepClock("reward_model")
    registry = build_registry(extra_plugins=[clock.hookimpl()])
    cfg = build_config(data, registry, source=str(work / f"{tag}.toml"))
    summary = run_pipeline(cfg, registry)
    wall = time.perf_counter() - t_start
    m = summary["stages"]["reward_model"]["metrics"]
    return {"ends": clock.ends, "wall_seconds": wall, "eval_accuracy": m["eval_accuracy"],
            "longer_worse_accuracy": m.get("eval_accuracy_length_confounded"),
            "eval_accuracy_before": m.get("eval_accuracy_before"),
            "model_dir": str(out / "rm" / "models" / "reward_model")}


def run_rm_trl(args, work: Path) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, TrainerCallback, set_seed
    import trl
    from trl import RewardConfig, RewardTrainer

    if args.trl_threads:
        torch.set_num_threads(args.trl_threads)
    t_start = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(str(args.model))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    set_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(str(args.model), num_labels=1, dtype=torch.float32)
    model.config.pad_token_id = tok.pad_token_id
    train = Dataset.from_list([as_chat(r) for r in read_jsonl(DATA / "prefs_train.jsonl")])

    class Clock(TrainerCallback):
        def __init__(self):
            self.ends: list[float] = []

        def on_step_end(self, a, state, control, **kw):
            self.ends.append(time.perf_counter())

    clock = Clock()
    config = RewardConfig(
        output_dir=str(work / "rm-trl"), report_to="none", logging_steps=10, save_strategy="no", eval_strategy="no",
        disable_tqdm=True, seed=0, use_cpu=True, bf16=False, fp16=False, dataloader_num_workers=0,
        max_steps=args.rm_steps, per_device_train_batch_size=args.rm_micro,
        gradient_accumulation_steps=args.rm_batch // args.rm_micro, learning_rate=args.rm_lr,
        lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0, adam_beta1=BETAS[0], adam_beta2=BETAS[1],
        adam_epsilon=1e-8, max_grad_norm=1.0, max_length=args.max_len,
    )
    trainer = RewardTrainer(model=model, args=config, train_dataset=train, processing_class=tok, callbacks=[clock])
    n_train = len(trainer.train_dataset)
    trainer.train()

    # held-out accuracy: the chat rendered as TRL renders it, reward = the logit at the last non-pad token
    model = trainer.model.eval()
    rows = read_jsonl(DATA / "prefs_eval.jsonl")[:400]
    encoded, skipped = [], 0
    for row in rows:
        chat = as_chat(row)
        sides = [tok.apply_chat_template(chat["prompt"] + chat[k], tokenize=True, return_dict=True)["input_ids"]
                 for k in ("chosen", "rejected")]
        if max(len(s) for s in sides) > args.max_len:
            skipped += 1
            continue
        encoded.append((sides, row.get("subset", "")))
    seqs = [s for sides, _ in encoded for s in sides]
    rewards = []
    with torch.no_grad():
        for i in range(0, len(seqs), 64):
            chunk = seqs[i:i + 64]
            width = max(len(s) for s in chunk)
            ids = torch.tensor([s + [tok.pad_token_id] * (width - len(s)) for s in chunk])
            attn = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in chunk])
            rewards += model(input_ids=ids, attention_mask=attn).logits[:, 0].tolist()
    right = [rewards[2 * i] > rewards[2 * i + 1] for i in range(len(encoded))]
    worse = [r for r, (_, subset) in zip(right, encoded) if subset == "longer_worse"]
    return {"ends": clock.ends, "wall_seconds": time.perf_counter() - t_start,
            "eval_accuracy": sum(right) / len(right), "longer_worse_accuracy": sum(worse) / len(worse) if worse else None,
            "eval_pairs": len(encoded), "eval_skipped": skipped, "train_pairs": n_train, "trl_version": trl.__version__,
            "torch_threads": torch.get_num_threads()}


# ---------------------------------------------------------------------------------------------- PPO
def run_ppo_raylign(args, work: Path) -> dict:
    from raylign.engine.config import build_config
    from raylign.engine.driver import run_pipeline
    from raylign.engine.plugins import get_registry

    t_start = time.perf_counter()
    out = work / "ppo-raylign"
    data = {
        "run": {"name": "ppo", "output_dir": str(out), "seed": 0, "pipeline": ["ppo"],
                "base_model": str(args.model), "probes": []},
        "rollout": {"num_workers": 1, "max_model_len": 512, "kv_cache_gb": 1},
        "rewards": {"num_workers": 1},
        "ppo": {
            "data": [str(DATA / "rlhf_train.jsonl")], "eval_data": [str(DATA / "rlhf_eval.jsonl")], "eval_size": 8,
            "rewards": [{"name": "reward_model", "model": str(args.reward_model)}], "critic": str(args.reward_model),
            "steps": args.warmup + args.ppo_steps, "prompts_per_step": args.prompts, "samples_per_prompt": 1,
            "max_new_tokens": args.max_new, "temperature": 1.0, "epochs": args.epochs, "mini_batches": 1,
            "micro_batch_size": args.micro, "gamma": 1.0, "lam": 0.95, "clip_low": 0.2, "clip_high": 0.2,
            "value_clip": 0.2, "kl_coef": args.kl_coef, "kl_estimator": "k1", "kl_in": "reward",
            "eval_every": 0, "checkpoint_every": 0, "optim": optim(args.ppo_lr), "critic_optim": optim(args.ppo_lr),
        },
    }
    registry = get_registry()
    cfg = build_config(data, registry, source=str(work / "ppo-raylign.toml"))
    run_pipeline(cfg, registry)
    rows = [json.loads(line) for line in open(out / "ppo" / "metrics.jsonl")]
    steps = sorted((r for r in rows if r.get("stage") == "ppo" and "step_seconds" in r), key=lambda r: r["step"])
    return {"step_seconds": [r["step_seconds"] for r in steps], "rollout_seconds": [r["rollout_seconds"] for r in steps],
            "response_length": [r["response_length"] for r in steps], "wall_seconds": time.perf_counter() - t_start}


def run_ppo_trl(args, work: Path) -> dict:
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    import importlib.util

    spec = importlib.util.find_spec("trl")  # located, not imported: an older TRL may still go first on sys.path
    if spec is None or not (Path(spec.origin).parent / "experimental" / "ppo").is_dir():
        path = Path(args.trl_ppo_path).expanduser() if args.trl_ppo_path else None
        if path is None or not (path / "trl" / "experimental" / "ppo").is_dir():
            from importlib.metadata import version

            raise SystemExit(f"TRL {version('trl') if spec else '(none)'} has no PPOTrainer (removed after 1.12.0): pip "
                             f"install --no-deps --target {DEFAULT_TRL_PPO} trl==1.12.0, or pass --trl-ppo-path DIR")
        sys.path.insert(0, str(path))
    import torch
    from datasets import Dataset
    from transformers import (AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer,
                              TrainerCallback, set_seed)
    import trl
    from trl.experimental.ppo import PPOConfig, PPOTrainer
    from trl.experimental.ppo import ppo_trainer as ppo_module

    if args.trl_threads:
        torch.set_num_threads(args.trl_threads)
    t_start = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(str(args.model), padding_side="left")
    stop_id = tok.convert_tokens_to_ids("<|im_end|>")
    if stop_id is None or stop_id == tok.unk_token_id:
        stop_id = tok.eos_token_id

    def encode(rows):
        out = []
        for row in rows:
            prompt = [{"role": "user", "content": row["prompt"]}] if isinstance(row["prompt"], str) else row["prompt"]
            ids = tok(tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True),
                      add_special_tokens=False)["input_ids"]
            if len(ids) <= 128:  # raylign's default max_prompt_tokens
                out.append({"input_ids": ids})
        return Dataset.from_list(out)

    train = encode(read_jsonl(DATA / "rlhf_train.jsonl"))
    evals = encode(read_jsonl(DATA / "rlhf_eval.jsonl")[:8])
    set_seed(0)
    f32 = {"dtype": torch.float32}
    policy = AutoModelForCausalLM.from_pretrained(str(args.model), **f32)
    ref = AutoModelForCausalLM.from_pretrained(str(args.model), **f32)
    value = AutoModelForSequenceClassification.from_pretrained(str(args.reward_model), num_labels=1, **f32)
    reward = AutoModelForSequenceClassification.from_pretrained(str(args.reward_model), num_labels=1, **f32)
    for m in (value, reward):
        m.config.pad_token_id = tok.pad_token_id

    generation = {"seconds": [], "lengths": []}
    original = ppo_module.batch_generation

    def timed_generation(model, queries, *a, **kw):  # TRL's own function, timed; reply length up to the stop token
        t0 = time.perf_counter()
        query_responses, logits = original(model, queries, *a, **kw)
        generation["seconds"].append(time.perf_counter() - t0)
        responses = query_responses[:, queries.shape[1]:]
        lengths = []
        for row in responses.tolist():
            lengths.append(row.index(stop_id) + 1 if stop_id in row else len(row))
        generation["lengths"].append(sum(lengths) / max(1, len(lengths)))
        return query_responses, logits

    ppo_module.batch_generation = timed_generation

    class Clock(TrainerCallback):
        def __init__(self):
            self.ends: list[float] = []

        def on_train_begin(self, a, state, control, **kw):
            self.ends.append(time.perf_counter())

        def on_step_end(self, a, state, control, **kw):
            self.ends.append(time.perf_counter())

    clock = Clock()
    total = args.warmup + args.ppo_steps
    config = PPOConfig(
        output_dir=str(work / "ppo-trl"), report_to="none", logging_steps=1, save_strategy="no", disable_tqdm=True,
        seed=0, use_cpu=True, bf16=False, fp16=False, dataloader_num_workers=0,
        total_episodes=total * args.prompts, per_device_train_batch_size=args.micro,
        gradient_accumulation_steps=args.prompts // args.micro, num_mini_batches=1, num_ppo_epochs=args.epochs,
        local_rollout_forward_batch_size=args.prompts, response_length=args.max_new, stop_token_id=stop_id,
        temperature=1.0, kl_coef=args.kl_coef, kl_estimator="k1", gamma=1.0, lam=0.95, cliprange=0.2,
        cliprange_value=0.2, whiten_rewards=False, num_sample_generations=0, learning_rate=args.ppo_lr,
        lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0, adam_beta1=BETAS[0], adam_beta2=BETAS[1],
        adam_epsilon=1e-8,
    )
    trainer = PPOTrainer(args=config, processing_class=tok, model=policy, ref_model=ref, reward_model=reward,
                         value_model=value, train_dataset=train, eval_dataset=evals, callbacks=[clock])
    trainer.train()
    ends = clock.ends
    return {"step_seconds": [b - a for a, b in zip(ends, ends[1:])], "rollout_seconds": generation["seconds"],
            "response_length": generation["lengths"], "wall_seconds": time.perf_counter() - t_start,
            "trl_version": trl.__version__, "torch_threads": torch.get_num_threads()}


# ---------------------------------------------------------------------------------------------- driver
def run_side(name: str, args, work: Path) -> dict:
    """Run one side in a fresh interpreter (its own memory, threads, Ray); return its result or error."""
    cmd = [sys.executable, __file__, "--_side", name, "--_work", str(work), "--model", str(args.model),
           "--reward-model", str(args.reward_model or ""), "--trl-ppo-path", str(args.trl_ppo_path or "")]
    for key in ("rm_steps", "rm_batch", "rm_micro", "rm_lr", "max_len", "ppo_steps", "warmup", "prompts", "max_new",
                "epochs", "micro", "ppo_lr", "kl_coef", "setup_rm_steps", "trl_threads"):
        cmd += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    result, log = run_in_subprocess(name, cmd, work, args.timeout, tail_chars=200)
    counts = re.search(r"(\d+) training pairs, (\d+) held-out", log.read_text(errors="replace"))
    if counts and "error" not in result:  # the reward_model stage's own count of the pairs that fit max_len
        result["train_pairs"], result["eval_pairs"] = int(counts[1]), int(counts[2])
    return result


def rm_table(args, results: dict, sides: list[str]) -> None:
    print(f"\nreward model: {args.rm_steps} steps x {args.rm_batch} pairs (micro {args.rm_micro}), lr {args.rm_lr:g}, "
          f"max_len {args.max_len}; held-out prefs_eval.jsonl")
    print(f"{'side':<12}{'s/step':>8}{'train s':>9}{'wall s':>8}{'eval acc':>10}{'longer_worse':>14}  notes")
    per_step = {}
    for name in sides:
        r = results[name]
        if "error" in r:
            print(f"{name:<12}{'failed':>8}{'':>9}{'':>8}{'':>10}{'':>14}  {r['error']}")
            continue
        ends = r["ends"]
        train = ends[-1] - ends[0] if len(ends) > 1 else float("nan")
        per_step[name] = train / max(1, len(ends) - 1)
        notes = f"steps 2..{len(ends)} timed"
        if name == "rm-trl":
            notes += (f"; {r['train_pairs']} train / {r['eval_pairs']} eval pairs ({r['eval_skipped']} over max_len), "
                      f"torch threads {r['torch_threads']}")
        else:
            if "train_pairs" in r:
                notes += f"; {r['train_pairs']} train / {r['eval_pairs']} eval pairs"
            if r.get("eval_accuracy_before") is not None:
                notes += f", eval acc before training {r['eval_accuracy_before']:.3f}"
        notes += ", 1-min load {:.1f} before, {:.1f} after".format(*r["load"])
        lw = r.get("longer_worse_accuracy")
        print(f"{name:<12}{per_step[name]:>8.3f}{train:>9.1f}{r['wall_seconds']:>8.1f}{r['eval_accuracy']:>10.3f}"
              f"{(f'{lw:.3f}' if lw is not None else '-'):>14}  {notes}")
    if "rm-raylign" in per_step and "rm-trl" in per_step:
        print(f"raylign / TRL (seconds per reward-model step) = {per_step['rm-raylign'] / per_step['rm-trl']:.3f}")


def ppo_table(args, results: dict, sides: list[str]) -> None:
    print(f"\nPPO: {args.prompts} prompts x 1 sample per step, <= {args.max_new} new tokens, {args.epochs} epochs x 1 "
          f"mini-batch (micro {args.micro}), {args.warmup} warm-up + {args.ppo_steps} timed steps; reward model / "
          f"critic {args.reward_model}")
    print(f"{'side':<12}{'s/step mean':>12}{'median':>8}{'rollout s':>10}{'wall s':>8}{'reply tok':>10}  notes")
    means = {}
    for name in sides:
        r = results[name]
        if "error" in r:
            print(f"{name:<12}{'failed':>12}{'':>8}{'':>10}{'':>8}{'':>10}  {r['error']}")
            continue
        times = r["step_seconds"][args.warmup:]
        if not times:
            print(f"{name:<12}{'no steps':>12}")
            continue
        means[name] = statistics.mean(times)
        roll = statistics.mean(r["rollout_seconds"][args.warmup:] or [float("nan")])
        length = statistics.mean(r["response_length"][args.warmup:] or [float("nan")])
        notes = f"{len(times)} timed steps"
        if name == "ppo-trl":
            notes += f", TRL {r['trl_version']} PPOTrainer, torch threads {r['torch_threads']}"
        notes += ", 1-min load {:.1f} before, {:.1f} after".format(*r["load"])
        print(f"{name:<12}{means[name]:>12.3f}{statistics.median(times):>8.3f}{roll:>10.2f}{r['wall_seconds']:>8.1f}"
              f"{length:>10.1f}  {notes}")
    if "ppo-raylign" in means and "ppo-trl" in means:
        print(f"raylign / TRL (seconds per PPO step) = {means['ppo-raylign'] / means['ppo-trl']:.3f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="", help="HF causal-LM dir both sides start from (default: build a tiny "
                    "random one; the main job's is runs/assistant/models/sft)")
    ap.add_argument("--rm-steps", type=int, default=100, help="reward-model optimizer steps per side")
    ap.add_argument("--rm-batch", type=int, default=32, help="pairs per reward-model step")
    ap.add_argument("--rm-micro", type=int, default=32, help="pairs per forward/backward")
    ap.add_argument("--rm-lr", type=float, default=1e-3)
    ap.add_argument("--max-len", type=int, default=160, help="pairs with a side longer than this (tokens) are skipped")
    ap.add_argument("--ppo-steps", type=int, default=6, help="timed PPO steps per side")
    ap.add_argument("--warmup", type=int, default=2, help="untimed PPO steps first")
    ap.add_argument("--prompts", type=int, default=32, help="PPO prompts per step (one sample each)")
    ap.add_argument("--max-new", type=int, default=64, help="PPO reply length limit (tokens)")
    ap.add_argument("--epochs", type=int, default=2, help="PPO passes over each batch")
    ap.add_argument("--micro", type=int, default=32, help="PPO sequences per forward/backward")
    ap.add_argument("--ppo-lr", type=float, default=5e-5)
    ap.add_argument("--kl-coef", type=float, default=0.05)
    ap.add_argument("--reward-model", default="", help="reward model dir for PPO (reward and critic init; default: "
                    "the one rm-raylign trains, else a quick raylign one)")
    ap.add_argument("--setup-rm-steps", type=int, default=20, help="steps of the quick reward model PPO falls back on")
    ap.add_argument("--trl-ppo-path", default=str(DEFAULT_TRL_PPO),
                    help="folder with a TRL that has PPOTrainer, used when the installed TRL has none")
    ap.add_argument("--trl-threads", type=int, default=0, help="torch threads of the TRL processes (0 = torch default)")
    ap.add_argument("--sides", default=",".join(SIDES), help=f"comma-separated subset of {', '.join(SIDES)}")
    ap.add_argument("--timeout", type=int, default=1200, help="seconds allowed per side")
    ap.add_argument("--keep", default="", help="keep the work dir (model, runs, logs) here")
    ap.add_argument("--_side", default="", help=argparse.SUPPRESS)
    ap.add_argument("--_work", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    if args._side:  # child process: one side, result written as JSON
        work = Path(args._work)
        fn = {"rm-raylign": lambda: run_rm_raylign(args, work, "rm-raylign", args.rm_steps),
              "rm-setup": lambda: run_rm_raylign(args, work, "rm-setup", args.setup_rm_steps),
              "rm-trl": lambda: run_rm_trl(args, work), "ppo-raylign": lambda: run_ppo_raylign(args, work),
              "ppo-trl": lambda: run_ppo_trl(args, work)}[args._side]
        (work / f"{args._side}.json").write_text(json.dumps(fn()))
        return 0

    sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    unknown = set(sides) - set(SIDES)
    if unknown or not sides:
        ap.error(f"--sides: unknown {sorted(unknown)}; choose from {', '.join(SIDES)}")
    if args.rm_batch % args.rm_micro or args.prompts % args.micro:
        ap.error("--rm-batch must be a multiple of --rm-micro and --prompts of --micro")
    if args.model and not (Path(args.model) / "config.json").is_file():
        print(f"--model {args.model}: no HF model there; run the main job first (raylign run examples/assistant.toml "
              f"writes runs/assistant/models/sft), or leave --model out for a tiny random model")
        return 2
    try:
        import trl
    except ImportError:
        print("TRL is not installed: .venv/bin/pip install trl  (the 'bench' extra; keep the CPU torch)")
        return 2

    holder = None
    if args.keep:
        work = Path(args.keep).resolve()
        work.mkdir(parents=True, exist_ok=True)
    else:
        holder = tempfile.TemporaryDirectory(prefix="raylign-rlhf-vs-trl-")
        work = Path(holder.name)
    results: dict[str, dict] = {}
    try:
        if args.model:
            args.model = Path(args.model).resolve()
        else:
            args.model = work / "model"
            build_model(args.model)
            print("no --model: a tiny random Qwen2 built here (timings only; accuracies are not meaningful)")
        model_cfg = json.loads((args.model / "config.json").read_text())
        print(f"model: {args.model} ({model_params(args.model) / 1e6:.2f}M parameters, hidden "
              f"{model_cfg['hidden_size']}, {model_cfg['num_hidden_layers']} layers, vocab {model_cfg['vocab_size']}); "
              f"TRL {trl.__version__}; {os.cpu_count()} CPUs; 1-min load now {os.getloadavg()[0]:.1f}")
        for name in ("rm-raylign", "rm-trl"):
            if name in sides:
                results[name] = run_side(name, args, work)
        if any(s.startswith("ppo") for s in sides):
            if args.reward_model:
                args.reward_model = Path(args.reward_model).resolve()
            elif "error" not in results.get("rm-raylign", {"error": ""}):
                args.reward_model = Path(results["rm-raylign"]["model_dir"])
            else:
                setup = run_side("rm-setup", args, work)
                if "error" in setup:
                    for name in sides:
                        if name.startswith("ppo"):
                            results[name] = {"error": f"no reward model for PPO: {setup['error']}"}
                else:
                    args.reward_model = Path(setup["model_dir"])
            for name in ("ppo-raylign", "ppo-trl"):
                if name in sides and name not in results:
                    results[name] = run_side(name, args, work)
    finally:
        if holder is not None:
            holder.cleanup()

    rm_sides = [s for s in ("rm-raylign", "rm-trl") if s in sides]
    ppo_sides = [s for s in ("ppo-raylign", "ppo-trl") if s in sides]
    if rm_sides:
        rm_table(args, results, rm_sides)
    if ppo_sides:
        ppo_table(args, results, ppo_sides)
    return 0 if any("error" not in r for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
