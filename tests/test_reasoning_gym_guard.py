"""reasoning-gym's answer checkers never run an answer, or a task row, as code.

Before: ``<answer>__import__('os').system(...)</answer>`` ran in the verifier worker (unsandboxed, the service's
token in its environment) through the checkers that ``eval`` or ``parse_expr`` their text (countdown, puzzle24,
n_queens, the integration and polynomial generators, ...), from a completion or from a service client's task.
"""
from __future__ import annotations

import importlib.util
import json
import os

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("reasoning_gym") is None,
                                reason="the reasoning-gym extra is not installed")

EVALUATING = ["countdown", "puzzle24", "simple_integration", "intermediate_integration", "polynomial_multiplication",
              "n_queens", "spiral_matrix", "binary_matrix", "string_insertion", "number_sorting",
              "bitwise_arithmetic"]  # (its eval is in a helper the checker calls, verify_solution: found since pass 2)


@pytest.fixture(scope="module")
def verifier():
    from raylign.verifiers.reasoning_gym import ReasoningGymVerifier
    return ReasoningGymVerifier()


def _payloads(marker):
    return [f"__import__('os').system('touch {marker}')",
            f"eval(chr(95)*2 + 'import' + chr(95)*2 + \"('os').system('touch {marker}')\")",
            f"[__import__('os').system('touch {marker}')]", f"(lambda: __import__('os').system('touch {marker}'))()",
            f"exec(\"import os; os.system('touch {marker}')\")"]


def test_the_evaluating_checkers_are_the_ones_guarded(verifier):
    from raylign.verifiers.reasoning_gym_guard import guard
    assert set(EVALUATING) <= set(guard(verifier.gym))


@pytest.mark.parametrize("dataset", EVALUATING)
def test_code_in_an_answer_or_a_row_never_runs(verifier, dataset, tmp_path):
    marker = tmp_path / "ran"
    meta = {"source_dataset": dataset, "numbers": [1, 2, 3, 4], "target": 1, "variable": "x"}
    for payload in _payloads(marker):
        rows = [({"metadata": meta, "answer": "1"}, f"<answer>{payload}</answer>"),  # the completion
                ({"metadata": {**meta, "integrand": payload, "problem": payload}, "answer": payload},
                 "<answer>[1, 2]</answer>")]  # the row
        for task, completion in rows:
            try:
                v = verifier(completion, task)
                assert v.reward < 1.0, (dataset, payload, v)
            except Exception:  # noqa: BLE001 - a malformed row may make a checker raise: never run the text
                pass
            assert not marker.exists(), (dataset, payload)


@pytest.mark.parametrize("dataset", EVALUATING)
def test_the_rows_own_answers_still_score_one(verifier, dataset):
    from raylign.verifiers.reasoning_gym import rows
    for row in rows(seed=5, size=12, dataset=dataset):
        assert verifier(f"<answer>{row['answer']}</answer>", row).reward == 1.0, row["answer"]


@pytest.mark.parametrize("text,ok", [
    ("3 + 4 * (2 - 1) / 7", True), ("x**2/2 + C", True), ("-cos(x) + C", True), ("[1, 2, 3]", True),
    ("Integral(x**3*cos(3*x), x) + C", True), ("sqrt(2)*x**(1/2)", True),
    ("9**9**9", False), ("9**99999", False), ("__import__('os')", False), ("x.__class__", False),
    ("chr(95)", False), ("(lambda: 1)()", False), ("'text'", False), ("1" * 400, False), ("x[0]", False),
])
def test_the_expression_grammar(text, ok):
    from raylign.verifiers.reasoning_gym_guard import UnsafeText, safe_expression
    if ok:
        safe_expression(text)
    else:
        with pytest.raises(UnsafeText):
            safe_expression(text)


def test_the_service_row_path_is_guarded_too(verifier, tmp_path):
    """The OpenRLHF route hands the verifier a task decoded from the client's label: the same call."""
    marker = tmp_path / "ran"
    label = json.dumps({"metadata": {"source_dataset": "number_sorting"},
                        "answer": f"__import__('os').system('touch {marker}')"})
    try:
        verifier("<answer>[1, 2]</answer>", json.loads(label))
    except Exception:  # noqa: BLE001
        pass
    assert not os.path.exists(marker)


# -- answers the upstream checkers pay for although they are wrong (reasoning_gym_checks) ------------------------

@pytest.mark.parametrize("dataset,answer", [
    ("complex_arithmetic", "nan"), ("number_sorting", "[NaN, NaN, NaN, NaN, NaN]"),
    ("countdown", "({a}+{b}+{c}+{d})*0e0 + 0x135"), ("countdown", "({a}+{b}+{c}+{d})*(pi-pi) + 7"),
    ("puzzle24", "6*4*1*1"), ("game_of_life_halting", "banana"),
    ("simple_integration", "Integral({integrand}, x)"),
])
def test_wrong_answers_the_upstream_checkers_pay_for_score_zero(verifier, dataset, answer):
    from raylign.verifiers.reasoning_gym import rows
    for row in rows(seed=5, size=3, dataset=dataset):
        meta = row["metadata"]
        numbers = (list(meta["numbers"]) if isinstance(meta.get("numbers"), list) else []) + [0, 0, 0, 0]
        text = answer.format(a=numbers[0], b=numbers[1], c=numbers[2], d=numbers[3],
                             integrand=meta.get("integrand", "x"))
        v = verifier(f"<answer>{text}</answer>", row)
        assert (v.status, v.reward) == ("ok", 0.0), (text, v)
        assert verifier(f"<answer>{row['answer']}</answer>", row).reward == 1.0


def test_puzzle24_takes_the_puzzles_numbers_and_exactly_24(verifier):
    row = {"metadata": {"source_dataset": "puzzle24", "numbers": [8, 5, 10, 6]}, "answer": "10*(8 - 5) - 6"}
    assert verifier("<answer>(10 - 8 + 6) * 5 - 16</answer>", row).reward == 0.0  # 16 is not the puzzle's
    assert verifier("<answer>10*(8 - 5) - 6</answer>", row).reward == 1.0
    row = {"metadata": {"source_dataset": "puzzle24", "numbers": [7, 7, 1, 1]}, "answer": "x"}
    assert verifier("<answer>(7 + 7) * 1.75 - 1 + 1</answer>", row).reward == 0.0  # not integers only


def test_the_arithmetic_eval_reads_numbers_only():
    from raylign.verifiers.reasoning_gym_guard import UnsafeText, restricted_eval
    assert restricted_eval("((0xc3ce << 0x3) + (0x1907 - 0x7de4))") == ((0xc3ce << 3) + (0x1907 - 0x7de4))
    assert restricted_eval("[1, (2, 3)]") == [1, (2, 3)]
    for text in ["__import__('os')", "x + 1", "1 << 10**9", "9**9**9", "(1).real", "open('f')"]:
        with pytest.raises(UnsafeText):
            restricted_eval(text)


def test_the_answer_tag_is_read_in_linear_time():
    """reasoning-gym's own extraction regex took 31 s on 160,000 characters of unclosed tags."""
    from raylign.verifiers.reasoning_gym import _answer_tag
    assert _answer_tag("<answer>" * 40_000 + "x") is None  # (the regex's minutes; here a find from the end)
    assert _answer_tag("<answer> 42 </answer> then <answer>43</answer>") == "43"
