"""Weight-sync bandwidth, learner → rollout fleet, per transport and sync dtype, through the engine's own path.

    .venv/bin/python benchmarks/weight_sync.py [--hidden 768] [--layers 12] [--intermediate 3072] [--repeats 5]

The models are two from-scratch Qwen2s of the same shape and different seeds (about 104M parameters by
default), each held by a real learner actor; one rollout worker (one vLLM engine, in its actor's process)
serves them in turn. Every timed sync is ``weight_sync.push_weights`` (what ``StageContext.sync_weights`` runs)
from the learner whose weights the engine does *not* hold, so each sync must change the engine's weights and
its canary (the learner's own logprobs of a fixed sequence, checked against the engine's) proves they arrived.

Rows: transport (``shm_file``, ``flat`` or ``collective``: the learner broadcasts into the engine over gloo in a
process group of their own, engine/weight_group.py), sync dtype and, for ``flat``, the parts the learner stores
its weights in (``rollout.sync_parts``: with more than one, the engine loads part i while the learner stores part
i+1). Columns: bytes on the way (the objects the learner stored; ``collective``: the buffers it broadcasts), the
learner's side (until its first part is stored: with one part, packing all of it into the object store;
``collective``: packing into its kept buffers), the worker's side (the rest: fetch, or the broadcast, and reload
into the engine until every worker is done, overlapping the learner's later parts), the total (the metric
``weight_sync_seconds``), GB/s = bytes / total, and the engine GB/s = the model's float32 bytes / total (what
the engine, which runs float32, receives; with ``bfloat16`` the bytes on the way are half that). Median over
``--repeats`` syncs after two warm-up syncs per row (one per learner); the best total is shown too. On a shared
machine wall time says more about the neighbours than about the sync, so the CPU time each side's process spent
is measured too (psutil, every thread), and cpu GB/s = the float32 bytes / (learner + worker CPU seconds): the
rate with a core per side and no overlap.
The canary column is the largest |engine - learner| logprob over the timed syncs (bf16 rows: the engines serve
the learner's weights rounded to bf16, so that rounding shows there).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import CORPUS  # noqa: E402 - the tests' tokenizer corpus (the same text the test models train on)

ROWS = ("shm_file:auto", "shm_file:bfloat16", "flat:auto:1", "flat:auto:4", "flat:bfloat16:1", "flat:bfloat16:4",
        "collective:auto", "collective:bfloat16")


def build_models(directory: Path, args) -> tuple[list[Path], int, int]:
    """Two same-shape models (seeds 0 and 1); returns their dirs, the parameter count and the float32 bytes."""
    from raylign.engine.modeling import ModelSize, build_qwen2, save_model_dir
    from raylign.engine.tokenizer import train_bpe

    tok = train_bpe(CORPUS, args.vocab)
    size = ModelSize(hidden_size=args.hidden, num_layers=args.layers, num_heads=args.hidden // 64,
                     num_kv_heads=max(1, args.hidden // 256), intermediate_size=args.intermediate,
                     max_position_embeddings=512)
    dirs = []
    for seed in (0, 1):
        model = build_qwen2(size, tok, seed=seed)
        params = sum(p.numel() for p in model.parameters())
        nbytes = sum(p.numel() * p.element_size() for p in model.parameters())
        dirs.append(save_model_dir(model, tok, directory / f"model{seed}"))
        del model
    return dirs, params, nbytes


def start_learner(model_dir: Path):
    from raylign.engine.learner import LearnerSpec, start_learner as start
    from raylign.engine.learner_handle import LearnerHandle
    from raylign.engine.optim import OptimConfig
    from raylign.engine.plugins import build_registry

    spec = LearnerSpec(model_dir=str(model_dir), optim=OptimConfig(), total_steps=1, seed=0, device="cpu",
                       trainable=False)
    handle = LearnerHandle(start(spec), build_registry(), role="reference", trainable=False)
    handle.pid = actor_pid(handle)
    return handle


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads: Ray's copies into the store included)."""
    import psutil

    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def actor_pid(handle) -> int:
    return __import__("ray").get(handle.actor.__ray_call__.remote(lambda self: os.getpid()))


