"""Regenerate every data file the examples use (stdlib only, deterministic from --seed).

    python examples/datagen/make_data.py --out examples/data [--seed 0]

Files written to --out:
  pretrain.jsonl, pretrain_eval.jsonl   {"text"}: mini-encyclopedia, arithmetic statements, a little Python
  sft.jsonl, sft_eval.jsonl             {"prompt", "response"} or {"messages": [user, assistant]}
  sft_code.jsonl                        {"prompt", "response"}: a ```python fenced``` solution per train code task
  math_train.jsonl, math_eval.jsonl     {"prompt", "answer", "verifier": "math", "solution"}
  code_train.jsonl, code_eval.jsonl     {"prompt", "tests", "verifier": "code", "solution"}
  mixed_train.jsonl                     math and code task rows, shuffled (each row's `verifier` routes it)
Eval files never share a question with the training files (see each module's docstring for what is held out).
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
import code_tasks  # noqa: E402
import concepts  # noqa: E402
import corpus  # noqa: E402
import math_tasks  # noqa: E402
import sft  # noqa: E402

N_CODE_EVAL = 100              # balanced over the families
CODE_TRAIN_PER_FAMILY = 40     # code_train.jsonl: cross-named train tasks, each family at most this often
                               # (sft_code.jsonl has every train task under its own name and a renamed variant)
N_MIXED_MATH = 600             # mixed_train.jsonl: this many math_train rows plus every code_train row


def code_rows(seed: int):
    """(code_train rows, code_eval rows, sft_code rows, train tasks)."""
    train_tasks, eval_tasks = code_tasks.all_tasks(seed)
    rng = random.Random(f"code-tests-{seed}")
    tests = {t.prompt: code_tasks.make_tests(rng, t) for t in train_tasks + eval_tasks}
    order = random.Random(f"code-order-{seed}")
    held = code_tasks.balanced(order, eval_tasks, N_CODE_EVAL, N_CODE_EVAL)
    # SFT: every train task under its own name and under a renamed variant. GRPO: every train task under another
    # family's name, so its prompts are ones SFT never answered.
    variants = code_tasks.renamed(random.Random(f"code-names-{seed}"), train_tasks, eval_tasks)
    rl_tasks = code_tasks.cross_named(random.Random(f"code-rl-names-{seed}"), train_tasks, eval_tasks)
    vrng = random.Random(f"code-variant-tests-{seed}")
    tests.update({t.prompt: code_tasks.make_tests(vrng, t) for t in variants + rl_tasks})
    train = code_tasks.balanced(random.Random(f"code-rl-order-{seed}"), rl_tasks, len(rl_tasks),
                                CODE_TRAIN_PER_FAMILY)
    sft_code = list(train_tasks) + variants
    order.shuffle(sft_code)
    return ([t.row(tests[t.prompt]) for t in train], [t.row(tests[t.prompt]) for t in held],
            [code_tasks.sft_row(t) for t in sft_code], train_tasks)


def build(seed: int) -> dict[str, list[dict]]:
    """Every file's rows, by file name."""
    table = concepts.load()
    split = arith.split(seed)
    code_train, code_eval, sft_code, train_tasks = code_rows(seed)
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
        "code_train.jsonl": code_train, "code_eval.jsonl": code_eval,
        "mixed_train.jsonl": mixed,
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
