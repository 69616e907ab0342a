"""Starting or joining Ray, and the environment every actor gets (thread counts, vLLM CPU settings)."""
from __future__ import annotations

import os

from raylign.engine.config import RayConfig

# Thread settings: two physical cores here are shared by learner, rollout and reward actors, so torch and
# OpenMP use few threads each instead of all fighting for every core.
def default_threads() -> int:
    return max(1, (os.cpu_count() or 2) // 2)


def actor_env(cfg: RayConfig) -> dict[str, str]:
    threads = str(cfg.torch_threads or default_threads())
    return {
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
        "RAY_DEDUP_LOGS": "1",
    }


def init_ray(cfg: RayConfig, address: str | None = None):
    """Join ``address`` (or ``cfg.address``, or $RAY_ADDRESS) when given, else start a local Ray.

    Returns the ``ray`` module. Calling it twice in one process is a no-op.
    """
    import ray

    if ray.is_initialized():
        return ray
    addr = address or cfg.address or os.environ.get("RAY_ADDRESS", "")
    runtime_env = {"env_vars": actor_env(cfg)}
    if addr:
        ray.init(address=addr, runtime_env=runtime_env, log_to_driver=True)
    else:
        # address="local": always a new local Ray, never one a `ray start` left running on this machine
        kwargs = {"address": "local", "num_cpus": cfg.num_cpus, "include_dashboard": False,
                  "runtime_env": runtime_env}
        if cfg.num_gpus is not None:
            kwargs["num_gpus"] = cfg.num_gpus
        ray.init(**kwargs)
    return ray


def learner_threads(threads: int = 0) -> int:
    """The torch threads a learner runs with: ``threads``, or every core of its node if 0 (``ray.learner_threads``)."""
    return threads or os.cpu_count() or 1


def set_torch_threads(threads: int = 0) -> None:
    """Torch intra-op threads of the calling process (the learner actor): see :func:`learner_threads`."""
    import torch

    torch.set_num_threads(learner_threads(threads))
