"""Step functions: the GRPO code task. A prompt lists a few steps in words, the function applies them in order,
one statement per step, and returns the result:

    Write a Python function transform(x) that adds 3, then caps it at 9, then doubles it, and returns the result.

    def transform(x):
        x = x + 3
        x = min(x, 9)
        x = x * 2
        return x

Every task shares the same moves: the name and parameter copied from the prompt, each step's phrase turned into
its statement (with its constant copied), the steps kept in order, and the return once the last is written.
There are far too many step lists to learn by heart, so a model gets a held-out one right only by doing those
moves, which is what lets an RL stage that practises on some tasks gain on others (as long additions do for
math). SFT (sft_code.jsonl) shows every single step on its own and STEPS_SFT step functions, all but
STEPS_SFT_LONG of them two steps long; GRPO (code_train.jsonl) asks STEPS_RL step functions of three steps and
code_eval.jsonl holds out STEPS_EVAL others of three steps again; no step list is in two of the three sets. The
chains GRPO practises and the eval asks are longer than nearly all SFT shows, so no seed's SFT model has learned
them already (with two- and three-step chains in equal parts everywhere, the SFT start ranged from 36% to 96%
held-out over four seeds, leaving one seed nothing to gain). The few three-step SFT rows are there so that the
SFT model writes a third statement at all: with none it wrote two for every three-step prompt, and GRPO had no
right program to reinforce. Function names come from a small pool every split shares: writing an unseen
name is a different skill, measured by code_tasks' held-out names (code_eval_names.jsonl).
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from sampling import distinct_parts

# op: (phrasings, statement); {v} is the parameter, {k} the step's constant (None: the op takes none)
OPS = {
    "add": (["adds {k}", "increases it by {k}"], "{v} = {v} + {k}"),
    "sub": (["subtracts {k}", "decreases it by {k}"], "{v} = {v} - {k}"),
    "mul": (["multiplies it by {k}"], "{v} = {v} * {k}"),
    "div": (["floor-divides it by {k}"], "{v} = {v} // {k}"),
    "mod": (["takes it modulo {k}"], "{v} = {v} % {k}"),
    "cap": (["caps it at {k}"], "{v} = min({v}, {k})"),
    "floor": (["raises it to at least {k}"], "{v} = max({v}, {k})"),
    "double": (["doubles it"], "{v} = {v} * 2"),
    "square": (["squares it"], "{v} = {v} * {v}"),
    "negate": (["negates it"], "{v} = -{v}"),
    "abs": (["takes its absolute value"], "{v} = abs({v})"),
}
CONSTS = range(2, 10)
NAMES = ["transform", "process", "apply_steps", "compute", "run_steps", "pipeline", "calc", "steps"]
PARAMS = ["x", "n", "v", "num"]
SHORT_STEPS, LONG_STEPS = 2, 3     # SFT's step functions are mostly SHORT; GRPO's and eval's are all LONG
N_TESTS = 6
TEST_INPUTS = range(-20, 31)

STEPS_EVAL = 400                   # -> code_eval.jsonl
STEPS_SFT = 800                    # -> sft_code.jsonl, with every single step (single_steps)
STEPS_SFT_LONG = 100               # of STEPS_SFT: this many LONG, the others SHORT
SINGLE_STEP_COPIES = 2             # each single-step task this many times, under different names
STEPS_RL = 1000                    # -> code_train.jsonl


@dataclass(frozen=True)
class StepTask:
    name: str
    param: str
    steps: tuple[tuple[str, int | None, int], ...]   # (op, constant, phrasing index)
    prompt: str
    solution: str

    def key(self) -> tuple:
        """What a task asks, whatever its name, parameter and phrasing: its step list."""
        return tuple((op, k) for op, k, _ in self.steps)


def statement(op: str, k: int | None, v: str) -> str:
    return OPS[op][1].format(v=v, k=k)


def make_task(name: str, param: str, steps) -> StepTask:
    phrases = [OPS[op][0][i].format(k=k) for op, k, i in steps]
    prompt = (f"Write a Python function {name}({param}) that {', then '.join(phrases)}, and returns the result.")
    body = "".join(f"    {statement(op, k, param)}\n" for op, k, _ in steps)
    return StepTask(name, param, tuple(steps), prompt, f"def {name}({param}):\n{body}    return {param}\n")


def random_task(rng: random.Random, n_steps: int) -> StepTask:
    steps = []
    for _ in range(n_steps):
        while True:
            op = rng.choice(sorted(OPS))
            if not steps or op != steps[-1][0]:  # no op twice in a row ("doubles it, then doubles it")
                break
        k = rng.choice(CONSTS) if "{k}" in OPS[op][1] else None
        steps.append((op, k, rng.randrange(len(OPS[op][0]))))
    return make_task(rng.choice(NAMES), rng.choice(PARAMS), steps)


def split(seed: int) -> tuple[list[StepTask], list[StepTask], list[StepTask]]:
    """(sft, rl, eval) tasks: RL's and eval's of LONG_STEPS steps, SFT's of SHORT_STEPS but STEPS_SFT_LONG of
    them; no step list in two of them, or twice in one."""
    rng = random.Random(f"steps-{seed}")

    def drawer(n_steps: int):
        def draw() -> StepTask:
            while True:
                task = random_task(rng, n_steps)
                if len(set(outputs(task, TEST_INPUTS))) > 2:  # not (nearly) constant
                    return task
        return draw

    held, rl, sft_long = distinct_parts(drawer(LONG_STEPS), (STEPS_EVAL, STEPS_RL, STEPS_SFT_LONG), key=StepTask.key)
    sft_short, = distinct_parts(drawer(SHORT_STEPS), (STEPS_SFT - STEPS_SFT_LONG,), key=StepTask.key)
    return sft_short + sft_long, rl, held


def single_steps(seed: int) -> list[StepTask]:
    """Every one-step task (each op, constant and phrasing), SINGLE_STEP_COPIES times under random names: the
    moves alone, as SFT's one-line facts are for long additions."""
    rng = random.Random(f"single-steps-{seed}")
    out = []
    for op in sorted(OPS):
        for k in CONSTS if "{k}" in OPS[op][1] else [None]:
            for i in range(len(OPS[op][0])):
                out += [make_task(rng.choice(NAMES), rng.choice(PARAMS), [(op, k, i)])
                        for _ in range(SINGLE_STEP_COPIES)]
    return out


def step_value(op: str, k: int | None, x: int) -> int:
    """What one step does to x, written out independently of its statement template."""
    if op in ("add", "sub", "mul", "div", "mod"):
        return {"add": x + k, "sub": x - k, "mul": x * k, "div": x // k, "mod": x % k}[op]
    if op in ("cap", "floor"):
        return min(x, k) if op == "cap" else max(x, k)
    return {"double": 2 * x, "square": x * x, "negate": -x, "abs": abs(x)}[op]


def apply(task: StepTask, x: int) -> int:
    for op, k, _ in task.steps:
        x = step_value(op, k, x)
    return x


def outputs(task: StepTask, inputs) -> list[int]:
    return [apply(task, x) for x in inputs]


def make_tests(rng: random.Random, task: StepTask) -> list[str]:
    """N_TESTS asserts at distinct inputs, computed by `apply` (not by running the solution), with at least two
    distinct outputs."""
    while True:
        xs = rng.sample(TEST_INPUTS, N_TESTS)
        if len(set(outputs(task, xs))) > 1:
            return [f"assert {task.name}({x}) == {y}" for x, y in zip(xs, outputs(task, xs))]

