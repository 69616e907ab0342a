"""Learner actor training throughput against a plain single-process PyTorch loop.

    .venv/bin/python benchmarks/learner_throughput.py [--steps 30] [--warmup 3] [--rounds 3] [--threads N]

Both sides train the same from-scratch Qwen2 (~3M parameters, loaded from the same HF directory) on the same
pretraining batches (packed and cut into micro-batches exactly as ``plugins/pretrain.py`` does), with the same
AdamW, schedule and clipping (``engine/optim.py``) and the same number of torch threads (what the learner actor
resolves ``--threads`` to with ``engine/cluster.py``'s ``learner_threads``: every core for 0; the plain loop calls
``torch.set_num_threads`` with that value). The learner side is timed at the driver around the stage's call,
``LearnerHandle.train_step``, so it includes the option check, the Ray call, moving the batch and the loss
lookup through the plugin registry.

The timed steps are split into ``--rounds`` alternating plain/learner blocks (only one side trains at a time),
so load from other processes on a shared machine hits both alike. Prints a table of training tokens per second
and the learner/plain ratio (target >= 0.9).

    .venv/bin/python benchmarks/learner_throughput.py --workload grpo [--steps 3] [--warmup 1] [--rounds 3]

``--workload grpo`` compares the learner's padding modes on GRPO-shaped batches instead: ``--prompts`` groups of
``--group`` completions, prompts of 20-60 tokens and completions of 5-``--max-new`` tokens with a long tail
(log-normal, median ``--median-new``), flattened by the grpo stage's own ``sequence_batch`` (right-padded to the
longest sequence) and trained with its ``policy_gradient`` options, micro-batches of ``--micro-grpo``. One learner
actor per side, called through ``LearnerHandle`` as the stage calls it, all from the same weights on the same
batches: ``padded`` (pack = none), ``sorted`` (pack = sort, length-sorted micro-batches cut to their columns),
``packed`` (pack = pack, the stage's micro-batches) and ``sorted+packed``. Tokens are real (non-pad) tokens;
``train`` is ``train_step``, ``logprobs`` the stage's old/ref-logprob pass (``token_logprobs``). Prints tokens/s
per side (median over the timed steps), the ratio to padded (target >= 1.3) and how far each side's loss and
grad norm drift from padded.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def corpus(limit: int) -> list[str]:
    """The example pretraining corpus (examples/data/pretrain.jsonl), or a synthetic one if it is absent."""
    path = ROOT / "examples" / "data" / "pretrain.jsonl"
    if path.exists():
        with open(path) as fh:
            return [json.loads(line)["text"] for line, _ in zip(fh, range(limit))]
    words = "the a model token learns predicts next word from text data step loss batch layer".split()
    return [" ".join(words[(i * 7 + j * 3) % len(words)] for j in range(60)) + "." for i in range(limit)]


def build_model(directory: Path, texts: list[str], vocab: int):
    from raylign.engine.modeling import ModelSize, build_qwen2, save_model_dir
    from raylign.engine.tokenizer import train_bpe

    tok = train_bpe(texts, vocab)
    size = ModelSize(hidden_size=256, num_layers=4, num_heads=8, num_kv_heads=2, intermediate_size=688,
                     max_position_embeddings=512)
    model = build_qwen2(size, tok, seed=0)
    n = sum(p.numel() for p in model.parameters())
    save_model_dir(model, tok, directory)
    return n, len(tok)


def make_batches(model_dir: Path, texts: list[str], block: int, batch: int, micro: int, steps: int, seed: int):
    """The first ``steps`` steps' micro-batches, built as the pretrain stage builds them."""
    from raylign.engine.modeling import load_tokenizer
    from raylign.plugins.pretrain import as_batches, pack
    from raylign.engine.data import batch_indices

    blocks = pack(texts, load_tokenizer(model_dir), block)
    return [as_batches(blocks[batch_indices(len(blocks), batch, s, seed)], micro) for s in range(steps)], len(blocks)


