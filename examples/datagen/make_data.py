"""Regenerate every data file the examples use (stdlib only, deterministic from --seed).

    python examples/datagen/make_data.py --out examples/data [--seed 0]

Files written to --out:
  pretrain.jsonl, pretrain_eval.jsonl   {"text"}: mini-encyclopedia, arithmetic statements, a little Python
  sft.jsonl, sft_eval.jsonl             {"prompt", "response"} or {"messages": [user, assistant]}
  sft_code.jsonl                        {"prompt", "response"}: a ```python fenced``` solution per SFT code task
  math_train.jsonl, math_eval.jsonl     {"prompt", "answer", "verifier": "math", "solution"}
  code_train.jsonl, code_eval.jsonl     {"prompt", "tests", "verifier": "code", "solution"}: step functions
  code_eval_names.jsonl                 the same fields: function tasks under names no training file has
  mixed_train.jsonl                     math and code task rows, shuffled (each row's `verifier` routes it)
  prefs_train.jsonl, prefs_eval.jsonl   {"prompt", "chosen", "rejected"} + "label_flipped" / "subset": answers to
                                        concept questions ranked by the style_judge verifier (the gold judge)
  rlhf_train.jsonl, rlhf_eval.jsonl     {"prompt", "answer"}: PPO prompts, answer = the reference for style_judge
Eval files never share a question with the training files (see each module's docstring for what is held out).
prefs.py scores answers with raylign.verifiers.style, so raylign must be importable (the project's venv).
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import arith  # noqa: E402
import code_steps  # noqa: E402
import code_tasks  # noqa: E402
import concepts  # noqa: E402
import corpus  # noqa: E402
import math_tasks  # noqa: E402
import prefs  # noqa: E402
import sft  # noqa: E402

N_CODE_EVAL_NAMES = 100        # code_eval_names.jsonl: function tasks under unseen names, balanced over the families
N_MIXED_MATH = 600             # mixed_train.jsonl: this many math_train rows plus every code_train row


def code_rows(seed: int):
    """(code_train rows, code_eval rows, code_eval_names rows, sft_code rows, train function tasks).

    SFT: every train function task under its own name and under a renamed variant, every single step, and
    code_steps' SFT step functions. GRPO (code_train) asks code_steps' RL split, code_eval its eval split.
    """
    train_tasks, eval_tasks = code_tasks.all_tasks(seed)
    rng = random.Random(f"code-tests-{seed}")
    tests = {t.prompt: code_tasks.make_tests(rng, t) for t in train_tasks + eval_tasks}
    order = random.Random(f"code-order-{seed}")
    held = code_tasks.balanced(order, eval_tasks, N_CODE_EVAL_NAMES, N_CODE_EVAL_NAMES)
    variants = code_tasks.renamed(random.Random(f"code-names-{seed}"), train_tasks, eval_tasks)
    step_sft, step_rl, step_eval = code_steps.split(seed)
    srng = random.Random(f"code-step-tests-{seed}")
    train, evals = ([code_tasks.row(t, code_steps.make_tests(srng, t)) for t in part] for part in (step_rl, step_eval))
    sft_code = [code_tasks.sft_row(t) for t in list(train_tasks) + variants + code_steps.single_steps(seed) + step_sft]
    order.shuffle(sft_code)
    return train, evals, [code_tasks.row(t, tests[t.prompt]) for t in held], sft_code, train_tasks


def build(seed: int) -> dict[str, list[dict]]:
    """Every file's rows, by file name."""
    table = concepts.load()
    split = arith.split(seed)
    code_train, code_eval, code_eval_names, sft_code, train_tasks = code_rows(seed)
    pretrain, pretrain_eval = corpus.build(seed, table, split, train_tasks)
    sft_train, sft_eval = sft.build(seed, table, split)
    math_train, math_eval = math_tasks.build(seed, split)
    rng = random.Random(f"mixed-{seed}")
    mixed = rng.sample(math_train, N_MIXED_MATH) + list(code_train)
    rng.shuffle(mixed)
    return {
        "pretrain.jsonl": pretrain, "pretrain_eval.jsonl": pretrain_eval,
        "sft.jsonl": sft_train, "sft_eval.jsonl": sft_eval, "sft_code.jsonl": sft_code,
        "math_train.jsonl": math_train, "math_eval.jsonl": math_eval,
        "code_train.jsonl": code_train, "code_eval.jsonl": code_eval, "code_eval_names.jsonl": code_eval_names,
        "mixed_train.jsonl": mixed,
        **prefs.build(seed, table),
    }


def write(files: dict[str, list[dict]], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in files.items():
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        (out / name).write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE.parent / "data", help="output directory")
    parser.add_argument("--seed", type=int, default=0, help="every random choice follows from it")
    args = parser.parse_args(argv)
    files = build(args.seed)
    write(files, args.out)
    for name, rows in files.items():
        size = (args.out / name).stat().st_size
        print(f"{name:22s} {len(rows):6d} rows {size / 1e6:7.3f} MB")


if __name__ == "__main__":
    main()
