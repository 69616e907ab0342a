"""Rollout tokens/s and weight-sync bandwidth with 1, 2 and 4 rollout workers spread over a 3-node Ray cluster.

    .venv/bin/python benchmarks/cluster_rollout.py [--workers 1,2,4,1@node_a] [--prompts 32] [--group 4] [--max-new 64]
        [--hidden 512] [--layers 8] [--intermediate 2048] [--repeats 3] [--syncs 3]

The cluster is ``ray.cluster_utils.Cluster`` on this machine: three Ray nodes (raylets), each started with its
own custom resource (``node_a`` on the head, ``node_b``, ``node_c``) and ``--node-cpus`` logical CPUs. The
learners are pinned to ``node_a`` (``[ray] learner_resources``); the rollout fleet is reserved by the engine's own
placement (``engine/placement.py``'s ``rollout_group``: one bundle per worker, SPREAD), so its workers land on
different nodes, as a run's would; the table says where each one went. A ``N@node`` row pins its workers to one
node instead (``[rollout] resources = {node = 1}``): ``1@node_a`` puts the worker beside the learners, so its sync
makes no copy between two nodes' object stores (the default rows' do). Every fleet gets the model through the
object store (``engine/model_files.py``), never from a path.

The model: a from-scratch Qwen2 with random weights (two of them, seeds 0 and 1, built by
``benchmarks/weight_sync.py``'s ``build_models``; about 29M parameters, 0.12 GB in float32, by default). Each row
starts a fleet of N workers serving it and measures:

- **tokens/s**: ``RolloutFleet.generate`` of ``--prompts`` plain-text prompts x ``--group`` samples (temperature
  1, seeded, sampler log-probs, no stop tokens: a random model rarely ends a reply, so nearly every reply has
  ``--max-new`` tokens) as the GRPO stage calls it, best of ``--repeats`` after a short warm-up; the fleet splits
  the prompts over its workers.
- **weight sync**: ``weight_sync.push_weights`` (what ``StageContext.sync_weights`` runs) from a learner actor
  on ``node_a`` to all N workers with the CPU transport (``flat``, float32, ``rollout.sync_parts`` parts), the
  learners alternating so every sync changes the engines' weights, checked by the canary after each; median of
  ``--syncs`` (``benchmarks/weight_sync.py``'s ``measure``). GB/s = bytes the learner stored / seconds;
  delivered GB/s = bytes x N / seconds (each worker gets the whole model).

All nodes share this machine's cores, memory bus and ``/dev/shm``: more workers add no compute here, and "another
node" costs a copy between two object stores on the same machine instead of a network transfer. See
clusters/README.md ("What to expect on GPU clusters") for what changes there.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fleet_throughput import fleet_run, make_prompts  # noqa: E402 - the fleet benchmark's prompts and timing
from weight_sync import actor_pid, build_models, measure  # noqa: E402 - the sync benchmark's models and timing

NODES = ("node_a", "node_b", "node_c")  # head first


def start_cluster(node_cpus: int, store_bytes: int):
    """Three Ray nodes on this machine, each with its own custom resource; returns the cluster and
    ``{node_id: name}``."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": node_cpus, "resources": {NODES[0]: 100}, "object_store_memory": store_bytes,
        "include_dashboard": False})  # no dashboard: its fixed port may be another Ray's on a shared machine
    names = {cluster.head_node.node_id: NODES[0]}
    for name in NODES[1:]:
        names[cluster.add_node(num_cpus=node_cpus, resources={name: 100},
                               object_store_memory=store_bytes).node_id] = name
    cluster.wait_for_nodes()
    return cluster, names


def start_learner_on(model_dir: Path, node: str):
    """A frozen learner actor (it only serves its weights) pinned to ``node`` by its custom resource."""
    from raylign.engine.learner import LearnerSpec, start_learner
    from raylign.engine.learner_handle import LearnerHandle
    from raylign.engine.optim import OptimConfig
    from raylign.engine.plugins import build_registry

    spec = LearnerSpec(model_dir=str(model_dir), optim=OptimConfig(), total_steps=1, seed=0, device="cpu",
                       trainable=False)
    handle = LearnerHandle(start_learner(spec, resources={node: 1}), build_registry(), role="reference",
                           trainable=False)
    handle.pid = actor_pid(handle)
    return handle


