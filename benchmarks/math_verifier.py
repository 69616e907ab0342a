"""Compare raylign's ``math`` verifier with the math-verify package on the project's case table.

    python benchmarks/math_verifier.py [--repeat 5] [--cases tests/data/math_cases.jsonl] [--show-disagreements]

Ours runs as the main job configures it (examples/grpo_math.toml opts into the ``last_number`` extraction, which
some of the table's extraction rows need). Agreement: how many rows of ``tests/data/math_cases.jsonl`` each
verifier scores as labelled (``expected``; for the adversarial rows, a reward of 0 from ours must also come with
status ``invalid``/``timeout``).
Speed: verifications per second over the non-adversarial rows, each pass with cold caches (our parse caches
are cleared before every pass; math-verify keeps none for answers). Both run in this one process, one after
the other. The adversarial rows are timed separately (worst case per verifier).

math-verify is an optional peer: ``pip install math-verify`` (or ``pip install -e .[bench]``).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CASES = ROOT / "tests" / "data" / "math_cases.jsonl"


def load_cases(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def ours():
    from raylign.verifiers.math import equiv as math_equiv
    from raylign.verifiers.math import MathVerifier

    verifier = MathVerifier(extract=("boxed", "answer_is", "last_number"))  # as the main job: last_number is opt-in

    def score(completion, answer):
        return verifier(completion, {"answer": answer})

    def clear():
        math_equiv.parse_answer.cache_clear()
        math_equiv.clean.cache_clear()

    return score, clear


def theirs():
    import logging

    from math_verify import parse, verify

    logging.disable(logging.WARNING)  # math-verify logs every timeout and parse failure

    def score(completion, answer):
        answer = str(answer)
        gold = parse(f"${answer}$") or parse(answer)
        return float(verify(gold, parse(completion)))

    return score, lambda: None


def agrees(case: dict, result) -> bool:
    reward = getattr(result, "reward", result)
    if reward != case["expected"]:
        return False
    if case.get("status") and hasattr(result, "status"):
        return result.status in ("invalid", "timeout")
    return True


def run(name, factory, cases, repeat, adversarial_peer=True):
    score, clear = factory()
    adversarial = [c for c in cases if c.get("status")]
    regular = [c for c in cases if not c.get("status")]
    score(regular[0]["completion"], regular[0]["answer"])  # warm-up: imports, compiled regexes
    clear()
    rates, verdicts = [], {}
    for _ in range(repeat):
        clear()
        start = time.perf_counter()
        for i, c in enumerate(regular):
            verdicts[i] = score(c["completion"], c["answer"])
        rates.append(len(regular) / (time.perf_counter() - start))
    hits = {id(c): agrees(c, verdicts[i]) for i, c in enumerate(regular)}
    worst = 0.0
    for c in adversarial if (adversarial_peer or name == "raylign") else []:
        start = time.perf_counter()
        result = score(c["completion"], c["answer"])
        worst = max(worst, time.perf_counter() - start)
        hits[id(c)] = agrees(c, result)
    return {"rate": statistics.median(rates), "hits": hits, "worst_adversarial_s": worst,
            "adversarial_run": adversarial_peer or name == "raylign"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=Path, default=DEFAULT_CASES)
    ap.add_argument("--repeat", type=int, default=5, help="timed passes over the table (median reported)")
    ap.add_argument("--skip-peer-adversarial", action="store_true",
                    help="do not feed the adversarial rows to math-verify (its own timeouts take seconds)")
    ap.add_argument("--show-disagreements", action="store_true")
    args = ap.parse_args(argv)
    try:
        import math_verify  # noqa: F401
    except ImportError:
        print("math-verify is not installed; install the peer with:\n"
              "    pip install math-verify        (or: pip install -e '.[bench]')")
        return 0
    from importlib.metadata import version

    cases = load_cases(args.cases)
    results = {"raylign": run("raylign", ours, cases, args.repeat),
               "math-verify": run("math-verify", theirs, cases, args.repeat, not args.skip_peer_adversarial)}
    names = list(results)
    header = f"{'':34}" + "".join(f"{n:>18}" for n in names)
    print(f"case table: {args.cases} ({len(cases)} rows); math-verify {version('math-verify')}")
    print(header)
    print("-" * len(header))
    by_cat = defaultdict(list)
    for c in cases:
        by_cat[c.get("category", "?")].append(c)
    for cat, rows in sorted(by_cat.items()):
        cells = []
        for n in names:
            got = [results[n]["hits"][id(c)] for c in rows if id(c) in results[n]["hits"]]
            cells.append(f"{sum(got)}/{len(got)}" if got else "skipped")
        print(f"  {cat:32}" + "".join(f"{x:>18}" for x in cells))
    print("-" * len(header))
    for n in names:
        hits = results[n]["hits"]
        results[n]["agree"] = sum(hits.values())
        results[n]["n"] = len(hits)
    print(f"{'agreement with labels':34}" + "".join(
        f"{results[n]['agree']}/{results[n]['n']} {100 * results[n]['agree'] / results[n]['n']:.1f}%".rjust(18)
        for n in names))
    print(f"{'verifications/s (regular rows)':34}" + "".join(f"{results[n]['rate']:>18,.0f}" for n in names))
    print(f"{'worst adversarial row (ms)':34}" + "".join(
        (f"{1e3 * results[n]['worst_adversarial_s']:>18.1f}" if results[n]["adversarial_run"] else f"{'skipped':>18}")
        for n in names))
    speedup = results["raylign"]["rate"] / results["math-verify"]["rate"]
    print(f"\nspeed-up: {speedup:.1f}x (target >= 2x); agreement: raylign {results['raylign']['agree']} vs "
          f"math-verify {results['math-verify']['agree']} (target: raylign >= math-verify)")
    if args.show_disagreements:
        print("\nrows math-verify gets wrong / raylign gets wrong:")
        for c in cases:
            for n in names:
                if id(c) in results[n]["hits"] and not results[n]["hits"][id(c)]:
                    print(f"  [{n}] {c.get('category')}: {c.get('note')}  answer={c['answer']!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
