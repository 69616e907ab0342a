"""Rollout fleet throughput against raw ``vllm.LLM.generate`` with the same model, prompts and sampling.

    .venv/bin/python benchmarks/fleet_throughput.py [--n 8] [--prompts 128] [--max-tokens 64] [--repeats 3] [--default-env]
    .venv/bin/python benchmarks/fleet_throughput.py --model benchmarks/.cache/gen-13m --prompts 8 --group 8 --max-new 256
    .venv/bin/python benchmarks/fleet_throughput.py --size 13m --prompts 8 --group 8 --max-new 128 [--modes fleet]

The model: ``--model DIR`` (an HF model dir; its tokenizer's chat template renders arithmetic prompts like
``examples/data/math_train.jsonl``, and replies stop at its end-of-turn tokens, as in the ``grpo`` stage; e.g. the
model of ``benchmarks/gen_model.py``, which ends its replies), else a from-scratch Qwen2 with random weights of
``--size`` (``0.8m``, the default; ``13m``; ``45m``) or of ``--hidden/--layers/--heads/--kv-heads/--intermediate``
(plain-text prompts, no stop tokens: a random model rarely ends a reply, so nearly every reply has ``--max-new``
tokens).

The fleet side is ``RolloutFleet.generate`` (1 worker) called as the GRPO stage calls it: ``--group`` samples per
prompt, temperature 1, sampler log-probs and a seed (the worker sends one ``SamplingParams(n=G, logprobs=0,
seed=...)`` per prompt, every sample seeded). The raw side runs in a subprocess with the rollout actor's environment
(in-process engine, same thread count), so the ratio measures what the fleet adds: Ray calls, prompt chunking, the
per-prompt SamplingParams and turning outputs into Completions. Raw and fleet runs alternate (both engines stay
up, only one generates at a time), so load from other processes on a shared machine hits both sides alike.

``--modes``: ``fleet`` (the default without ``--model``/``--size``) times raw vLLM with the fleet's own requests;
``all`` (the default with them) times raw ``vllm.LLM`` in each way it can be asked for G samples of a prompt: one
``SamplingParams(n=G)`` per prompt, unseeded or seeded as the fleet seeds, or G requests (n=1) with the fleet's
per-sample seeds; each with and without ``logprobs=0``. A seeded mode draws the fleet's samples, so its outputs
equal the fleet's (the ``same`` column compares the token ids); an unseeded one draws others, of other lengths
when the model ends its replies, which is why the ratio is on generated tokens per second.
``--default-env`` adds a row for vLLM's own defaults (multiprocess engine core, automatic core binding).
Prints a table: generated tokens per second (best of ``--repeats``), and the fleet / raw ratio against the raw
engine with the fleet's requests and against the best raw mode (target >= 0.9; issue 14: >= 0.95 at >= 13M
parameters and >= 128 tokens).

Measured on the 2-core machine under load (1-minute load 20-45), best of 2, tokens/s:
- ``--model benchmarks/.cache/gen-13m --prompts 8 --group 8 --max-new 256`` (13.3M, replies end: mean 100.5
  tokens, 5% truncated): raw modes 976-1042, fleet 1008; fleet / fleet's requests 1.03, / best raw mode 0.97.
- ``--size 13m --prompts 8 --group 8 --max-new 128`` (random 13.3M, 97% truncated): raw modes 1241-1441, fleet
  1260; 0.96 and 0.87 (best raw: n=G with logprobs=0, unseeded).
- defaults (0.8M, 128 x 8 x 64): raw 6148, fleet 5836: 0.95.
The raw modes differ by less than run-to-run noise here: the n=G + logprobs=0 slow path issue 14 reports (6.53 s
against 2.68 s) did not show.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # gen_model's prompts
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import CORPUS  # noqa: E402 - the tests' tokenizer corpus (the same text the test models train on)

# --size presets: (hidden, layers, heads, kv heads, intermediate, vocab); head dim 32 or 64 (vLLM CPU attention)
SIZES = {"0.8m": (128, 4, 4, 2, 384, 384), "13m": (384, 8, 6, 2, 1024, 2048), "45m": (512, 14, 8, 2, 1536, 2048)}

# raw modes: name -> (one request with n=G per prompt?, seeded?, logprobs)
MODES = {
    "n=G": (True, False, None),
    "n=G, logprobs=0": (True, False, 0),
    "n=G, seeded": (True, True, None),
    "n=G, seeded, logprobs=0 (the fleet's requests)": (True, True, 0),
    "G requests, own seeds": (False, True, None),
    "G requests, own seeds, logprobs=0": (False, True, 0),
}
FLEET_MODE = "n=G, seeded, logprobs=0 (the fleet's requests)"
FLEET = "RolloutFleet.generate, 1 worker"


def size_of(args) -> tuple[int, ...]:
    base = list(SIZES[args.size or "0.8m"])
    for i, v in enumerate((args.hidden, args.layers, args.heads, args.kv_heads, args.intermediate, args.vocab)):
        base[i] = v or base[i]
    return tuple(base)


def build_model(directory: Path, args) -> Path:
    from raylign.engine.modeling import ModelSize, build_qwen2, save_model_dir
    from raylign.engine.tokenizer import train_bpe

    hidden, layers, heads, kv_heads, inter, vocab = size_of(args)
    if vocab <= 384:
        texts = CORPUS
    else:  # a corpus with enough words for a bigger vocabulary: gen_model's SFT text
        import gen_model

        rng = random.Random(0)
        texts = [(c := gen_model.candidate(rng))["prompt"] + "\n" + gen_model.reply_text(c, len(c["body"]))
                 for _ in range(2000)]
    tok = train_bpe(texts, vocab)
    model = build_qwen2(ModelSize(hidden_size=hidden, num_layers=layers, num_heads=heads, num_kv_heads=kv_heads,
                                  intermediate_size=inter, max_position_embeddings=2048), tok, seed=0)
    print(f"model: Qwen2 from scratch (random weights), {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M "
          f"parameters, vocab {len(tok)}, hidden {hidden}, {layers} layers, {heads} heads ({kv_heads} KV), "
          f"MLP {inter}")
    return save_model_dir(model, tok, directory)


def make_prompts(count: int) -> list[str]:
    words = " ".join(CORPUS[:4]).split()
    return [" ".join(words[i % len(words): i % len(words) + 3 + i % 5]) or "What" for i in range(count)]


def workload(args) -> dict:
    """Prompts and stop tokens: chat prompts for a given model dir (as the grpo stage renders them), else text."""
    if not args.model:
        return {"prompts": make_prompts(args.prompts), "stops": []}
    import gen_model

    from raylign.engine.chat_format import render_prompt
    from raylign.engine.modeling import load_tokenizer, stop_token_ids

    tok = load_tokenizer(args.model_dir)
    rng = random.Random(1)
    return {"prompts": [render_prompt(tok, gen_model.make_prompt(rng)[0]) for _ in range(args.prompts)],
            "stops": stop_token_ids(tok)}


def sampling(args, stops) -> dict:
    return dict(n=args.n, temperature=1.0, top_p=1.0, max_tokens=args.max_tokens, stop_token_ids=list(stops),
                seed=args.seed)


def raw_requests(mode: str, prompts: list[str], params: dict):
    """The prompts and SamplingParams of one raw mode; samples of prompt i get the fleet's seeds."""
    from vllm import SamplingParams

    from raylign.engine.rollout import sampling_params

    if mode == FLEET_MODE:  # exactly the worker's requests
        return prompts, [sampling_params(prompt_index=i, **params) for i in range(len(prompts))]
    grouped, seeded, logprobs = MODES[mode]
    n = params["n"]
    common = dict(temperature=params["temperature"], top_p=params["top_p"], top_k=0, max_tokens=params["max_tokens"],
                  stop_token_ids=params["stop_token_ids"], logprobs=logprobs)
    fleet_sps = [sampling_params(prompt_index=i, **params) for i in range(len(prompts))]
    if grouped:
        return prompts, [SamplingParams(n=n, seed=sp.seed if seeded else None, **common) for sp in fleet_sps]
    return ([p for p in prompts for _ in range(n)],
            [SamplingParams(n=1, seed=sp.seed + j, **common) for sp in fleet_sps for j in range(n)])