def run_row(workers: int, pin: str, model_dir: Path, learners, args, names: dict[str, str]) -> dict:
    """Start a fleet of ``workers`` engines placed by the engine's rollout group (on node ``pin`` if given), time
    generation and syncs."""
    from raylign.engine.config import RolloutConfig
    from raylign.engine.placement import reserve, rollout_group
    from raylign.engine.rollout import RolloutFleet

    cfg = RolloutConfig(num_workers=workers, max_model_len=256, max_num_seqs=256, kv_cache_gb=1,
                        resources={pin: 1} if pin else {})
    placement = reserve(rollout_group(cfg), f"bench/rollout x{workers}@{pin or 'spread'}", timeout_s=300)
    try:
        t0 = time.perf_counter()
        with RolloutFleet(model_dir, cfg, seed=0, placement=placement) as fleet:
            start = time.perf_counter() - t0
            where = [names.get(info["node_id"], info["node_id"][:8]) for info in fleet.info]
            prompts = make_prompts(args.prompts)
            params = dict(n=args.group, temperature=1.0, top_p=1.0, max_tokens=args.max_new, stop_token_ids=[],
                          seed=0)
            fleet.generate(prompts[:2], **dict(params, max_tokens=8))  # warm-up
            runs = [fleet_run(fleet, prompts, params) for _ in range(args.repeats)]
            gen = max(runs, key=lambda r: r["tokens"] / r["seconds"])
            sync = measure(fleet, learners, [0], "flat", "auto", fleet.cfg.sync_parts, args.syncs)
            # measure() leaves the engines on learners[0] or [1]: the next row starts from the model dir again
    finally:
        placement.remove()
    return {"workers": workers, "pin": pin, "nodes": where, "start": start, "tokens": gen["tokens"],
            "gen_s": gen["seconds"], "tps": gen["tokens"] / gen["seconds"], "sync": sync}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", default="1,2,4,1@node_a",
                    help="fleet sizes, comma-separated; N@node pins the N workers to that node")
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--group", type=int, default=4, help="samples per prompt")
    ap.add_argument("--max-new", type=int, default=64, help="reply length limit (new tokens)")
    ap.add_argument("--repeats", type=int, default=3, help="timed generations per row (best counts)")
    ap.add_argument("--syncs", type=int, default=3, help="timed weight syncs per row (median counts)")
    ap.add_argument("--hidden", type=int, default=512, help="hidden size (heads of 64, KV heads = hidden / 256)")
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--intermediate", type=int, default=2048)
    ap.add_argument("--vocab", type=int, default=384, help="BPE vocabulary trained on a small corpus")
    ap.add_argument("--node-cpus", type=int, default=4, help="logical CPUs of each Ray node")
    ap.add_argument("--store-gb", type=float, default=1.5, help="object store of each Ray node (GB)")
    args = ap.parse_args()
    sizes = [(int(w.split("@")[0]), w.split("@")[1] if "@" in w else "") for w in args.workers.split(",")]

    import ray

    from raylign.engine.cluster import actor_env
    from raylign.engine.config import RayConfig

    loads, rows = [], []
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        dirs, params, nbytes = build_models(Path(tmp), args)
        print(f"model: Qwen2 from scratch, {params / 1e6:.1f}M parameters ({nbytes / 1e9:.3f} GB in float32), hidden "
              f"{args.hidden}, {args.layers} layers, MLP {args.intermediate}; workload {args.prompts} prompts x "
              f"{args.group} samples x {args.max_new} new tokens", flush=True)
        cluster, names = start_cluster(args.node_cpus, int(args.store_gb * 1e9))
        learners = []
        try:
            ray.init(address=cluster.address, runtime_env={"env_vars": actor_env(RayConfig())},
                     logging_level="ERROR", log_to_driver=False)
            learners = [start_learner_on(d, NODES[0]) for d in dirs]
            for n, pin in sizes:
                rows.append(run_row(n, pin, dirs[0], learners, args, names))
                loads.append(os.getloadavg()[0])
                r = rows[-1]
                print(f"  done: {n} worker(s) on {', '.join(r['nodes'])}: {r['tps']:.0f} tokens/s, sync "
                      f"{r['sync']['total']:.3f} s (load {loads[-1]:.1f})", flush=True)
        finally:
            for learner in learners:
                learner.kill()
            ray.shutdown()
            cluster.shutdown()

    base = rows[0]["tps"]
    print(f"\n{'workers':>7s} {'placed':6s} {'nodes':30s} {'start s':>7s} {'tokens':>7s} {'gen s':>6s} "
          f"{'tokens/s':>8s} {'x 1st':>5s} {'sync MB':>7s} {'sync s':>6s} {'best s':>6s} {'GB/s':>5s} "
          f"{'delivered GB/s':>14s} {'canary':>7s}")
    for r in rows:
        s = r["sync"]
        print(f"{r['workers']:7d} {'pinned' if r['pin'] else 'spread':6s} {'+'.join(r['nodes']):30s} "
              f"{r['start']:7.1f} {r['tokens']:7d} {r['gen_s']:6.2f} {r['tps']:8.0f} {r['tps'] / base:5.2f} "
              f"{s['bytes'] / 1e6:7.1f} {s['total']:6.3f} {s['best']:6.3f} {s['bytes'] / s['total'] / 1e9:5.2f} "
              f"{s['bytes'] * r['workers'] / s['total'] / 1e9:14.2f} {s['canary']:7.2g}")
    print(f"\nplaced: the engine's SPREAD rollout group, or pinned to one node by rollout.resources. nodes: where "
          f"each worker ran (the Ray node with that custom resource; learners on {NODES[0]}). tokens/s: "
          f"generated tokens / seconds, best of {args.repeats}; x 1st: against the first row. sync: median of "
          f"{args.syncs} flat float32 syncs learner -> every worker (best s: the fastest), GB/s: bytes / median s, "
          f"delivered: bytes x workers / median s; canary: max |engine - learner| logprob after the syncs. "
          f"{os.cpu_count()} cores shared by all nodes; 1-minute load average after each row: "
          f"{', '.join(f'{x:.1f}' for x in loads)}; {time.perf_counter() - t_all:.0f} s in all.")


if __name__ == "__main__":
    main()