class PlainLoop:
    """What one would write without raylign: model, AdamW, cross-entropy, clip, step."""

    def __init__(self, model_dir: Path, optim, total_steps: int, threads: int, device: str):
        import torch

        from raylign.engine.modeling import load_model
        from raylign.engine.optim import build_optimizer

        torch.set_num_threads(threads)
        torch.manual_seed(0)
        self.torch = torch
        self.device = device
        self.clip = optim.grad_clip
        self.model = load_model(model_dir, device).train()
        self.opt, self.sched = build_optimizer(self.model, optim, total_steps)

    def step(self, microbatches) -> float:
        F = self.torch.nn.functional
        self.opt.zero_grad(set_to_none=True)
        total = 0.0
        for mb in microbatches:
            ids = mb.input_ids.to(self.device)
            logits = self.model(input_ids=ids, attention_mask=mb.attention_mask.to(self.device)).logits
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), ids[:, 1:].reshape(-1))
            (loss * mb.loss_scale).backward()
            total += loss.item() * mb.loss_scale
        self.torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self.opt.step()
        self.sched.step()
        return total


def grpo_batches(vocab: int, args, steps: int, seed: int = 0) -> list:
    """``steps`` GRPO-shaped SequenceBatches built by the grpo stage's ``sequence_batch`` from synthetic groups."""
    import random

    import torch

    from raylign.engine.types import Completion, RolloutGroup, Verdict
    from raylign.plugins.grpo_batch import sequence_batch

    rng = random.Random(seed)
    out = []
    for _ in range(steps):
        groups = []
        for p in range(args.prompts):
            prompt = [rng.randrange(5, vocab) for _ in range(rng.randint(20, 60))]
            comps, verdicts = [], []
            for i in range(args.group):
                n = min(args.max_new, max(5, round(rng.lognormvariate(math.log(args.median_new), 0.9))))
                ids = [rng.randrange(5, vocab) for _ in range(n)]
                comps.append(Completion(p, i, prompt, ids, "", [-rng.random() * 3 for _ in ids],
                                        "length" if n == args.max_new else "stop", 0))
                verdicts.append(Verdict(reward=float(rng.random() < 0.5)))
            groups.append(RolloutGroup({}, prompt, comps, verdicts))
        rewards = torch.tensor([g.rewards for g in groups])
        adv = (rewards - rewards.mean(1, keepdim=True)) / (rewards.std(1, keepdim=True) + 1e-6)
        out.append(sequence_batch(groups, adv, pad_id=0, mask_truncated=False))
    return out


GRPO_SIDES = (  # name, learner pack mode, length-sorted micro-batches
    ("padded", "none", False), ("sorted", "sort", True), ("packed", "pack", False), ("sorted+packed", "pack", True))


