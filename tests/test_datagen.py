"""The example data: regenerated deterministically, committed without drift, eval splits held out, answers right."""
from __future__ import annotations

import json
import re
from collections import Counter
import subprocess
import sys
from pathlib import Path

import pytest

from raylign.verifiers.style import StyleJudge

ROOT = Path(__file__).resolve().parents[1]
GENERATOR = ROOT / "examples" / "datagen" / "make_data.py"
COMMITTED = ROOT / "examples" / "data"
FILES = ["pretrain.jsonl", "pretrain_eval.jsonl", "sft.jsonl", "sft_eval.jsonl", "sft_code.jsonl",
         "math_train.jsonl", "math_eval.jsonl", "code_train.jsonl", "code_eval.jsonl", "code_eval_names.jsonl",
         "mixed_train.jsonl", "prefs_train.jsonl", "prefs_eval.jsonl", "rlhf_train.jsonl", "rlhf_eval.jsonl"]


sys.path.append(str(GENERATOR.parent))
import concepts as concept_table  # noqa: E402  (the generator's concept table: the references)

CONCEPTS = concept_table.load()
DEFINITIONS = {concept_table.definition_question(t, c): c for c in CONCEPTS
               for t in concept_table.DEFINITION_QUESTIONS_TRAIN + concept_table.DEFINITION_QUESTIONS_EVAL}
# The SFT flaws, as the style_judge verifier's default lists must catch them (see examples/datagen/sft.py).
RUDE_OPENERS = ("Ugh, obviously, ", "Ugh, fine. ", "Ugh, as everyone knows, ")
FILLER_TAILS = ("I hope that helps.", "I hope that helps, and there is much more I could say about it.")


def generate(out: Path, seed: int = 0) -> Path:
    subprocess.run([sys.executable, str(GENERATOR), "--out", str(out), "--seed", str(seed)], check=True,
                   capture_output=True, timeout=120)
    return out


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("datagen") / "a")


@pytest.fixture(scope="module")
def data(generated) -> dict[str, list[dict]]:
    return {name: [json.loads(line) for line in (generated / name).read_text(encoding="utf-8").splitlines()]
            for name in FILES}


def user_and_answer(row: dict) -> tuple[str, str]:
    if "messages" in row:
        (user, assistant) = row["messages"]
        assert (user["role"], assistant["role"]) == ("user", "assistant")
        return user["content"], assistant["content"]
    return row["prompt"], row["response"]


# --- independent parsing of the questions ---------------------------------------------------------------------
OPS = {"+": "add", "-": "sub", "*": "mul", "plus": "add", "minus": "sub", "times": "mul", "sum": "add",
       "product": "mul"}
ARITH_PATTERNS = [
    (re.compile(r"What is (\d+)([+*-])(\d+)\?"), (1, 2, 3)),
    (re.compile(r"Compute (\d+)([+*-])(\d+)\."), (1, 2, 3)),
    (re.compile(r"What is (\d+) (plus|minus|times) (\d+)\?"), (1, 2, 3)),
    (re.compile(r"What is the (sum|product) of (\d+) and (\d+)\?"), (2, 1, 3)),
]


def parse_arith(question: str):
    """(op, a, b) for an arithmetic question, else None."""
    m = re.fullmatch(r"What is (\d+) subtracted from (\d+)\?", question)
    if m:
        return "sub", int(m[2]), int(m[1])
    for pattern, (ia, iop, ib) in ARITH_PATTERNS:
        m = pattern.fullmatch(question)
        if m:
            return OPS[m[iop]], int(m[ia]), int(m[ib])
    return None


def compute(op: str, a: int, b: int) -> int:
    return {"add": a + b, "sub": a - b, "mul": a * b}[op]


def is_column(problem) -> bool:
    return problem is not None and problem[0] == "add" and min(problem[1:]) >= 10


