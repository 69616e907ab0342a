"""A model for benchmarks where generation matters: a >= 13M-parameter Qwen2 that ENDS its replies.

    .venv/bin/python benchmarks/gen_model.py [--out benchmarks/.cache/gen-13m] [--seed 0] [--steps 60]
        [--hidden 384 --layers 8 --heads 6 --kv-heads 2 --intermediate 1024] [--max-new 256] [--check-only]

A random model never samples its end-of-turn token, so every reply of a GRPO benchmark runs to ``max_new_tokens``
and is truncated (and masked). This script builds, with raylign's own pipeline (``build_config`` +
``run_pipeline``, stages ``scratch`` then ``sft``), a model whose sampled replies (temperature 1) to arithmetic
chat prompts end with ``<|im_end|>`` at varied lengths, mostly 60-200 tokens, and often contain digits (the
``grpo_vs_trl.py`` reward: a reply with a digit scores 1).

The SFT data is generated here, deterministically from ``--seed``: prompts like ``examples/data/math_train.jsonl``
("What is 23+38?"), replies of a random target length (uniform over ``--min-len``..``--max-len`` tokens, counted
with a BPE trained on the same text) made of numbered steps, about two thirds with numbers ("Step 3: we take 45
river and add 17, so we get 62.") and a third in words only ("Step three: we check the river again."; the nouns
are the 2,500 most frequent words of examples/data/pretrain.jsonl, for a ~2k-token vocabulary), and
one ending: "... Done!" then the end-of-turn marker. The step counter and the unique last token make "when to
stop" easy to learn in a few minutes of CPU training.

Prints the parameter count, the build time, and a check (also alone with ``--check-only``): ``--samples`` replies
sampled with vLLM at temperature 1 and ``--max-new`` tokens, their length distribution, the truncated share and
the share with a digit. The model dir goes to ``--out`` (its run directory, data and logs under ``--out``/build).

Measured (defaults, seed 0; 2 cores shared with other jobs, 1-minute load 35-55): 13.31M parameters (vocab 1863),
build 1765 s, of which SFT 1701 s (60 steps x 6 rows, ~28 s per step, ~36 training tokens/s; far from the ~5
minutes aimed at, which this load did not allow checking), held-out loss 2.13. Check, 64 replies at 256 tokens:
5 truncated (7.8%), median 84 tokens (p10 12, p90 235, mean 100), 47% in 60-200, 62% with a digit. The text is
still word salad with the steps' shape; the lengths and the ending are what the benchmarks need. More steps
(``--steps``) should cut the short replies (unmeasured).
"""
from __future__ import annotations

import argparse
import collections
import functools
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / ".cache" / "gen-13m"
END = " Done!"  # every reply ends so; "!" appears nowhere else, so the end-of-turn marker follows it

NUM_WORDS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
             "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"]
SUBJECTS = ["we", "you", "I", "the child", "the teacher", "my friend"]
VERBS = ["look at", "write down", "keep", "check", "add up", "put together", "count", "read"]
OBJECTS = ["the first part", "the next part", "the small number", "the big number", "the two parts", "the tens",
           "the ones", "the last part", "the sum", "the whole thing"]
TAILS = ["with care", "again", "slowly", "one more time", "in our head", "on the paper", "and smile", "first"]


@functools.cache
def nouns(count: int = 2500) -> tuple[str, ...]:
    """The ``count`` most frequent plain words of the main job's pretraining text: the replies' wider vocabulary
    (so the tokenizer reaches ~2k tokens and sampling at temperature 1 has real choices to make)."""
    words = collections.Counter(w for line in open(ROOT / "examples" / "data" / "pretrain.jsonl")
                                for w in re.findall(r"[a-z]{3,12}", json.loads(line)["text"].lower()))
    return tuple(w for w, _ in sorted(words.items(), key=lambda kv: (-kv[1], kv[0]))[:count])


# ---------------------------------------------------------------------------------------------- data


def make_prompt(rng: random.Random) -> tuple[str, int]:
    a, b = rng.randint(1, 99), rng.randint(1, 99)
    kind = rng.randrange(4)
    if kind == 0:
        return f"What is {a}+{b}?", a + b
    if kind == 1:
        return f"What is {a} plus {b}?", a + b
    if kind == 2:
        a, b = max(a, b), min(a, b)
        return f"What is {a} minus {b}?", a - b
    return f"Add {a} and {b}.", a + b


