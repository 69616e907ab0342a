"""Time from a rollout worker's SIGKILL to the fleet generating again (issue 13's fault-tolerance benchmark).

    .venv/bin/python benchmarks/rollout_restart.py [--workers 2] [--repeats 3] [--address ADDR]

A fleet of ``--workers`` engines on a from-scratch tiny Qwen2 (conftest's) is synced to weights version 1; then,
``--repeats`` times: one seeded step is timed uninterrupted, worker 1 is SIGKILLed (it must run on this machine:
its pid is killed) and the same step is timed again. That second step includes Ray noticing the death, starting
the replacement engine from the model shipped through the object store, loading the current weights, its canary,
and generating the dead worker's chunk again; the table splits out the replacement itself. The step's completions
are checked equal to the uninterrupted step's. Engine start dominates: it is vLLM's start, not the fleet's work.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--address", default="", help="join this Ray cluster instead of starting a local one")
    args = ap.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from conftest import make_tiny_model
    from raylign.engine.cluster import init_ray
    from raylign.engine.config import RayConfig, RolloutConfig
    from raylign.engine.modeling import load_model
    from raylign.engine.rollout import RolloutFleet

    ray = init_ray(RayConfig(num_cpus=8), address=args.address or None)  # num_cpus: local Ray only
    model_dir = make_tiny_model(Path(tempfile.mkdtemp(prefix="raylign-bench-")) / "model")
    cfg = RolloutConfig(num_workers=args.workers, max_model_len=256, max_num_seqs=64, max_restarts=args.repeats)
    t0 = time.perf_counter()
    with RolloutFleet(model_dir, cfg, seed=0) as fleet:
        print(f"fleet of {args.workers} engines started in {time.perf_counter() - t0:.1f} s")
        fleet.sync_weights(ray.put(load_model(model_dir).state_dict()), 1)
        prompts = ["What is 12+30?", "The quick brown fox", "def add(a, b):", "What is an LLM?"] * 4
        rows = []
        for rep in range(args.repeats):
            t0 = time.perf_counter()
            want = fleet.generate(prompts, n=2, max_tokens=16, seed=rep)
            step = time.perf_counter() - t0
            os.kill(fleet.info[1]["pid"], signal.SIGKILL)
            t0 = time.perf_counter()
            got = fleet.generate(prompts, n=2, max_tokens=16, seed=rep)
            total = time.perf_counter() - t0
            same = [[c.token_ids for c in g] for g in got] == [[c.token_ids for c in g] for g in want]
            rows.append((rep, step, total, fleet.restart_log[-1]["seconds"], same))
    print(f"{'repeat':>6} {'step s':>8} {'kill->step done s':>18} {'replacement s':>14} {'same':>5}")
    for rep, step, total, replacement, same in rows:
        print(f"{rep:>6} {step:>8.2f} {total:>18.1f} {replacement:>14.1f} {str(same):>5}")


if __name__ == "__main__":
    main()