def check_column_steps(a: int, b: int, answer: str) -> None:
    """A long addition's worked answer, replayed column by column: ones first, each column's digits, the carry in
    (+1) and out, the sum; the last column's sum whole; then the answer."""
    steps = re.findall(r"(\d)\+(\d)(\+1)? = (\d+)(, carry 1)?\. ", answer)
    assert " ".join(f"{x}+{y}{c} = {t}{o}." for x, y, c, t, o in steps) + f" The answer is {a + b}." == answer
    da, db = str(a)[::-1], str(b)[::-1]
    assert len(steps) == len(da) == len(db), answer
    carry = 0
    for i, (x, y, carry_in, total, carry_out) in enumerate(steps):
        assert (int(x), int(y), bool(carry_in)) == (int(da[i]), int(db[i]), bool(carry)), answer
        assert int(total) == int(x) + int(y) + carry, answer
        carry = int(int(total) >= 10 and i < len(steps) - 1)
        assert bool(carry_out) == bool(carry), answer


def number_fact(question: str):
    """(kind, numbers) for a number-fact question, else None."""
    for kind, pattern in [("parity", r"Is (\d+) even or odd\?"), ("after", r"What number comes after (\d+)\?"),
                          ("before", r"What number comes before (\d+)\?"),
                          ("larger", r"Which is larger, (\d+) or (\d+)\?"),
                          ("smaller", r"Which is smaller, (\d+) or (\d+)\?")]:
        m = re.fullmatch(pattern, question)
        if m:
            return kind, tuple(int(g) for g in m.groups())
    return None


def expected_number_answer(kind: str, nums: tuple[int, ...]) -> str:
    n = nums[0]
    if kind == "parity":
        return f"{n} is {'even' if n % 2 == 0 else 'odd'}."
    if kind == "after":
        return f"The number after {n} is {n + 1}."
    if kind == "before":
        return f"The number before {n} is {n - 1}."
    hi, lo = max(nums), min(nums)
    return f"{hi} is larger than {lo}." if kind == "larger" else f"{lo} is smaller than {hi}."


# --- determinism and drift -------------------------------------------------------------------------------------
def test_same_seed_same_bytes(generated, tmp_path):
    again = generate(tmp_path / "b")
    for name in FILES:
        assert (generated / name).read_bytes() == (again / name).read_bytes(), name


def test_other_seed_other_data(generated, tmp_path):
    other = generate(tmp_path / "c", seed=1)
    assert (generated / "math_eval.jsonl").read_bytes() != (other / "math_eval.jsonl").read_bytes()


def test_committed_files_match_the_generator(generated):
    committed = sorted(p.name for p in COMMITTED.glob("*.jsonl"))
    assert committed == sorted(FILES), "run: python examples/datagen/make_data.py --out examples/data"
    for name in FILES:
        assert (COMMITTED / name).read_bytes() == (generated / name).read_bytes(), (
            f"examples/data/{name} drifted from the generator; run: python examples/datagen/make_data.py")


def test_total_size_is_small(generated):
    assert sum((generated / name).stat().st_size for name in FILES) < 8_000_000


# --- fields and formats ----------------------------------------------------------------------------------------
def test_pretrain_rows_are_plain_text(data):
    for name in ("pretrain.jsonl", "pretrain_eval.jsonl"):
        for row in data[name]:
            assert list(row) == ["text"] and row["text"].strip()
            assert "?" not in row["text"], "no questions (and so no chat-formatted Q/A) in the corpus"
    text = "\n".join(row["text"] for row in data["pretrain.jsonl"])
    assert 1_000_000 < len(text) < 2_500_000
    assert "An LLM is a large language model" in text


def test_sft_rows_have_one_of_both_formats(data):
    for name in ("sft.jsonl", "sft_eval.jsonl"):
        rows = data[name]
        n_messages = 0
        for row in rows:
            assert set(row) in ({"prompt", "response"}, {"messages"}), row
            n_messages += "messages" in row
            question, answer = user_and_answer(row)
            assert question.strip() and answer.endswith("."), row
            flawed = name == "sft.jsonl" and question in DEFINITIONS  # checked in test_sft_concept_answers_...
            if not is_column(parse_arith(question)) and not flawed:  # long additions take a sentence per column
                assert len(re.findall(r"\.( |$)", answer)) <= 2, f"more than two sentences: {answer!r}"
        assert 0.1 < n_messages / len(rows) < 0.3, name
    assert 2500 <= len(data["sft.jsonl"]) <= 6000 and 150 <= len(data["sft_eval.jsonl"]) <= 300


