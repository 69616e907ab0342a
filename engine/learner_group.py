"""Data-parallel learners (``[ray] learners = N``): starting the ranks, splitting a call's micro-batches among
them, and putting their results back together as one learner would have returned them.

The ranks are N :class:`~raylign.engine.learner.Learner` actors built from the same spec (the same model dir and
seed, so the same initial model; ``join_group`` also broadcasts rank 0's weights). Rank 0 picks a free port on
its node; every rank then joins ``tcp://<rank 0's IP>:<port>`` (gloo on CPU, NCCL on GPU).

Why the split needs no extra arithmetic: every registered loss is a sum over its micro-batch divided by
step-wide constants (``norm_tokens``/``norm_seqs``/``norm_pairs`` options or ``loss_scale``, set by the stage
for the whole batch), so a step's gradient is the sum of its micro-batches' gradients, and summing the ranks'
gradients (all-reduce SUM, not mean) is the single learner's gradient up to float summation order. The metrics
a learner returns are loss-token-weighted means, so the handle weighs each rank's by its tokens again.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Mapping, Sequence

from raylign.engine.errors import ConfigError

# train_step metrics that are not token-weighted means of the loss's own metrics
_STEP_KEYS = ("grad_norm", "lr", "step_tokens", "tokens", "learner_seconds")


def start_learner_group(spec: Any, n: int, num_cpus: float = 1.0, num_gpus: float = 0.0,
                        per_rank: Sequence[Mapping[str, Any]] | None = None, **options: Any) -> list:
    """``n`` learner actors of ``spec``, started side by side; for ``n > 1`` joined into one data-parallel group
    (rank i is the i-th actor). ``options``: more Ray actor options for every rank; ``per_rank[i]``: rank i's own
    (e.g. its placement-group bundle, so ranks keep their places across a resume)."""
    import ray

    from raylign.engine.learner import start_learner

    if n > 1 and 0 < num_gpus < 1:
        raise ConfigError(f"ray.learners = {n} with ray.learner_num_gpus = {num_gpus}: data-parallel ranks on GPUs "
                          f"need a whole GPU each (NCCL refuses two ranks on one device); set learner_num_gpus = 1")
    own = list(per_rank) if per_rank is not None else [{}] * n
    if len(own) != n:
        raise ValueError(f"per_rank has {len(own)} entries for {n} learner ranks")
    actors = [start_learner(spec, num_cpus=num_cpus, num_gpus=num_gpus, wait=False, **{**options, **own[i]})
              for i in range(n)]
    try:
        ray.get([a.ping.remote() for a in actors])
        if n > 1:
            nodes = ray.get([a.node_id.remote() for a in actors])
            per_node = Counter(nodes)
            address, port = ray.get(actors[0].rendezvous_address.remote())
            ray.get([a.join_group.remote(address, port, rank, n, per_node[node])
                     for rank, (a, node) in enumerate(zip(actors, nodes))])
    except BaseException:
        for a in actors:
            ray.kill(a)
        raise
    return actors


def split_balanced(costs: Sequence[float], n: int) -> list[list[int]]:
    """Indices of the items each of ``n`` ranks takes: largest first to the least loaded rank (ties to the lower
    rank), each rank's in their original order. Deterministic: the same costs always split the same way."""
    loads = [0.0] * n
    parts: list[list[int]] = [[] for _ in range(n)]
    for i in sorted(range(len(costs)), key=lambda i: -costs[i]):
        r = min(range(n), key=lambda r: (loads[r], r))
        parts[r].append(i)
        loads[r] += costs[i]
    return [sorted(p) for p in parts]


def batch_tokens(batch: Any) -> float:
    """The work of a micro-batch: its real tokens (what a padding-free forward spends compute on)."""
    return float(batch.attention_mask.sum())


def gather(parts: list[list[int]], results: list[list[Any]]) -> list[Any]:
    """Per-rank result lists back into the order of the original items."""
    out: list[Any] = [None] * sum(len(p) for p in parts)
    for idx, res in zip(parts, results):
        for i, r in zip(idx, res):
            out[i] = r
    return out


def _weighted(results: list[dict], weight_key: str, skip: Sequence[str]) -> tuple[dict[str, float], float]:
    """Sum over ranks of each metric times the weight its rank divided by (``max(weight, 1)``, as the learner
    does), divided by the same over all ranks: the mean one learner computes over every micro-batch."""
    total = sum(float(r.get(weight_key, 0.0)) for r in results)
    sums: dict[str, float] = {}
    for r in results:
        w = max(float(r.get(weight_key, 0.0)), 1.0)
        for k, v in r.items():
            if k not in skip:
                sums[k] = sums.get(k, 0.0) + float(v) * w
    return {k: v / max(total, 1.0) for k, v in sums.items()}, total


def reduce_train_metrics(results: list[dict]) -> dict[str, float]:
    """One step's metrics from every rank's ``train_step`` result, equal to one learner's: token-weighted means
    of the loss's metrics, ``tokens``/``step_tokens`` summed, ``grad_norm``/``lr`` rank 0's (every rank holds the
    summed gradient), ``learner_seconds`` the slowest rank's."""
    out, total = _weighted(results, "tokens", _STEP_KEYS)
    out.update(grad_norm=results[0]["grad_norm"], lr=results[0]["lr"], tokens=total,
               step_tokens=sum(r["step_tokens"] for r in results),
               learner_seconds=max(r["learner_seconds"] for r in results))
    return out


def reduce_eval_metrics(results: list[dict]) -> dict[str, float]:
    """``eval_loss`` results of every rank as one learner's: token-weighted means, ``tokens`` summed."""
    out, total = _weighted(results, "tokens", ("tokens",))
    out["tokens"] = int(total)
    return out
