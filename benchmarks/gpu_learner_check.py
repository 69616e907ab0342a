"""GPU check of the learner (no Ray needed): bf16 autocast training, logprobs, weights, state round trip.

Runs the same ``Learner`` class the Ray actor wraps, in-process on ``cuda``, and prints a table. On a machine
without CUDA it says so and exits 0. Usage: python benchmarks/gpu_learner_check.py [--hidden 1024 --layers 12]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hidden", type=int, default=768)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--block", type=int, default=512)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check here")
        return 0
    from raylign.engine.learner import Learner, LearnerSpec
    from raylign.engine.plugins import build_registry
    from raylign.engine.modeling import ModelSize, build_qwen2, save_model_dir
    from raylign.engine.optim import OptimConfig
    from raylign.engine.tokenizer import train_bpe
    from raylign.engine.types import TrainBatch
    from raylign.plugins import policy_losses

    # Only the loss plugin: stage plugins import Ray, which this check does not need.
    registry = build_registry(entry_points=False, extra_plugins=[policy_losses])
    text = ["The quick brown fox jumps over the lazy dog. 12 plus 30 is 42."] * 200
    tok = train_bpe(text, 4096)
    size = ModelSize(hidden_size=args.hidden, num_layers=args.layers, num_heads=args.hidden // 64,
                     num_kv_heads=max(1, args.hidden // 256), intermediate_size=args.hidden * 3,
                     max_position_embeddings=args.block)
    tmp = Path(tempfile.mkdtemp())
    save_model_dir(build_qwen2(size, tok), tok, tmp / "model")
    learner = Learner(LearnerSpec(str(tmp / "model"), OptimConfig(lr=1e-3, warmup_steps=5), args.steps, seed=0),
                      registry=registry)
    n_params = sum(p.numel() for p in learner.model.parameters())
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 64, (args.batch, args.block), generator=g)  # a small repeated vocabulary: learnable
    mask = torch.ones_like(ids)
    lm = torch.ones_like(ids, dtype=torch.float32)
    lm[:, 0] = 0
    batch = [TrainBatch(ids, mask, lm)]
    losses, times = [], []
    for step in range(args.steps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = learner.train_step(batch, "next_token")
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        losses.append(out["loss"])
    lp = learner.token_logprobs(batch)[0]
    w = learner.weights()
    learner.save_state(str(tmp))
    before = learner.token_logprobs(batch)[0]
    learner.train_step(batch, "next_token")
    learner.load_state(str(tmp))
    after = learner.token_logprobs(batch)[0]
    tokens = args.batch * args.block
    steady = sorted(times[3:])[len(times[3:]) // 2]
    rows = [
        ("device", torch.cuda.get_device_name(0)),
        ("parameters", f"{n_params / 1e6:.1f}M"),
        ("bf16 autocast", str(learner.autocast)),
        ("loss first -> last", f"{losses[0]:.3f} -> {losses[-1]:.3f}"),
        ("tokens/s (median step)", f"{tokens / steady:,.0f}"),
        ("logprobs dtype / finite", f"{lp.dtype} / {bool(torch.isfinite(lp).all())}"),
        ("weights on CPU, fp32", str(all(t.device.type == 'cpu' and t.dtype == torch.float32 for t in w.values()))),
        ("state round trip max |diff|", f"{(before - after).abs().max().item():.2e}"),
    ]
    for k, v in rows:
        print(f"{k:<30} {v}")
    ok = losses[-1] < losses[0] and learner.autocast and (before - after).abs().max().item() < 1e-4
    print("GPU LEARNER CHECK", "PASSED" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