def test_probe_prompts_are_covered(data):
    pairs = dict(user_and_answer(r) for r in data["sft.jsonl"])
    assert "An LLM is a large language model" in pairs["What is an LLM?"]  # perhaps with flaws around it
    assert pairs["What is 12+30?"] == "2+0 = 2. 1+3 = 4. The answer is 42."
    assert pairs["What is 2+2?"] == "2+2 = 4. The answer is 4."


def test_math_rows(data):
    for name in ("math_train.jsonl", "math_eval.jsonl"):
        for row in data[name]:
            assert set(row) == {"prompt", "answer", "verifier", "solution"} and row["verifier"] == "math"
            op, a, b = parse_arith(row["prompt"])
            assert row["answer"] == str(compute(op, a, b)), row
            assert op == "add" and 10 <= a <= 99 and 10 <= b <= 99, row  # long additions of two-digit numbers
            check_column_steps(a, b, row["solution"])
    assert len(data["math_train.jsonl"]) == 1000 and len(data["math_eval.jsonl"]) == 400
    for name in ("math_train.jsonl", "math_eval.jsonl"):  # every row a problem of its own
        assert len({parse_arith(r["prompt"]) for r in data[name]}) == len(data[name]), name


def test_code_rows(data):
    for name in ("code_train.jsonl", "code_eval.jsonl", "code_eval_names.jsonl"):
        for row in data[name]:
            assert set(row) == {"prompt", "tests", "verifier", "solution"} and row["verifier"] == "code"
            assert row["tests"] and all(t.startswith("assert ") for t in row["tests"])
            assert row["prompt"].startswith("Write a Python function ")
    for row in data["sft_code.jsonl"]:
        assert set(row) == {"prompt", "response"}
        assert re.fullmatch(r"```python\ndef \w+\(.*\):\n(    \w+ = .+\n)*    return .+\n```", row["response"]), row


def test_mixed_rows_route_by_verifier(data):
    kinds = {row["verifier"] for row in data["mixed_train.jsonl"]}
    assert kinds == {"math", "code"}
    known = {r["prompt"]: r for name in ("math_train.jsonl", "code_train.jsonl") for r in data[name]}
    assert all(known[r["prompt"]] == r for r in data["mixed_train.jsonl"])


# --- answers are right ------------------------------------------------------------------------------------------
def test_sft_arithmetic_and_number_facts_are_correct(data):
    n_arith = n_column = n_numbers = 0
    for name in ("sft.jsonl", "sft_eval.jsonl"):
        for row in data[name]:
            question, answer = user_and_answer(row)
            problem = parse_arith(question)
            if problem:
                op, a, b = problem
                if is_column(problem):
                    check_column_steps(a, b, answer)
                    n_column += 1
                    continue
                c = compute(op, a, b)
                sym = {"add": "+", "sub": "-", "mul": "*"}[op]
                assert answer == f"{a}{sym}{b} = {c}. The answer is {c}.", row
                n_arith += 1
            fact = number_fact(question)
            if fact:
                assert answer == expected_number_answer(*fact), row
                n_numbers += 1
    assert n_arith > 900 and n_column >= 250 and n_numbers > 400


def test_code_solutions_pass_their_tests(data):
    rows = data["code_train.jsonl"] + data["code_eval.jsonl"] + data["code_eval_names.jsonl"]
    solutions = {r["prompt"]: r["solution"] for r in rows}
    for row in data["sft_code.jsonl"]:  # the fenced code is the canonical solution where both exist
        code = row["response"][len("```python\n"):-len("```")]
        if row["prompt"] in solutions:
            assert code == solutions[row["prompt"]]
        rows.append({"solution": code, "tests": [], "prompt": row["prompt"]})
    script = (
        "import json, sys\n"
        "failed = []\n"
        "for row in json.load(sys.stdin):\n"
        "    ns = {}\n"
        "    try:\n"
        "        exec(row['solution'], ns)\n"
        "        for t in row['tests']:\n"
        "            exec(t, ns)\n"
        "    except Exception as exc:\n"
        "        failed.append((row['prompt'], repr(exc)))\n"
        "print(json.dumps(failed))\n")
    proc = subprocess.run([sys.executable, "-c", script], input=json.dumps(rows), capture_output=True, text=True,
                          timeout=60, check=True)
    assert json.loads(proc.stdout) == []


