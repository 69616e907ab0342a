"""GRPO step time: raylign's ``grpo`` stage against TRL's ``GRPOTrainer`` on the same model and workload.

    .venv/bin/python benchmarks/grpo_vs_trl.py [--model DIR] [--steps 8] [--warmup 2] [--prompts 16] [--group 8]
        [--max-new 32] [--sides raylign,raylign-async,trl,trl-vllm] [--staleness 1] [--pack pack] [--no-mask]

Needs TRL (the ``bench`` extra: ``pip install trl``; keep the CPU torch). Both sides start from the same HF model
directory (``--model``, else a from-scratch tiny Qwen2 with head dim 32 built here) and run the same workload:
the same prompts (examples/data/math_train.jsonl, rendered with the tokenizer's chat template), ``--prompts``
prompts x ``--group`` samples per step, temperature 1 / top-p 1, at most ``--max-new`` completion tokens, the same
reward ("the reply contains a digit": raylign's built-in ``format`` verifier with a per-row ``format`` regex, and
the same regex in a Python reward function for TRL), one AdamW step per batch with the same lr, betas, clipping
and constant schedule, micro-batches of ``--micro`` sequences, no KL term, clip 0.2/0.28, token-mean loss,
truncated completions masked.

- raylign: the real ``grpo`` stage through ``raylign.engine.driver.run_pipeline`` ([rollout] 1 vLLM worker,
  [rewards] 1 verifier actor, ``grpo.pack = --pack``: by default ``pack``, the main job's setting, so the
  learner computes on no padding; TRL's ``GRPOTrainer`` has no such mode), per-step ``step_seconds`` from the
  run's metrics.jsonl (rollout + scoring + learner update + weight sync with its canary check).
- raylign-async: the same with ``rollout.max_staleness = --staleness`` (the next batch is generated while the
  learner trains) and the learner on half the cores (``ray.learner_threads``), so the two roles do not take turns.
- trl: ``GRPOTrainer`` with HF ``generate`` (TRL's default path, and the only one on CPU unless vLLM works),
  timed between consecutive ``on_step_end`` callbacks (one optimizer step = one generation round here).
- trl-vllm: the same with ``use_vllm=True, vllm_mode="colocate"`` (reported as failed if TRL's colocated vLLM
  does not run on this machine).

Each side runs in its own subprocess (one at a time); the first ``--warmup`` steps are not timed. Run it on an
otherwise idle machine (the table shows the 1-minute load average before and after each side). Prints the
settings and a table of seconds per step (mean and median), each side's phases (raylign: rollout, learner,
weight sync, time spent waiting for rollouts; TRL: generation), and raylign/TRL ratios (targets <= 0.7 on a
CPU, <= 0.33 on a GPU). ``--no-mask`` keeps truncated replies in the loss on both sides: with a random model
almost every reply is truncated, and masking them would leave the learner nothing to do.
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

ROOT = Path(__file__).resolve().parents[1]
PHASES = ("rollout_seconds", "learner_seconds", "weight_sync_seconds", "rollout_wait_seconds")  # raylign's breakdown
DIGIT = r"[\s\S]*\d[\s\S]*"  # the reward: 1 if the stripped reply contains a digit (full match), else 0
SIDES = ("raylign", "raylign-async", "trl", "trl-vllm")


# ---------------------------------------------------------------------------------------------- shared set-up
def prompts(limit: int) -> list[str]:
    """Prompts of the example GRPO data (or synthetic arithmetic questions if it is absent)."""
    path = ROOT / "examples" / "data" / "math_train.jsonl"
    if path.exists():
        with open(path) as fh:
            return [json.loads(line)["prompt"] for line, _ in zip(fh, range(limit))]
    return [f"What is {i % 50}+{(i * 7) % 50}?" for i in range(limit)]


def build_model(directory: Path) -> None:
    """A from-scratch tiny Qwen2 (head dim 32, which vLLM's CPU attention supports) with its own BPE."""
    from raylign.engine.modeling import ModelSize, build_qwen2, save_model_dir
    from raylign.engine.tokenizer import train_bpe

    path = ROOT / "examples" / "data" / "pretrain.jsonl"
    texts = prompts(400)
    if path.exists():
        with open(path) as fh:
            texts += [json.loads(line)["text"] for line, _ in zip(fh, range(300))]
    tok = train_bpe(texts, 1024)
    size = ModelSize(hidden_size=128, num_layers=4, num_heads=4, num_kv_heads=2, intermediate_size=384,
                     max_position_embeddings=512)
    save_model_dir(build_qwen2(size, tok, seed=0), tok, directory)


def write_rows(path: Path, texts: list[str]) -> None:
    with open(path, "w") as fh:
        for t in texts:
            fh.write(json.dumps({"prompt": t, "format": DIGIT, "verifier": "format"}) + "\n")


# ---------------------------------------------------------------------------------------------- raylign side
def run_raylign(args, work: Path, staleness: int = 0) -> dict:
    from raylign.engine.config import build_config
    from raylign.engine.driver import run_pipeline
    from raylign.engine.plugins import get_registry

    name = "raylign-async" if staleness else "raylign"
    data = {
        "run": {"name": name, "output_dir": str(work / "runs"), "seed": 0, "pipeline": ["grpo"],
                "base_model": str(args.model), "probes": []},
        "rollout": {"num_workers": 1, "max_staleness": staleness},
        "rewards": {"num_workers": 1},
        # async on a CPU: the learner and the engine each get their own share of the cores instead of taking turns
        "ray": {"learner_threads": max(1, (os.cpu_count() or 2) // 2)} if staleness else {},
        "grpo": {
            "data": [str(work / "train.jsonl")], "eval_data": [str(work / "eval.jsonl")], "eval_size": 8,
            "verifier": "format", "steps": args.warmup + args.steps, "prompts_per_step": args.prompts,
            "group_size": args.group, "micro_batch_size": args.micro, "updates_per_batch": 1,
            "max_new_tokens": args.max_new, "temperature": 1.0, "advantage": "grpo", "loss": "policy_gradient",
            "clip_low": 0.2, "clip_high": 0.28, "agg": "token_mean", "kl_coef": 0.0, "mask_truncated": not args.no_mask,
            "checkpoint_every": 0, "pack": args.pack,
            "optim": {"lr": args.lr, "warmup_steps": 0, "schedule": "constant", "weight_decay": 0.0,
                      "beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "grad_clip": 1.0},
        },
    }
    registry = get_registry()
    cfg = build_config(data, registry, source=str(work / "raylign.toml"))
    t0 = time.perf_counter()
    run_pipeline(cfg, registry)
    wall = time.perf_counter() - t0
    rows = [json.loads(line) for line in open(work / "runs" / name / "metrics.jsonl")]
    steps = sorted((r for r in rows if r.get("stage") == "grpo" and "step_seconds" in r), key=lambda r: r["step"])
    kept = steps[args.warmup:]
    parts = {k: statistics.mean(r.get(k, 0.0) for r in kept) for k in PHASES if kept}
    return {"step_seconds": [r["step_seconds"] for r in steps], "wall_seconds": wall,
            "reward_mean": [r["reward_mean"] for r in steps],
            "response_length": statistics.mean(r["response_length"] for r in kept) if kept else 0.0,
            "parts": parts}


# ---------------------------------------------------------------------------------------------- TRL side
def run_trl(args, work: Path, use_vllm: bool) -> dict:
    if use_vllm:  # the same in-process vLLM settings raylign's rollout workers get
        from raylign.engine.config import RolloutConfig
        from raylign.engine.rollout import engine_env

        os.environ.update(engine_env(RolloutConfig()))
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer, TrainerCallback
    import trl
    from trl import GRPOConfig, GRPOTrainer

    if args.trl_threads:
        torch.set_num_threads(args.trl_threads)
    texts = [json.loads(line)["prompt"] for line in open(work / "train.jsonl")]
    dataset = Dataset.from_list([{"prompt": [{"role": "user", "content": t}], "format": DIGIT} for t in texts])

    def contains_digit(completions, **kwargs) -> list[float]:
        """The ``format`` verifier's rule: the stripped reply fully matches the row's regex."""
        out = []
        for c, pattern in zip(completions, kwargs["format"]):
            text = c[-1]["content"] if isinstance(c, list) else c
            out.append(1.0 if re.fullmatch(pattern, text.strip()) else 0.0)
        return out

    class StepTimes(TrainerCallback):
        def __init__(self):
            self.ends: list[float] = []
            self.rewards: list[float] = []

        def on_train_begin(self, a, state, control, **kw):
            self.ends.append(time.perf_counter())

        def on_step_end(self, a, state, control, **kw):
            self.ends.append(time.perf_counter())

        def on_log(self, a, state, control, logs=None, **kw):
            if logs and "reward" in logs:
                self.rewards.append(float(logs["reward"]))

    sequences = args.prompts * args.group
    extra = {}
    if use_vllm:
        extra = {"use_vllm": True, "vllm_mode": "colocate", "vllm_max_model_length": 512}
    config = GRPOConfig(
        output_dir=str(work / ("trl-vllm" if use_vllm else "trl")), report_to="none", logging_steps=1,
        save_strategy="no", disable_tqdm=True, seed=0, use_cpu=True, bf16=False, fp16=False,
        gradient_checkpointing=False, dataloader_num_workers=0,
        max_steps=args.warmup + args.steps, per_device_train_batch_size=args.micro,
        gradient_accumulation_steps=sequences // args.micro,  # one optimizer step per generation round
        num_generations=args.group, max_completion_length=args.max_new, temperature=1.0, top_p=1.0, top_k=0,
        learning_rate=args.lr, lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0,
        adam_beta1=0.9, adam_beta2=0.95, adam_epsilon=1e-8, max_grad_norm=1.0,
        beta=0.0, epsilon=0.2, epsilon_high=0.28, loss_type="dapo", mask_truncated_completions=not args.no_mask,
        model_init_kwargs={"dtype": "float32"}, **extra,
    )
    timer = StepTimes()
    trainer = GRPOTrainer(model=str(args.model), reward_funcs=contains_digit, args=config, train_dataset=dataset,
                          processing_class=AutoTokenizer.from_pretrained(str(args.model)), callbacks=[timer])
    generate, gen_seconds = trainer._generate, []  # time TRL's generation phase (its own method, unchanged)

    def timed_generate(*a, **kw):
        t = time.perf_counter()
        out = generate(*a, **kw)
        gen_seconds.append(time.perf_counter() - t)
        return out

    trainer._generate = timed_generate
    assert config.generation_batch_size == sequences and config.steps_per_generation == sequences // args.micro
    t0 = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - t0
    ends = timer.ends
    kept = gen_seconds[args.warmup:]
    return {"step_seconds": [b - a for a, b in zip(ends, ends[1:])], "wall_seconds": wall,
            "reward_mean": timer.rewards, "trl_version": trl.__version__, "torch_threads": torch.get_num_threads(),
            "parts": {"generate_seconds": statistics.mean(kept)} if kept else {}}


# ---------------------------------------------------------------------------------------------- driver
def run_in_subprocess(name: str, cmd: list[str], work: Path, timeout: float, tail_chars: int = 160
                      ) -> tuple[dict, Path]:
    """Run one side's command (it writes ``work/<name>.json``) with its output in ``work/<name>.log``; return its
    result, with the 1-minute load average before and after (other work on the machine skews a side: shown
    beside its numbers), or ``{"error": ...}`` ending with the log's last line; and the log's path."""
    out, log = work / f"{name}.json", work / f"{name}.log"
    print(f"running {name} (log: {log}) ...", flush=True)
    t0 = time.perf_counter()
    load0 = os.getloadavg()[0]
    try:
        with open(log, "w") as fh:
            proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, timeout=timeout)
        ok = proc.returncode == 0 and out.exists()
        error = None if ok else f"exit {proc.returncode}"
    except subprocess.TimeoutExpired:
        ok, error = False, f"timed out after {timeout}s"
    if not ok:
        tail = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()][-1:]
        print(f"  {name} failed ({error})", flush=True)
        return {"error": f"{error}: {tail[0][:tail_chars] if tail else ''}"}, log
    result = json.loads(out.read_text())
    result["load"] = (load0, os.getloadavg()[0])
    print(f"  {name} done in {time.perf_counter() - t0:.0f}s", flush=True)
    return result, log


def run_side(name: str, args, work: Path) -> dict:
    """Run one side in a fresh interpreter (its own memory, threads and vLLM); return its result or error."""
    cmd = [sys.executable, __file__, "--_side", name, "--_work", str(work), "--model", str(args.model),
           "--steps", str(args.steps), "--warmup", str(args.warmup), "--prompts", str(args.prompts),
           "--group", str(args.group), "--max-new", str(args.max_new), "--micro", str(args.micro),
           "--lr", str(args.lr), "--trl-threads", str(args.trl_threads), "--staleness", str(args.staleness),
           "--pack", args.pack]
    if args.no_mask:
        cmd.append("--no-mask")
    return run_in_subprocess(name, cmd, work, args.timeout)[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="", help="HF model dir both sides start from (default: build a tiny one)")
    ap.add_argument("--steps", type=int, default=8, help="timed GRPO steps per side")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    ap.add_argument("--prompts", type=int, default=16, help="prompts per step")
    ap.add_argument("--group", type=int, default=8, help="completions per prompt")
    ap.add_argument("--max-new", type=int, default=32, help="completion length limit (tokens)")
    ap.add_argument("--micro", type=int, default=32, help="sequences per forward/backward")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--sides", default=",".join(SIDES), help=f"comma-separated subset of {', '.join(SIDES)}")
    ap.add_argument("--staleness", type=int, default=1, help="rollout.max_staleness of the raylign-async side")
    ap.add_argument("--pack", default="pack", choices=("none", "sort", "pack"),
                    help="grpo.pack of the raylign sides (the main job's choice: pack; TRL's GRPOTrainer computes "
                    "on padding)")
    ap.add_argument("--no-mask", action="store_true", help="keep truncated replies in the loss on both sides "
                    "(for a random model, whose replies almost never end)")
    ap.add_argument("--trl-threads", type=int, default=0, help="torch threads of the TRL process (0 = torch default)")
    ap.add_argument("--timeout", type=int, default=300, help="seconds allowed per side")
    ap.add_argument("--keep", default="", help="keep the work dir (model, data, runs, logs) here")
    ap.add_argument("--_side", default="", help=argparse.SUPPRESS)
    ap.add_argument("--_work", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    if args._side:  # child process: one side, result written as JSON
        work = Path(args._work)
        fn = {"raylign": lambda: run_raylign(args, work),
              "raylign-async": lambda: run_raylign(args, work, staleness=args.staleness),
              "trl": lambda: run_trl(args, work, use_vllm=False),
              "trl-vllm": lambda: run_trl(args, work, use_vllm=True)}[args._side]
        (work / f"{args._side}.json").write_text(json.dumps(fn()))
        return 0

    sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    unknown = set(sides) - set(SIDES)
    if unknown or not sides:
        ap.error(f"--sides: unknown {sorted(unknown)}; choose from {', '.join(SIDES)}")
    if (args.prompts * args.group) % args.micro:
        ap.error("--prompts x --group must be a multiple of --micro (TRL accumulates whole micro-batches)")
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
        holder = tempfile.TemporaryDirectory(prefix="raylign-grpo-vs-trl-")
        work = Path(holder.name)
    try:
        needed = (args.warmup + args.steps) * args.prompts
        texts = prompts(needed + 8)
        write_rows(work / "train.jsonl", texts[:needed])
        write_rows(work / "eval.jsonl", texts[needed:needed + 8])
        if args.model:
            args.model = Path(args.model).resolve()
        else:
            args.model = work / "model"
            build_model(args.model)
        model_cfg = json.loads((args.model / "config.json").read_text())
        n_params = model_params(args.model)
        print(f"model: {args.model} (Qwen2, {n_params / 1e6:.2f}M parameters, hidden {model_cfg['hidden_size']}, "
              f"{model_cfg['num_hidden_layers']} layers, head dim "
              f"{model_cfg['hidden_size'] // model_cfg['num_attention_heads']}, vocab {model_cfg['vocab_size']})")
        print(f"workload: {args.prompts} prompts x {args.group} samples = {args.prompts * args.group} completions "
              f"per step, <= {args.max_new} new tokens, temperature 1.0, reward 'contains a digit', 1 AdamW step "
              f"per batch (lr {args.lr:g}, micro-batch {args.micro}), {args.warmup} warm-up + {args.steps} timed "
              f"steps; raylign grpo.pack = {args.pack}; TRL {trl.__version__}; {os.cpu_count()} CPUs")
        results = {name: run_side(name, args, work) for name in sides}
    finally:
        if holder is not None:
            holder.cleanup()

    print()
    print(f"{'side':<10}{'s/step mean':>13}{'s/step median':>15}{'wall s':>9}{'reward first->last':>22}  notes")
    stats = {}
    for name in sides:
        r = results[name]
        if "error" in r:
            print(f"{name:<10}{'failed':>13}{'':>15}{'':>9}{'':>22}  {r['error']}")
            continue
        times = r["step_seconds"][args.warmup:]
        stats[name] = statistics.mean(times)
        rw = r.get("reward_mean") or [float("nan")]
        notes = f"{len(times)} timed steps"
        if name.startswith("raylign") and r.get("parts"):
            p = r["parts"]
            notes += (f"; rollout {p.get('rollout_seconds', 0.0):.2f}s, "
                      f"learner {p.get('learner_seconds', 0.0):.2f}s, "
                      f"sync {p.get('weight_sync_seconds', 0.0):.2f}s, waited for rollouts "
                      f"{p.get('rollout_wait_seconds', 0.0):.2f}s; mean reply {r.get('response_length', 0.0):.1f} tokens")
        if name.startswith("trl") and r.get("parts"):
            notes += f"; generate {r['parts']['generate_seconds']:.2f}s"
        if name.startswith("trl"):
            notes += f", torch threads {r.get('torch_threads')}"
        notes += ", 1-min load {:.1f} before, {:.1f} after".format(*r["load"])
        print(f"{name:<10}{stats[name]:>13.3f}{statistics.median(times):>15.3f}{r['wall_seconds']:>9.1f}"
              f"{f'{rw[0]:.3f} -> {rw[-1]:.3f}':>22}  {notes}")
    print()
    for ours in ("raylign", "raylign-async"):
        for name in ("trl", "trl-vllm"):
            if ours in stats and name in stats:
                ratio = stats[ours] / stats[name]
                print(f"{ours} / {name} (seconds per step) = {ratio:.3f}  (targets <= 0.7 on a CPU, <= 0.33 on a "
                      f"GPU)")
    return 0 if stats else 1


def model_params(model_dir: Path) -> int:
    from safetensors import safe_open

    n = 0
    with safe_open(str(model_dir / "model.safetensors"), "pt") as f:
        for key in f.keys():
            size = 1
            for d in f.get_slice(key).get_shape():
                size *= d
            n += size
    return n


if __name__ == "__main__":
    sys.exit(main())