def digit_step(rng: random.Random, k: int) -> str:
    x, y = rng.randint(0, 99), rng.randint(0, 99)
    w = rng.choice(nouns())
    forms = [f"we take {x} {w} and add {y}, so we get {x + y}",
             f"{x} and {y} make {x + y}, and we keep the {w}",
             f"we write {x % 10} and carry {x // 10}",
             f"the ones give {x % 10} and the {w} gives {y % 10}",
             f"{x} is more than {min(x, y)}, so the {w} goes on"]
    return f"Step {k}: {rng.choice(forms)}."


def word_step(rng: random.Random, k: int) -> str:
    name = NUM_WORDS[k - 1] if k <= len(NUM_WORDS) else "next"
    obj = rng.choice(OBJECTS) if rng.random() < 0.5 else f"the {rng.choice(nouns())}"
    return f"Step {name}: {rng.choice(SUBJECTS)} {rng.choice(VERBS)} {obj} {rng.choice(TAILS)}."


def candidate(rng: random.Random, steps: int = 24) -> dict:
    """A prompt and the longest reply it may get: ``steps`` numbered sentences and the closing ones."""
    prompt, answer = make_prompt(rng)
    digits = rng.random() < 0.65
    body = [(digit_step if digits else word_step)(rng, k) for k in range(1, steps + 1)]
    close = f"The answer is {answer}." if digits else "That is the answer."
    return {"prompt": prompt, "body": body, "close": close}


def cut(row: dict, target: int, count) -> str:
    """The reply: as many steps as fit in ``target`` tokens (at least one), then the closing and the end."""
    steps = 1
    while steps < len(row["body"]) and count(reply_text(row, steps + 1)) <= target:
        steps += 1
    return reply_text(row, steps)


def reply_text(row: dict, steps: int) -> str:
    return " ".join(row["body"][:steps] + [row["close"]]) + END