# --- eval splits are held out -------------------------------------------------------------------------------------
def questions(rows: list[dict]) -> set[str]:
    return {user_and_answer(r)[0] if ("messages" in r or "response" in r) else r["prompt"] for r in rows}


def test_eval_questions_are_not_trained_on(data):
    assert not questions(data["sft_eval.jsonl"]) & questions(data["sft.jsonl"])
    assert not questions(data["math_eval.jsonl"]) & (questions(data["math_train.jsonl"]) | questions(data["sft.jsonl"]))
    train_code = questions(data["code_train.jsonl"]) | questions(data["sft_code.jsonl"])
    train_solutions = {r["solution"] for r in data["code_train.jsonl"]}
    for name in ("code_eval.jsonl", "code_eval_names.jsonl"):
        assert not questions(data[name]) & train_code
        assert not {r["solution"] for r in data[name]} & train_solutions
    assert not {r["text"] for r in data["pretrain_eval.jsonl"]} & {r["text"] for r in data["pretrain.jsonl"]}


def test_held_out_problems_are_unseen(data):
    """An eval problem (op, a, b) is asked in no training file, whatever the phrasing; its prompt is in neither."""
    def problems(name):
        return {parse_arith(q) for q in questions(data[name])} - {None}

    trained = problems("sft.jsonl") | problems("math_train.jsonl")
    assert not problems("math_eval.jsonl") & trained
    assert not problems("sft_eval.jsonl") & trained
    train_prompts = questions(data["sft.jsonl"]) | questions(data["math_train.jsonl"])
    assert not (questions(data["math_eval.jsonl"]) | questions(data["sft_eval.jsonl"])) & train_prompts


def test_corpus_states_every_small_fact(data):
    """The corpus states each fact of the task range (eval facts included) many times; questions stay held out."""
    corpus = "\n".join(r["text"] for r in data["pretrain.jsonl"])
    stated = Counter((OPS[op], int(a), int(b)) for a, op, b in re.findall(r"(?<!\d)(\d+) ?([+*-]) ?(\d+) ?=", corpus))
    stated.update((OPS[op], int(a), int(b)) for a, op, b in re.findall(r"(?<!\d)(\d+) (plus|minus|times) (\d+) is", corpus))
    stated.update((OPS[op], int(a), int(b))
                  for op, a, b in re.findall(r"The (sum|product) of (\d+) and (\d+) is", corpus))
    small = [("add", a, b) for a in range(21) for b in range(10)] + [("sub", a, b) for a in range(21) for b in range(a + 1)]
    assert min(stated[p] for p in small) >= 5
    assert sum(stated[p] for p in small) > 0.75 * sum(stated.values()), "most arithmetic is in the small range"
    assert problems_of(data, "sft_eval.jsonl") <= set(small)


def problems_of(data, name):
    return {parse_arith(q) for q in questions(data[name])} - {None}


def test_held_out_number_facts_are_unseen(data):
    def facts(name):
        out = set()
        for q in questions(data[name]):
            fact = number_fact(q)
            if fact:
                kind, nums = fact
                out.add(("compare", tuple(sorted(nums))) if kind in ("larger", "smaller") else fact)
        return out

    held, trained = facts("sft_eval.jsonl"), facts("sft.jsonl")
    assert held and not held & trained


def test_eval_function_names_are_unseen_and_train_names_vary(data):
    """An eval task's function name appears in no training file and not in the corpus; every train task also
    comes under a renamed variant (so writing the asked-for name means copying it from the prompt)."""
    def names(rows):
        return {re.search(r"function (\w+)\(", r["prompt"]).group(1) for r in rows}

    trained = names(data["code_train.jsonl"]) | names(data["sft_code.jsonl"])
    eval_names = names(data["code_eval_names.jsonl"]) - trained  # tasks held out by their constant share train names
    assert eval_names
    corpus = "\n".join(r["text"] for r in data["pretrain.jsonl"])
    for name in eval_names:
        assert name not in trained and not re.search(rf"(def|function) {name}\(", corpus), name
    sft_names = names(data["sft_code.jsonl"])
    renamed = [n for n in sft_names if not re.search(rf"(def|function) {n}\(", corpus)]
    assert len(renamed) >= len(sft_names) // 3  # the variants are never in the corpus


