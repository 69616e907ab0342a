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
"""
from __future__ import annotations

import argparse
import json
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=30, help="timed optimizer steps per side")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps per side first")
    ap.add_argument("--rounds", type=int, default=3, help="alternating plain/learner blocks the timed steps use")
    ap.add_argument("--block", type=int, default=256, help="tokens per sequence")
    ap.add_argument("--batch", type=int, default=16, help="sequences per optimizer step")
    ap.add_argument("--micro", type=int, default=16, help="sequences per forward/backward")
    ap.add_argument("--vocab", type=int, default=2048, help="BPE vocabulary size")
    ap.add_argument("--docs", type=int, default=1500, help="corpus documents used")
    ap.add_argument("--threads", type=int, default=0, help="torch threads on both sides (0 = the learner's default: "
                    "every core)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = ap.parse_args()
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
