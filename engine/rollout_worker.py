"""One rollout worker: a Ray actor owning one vLLM engine (the fleet in :mod:`raylign.engine.rollout` starts them).

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

The model reaches the worker through the object store (:mod:`raylign.engine.model_files`), never as a path on
the driver's disk, so a worker runs on any node.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from raylign.engine.config import RolloutConfig
from raylign.engine.model_files import drop_weight_files, materialise
from raylign.engine.types import Completion
from raylign.engine.weight_sync import EXTENSION_CLS, RECEIVERS

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


def engine_kwargs(model_dir: str, cfg: RolloutConfig, seed: int, sleep: bool = False) -> dict[str, Any]:
    """Arguments of ``vllm.LLM`` for one rollout engine (also used by benchmarks for a like-for-like engine).
    ``sleep``: the engine will sleep while a colocated learner trains (engine/colocate.py): vLLM's sleep mode is
    enabled where the platform has it (GPUs); vllm-cpu refuses the flag, and sleeps without it (no memory freed)."""
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
    if sleep and sleep_mode_available():
        kwargs["enable_sleep_mode"] = True
    if cfg.tensor_parallel_size > 1:  # GPU only (UNTESTED here): TP workers as subprocesses of the actor
        kwargs["distributed_executor_backend"] = "mp"
    return kwargs


def sleep_mode_available() -> bool:
    """Whether vLLM can free device memory when an engine sleeps here (CUDA, ROCm, XPU; not CPU)."""
    from vllm.platforms import current_platform

    return bool(current_platform.is_sleep_mode_available())


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
    # Colocated engines on CPU sleep and wake every step; the CPU worker's memory offload is a no-op that says so.
    logging.getLogger("vllm.v1.worker.cpu_worker").addFilter(
        lambda record: "sleep mode is not supported" not in record.getMessage())


class RolloutWorker:
    """One vLLM engine. Runs as a Ray actor (the fleet wraps it with ``ray.remote``); calls are served one at a
    time, so a weight reload never interleaves with a generation and every completion carries the version
    its tokens were generated with."""

    def __init__(self, model: str | Mapping[str, Any], cfg: RolloutConfig, seed: int, index: int,
                 sleeps: bool = False):
        """``model``: a model directory this actor can read, or :func:`~raylign.engine.model_files.put_model_dir`'s
        files, written to a local temp dir first (the fleet's way: no filesystem shared with the driver).
        ``sleeps``: a colocated engine, put to sleep while the learner on its devices trains (engine/colocate.py)."""
        t0 = time.perf_counter()
        from vllm import LLM

        self.index = index
        self.version = 0  # the weights in the model directory
        shipped = not isinstance(model, (str, Path))
        self.model_dir = str(materialise(model, prefix=f"raylign-rollout{index}-") if shipped else model)
        self.own_dir = shipped  # a temp dir of this actor's: removed by close()
        quiet_thread_warning()
        self.llm = LLM(**engine_kwargs(self.model_dir, cfg, seed + index, sleep=sleeps))
        if shipped:
            drop_weight_files(self.model_dir)
        self.start_seconds = time.perf_counter() - t0

    def ready(self) -> dict[str, Any]:
        """Who and where this worker is: the fleet names its node in errors, tests kill its ``pid``."""
        import ray
        import torch

        return {"index": self.index, "pid": os.getpid(), "start_seconds": self.start_seconds,
                "node_id": ray.get_runtime_context().get_node_id(), "node_ip": ray.util.get_node_ip_address(),
                "model_dir": self.model_dir, "version": self.version, "sleeping": self.llm.llm_engine.is_sleeping(),
                "placement_group_id": ray.get_runtime_context().get_placement_group_id(),
                "torch_threads": torch.get_num_threads(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}

    def generate(self, prompts: list[Prompt], params: dict[str, Any], first_index: int) -> list[list[Completion]]:
        """``params``: n, temperature, top_p, max_tokens, stop_token_ids, seed; ``first_index``: the global index
        of ``prompts[0]``."""
        sps = [sampling_params(prompt_index=first_index + i, **params) for i in range(len(prompts))]
        outs = self.llm.generate([as_engine_prompt(p) for p in prompts], sps, use_tqdm=False)
        return [to_completions(o, first_index + i, self.version) for i, o in enumerate(outs)]

    def generate_stream(self, prompts: list[Prompt], params: dict[str, Any], indices: list[int]):
        """As :meth:`generate`, but a generator (a Ray streaming call) that yields ``(index, group)`` for each prompt
        as soon as all its samples are done, in the order they finish; ``indices[i]`` is ``prompts[i]``'s global
        index (its seeds). The same requests as :meth:`generate` make the same completions: vLLM's own
        ``enqueue`` and engine steps, which ``LLM.generate`` runs too, only read as they finish."""
        sps = [sampling_params(prompt_index=j, **params) for j in indices]
        request_ids = self.llm.enqueue([as_engine_prompt(p) for p in prompts], sps, use_tqdm=False)
        # enqueue returns vLLM's internal ids ("<id>-<8 random characters>"); outputs carry the "<id>" part
        index = {rid.rsplit("-", 1)[0]: j for rid, j in zip(request_ids, indices)}
        index.update(zip(request_ids, indices))
        engine = self.llm.llm_engine
        while engine.has_unfinished_requests():
            for out in engine.step():
                if out.finished:
                    j = index[out.request_id]
                    yield j, to_completions(out, j, self.version)

    def receive_weights(self, transport: str, payload: Any, version: int) -> float:
        """Load new weights through ``transport``; stamps ``version`` only once they are in. Returns seconds."""
        t0 = time.perf_counter()
        RECEIVERS[transport](self.llm, payload)
        self.llm.reset_prefix_cache()  # cached KV blocks were computed with the old weights
        self.version = version
        return time.perf_counter() - t0

    def sleep(self, level: int) -> dict[str, Any]:
        """``LLM.sleep(level)``: 1 offloads the weights to CPU memory and discards the KV cache, 2 discards both (GPU;
        on CPU vLLM pauses the engine and frees nothing). Returns the seconds, vLLM's own ``is_sleeping`` and the
        worker's placement group (colocated mode: a replaced engine must land in its predecessor's group)."""
        t0 = time.perf_counter()
        self.llm.sleep(level=level)
        import ray

        return {"pid": os.getpid(), "seconds": time.perf_counter() - t0, "sleeping": self.llm.llm_engine.is_sleeping(),
                "placement_group_id": ray.get_runtime_context().get_placement_group_id()}

    def wake(self, tags: list[str] | None = None) -> dict[str, Any]:
        """``LLM.wake_up(tags)`` (``weights``, ``kv_cache``; None: all). Returns the seconds, whether vLLM slept
        before, and whether it is fully awake now (it serves requests only then)."""
        t0 = time.perf_counter()
        was = self.llm.llm_engine.is_sleeping()
        awake = self.llm.wake_up(tags=tags) if was else True
        return {"pid": os.getpid(), "seconds": time.perf_counter() - t0, "was_sleeping": was, "awake": bool(awake)}

    def prompt_logprobs(self, token_ids: list[int]) -> list[float]:
        """The engine's logprob of each of ``token_ids[1:]`` given the tokens before it (temperature 1)."""
        from vllm import SamplingParams

        sp = SamplingParams(prompt_logprobs=0, max_tokens=1, temperature=1.0)
        out = self.llm.generate([as_engine_prompt(token_ids)], sp, use_tqdm=False)[0]
        return [step[tok].logprob for step, tok in zip(out.prompt_logprobs[1:], token_ids[1:])]

    def close(self) -> None:
        """Remove this worker's copy of the model (the fleet calls it before killing the actor, whose exit runs
        no clean-up; a SIGKILLed worker leaves only the small config and tokenizer files behind)."""
        if self.own_dir:
            shutil.rmtree(self.model_dir, ignore_errors=True)

    def weight_group(self, op: str, *args) -> list:
        """The ``collective`` weight sync's group (engine/weight_group.py): ``join`` or ``leave`` on every vLLM
        worker of this engine (its tensor-parallel ranks); returns their results."""
        return self.llm.collective_rpc(f"raylign_group_{op}", args=args)