def grpo_main(args, model_dir: Path, n_params: int, vocab: int, ray_cfg, threads: int) -> int:
    import ray

    from raylign.engine.cluster import init_ray
    from raylign.engine.learner import LearnerSpec, start_learner
    from raylign.engine.learner_handle import LearnerHandle
    from raylign.engine.optim import OptimConfig
    from raylign.engine.plugins import build_registry
    from raylign.engine.types import SequenceBatch
    from raylign.plugins.grpo import GRPOConfig, GRPOStage

    total = args.warmup + args.steps
    cfg = GRPOConfig(max_new_tokens=args.max_new, micro_batch_size=args.micro_grpo)
    batches = grpo_batches(vocab, args, total)
    real = [int(b.attention_mask.sum()) for b in batches]
    padded = [b.input_ids.numel() for b in batches]
    print(f"model: Qwen2 {n_params / 1e6:.2f}M parameters, vocab {vocab}; GRPO batches of {args.prompts} x "
          f"{args.group} sequences (prompt 20-60, completion 5-{args.max_new} tokens, median {args.median_new}): "
          f"{sum(real) / total:.0f} real tokens/step, {sum(real) / sum(padded):.0%} of the padded batch; micro-batch "
          f"{args.micro_grpo}; torch threads {threads}; {args.warmup} warm-up + {args.steps} timed steps per side")
    init_ray(ray_cfg)
    times = {name: {"train": [], "logprobs": []} for name, _, _ in GRPO_SIDES}
    stats = {name: [] for name, _, _ in GRPO_SIDES}
    try:
        registry = build_registry()
        handles = {}
        for name, mode, _ in GRPO_SIDES:
            spec = LearnerSpec(model_dir=str(model_dir), optim=cfg.optim, total_steps=total, seed=0,
                               device=args.device, torch_threads=args.threads, pack=mode)
            handles[name] = LearnerHandle(start_learner(spec, num_cpus=0.5), registry)

        def run(name: str, sort: bool, step: int, timed: bool) -> None:
            b = batches[step]
            plain = SequenceBatch(b.input_ids, b.attention_mask, b.loss_mask).micro_batches(cfg.micro_batch_size)
            t0 = time.perf_counter()
            handles[name].token_logprobs(plain)
            t1 = time.perf_counter()
            options = GRPOStage.loss_options(cfg, b.loss_tokens, b.loss_sequences)
            out = handles[name].train_step(b.micro_batches(cfg.micro_batch_size, by_length=sort), cfg.loss, options)
            t2 = time.perf_counter()
            stats[name].append((out["loss"], out["grad_norm"]))
            if timed:
                times[name]["logprobs"].append((t1 - t0, real[step]))
                times[name]["train"].append((t2 - t1, real[step]))

        for s in range(args.warmup):
            for name, _, sort in GRPO_SIDES:
                run(name, sort, s, False)
        bounds = [args.warmup + args.steps * r // args.rounds for r in range(args.rounds + 1)]
        for r in range(args.rounds):
            for name, _, sort in GRPO_SIDES:
                for s in range(bounds[r], bounds[r + 1]):
                    run(name, sort, s, True)
    finally:
        ray.shutdown()

    # the median of the steps' rates: on a shared machine one step slowed by another job does not decide the table
    rate = {name: {k: statistics.median(n / t for t, n in v) for k, v in t.items()} for name, t in times.items()}
    print()
    print(f"{'side':<15}{'train tok/s':>13}{'x padded':>10}{'logprobs tok/s':>16}{'x padded':>10}"
          f"{'max |dloss|':>13}{'max |dgrad_norm|':>18}")
    for name, _, _ in GRPO_SIDES:
        dl = max(abs(a[0] - b[0]) for a, b in zip(stats[name], stats["padded"]))
        dg = max(abs(a[1] - b[1]) for a, b in zip(stats[name], stats["padded"]))
        print(f"{name:<15}{rate[name]['train']:>13.0f}{rate[name]['train'] / rate['padded']['train']:>10.2f}"
              f"{rate[name]['logprobs']:>16.0f}{rate[name]['logprobs'] / rate['padded']['logprobs']:>10.2f}"
              f"{dl:>13.2e}{dg:>18.2e}")
    best = max(rate[n]["train"] / rate["padded"]["train"] for n, _, _ in GRPO_SIDES[1:])
    print(f"\nbest padding-free train / padded = {best:.2f}  (target >= 1.3: {'met' if best >= 1.3 else 'NOT met'}); "
          f"loss/grad-norm drift: each side trains its own copy from the same start ({total} steps)")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=None, help="timed optimizer steps per side (30; grpo: 3)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps per side first (3; grpo: 1)")
    ap.add_argument("--rounds", type=int, default=None, help="alternating blocks of sides the timed steps use "
                    "(3; grpo: 3, every side trains each step before the next step)")
    ap.add_argument("--block", type=int, default=256, help="tokens per sequence")
    ap.add_argument("--batch", type=int, default=16, help="sequences per optimizer step")
    ap.add_argument("--micro", type=int, default=16, help="sequences per forward/backward")
    ap.add_argument("--vocab", type=int, default=2048, help="BPE vocabulary size")
    ap.add_argument("--docs", type=int, default=1500, help="corpus documents used")
    ap.add_argument("--threads", type=int, default=0, help="torch threads on both sides (0 = the learner's default: "
                    "every core)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--workload", default="pretrain", choices=["pretrain", "grpo"],
                    help="pretrain: learner vs plain loop; grpo: the learner's padding modes on GRPO batches")
    ap.add_argument("--prompts", type=int, default=8, help="grpo: prompts (groups) per step")
    ap.add_argument("--group", type=int, default=8, help="grpo: completions per prompt")
    ap.add_argument("--max-new", type=int, default=256, help="grpo: longest completion (tokens)")
    ap.add_argument("--median-new", type=int, default=48, help="grpo: median completion length (tokens)")
    ap.add_argument("--micro-grpo", type=int, default=32, help="grpo: sequences per micro-batch (the stage's default)")
    args = ap.parse_args()
    for key, pretrain, grpo in (("steps", 30, 3), ("warmup", 3, 1), ("rounds", 3, 3)):
        if getattr(args, key) is None:
            setattr(args, key, grpo if args.workload == "grpo" else pretrain)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    import ray
    import torch

    from raylign.engine.cluster import init_ray, learner_threads
    from raylign.engine.config import RayConfig
    from raylign.engine.learner import LearnerSpec, start_learner
    from raylign.engine.learner_handle import LearnerHandle
    from raylign.engine.optim import OptimConfig
    from raylign.engine.plugins import build_registry

    ray_cfg = RayConfig(num_cpus=2, learner_threads=args.threads)
    threads = learner_threads(args.threads)  # what the learner actor runs with
    total = args.warmup + args.steps
    optim = OptimConfig(lr=3e-3, warmup_steps=5)  # the pretrain stage's defaults, shorter warmup
    texts = corpus(args.docs)
    with tempfile.TemporaryDirectory(prefix="raylign-bench-") as tmp:
        model_dir = Path(tmp) / "model"
        n_params, vocab = build_model(model_dir, texts, args.vocab)
        if args.workload == "grpo":
            return grpo_main(args, model_dir, n_params, vocab, ray_cfg, threads)
        batches, n_blocks = make_batches(model_dir, texts, args.block, args.batch, args.micro, total, seed=0)
        step_tokens = sum(int(mb.attention_mask.sum()) for mb in batches[0])
        print(f"model: Qwen2 {n_params / 1e6:.2f}M parameters, vocab {vocab}; {n_blocks} blocks of {args.block}; "
              f"batch {args.batch} (micro {args.micro}) = {step_tokens} tokens/step; torch threads {threads}; "
              f"device {args.device}; {args.warmup} warm-up + {args.steps} timed steps per side")

        init_ray(ray_cfg)
        try:
            spec = LearnerSpec(model_dir=str(model_dir), optim=optim, total_steps=total, seed=0,
                               device=args.device, torch_threads=args.threads)
            actor = start_learner(spec, num_cpus=1.0)
            learner = LearnerHandle(actor, build_registry())
            plain = PlainLoop(model_dir, optim, total, threads, args.device)
            actor_threads = ray.get(actor.__ray_call__.remote(lambda self: torch.get_num_threads()))
            assert actor_threads == torch.get_num_threads() == threads, (actor_threads, torch.get_num_threads())

            def run_plain(step: int) -> float:
                return plain.step(batches[step])

            def run_learner(step: int) -> float:
                return learner.train_step(batches[step], "next_token")["loss"]

            losses = {"plain": [], "learner": []}
            times = {"plain": [], "learner": []}
            for s in range(args.warmup):
                losses["plain"].append(run_plain(s))
                losses["learner"].append(run_learner(s))
            bounds = [args.warmup + args.steps * r // args.rounds for r in range(args.rounds + 1)]
            for r in range(args.rounds):
                for name, fn in (("plain", run_plain), ("learner", run_learner)):
                    for s in range(bounds[r], bounds[r + 1]):
                        t0 = time.perf_counter()
                        losses[name].append(fn(s))
                        times[name].append(time.perf_counter() - t0)
        finally:
            ray.shutdown()

    print()
    print(f"{'side':<10}{'tokens/s':>12}{'median step s':>16}{'first loss':>12}{'last loss':>12}")
    rate = {}
    for name in ("plain", "learner"):
        rate[name] = step_tokens * len(times[name]) / sum(times[name])
        print(f"{name:<10}{rate[name]:>12.0f}{statistics.median(times[name]):>16.3f}"
              f"{losses[name][0]:>12.4f}{losses[name][-1]:>12.4f}")
    ratio = rate["learner"] / rate["plain"]
    print(f"\nlearner / plain = {ratio:.3f}  (target >= 0.9: {'met' if ratio >= 0.9 else 'NOT met'})")
    drift = max(abs(a - b) for a, b in zip(losses["plain"], losses["learner"]))
    print(f"max |loss difference| over the {total} steps (same batches, same start): {drift:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
