"""Small Python function tasks in MBPP-assert style, from templated families.

A task is one (family, function name, parameter names, constant). Per family one function name is held out,
and for families with a constant a few constants are held out: a task using either is an eval task
(code_eval_names.jsonl), every other task is a train task (sft_code.jsonl, the corpus).

Writing the asked-for name means copying it from the prompt, not recalling the family's usual names: so SFT
also sees every train task once more under a renamed variant (:func:`renamed`: a prefix or suffix on one of its
train names, e.g. ``calc_square`` or ``larger_fn``). Renamed variants never take an eval name and never enter
the corpus; eval names stay unseen everywhere. A 2M-parameter model rarely copies a name it has never seen, and no
GRPO prompt set tried on these families moved that (docs/experiments.md lists them), so GRPO's code task is
code_steps.py's instead; code_eval_names.jsonl stays as the measure of that one skill.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

# (family, five function names, arity, input kind, return expression, description, constants or None)
# {0}/{1} are the parameter names, {k} the constant.
FAMILIES = [
    ("add", ["add", "add_two", "sum_two", "plus", "add_nums"], 2, "int", "{0} + {1}", "returns {0} + {1}", None),
    ("sub", ["sub", "subtract", "minus", "diff", "sub_nums"], 2, "int", "{0} - {1}", "returns {0} - {1}", None),
    ("mul", ["mul", "multiply", "times", "product", "mul_nums"], 2, "int", "{0} * {1}", "returns {0} * {1}", None),
    ("max2", ["max_of_two", "larger", "bigger", "maximum", "max2"], 2, "int", "max({0}, {1})",
     "returns the larger of {0} and {1}", None),
    ("min2", ["min_of_two", "smaller", "lesser", "minimum", "min2"], 2, "int", "min({0}, {1})",
     "returns the smaller of {0} and {1}", None),
    ("square", ["square", "sq", "squared", "square_of", "sqr"], 1, "int", "{0} * {0}", "returns {0} * {0}", None),
    ("cube", ["cube", "cubed", "cube_of", "third_power", "cb"], 1, "int", "{0} * {0} * {0}",
     "returns {0} * {0} * {0}", None),
    ("negate", ["negate", "neg", "negative", "flip_sign", "opposite"], 1, "int", "-{0}", "returns -{0}", None),
    ("double", ["double", "twice", "times_two", "doubled", "dbl"], 1, "int", "{0} * 2", "returns {0} * 2", None),
    ("absval", ["absolute", "abs_value", "magnitude", "get_abs", "absval"], 1, "int", "abs({0})",
     "returns the absolute value of {0}", None),
    ("is_even", ["is_even", "even", "check_even", "is_even_number", "even_check"], 1, "int", "{0} % 2 == 0",
     "returns True if {0} is even and False otherwise", None),
    ("is_odd", ["is_odd", "odd", "check_odd", "is_odd_number", "odd_check"], 1, "int", "{0} % 2 == 1",
     "returns True if {0} is odd and False otherwise", None),
    ("is_pos", ["is_positive", "positive", "check_positive", "above_zero", "is_pos"], 1, "int", "{0} > 0",
     "returns True if {0} is greater than 0 and False otherwise", None),
    ("add_k", ["add_const", "increase", "shift_up", "plus_const", "bump"], 1, "int", "{0} + {k}",
     "returns {0} + {k}", list(range(1, 11))),
    ("sub_k", ["sub_const", "decrease", "shift_down", "minus_const", "drop"], 1, "int", "{0} - {k}",
     "returns {0} - {k}", list(range(1, 11))),
    ("mul_k", ["mul_const", "scale", "times_const", "multiply_by", "grow"], 1, "int", "{0} * {k}",
     "returns {0} * {k}", list(range(2, 11))),
    ("const", ["constant", "get_value", "answer", "value", "const"], 0, "int", "{k}",
     "takes no arguments and returns {k}", list(range(0, 21))),
    ("concat", ["concat", "join_two", "combine", "glue", "concat_strings"], 2, "str", "{0} + {1}",
     "returns the string {0} + {1}", None),
    ("reverse", ["reverse", "reverse_string", "backwards", "flip", "rev"], 1, "str", "{0}[::-1]",
     "returns the string {0} reversed", None),
    ("upper", ["to_upper", "shout", "upper", "uppercase", "caps"], 1, "str", "{0}.upper()",
     "returns the string {0} in upper case", None),
    ("strlen", ["str_len", "count_chars", "text_len", "num_chars", "char_count"], 1, "str", "len({0})",
     "returns the number of characters in the string {0}", None),
    ("list_len", ["list_len", "count_items", "num_items", "length_of", "n_items"], 1, "list", "len({0})",
     "returns the length of the list {0}", None),
    ("first", ["first", "head", "first_item", "get_first", "front"], 1, "list", "{0}[0]",
     "returns the first element of the list {0}", None),
    ("last", ["last", "last_one", "last_item", "get_last", "back"], 1, "list", "{0}[-1]",
     "returns the last element of the list {0}", None),
    ("list_sum", ["list_sum", "total", "sum_list", "add_all", "sum_items"], 1, "list", "sum({0})",
     "returns the sum of the numbers in the list {0}", None),
    ("list_max", ["list_max", "largest", "max_item", "biggest", "top"], 1, "list", "max({0})",
     "returns the largest number in the list {0}", None),
]

PARAMS = {
    ("int", 2): [("a", "b"), ("x", "y"), ("m", "n")],
    ("int", 1): [("x",), ("n",), ("a",)],
    ("int", 0): [()],
    ("str", 2): [("s", "t"), ("a", "b"), ("first", "second")],
    ("str", 1): [("s",), ("text",), ("word",)],
    ("list", 1): [("xs",), ("items",), ("nums",)],
}
PREFIXES = ["my_", "get_", "calc_", "do_", "compute_", "find_", "fn_", "new_", "the_", "make_"]
SUFFIXES = ["_fn", "_value", "_result", "2", "_v2", "_func", "_it", "_now", "_op", "_out"]
WORDS = ["cat", "dog", "ray", "code", "sun", "apple", "blue", "hello", "token", "moon", "tree", "red"]
N_TESTS = 3


@dataclass(frozen=True)
class Task:
    family: str
    name: str
    params: tuple[str, ...]
    k: int | None
    prompt: str
    solution: str


def make_task(family, name, params, k, expr, desc) -> Task:
    signature = f"{name}({', '.join(params)})"
    prompt = f"Write a Python function {signature} that {desc.format(*params, k=k)}."
    solution = f"def {signature}:\n    return {expr.format(*params, k=k)}\n"
    return Task(family, name, params, k, prompt, solution)


def all_tasks(seed: int) -> tuple[list[Task], list[Task]]:
    """(train tasks, eval tasks), each in a fixed order."""
    rng = random.Random(f"code-{seed}")
    train, held = [], []
    for family, names, arity, kind, expr, desc, consts in FAMILIES:
        eval_name = rng.choice(names)
        eval_ks = set(rng.sample(consts, 4 if family == "const" else 2)) if consts else set()
        for name in names:
            for params in PARAMS[(kind, arity)]:
                for k in consts or [None]:
                    task = make_task(family, name, params, k, expr, desc)
                    (held if name == eval_name or k in eval_ks else train).append(task)
    return train, held


def with_name(task: Task, name: str) -> Task:
    """The same task (family, parameters, constant) asked under another function name."""
    _, _, _, _, expr, desc, _ = next(f for f in FAMILIES if f[0] == task.family)
    return make_task(task.family, name, task.params, task.k, expr, desc)


def renamed(rng: random.Random, train: list[Task], held: list[Task]) -> list[Task]:
    """One variant of each train task under a new name (a prefix or a suffix on its own name), never a name of
    any task of either split."""
    taken = {t.name for t in train} | {t.name for t in held}
    out = []
    for t in train:
        while True:
            name = rng.choice(PREFIXES) + t.name if rng.random() < 0.5 else t.name + rng.choice(SUFFIXES)
            if name not in taken:
                break
        out.append(with_name(t, name))
    return out


def balanced(rng: random.Random, tasks: list[Task], n: int, per_family: int) -> list[Task]:
    """Up to n tasks taken round-robin over the families (at most per_family each), shuffled."""
    groups: dict[str, list[Task]] = {}
    for t in tasks:
        groups.setdefault(t.family, []).append(t)
    for group in groups.values():
        rng.shuffle(group)
    out = []
    for i in range(per_family):
        out += [g[i] for g in groups.values() if i < len(g)][:n - len(out)]
    rng.shuffle(out)
    return out


def _arg(rng: random.Random, kind: str):
    if kind == "int":
        return rng.randint(-10, 30)
    if kind == "str":
        return rng.choice(WORDS)
    return [rng.randint(0, 20) for _ in range(rng.randint(1, 5))]


def make_tests(rng: random.Random, task: Task) -> list[str]:
    """N_TESTS asserts computed from the canonical solution; retried until the outputs are not all equal."""
    namespace: dict = {}
    exec(task.solution, namespace)  # our own generated code
    fn = namespace[task.name]
    kind = next(f[3] for f in FAMILIES if f[0] == task.family)
    if not task.params:
        return [f"assert {task.name}() == {fn()!r}"]
    for _ in range(50):
        calls = [[_arg(rng, kind) for _ in task.params] for _ in range(N_TESTS)]
        outputs = [fn(*args) for args in calls]
        if len({repr(o) for o in outputs}) > 1:
            break
    return [f"assert {task.name}({', '.join(repr(x) for x in args)}) == {out!r}" for args, out in zip(calls, outputs)]


def row(task, tests: list[str]) -> dict:
    """A GRPO/eval row for any task with a `prompt` and a `solution` (a Task or a code_steps.StepTask)."""
    return {"prompt": task.prompt, "tests": tests, "verifier": "code", "solution": task.solution}


def sft_row(task) -> dict:
    """An SFT pair for any task with a `prompt` and a `solution`: the solution in a ```python fence."""
    return {"prompt": task.prompt, "response": f"```python\n{task.solution}```"}


def corpus_text(rng: random.Random, task: Task) -> str:
    """One function as it might appear in a file: an optional comment or docstring, then the code."""
    signature = f"{task.name}({', '.join(task.params)})"
    desc = task.prompt.split(" that ", 1)[1].rstrip(".")
    style = rng.randrange(4)
    if style == 0:
        return f"# {signature} {desc}.\n{task.solution}"
    if style == 1:
        body = task.solution.split("\n", 1)[1]
        return f"def {signature}:\n    \"\"\"{desc[0].upper()}{desc[1:]}.\"\"\"\n{body}"
    if style == 2:
        return f"The function {signature} {desc}.\n{task.solution}"
    return task.solution


def snippet(rng: random.Random, op: str, a: int, b: int, c: int) -> str:
    """A few lines of plain Python that compute one train-split arithmetic fact."""
    sym = {"add": "+", "sub": "-", "mul": "*"}[op]
    x, y = rng.choice([("x", "y"), ("a", "b"), ("first", "second")])
    style = rng.randrange(3 if op == "mul" else 2)
    if style == 0:
        return f"{x} = {a}\n{y} = {b}\nprint({x} {sym} {y})  # prints {c}\n"
    if style == 1:
        return f">>> {a} {sym} {b}\n{c}\n"
    return f"total = 0\nfor _ in range({b}):\n    total = total + {a}\nprint(total)  # prints {c}\n"