def measure(fleet, learners, held: list[int], transport: str, dtype: str, parts: int, repeats: int) -> dict:
    """One row: a warm-up sync from each learner (each keeps its flat buffers between syncs, and its first
    sync of a row's dtype and parts faults them in), then ``repeats`` timed ones, alternating learners so every
    sync changes the engine's weights (``held[0]``: the index of the learner whose weights the engine holds).
    Each sync is timed without its canary (a forward pass on both sides), which is checked right after it."""
    from raylign.engine.weight_sync import CollectiveTransport, FlatTransport, ShmFileTransport, push_weights

    fleet.transport.close()  # a collective row's group (every rank leaves it)
    fleet.transport = {"flat": FlatTransport, "shm_file": ShmFileTransport, "collective": CollectiveTransport}[
        transport]()  # collective: gloo. The learners alternate as rank 0, so every sync forms a fresh group
    # first (a run forms one per stage); push_weights forms it before its clock starts, so the wall columns
    # leave it out, the CPU columns do not
    fleet.cfg = dataclasses.replace(fleet.cfg, sync_dtype=dtype, sync_parts=parts)
    worker_pid = fleet.info[0]["pid"]
    rows = []
    for i in range(repeats + 2):
        held[0] = 1 - held[0]
        learner = learners[held[0]]
        cpu0 = cpu_seconds(learner.pid), cpu_seconds(worker_pid)
        report = push_weights(learner, fleet, canary=False)
        cpu1 = cpu_seconds(learner.pid), cpu_seconds(worker_pid)
        diff = fleet.canary(fleet.canary_ids, learner.sequence_logprobs(fleet.canary_ids))
        if i >= 2:
            rows.append((report, cpu1[0] - cpu0[0], cpu1[1] - cpu0[1], diff))
    med = statistics.median
    return {"transport": transport, "dtype": dtype, "parts": parts, "bytes": rows[-1][0].bytes,
            "learner": med(r.learner_seconds for r, *_ in rows),
            "worker": med(r.seconds - r.learner_seconds for r, *_ in rows),
            "total": med(r.seconds for r, *_ in rows), "best": min(r.seconds for r, *_ in rows),
            "learner_cpu": med(c for _, c, _, _ in rows), "worker_cpu": med(c for _, _, c, _ in rows),
            "canary": max(d for *_, d in rows)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hidden", type=int, default=768, help="hidden size (heads of 64, KV heads = hidden / 256)")
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--intermediate", type=int, default=3072)
    ap.add_argument("--vocab", type=int, default=384, help="BPE vocabulary trained on a small corpus")
    ap.add_argument("--repeats", type=int, default=5, help="timed syncs per row (median reported)")
    ap.add_argument("--rows", default=",".join(ROWS), help="transport:dtype[:parts] rows to time, comma-separated")
    args = ap.parse_args()
    rows = [(r.split(":") + ["1"])[:3] for r in args.rows.split(",")]

    from raylign.engine.cluster import init_ray
    from raylign.engine.config import RayConfig, RolloutConfig
    from raylign.engine.rollout import RolloutFleet

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        dirs, params, nbytes = build_models(Path(tmp), args)
        print(f"model: Qwen2, {params / 1e6:.1f}M parameters ({nbytes / 1e9:.3f} GB in float32), hidden "
              f"{args.hidden}, {args.layers} layers, MLP {args.intermediate}; 1 rollout worker, "
              f"median of {args.repeats} syncs per row", flush=True)
        ray = init_ray(RayConfig(num_cpus=8))
        learners = []
        try:
            learners = [start_learner(d) for d in dirs]
            cfg = RolloutConfig(num_workers=1, max_model_len=256, max_num_seqs=16, kv_cache_gb=1)
            with RolloutFleet(dirs[0], cfg, seed=0) as fleet:
                held = [0]  # the engine starts with learners[0]'s weights
                for transport, dtype, parts in rows:
                    results.append(measure(fleet, learners, held, transport, dtype, int(parts), args.repeats))
                    print(f"  done: {transport} {dtype} {parts}", flush=True)
        finally:
            for learner in learners:
                learner.kill()
            ray.shutdown()

    print(f"\n{'transport':9s} {'dtype':8s} {'parts':>5s} {'params':>7s} {'bytes':>8s} {'learner s':>9s} "
          f"{'worker s':>8s} {'total s':>7s} {'best s':>6s} {'GB/s':>5s} {'engine GB/s':>11s} {'learner cpu s':>13s} "
          f"{'worker cpu s':>12s} {'cpu GB/s':>8s} {'canary':>7s}")
    for r in results:
        cpu = r["learner_cpu"] + r["worker_cpu"]
        print(f"{r['transport']:9s} {r['dtype']:8s} {r['parts']:5d} {params / 1e6:6.1f}M {r['bytes'] / 1e6:6.1f}MB "
              f"{r['learner']:9.3f} {r['worker']:8.3f} {r['total']:7.3f} {r['best']:6.3f} "
              f"{r['bytes'] / r['total'] / 1e9:5.2f} {nbytes / r['total'] / 1e9:11.2f} {r['learner_cpu']:13.3f} "
              f"{r['worker_cpu']:12.3f} {nbytes / cpu / 1e9:8.2f} {r['canary']:7.2g}")
    load = os.getloadavg()[0]
    print(f"\nGB/s: bytes on the way / median total; engine GB/s: float32 parameter bytes / median total (target "
          f">= 1 GB/s at >= 100M parameters). cpu s: CPU time the learner's and the worker's processes spent on a "
          f"sync (median); cpu GB/s: float32 parameter bytes / (learner + worker cpu s), the wall-clock rate when "
          f"each side has a core to itself and nothing overlaps. Load average at the end: {load:.1f} on "
          f"{os.cpu_count()} cores.")


if __name__ == "__main__":
    main()