def digest(groups: list[list[list[int]]]) -> str:
    return hashlib.sha1(json.dumps(groups).encode()).hexdigest()[:12]


def serve_raw(args) -> None:
    """The raw side, in a subprocess: one vllm.LLM; each "go MODE" line on stdin times one llm.generate."""
    from vllm import LLM

    from raylign.engine.config import RolloutConfig
    from raylign.engine.rollout import engine_kwargs, quiet_thread_warning

    spec = json.loads(Path(args.spec).read_text())
    quiet_thread_warning()
    llm = LLM(**engine_kwargs(args.model_dir, RolloutConfig(max_model_len=args.max_model_len), seed=0))
    requests = {m: raw_requests(m, spec["prompts"], spec["params"]) for m in spec["modes"]}
    warm = dict(spec["params"], max_tokens=8)
    for mode in spec["modes"]:  # warm-up, every mode, short replies
        prompts, sps = raw_requests(mode, spec["prompts"][:2], warm)
        llm.generate(prompts, sps, use_tqdm=False)
    print("READY", flush=True)
    n = spec["params"]["n"]
    for line in sys.stdin:
        mode = line.strip()
        prompts, sps = requests[mode]
        t0 = time.perf_counter()
        outs = llm.generate(prompts, sps, use_tqdm=False)
        seconds = time.perf_counter() - t0
        samples = [list(c.token_ids) for o in outs for c in sorted(o.outputs, key=lambda c: c.index)]
        groups = [samples[i * n:(i + 1) * n] for i in range(len(samples) // n)]
        print("RESULT " + json.dumps(result(groups, seconds, sum(c.finish_reason == "length" for o in outs
                                                                for c in o.outputs))), flush=True)


def result(groups: list[list[list[int]]], seconds: float, truncated: int) -> dict:
    lengths = [len(s) for g in groups for s in g]
    return {"tokens": sum(lengths), "seconds": seconds, "samples": len(lengths), "truncated": truncated,
            "digest": digest(groups)}


class RawEngine:
    """Driver-side handle on the raw subprocess, started with ``env`` on top of this process's environment."""

    def __init__(self, args, env: dict[str, str], spec: Path):
        cmd = [sys.executable, __file__, "--raw", "--model-dir", str(args.model_dir), "--spec", str(spec),
               "--max-model-len", str(args.max_model_len)]
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

    def run(self, mode: str) -> dict:
        self.proc.stdin.write(mode + "\n")
        self.proc.stdin.flush()
        return json.loads(self._read("RESULT "))

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)
        except Exception:
            self.proc.kill()
            self.proc.wait()


def fleet_run(fleet, prompts, params) -> dict:
    t0 = time.perf_counter()
    groups = fleet.generate(prompts, **params)
    seconds = time.perf_counter() - t0
    return result([[list(c.token_ids) for c in g] for g in groups], seconds,
                  sum(c.finish_reason == "length" for g in groups for c in g))


def best(runs: list[dict]) -> dict:
    return max(runs, key=lambda r: r["tokens"] / r["seconds"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", "--group", dest="n", type=int, default=8, help="samples per prompt (G)")
    ap.add_argument("--prompts", type=int, default=128)
    ap.add_argument("--max-tokens", "--max-new", dest="max_tokens", type=int, default=64,
                    help="reply length limit (new tokens)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per side (best counts)")
    ap.add_argument("--model", default="", help="an HF model dir (default: build a random one of --size)")
    ap.add_argument("--size", choices=sorted(SIZES), default="", help="from-scratch model size (default 0.8m)")
    for name in ("hidden", "layers", "heads", "kv-heads", "intermediate", "vocab"):
        ap.add_argument(f"--{name}", type=int, default=0, help=f"from-scratch model: {name} (overrides --size)")
    ap.add_argument("--modes", choices=("fleet", "all"), default="",
                    help="raw modes timed (default: fleet without --model/--size, all with them)")
    ap.add_argument("--seed", type=int, default=0, help="the generate seed (the GRPO stage passes its step)")
    ap.add_argument("--default-env", action="store_true", help="also time raw vLLM with its default environment")
    ap.add_argument("--raw", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model-dir", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--spec", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--max-model-len", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.raw:
        serve_raw(args)
        return

    from raylign.engine.cluster import actor_env
    from raylign.engine.config import RayConfig, RolloutConfig
    from raylign.engine.rollout import RolloutFleet, engine_env

    custom = bool(args.model or args.size or args.hidden or args.layers)
    modes = list(MODES) if (args.modes or ("all" if custom else "fleet")) == "all" else [FLEET_MODE]
    with tempfile.TemporaryDirectory() as tmp:
        if args.model:
            args.model_dir = str(Path(args.model).resolve())
            cfg = json.loads((Path(args.model_dir) / "config.json").read_text())
        else:
            args.model_dir = str(build_model(Path(tmp) / "model", args))
        if args.model:
            from raylign.engine.modeling import load_model

            params = sum(p.numel() for p in load_model(args.model_dir).parameters())
            print(f"model: {args.model_dir}, {params / 1e6:.2f}M parameters, hidden {cfg.get('hidden_size')}, "
                  f"{cfg.get('num_hidden_layers')} layers")
        work = workload(args)
        prompt_len = max(len(p) for p in work["prompts"])
        args.max_model_len = max(RolloutConfig().max_model_len, args.max_tokens + prompt_len + 16)
        params = sampling(args, work["stops"])
        spec = Path(tmp) / "spec.json"
        spec.write_text(json.dumps({"prompts": work["prompts"], "params": params, "modes": modes}))
        print(f"workload: {args.prompts} prompts x G={args.n}, max_tokens={args.max_tokens}, temperature 1, "
              f"top_p 1, no top-k, stop tokens {work['stops'] or 'none'}; best of {args.repeats}, raw and fleet "
              f"runs interleaved")
        # the rollout actor's environment: the job's (thread counts) + the engine's
        rollout_cfg = RolloutConfig(num_workers=1, max_model_len=args.max_model_len)
        engines = {"raw vllm.LLM, actor env (1 process)": {**actor_env(RayConfig()), **engine_env(rollout_cfg)}}
        if args.default_env:
            engines["raw vllm.LLM, vLLM default env"] = {"VLLM_CPU_KVCACHE_SPACE": "1",
                                                         "VLLM_LOGGING_LEVEL": "WARNING"}
        names = [(e, m) for e in engines for m in (modes if e == next(iter(engines)) else [FLEET_MODE])]
        runs: dict[tuple[str, str], list[dict]] = {key: [] for key in names}
        runs[(FLEET, "")] = []
        from gen_model import start_local_ray

        start_local_ray(RayConfig(num_cpus=8))
        import ray

        raws = {}
        try:
            raws = {name: RawEngine(args, env, spec) for name, env in engines.items()}
            with RolloutFleet(args.model_dir, rollout_cfg, seed=0) as fleet:
                fleet.generate(work["prompts"][:2], **dict(params, max_tokens=8))  # warm-up
                for _ in range(args.repeats):
                    for engine, mode in names:
                        runs[(engine, mode)].append(raws[engine].run(mode))
                    runs[(FLEET, "")].append(fleet_run(fleet, work["prompts"], params))
        finally:
            for raw in raws.values():
                raw.close()
            ray.shutdown()

    rows = {key: best(r) for key, r in runs.items()}
    fleet = rows[(FLEET, "")]
    tps = {key: r["tokens"] / r["seconds"] for key, r in rows.items()}
    print(f"\n{'side':38s} {'mode':48s} {'tokens':>7s} {'mean':>6s} {'trunc':>6s} {'seconds':>8s} "
          f"{'tokens/s':>9s} {'same':>5s}")
    for (engine, mode), r in rows.items():
        same = "yes" if r["digest"] == fleet["digest"] else "no"
        print(f"{engine:38s} {mode:48s} {r['tokens']:7d} {r['tokens'] / r['samples']:6.1f} "
              f"{r['truncated'] / r['samples']:6.0%} {r['seconds']:8.2f} {tps[(engine, mode)]:9.0f} {same:>5s}")
    first = next(iter(engines))
    same_env = tps[(FLEET, "")] / tps[(first, FLEET_MODE)]
    print(f"\nfleet / raw with the fleet's requests (same env): {same_env:.2f}  (target >= 0.9)")
    if len(modes) > 1:
        top = max(modes, key=lambda m: tps[(first, m)])
        print(f"fleet / best raw mode ({top}): {tps[(FLEET, '')] / tps[(first, top)]:.2f}  (issue 14: >= 0.95); "
              f"raw with the fleet's requests / best raw mode: {tps[(first, FLEET_MODE)] / tps[(first, top)]:.2f}")
    print("same: the mode's token ids equal the fleet's (seeded modes draw the fleet's samples)")


if __name__ == "__main__":
    main()
