"""Rollout fleet throughput against one raw ``vllm.LLM.generate`` with the same model, prompts and sampling.

    .venv/bin/python benchmarks/fleet_throughput.py [--n 8] [--prompts 128] [--max-tokens 64] [--repeats 3] [--default-env]

The model is a from-scratch ~0.8M-parameter Qwen2 (random weights). The raw engine runs in a subprocess with
the rollout actor's environment (in-process engine, same thread count), so the ratio measures what the fleet
adds: Ray calls, prompt chunking, the per-prompt SamplingParams and turning outputs into Completions. Raw and
fleet runs alternate (both engines stay up, only one generates at a time), so load from other processes on a
shared machine hits both sides alike.
``--default-env`` adds a row for vLLM's own defaults (multiprocess engine core, automatic core binding).
Prints a table: generated tokens per second (best of ``--repeats``) and the fleet/raw ratio (target >= 0.9).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CORPUS = [
    "What is an LLM? An LLM is a large language model that predicts the next token.",
    "What is 12+30? 12+30 is 42.",
    "The quick brown fox jumps over the lazy dog.",
    "def add(a, b):\n    return a + b\n",
] * 50


def build_model(directory: Path) -> Path:
    from raylign.engine.modeling import ModelSize, build_qwen2, save_model_dir
    from raylign.engine.tokenizer import train_bpe

    tok = train_bpe(CORPUS, 384)
    model = build_qwen2(ModelSize(hidden_size=128, num_layers=4, num_heads=4, num_kv_heads=2,
                                  intermediate_size=384), tok, seed=0)
    print(f"model: Qwen2, {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, vocab {len(tok)}")
    return save_model_dir(model, tok, directory)


FLEET = "RolloutFleet.generate, 1 worker"


def make_prompts(count: int) -> list[str]:
    words = " ".join(CORPUS[:4]).split()
    return [" ".join(words[i % len(words): i % len(words) + 3 + i % 5]) or "What" for i in range(count)]


def sampling(args) -> dict:
    return dict(n=args.n, temperature=1.0, top_p=1.0, max_tokens=args.max_tokens, stop_token_ids=[], seed=0)


def serve_raw(args) -> None:
    """The raw side, in a subprocess: one vllm.LLM; each "go" line on stdin times one llm.generate."""
    from vllm import LLM

    from raylign.engine.config import RolloutConfig
    from raylign.engine.rollout import engine_kwargs, quiet_thread_warning, sampling_params

    quiet_thread_warning()
    llm = LLM(**engine_kwargs(args.model_dir, RolloutConfig(), seed=0))
    prompts = make_prompts(args.prompts)
    sps = [sampling_params(prompt_index=i, **sampling(args)) for i in range(len(prompts))]
    llm.generate(prompts[:4], sps[:4], use_tqdm=False)  # warm-up
    print("READY", flush=True)
    for _ in sys.stdin:
        t0 = time.perf_counter()
        outs = llm.generate(prompts, sps, use_tqdm=False)
        seconds = time.perf_counter() - t0
        tokens = sum(len(c.token_ids) for o in outs for c in o.outputs)
        print("RESULT " + json.dumps({"tokens": tokens, "seconds": seconds}), flush=True)


class RawEngine:
    """Driver-side handle on the raw subprocess, started with ``env`` on top of this process's environment."""

    def __init__(self, args, env: dict[str, str]):
        cmd = [sys.executable, __file__, "--raw", "--model-dir", str(args.model_dir), "--n", str(args.n),
               "--prompts", str(args.prompts), "--max-tokens", str(args.max_tokens)]
        self.log = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True)
        self._read("READY")

    def _read(self, prefix: str) -> str:
        for line in self.proc.stdout:
            if line.startswith(prefix):
                return line[len(prefix):].strip()
        self.log.seek(0)
        raise RuntimeError(f"raw vLLM run failed:\n{self.log.read()[-3000:]}")

    def run(self) -> dict:
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        return json.loads(self._read("RESULT "))

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)
        except Exception:
            self.proc.kill()
            self.proc.wait()


def fleet_run(fleet, args) -> dict:
    prompts = make_prompts(args.prompts)
    t0 = time.perf_counter()
    groups = fleet.generate(prompts, **sampling(args))
    seconds = time.perf_counter() - t0
    return {"tokens": sum(len(c.token_ids) for g in groups for c in g), "seconds": seconds}


def best(runs: list[dict]) -> dict:
    return min(runs, key=lambda r: r["seconds"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=8, help="samples per prompt")
    ap.add_argument("--prompts", type=int, default=128)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per side (best counts)")
    ap.add_argument("--default-env", action="store_true", help="also time raw vLLM with its default environment")
    ap.add_argument("--raw", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model-dir", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.raw:
        serve_raw(args)
        return

    from raylign.engine.cluster import actor_env, init_ray
    from raylign.engine.config import RayConfig, RolloutConfig
    from raylign.engine.rollout import RolloutFleet, engine_env

    with tempfile.TemporaryDirectory() as tmp:
        args.model_dir = build_model(Path(tmp) / "model")
        print(f"workload: {args.prompts} prompts x n={args.n}, max_tokens={args.max_tokens}, temperature 1, "
              f"top_p 1, no top-k; best of {args.repeats}, raw and fleet runs interleaved")
        # the rollout actor's environment: the job's (thread counts) + the engine's
        engines = {"raw vllm.LLM.generate, actor env (1 process)": {**actor_env(RayConfig()),
                                                                    **engine_env(RolloutConfig())}}
        if args.default_env:
            engines["raw vllm.LLM.generate, vLLM default env"] = {"VLLM_CPU_KVCACHE_SPACE": "1",
                                                                  "VLLM_LOGGING_LEVEL": "WARNING"}
        runs: dict[str, list[dict]] = {name: [] for name in [*engines, FLEET]}
        ray = init_ray(RayConfig(num_cpus=8))
        raws = {}
        try:
            raws = {name: RawEngine(args, env) for name, env in engines.items()}
            with RolloutFleet(args.model_dir, RolloutConfig(num_workers=1), seed=0) as fleet:
                fleet.generate(make_prompts(4), **sampling(args))  # warm-up
                for _ in range(args.repeats):
                    for name, raw in raws.items():
                        runs[name].append(raw.run())
                    runs[FLEET].append(fleet_run(fleet, args))
        finally:
            for raw in raws.values():
                raw.close()
            ray.shutdown()
        rows = [(name, best(r)) for name, r in runs.items()]
        raw, fleet = rows[0][1], rows[-1][1]

    print(f"\n{'':48s} {'tokens':>8s} {'seconds':>8s} {'tokens/s':>9s}")
    for name, r in rows:
        print(f"{name:48s} {r['tokens']:8d} {r['seconds']:8.2f} {r['tokens'] / r['seconds']:9.0f}")
    ratio = (fleet["tokens"] / fleet["seconds"]) / (raw["tokens"] / raw["seconds"])
    print(f"\nfleet / raw (same env): {ratio:.2f}  (target >= 0.9)")


if __name__ == "__main__":
    main()