def make_data(work: Path, seed: int, rows: int, held: int, min_len: int, max_len: int, vocab: int) -> dict:
    """Writes corpus.jsonl (the tokenizer's text), sft.jsonl and sft_eval.jsonl; returns reply-length stats."""
    from raylign.engine.tokenizer import train_bpe

    rng = random.Random(seed)
    cands = [candidate(rng) for _ in range(rows + held)]
    # the tokenizer that counts lengths: a BPE on full-length text, as the scratch stage will train on the data
    tok = train_bpe([c["prompt"] + "\n" + reply_text(c, len(c["body"])) for c in cands[:2000]], vocab)

    def count(text: str) -> int:
        return len(tok(text, add_special_tokens=False)["input_ids"]) + 1  # + <|im_end|>

    out, lengths = [], []
    for c in cands:
        reply = cut(c, rng.randint(min_len, max_len), count)
        lengths.append(count(reply))
        out.append({"prompt": c["prompt"], "response": reply})
    work.mkdir(parents=True, exist_ok=True)
    write_jsonl(work / "sft.jsonl", out[:rows])
    write_jsonl(work / "sft_eval.jsonl", out[rows:])
    write_jsonl(work / "corpus.jsonl", [{"text": r["prompt"] + "\n" + r["response"]} for r in out])
    lengths.sort()
    return {"rows": rows, "reply_tokens_min": lengths[0], "reply_tokens_median": lengths[len(lengths) // 2],
            "reply_tokens_max": lengths[-1], "digit_share": sum(any(ch.isdigit() for ch in r["response"])
                                                               for r in out) / len(out)}


def write_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


# ---------------------------------------------------------------------------------------------- build


def start_local_ray(ray_cfg):
    """A Ray of this process's own, as ``init_ray`` starts one, even where someone's ``ray start`` cluster runs
    (a plain ``ray.init()`` would join that one)."""
    import ray

    from raylign.engine.cluster import actor_env

    ray.init(address="local", num_cpus=ray_cfg.num_cpus, include_dashboard=False,
             runtime_env={"env_vars": actor_env(ray_cfg)})


def build(args) -> Path:
    from raylign.engine.config import build_config
    from raylign.engine.driver import run_pipeline
    from raylign.engine.plugins import get_registry

    work = args.out / "build"
    if work.exists():
        shutil.rmtree(work)
    stats = make_data(work, args.seed, args.rows, 64, args.min_len, args.max_len, args.vocab)
    print(f"data: {json.dumps(stats)}", flush=True)
    size = {"hidden_size": args.hidden, "num_layers": args.layers, "num_heads": args.heads,
            "num_kv_heads": args.kv_heads, "intermediate_size": args.intermediate, "max_position_embeddings": 1024}
    data = {
        "run": {"name": "gen", "output_dir": str(work / "runs"), "seed": args.seed, "pipeline": ["scratch", "sft"],
                "probes": [], "observers": []},
        "ray": {"num_cpus": 4},
        "scratch": {"corpus": [str(work / "corpus.jsonl")], "vocab_size": args.vocab, "size": size},
        "sft": {
            "data": [str(work / "sft.jsonl")], "eval_data": [str(work / "sft_eval.jsonl")],
            "max_len": args.max_len + 48, "steps": args.steps, "batch_size": args.batch,
            "micro_batch_size": args.batch, "eval_every": 0, "eval_examples": 16, "checkpoint_every": 0,
            "log_every": 5, "format_regex": r"^[\s\S]*Done!$", "format_eval_prompts": 1, "max_new_tokens": 16,
            "optim": {"lr": args.lr, "warmup_steps": 5, "min_lr_ratio": 0.1, "weight_decay": 0.0},
        },
    }
    t0 = time.perf_counter()
    cfg = build_config(data, get_registry())
    start_local_ray(cfg.ray)
    summary = run_pipeline(cfg, get_registry())
    seconds = time.perf_counter() - t0
    import ray

    ray.shutdown()
    final = Path(summary["stages"]["sft"]["model_dir"])
    if args.out.joinpath("config.json").exists():  # an earlier model: replace its files
        for p in args.out.iterdir():
            if p.name != "build":
                shutil.rmtree(p) if p.is_dir() else p.unlink()
    for p in final.iterdir():
        shutil.copy2(p, args.out / p.name) if p.is_file() else shutil.copytree(p, args.out / p.name)
    sft = summary["stages"]["sft"]["metrics"]
    params = summary["stages"]["scratch"]["metrics"]["parameters"]
    info = {"parameters": params, "vocab_size": summary["stages"]["scratch"]["metrics"]["vocab_size"],
            "build_seconds": round(seconds, 1), "sft_seconds": sft.get("stage_seconds"), "sft_steps": args.steps,
            "sft_batch": args.batch, "final_eval_loss": sft.get("eval_loss"), "seed": args.seed, "data": stats,
            "size": size, "cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0]}
    (args.out / "gen_model.json").write_text(json.dumps(info, indent=1) + "\n")
    print(f"\nmodel: {args.out}\nparameters: {params / 1e6:.2f}M  vocab {info['vocab_size']}  "
          f"build {seconds:.0f} s (sft {sft.get('stage_seconds')} s for {args.steps} steps x {args.batch}); "
          f"final metrics {json.dumps({k: v for k, v in sft.items() if 'loss' in k})}", flush=True)
    return args.out


# ---------------------------------------------------------------------------------------------- check


def check(args) -> dict:
    """Sample ``--samples`` replies with vLLM (in-process engine, the rollout actor's settings) and summarise."""
    from raylign.engine.config import RolloutConfig
    from raylign.engine.rollout import engine_env, engine_kwargs, quiet_thread_warning

    os.environ.update(engine_env(RolloutConfig()))
    from vllm import LLM, SamplingParams

    from raylign.engine.chat_format import render_prompt
    from raylign.engine.modeling import load_tokenizer, stop_token_ids

    tok = load_tokenizer(args.out)
    rng = random.Random(args.seed + 1)
    prompts = [render_prompt(tok, make_prompt(rng)[0]) for _ in range(args.samples)]
    quiet_thread_warning()
    llm = LLM(**engine_kwargs(str(args.out), RolloutConfig(max_model_len=args.max_new + 64), seed=args.seed))
    # one seed per request (one seed for all would draw the same noise for every reply)
    sps = [SamplingParams(temperature=1.0, top_p=1.0, top_k=0, max_tokens=args.max_new, seed=args.seed * 1000 + i,
                          stop_token_ids=stop_token_ids(tok)) for i in range(len(prompts))]
    t0 = time.perf_counter()
    outs = llm.generate(prompts, sps, use_tqdm=False)
    seconds = time.perf_counter() - t0
    comps = [o.outputs[0] for o in outs]
    lengths = sorted(len(c.token_ids) for c in comps)
    n = len(lengths)
    truncated = sum(c.finish_reason == "length" for c in comps)
    bins = [0, 32, 60, 100, 150, 200, args.max_new, args.max_new + 1]
    hist = {f"{a}-{b - 1}": sum(a <= x < b for x in lengths) for a, b in zip(bins, bins[1:])}
    hist[f"{args.max_new} (truncated)"] = hist.pop(f"{args.max_new}-{args.max_new}")
    res = {"samples": n, "max_new": args.max_new, "truncated": truncated, "truncated_share": truncated / n,
           "min": lengths[0], "p10": lengths[n // 10], "median": lengths[n // 2], "p90": lengths[(9 * n) // 10],
           "max": lengths[-1], "mean": sum(lengths) / n, "in_60_200": sum(60 <= x <= 200 for x in lengths) / n,
           "digit_share": sum(any(ch.isdigit() for ch in c.text) for c in comps) / n, "histogram": hist,
           "seconds": round(seconds, 2), "tokens_per_s": round(sum(lengths) / seconds)}
    print(f"\ncheck: {n} replies sampled with vLLM, temperature 1, max {args.max_new} new tokens")
    print(f"  reply tokens: min {res['min']}, p10 {res['p10']}, median {res['median']}, p90 {res['p90']}, "
          f"max {res['max']}, mean {res['mean']:.1f}; in 60-200: {res['in_60_200']:.0%}")
    print(f"  truncated at {args.max_new}: {truncated}/{n} ({res['truncated_share']:.1%}); "
          f"with a digit: {res['digit_share']:.0%}; {res['tokens_per_s']} tokens/s")
    print("  histogram: " + ", ".join(f"{k}: {v}" for k, v in hist.items()))
    for c in comps[:3]:
        print(f"  e.g. ({len(c.token_ids)} tokens, {c.finish_reason}): {c.text[:160]!r}")
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="model dir to write (default %(default)s)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hidden", type=int, default=384)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--heads", type=int, default=6, help="attention heads (head dim = hidden / heads: 64)")
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--intermediate", type=int, default=1024)
    ap.add_argument("--vocab", type=int, default=2048)
    ap.add_argument("--rows", type=int, default=4000, help="SFT rows generated")
    ap.add_argument("--min-len", type=int, default=60, help="shortest target reply (tokens)")
    ap.add_argument("--max-len", type=int, default=200, help="longest target reply (tokens)")
    ap.add_argument("--steps", type=int, default=60, help="SFT optimizer steps")
    ap.add_argument("--batch", type=int, default=6, help="SFT examples per step")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--samples", type=int, default=64, help="replies sampled in the check")
    ap.add_argument("--max-new", type=int, default=256, help="token limit of the check's replies")
    ap.add_argument("--check-only", action="store_true", help="only sample from an existing --out model")
    ap.add_argument("--no-check", action="store_true")
    ap.add_argument("--_check", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.out = args.out.resolve()
    if args._check:
        res = check(args)
        info = args.out / "gen_model.json"
        if info.exists():
            meta = json.loads(info.read_text())
            meta["check"] = res
            info.write_text(json.dumps(meta, indent=1) + "\n")
        return
    if not args.check_only:
        build(args)
    if not args.no_check:  # in a fresh process: vLLM's environment is set before it is imported
        cmd = [sys.executable, __file__, "--_check", "--out", str(args.out), "--seed", str(args.seed),
               "--samples", str(args.samples), "--max-new", str(args.max_new)]
        sys.exit(subprocess.call(cmd))


if __name__ == "__main__":
    main()