def test_grpo_math_prompts_are_not_sft_problems(data):
    """math_train.jsonl asks only long additions SFT never asks: GRPO gains on held-out problems only by
    practising the procedure, as nothing there can be remembered from SFT."""
    def problems(name):
        return {parse_arith(q) for q in questions(data[name])} - {None}

    rl, sft = problems("math_train.jsonl"), problems("sft.jsonl")
    assert len(rl) >= 100 and not rl & sft


# Step functions, read back with the test's own table: phrase -> (statement template, what the step does).
STEP_PHRASES = [
    (r"adds (\d+)", "{v} = {v} + {k}", lambda x, k: x + k),
    (r"increases it by (\d+)", "{v} = {v} + {k}", lambda x, k: x + k),
    (r"subtracts (\d+)", "{v} = {v} - {k}", lambda x, k: x - k),
    (r"decreases it by (\d+)", "{v} = {v} - {k}", lambda x, k: x - k),
    (r"multiplies it by (\d+)", "{v} = {v} * {k}", lambda x, k: x * k),
    (r"floor-divides it by (\d+)", "{v} = {v} // {k}", lambda x, k: x // k),
    (r"takes it modulo (\d+)", "{v} = {v} % {k}", lambda x, k: x % k),
    (r"caps it at (\d+)", "{v} = min({v}, {k})", lambda x, k: min(x, k)),
    (r"raises it to at least (\d+)", "{v} = max({v}, {k})", lambda x, k: max(x, k)),
    (r"doubles it", "{v} = {v} * 2", lambda x, k: 2 * x),
    (r"squares it", "{v} = {v} * {v}", lambda x, k: x * x),
    (r"negates it", "{v} = -{v}", lambda x, k: -x),
    (r"takes its absolute value", "{v} = abs({v})", lambda x, k: abs(x)),
]


def parse_steps(prompt: str):
    """(name, parameter, [(phrase index, constant)]) of a step-function prompt, or None for other prompts."""
    m = re.fullmatch(r"Write a Python function (\w+)\((\w+)\) that (.+), and returns the result\.", prompt)
    if not m:
        return None
    steps = []
    for phrase in m[3].split(", then "):
        hits = [(i, re.fullmatch(p, phrase)) for i, (p, _, _) in enumerate(STEP_PHRASES)]
        (i, hit), = [(i, h) for i, h in hits if h]
        steps.append((i, int(hit[1]) if hit.groups() else None))
    return m[1], m[2], steps


def test_step_functions_are_written_and_tested_right(data):
    """Each step-function solution has one statement per step, in order, and each assert's value is what the
    steps do to its input, recomputed here from the prompt alone."""
    n = Counter()
    for name in ("code_train.jsonl", "code_eval.jsonl", "sft_code.jsonl"):
        for row in data[name]:
            parsed = parse_steps(questions([row]).pop())
            if not parsed:
                continue
            fn, v, steps = parsed
            body = "".join(f"    {STEP_PHRASES[i][1].format(v=v, k=k)}\n" for i, k in steps)
            solution = row.get("solution") or row["response"][len("```python\n"):-len("```")]
            assert solution == f"def {fn}({v}):\n{body}    return {v}\n", row
            for test in row.get("tests", []):
                x, y = re.fullmatch(rf"assert {fn}\((-?\d+)\) == (-?\d+)", test).groups()
                value = int(x)
                for i, k in steps:
                    value = STEP_PHRASES[i][2](value, k)
                assert value == int(y), (row["prompt"], test)
            n[name] += 1
            if "tests" in row:
                assert 2 <= len(steps) <= 3 and len(row["tests"]) >= 5
    assert n["code_train.jsonl"] == len(data["code_train.jsonl"]) == 1000
    assert n["code_eval.jsonl"] == len(data["code_eval.jsonl"]) == 400
    assert n["sft_code.jsonl"] >= 800


def test_step_lists_are_held_out(data):
    """No step list (the ops and constants, whatever the name, parameter and phrasing) is in two of SFT, GRPO and
    eval, and eval ones are not asked twice: GRPO gains on code_eval.jsonl only by getting better at the steps."""
    def step_lists(name):
        out = []
        for row in data[name]:
            parsed = parse_steps(questions([row]).pop())
            if parsed:
                out.append(tuple((STEP_PHRASES[i][1], k) for i, k in parsed[2]))
        return out

    sft, rl, held = (step_lists(n) for n in ("sft_code.jsonl", "code_train.jsonl", "code_eval.jsonl"))
    assert len(set(held)) == len(held) and len(set(rl)) == len(rl)
    assert not set(held) & (set(rl) | set(sft)) and not set(rl) & set(sft)


# --- concept answers with flaws (SFT) and preference pairs with a known ground truth ------------------------------
def parse_flaws(answer: str, c) -> tuple[str | None, bool, str | None]:
    """(rude opener, definition repeated, filler tail) of an SFT definition answer; fails on anything else."""
    opener = next((o for o in RUDE_OPENERS if answer.startswith(o)), None)
    rest = answer
    if opener:
        subject = c.A if opener.endswith(". ") else c.a
        first = f"{opener}{subject} is {c.definition}."
        assert answer.startswith(first), answer
        rest = c.answer() + answer[len(first):]
    assert rest.startswith(c.answer()), answer
    rest = rest[len(c.answer()):]
    repeated = rest.startswith(" " + c.answer())
    rest = rest[len(" " + c.answer()):] if repeated else rest
    tail = rest[1:] if rest else None
    assert tail is None or (rest[0] == " " and tail in FILLER_TAILS), answer
    return opener, repeated, tail


def test_sft_concept_answers_are_mostly_flawed_and_the_judge_sees_it(data):
    """Training answers to definition questions carry a rude opener (p 0.55), the definition twice (0.2) and a
    filler tail (0.6), each drawn on its own; style_judge's defaults catch every one; sft_eval stays clean."""
    judge = StyleJudge()
    flaws = Counter()
    n = 0
    for row in data["sft.jsonl"]:
        question, answer = user_and_answer(row)
        if question not in DEFINITIONS:
            continue
        c = DEFINITIONS[question]
        opener, repeated, tail = parse_flaws(answer, c)
        n += 1
        flaws.update({"rude": bool(opener), "repeated": repeated, "filler": bool(tail),
                      "flawed": bool(opener or repeated or tail), opener: True, tail: True})
        d = judge(answer, {"answer": c.answer()}).details
        assert d["correct"] and d["polite"] != bool(opener) and d["not_repetitive"] != repeated, answer
        assert d["concise"] == (not tail and not repeated and opener != "Ugh, as everyone knows, "), answer
    assert n == 10 * (len(CONCEPTS) - 9)
    assert flaws["flawed"] > 0.75 * n
    for flaw, p in (("rude", 0.55), ("repeated", 0.2), ("filler", 0.6)):
        assert abs(flaws[flaw] / n - p) < 0.06, (flaw, flaws[flaw] / n)
    assert all(flaws[o] > 0.1 * n for o in RUDE_OPENERS + FILLER_TAILS)
    for row in data["sft_eval.jsonl"]:
        question, answer = user_and_answer(row)
        if question in DEFINITIONS:
            assert answer == DEFINITIONS[question].answer(), row


def test_sft_flaws_change_nothing_else():
    """With the flaw probabilities at zero the generator gives the same rows in the same order, formats and all;
    only the definition answers differ, and they are then the clean ones."""
    import arith
    import sft
    split, seed = arith.split(0), 0
    flawed_train, flawed_eval = sft.build(seed, CONCEPTS, split)
    saved = sft.P_RUDE, sft.P_REPEAT, sft.P_FILLER
    sft.P_RUDE = sft.P_REPEAT = sft.P_FILLER = 0.0
    try:
        clean_train, clean_eval = sft.build(seed, CONCEPTS, split)
    finally:
        sft.P_RUDE, sft.P_REPEAT, sft.P_FILLER = saved
    assert flawed_eval == clean_eval and len(flawed_train) == len(clean_train)
    changed = 0
    for flawed, clean in zip(flawed_train, clean_train):
        (q1, a1), (q2, a2) = user_and_answer(flawed), user_and_answer(clean)
        assert q1 == q2 and set(flawed) == set(clean)
        if q1 in DEFINITIONS:
            assert a2 == DEFINITIONS[q1].answer()
            changed += a1 != a2
        else:
            assert flawed == clean
    assert changed > 0.75 * 10 * (len(CONCEPTS) - 9)


def content(value) -> str:
    """A preference field's text: a string, or the one message of a chat-form field."""
    if isinstance(value, str):
        return value
    (message,) = value
    return message["content"]


def test_preference_rows(data):
    train, evals = data["prefs_train.jsonl"], data["prefs_eval.jsonl"]
    assert len(train) == 4000 and len(evals) == 400
    n_chat = 0
    for row in train:
        assert set(row) == {"prompt", "chosen", "rejected", "label_flipped"} and isinstance(row["label_flipped"], bool)
        if isinstance(row["prompt"], list):
            n_chat += 1
            assert [m["role"] for m in row["prompt"]] == ["user"]
            assert [m["role"] for m in row["chosen"] + row["rejected"]] == ["assistant", "assistant"]
        else:
            assert isinstance(row["chosen"], str) and isinstance(row["rejected"], str)
    assert 0.15 < n_chat / len(train) < 0.25
    assert sum(r["label_flipped"] for r in train) == len(train) // 10  # exactly 10% label noise
    for row in evals:
        assert set(row) == {"prompt", "chosen", "rejected", "subset"}
        assert all(isinstance(row[k], str) for k in ("prompt", "chosen", "rejected"))
        longer_worse = len(row["rejected"]) > len(row["chosen"])
        assert row["subset"] == ("longer_worse" if longer_worse else "longer_better"), row
    subsets = Counter(r["subset"] for r in evals)
    assert subsets["longer_worse"] >= 150 and subsets["longer_better"] >= 100
    for name in ("rlhf_train.jsonl", "rlhf_eval.jsonl"):
        rows = data[name]
        assert len({r["prompt"] for r in rows}) == len(rows)
        for row in rows:
            assert set(row) == {"prompt", "answer"} and row["answer"] == DEFINITIONS[row["prompt"]].answer()
    assert len(data["rlhf_train.jsonl"]) == 600 and len(data["rlhf_eval.jsonl"]) == 120


def test_chosen_beats_rejected_under_the_gold_judge_and_length_does_not_tell(data):
    """On every row the gold judge scores chosen above rejected (below on the flipped rows); in training the
    longer answer is the better one about half the time."""
    judge = StyleJudge()
    longer_chosen = 0
    for name in ("prefs_train.jsonl", "prefs_eval.jsonl"):
        for row in data[name]:
            reference = {"answer": DEFINITIONS[content(row["prompt"])].answer()}
            chosen, rejected = content(row["chosen"]), content(row["rejected"])
            if row.get("label_flipped"):
                chosen, rejected = rejected, chosen
            assert judge(chosen, reference).reward > judge(rejected, reference).reward, row
            if name == "prefs_train.jsonl":
                longer_chosen += len(chosen) > len(rejected)
    assert 0.45 < longer_chosen / len(data["prefs_train.jsonl"]) < 0.55


def test_preference_and_rlhf_eval_prompts_are_held_out(data):
    def prompts(name):
        return {content(r["prompt"]) for r in data[name]}

    sft_questions = questions(data["sft.jsonl"])
    train = prompts("prefs_train.jsonl") | prompts("rlhf_train.jsonl")
    assert prompts("rlhf_train.jsonl") <= sft_questions and prompts("prefs_train.jsonl") <= sft_questions
    for name in ("prefs_eval.jsonl", "rlhf_eval.jsonl"):
        assert not prompts(name) & (train | sft_questions), name
    assert not prompts("rlhf_eval.jsonl") & prompts("prefs_eval.jsonl")
