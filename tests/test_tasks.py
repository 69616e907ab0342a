"""Your own task without preprocessing: field mapping, templates, task plugins (reasoning-gym), and the reference
check, in every dataset shape the README shows (GSM8K, MATH, MBPP, HumanEval, APPS/CodeContests, reasoning-gym).

Each shape: rows written in that shape, a config with only mapping keys, the check passing on the right mapping
and stopping with one line (source, mapping, a failing row) on a wrong one. Nothing is downloaded.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from raylign.engine.errors import ConfigError, DataError, PluginError
from raylign.engine.tasks import FieldMap
from raylign.engine.tasks.fields import Unmapped, map_row
from raylign.engine.tasks.template import build_messages, fill

# ------------------------------------------------------------------------------------------------ row shapes


def gsm8k_rows(n=12):
    return [{"question": f"Tom has {a} apples and buys {b} more. How many apples does he have?",
             "answer": f"Tom has {a} apples.\nHe buys {b} more, so {a}+{b} = <<{a}+{b}={a + b}>>{a + b}.\n#### {a + b}"}
            for a, b in [(3 + i, 10 + 2 * i) for i in range(n)]]


def math_rows(n=12):
    return [{"problem": f"Compute $\\frac{{{i}}}{{{i + 1}}} + \\frac{{1}}{{{i + 1}}}$.", "level": "Level 1",
             "solution": f"Adding the fractions, we get $\\frac{{{i}+1}}{{{i + 1}}} = \\boxed{{1}}$. In general it "
                         f"is one."} for i in range(1, n + 1)]


def mbpp_rows(n=6):
    return [{"task_id": i, "text": f"Write a function to add {i} to a number.",
             "code": f"def add_{i}(x):\n    return x + {i}\n",
             "test_list": [f"assert add_{i}(1) == {1 + i}", f"assert add_{i}(-{i}) == 0"],
             "test_setup_code": ""} for i in range(1, n + 1)]


def humaneval_rows(n=4):
    return [{"task_id": f"HumanEval/{i}", "prompt": f'def times_{i}(x):\n    """Return x times {i}."""\n',
             "canonical_solution": f"    return x * {i}\n", "entry_point": f"times_{i}",
             "test": f"def check(candidate):\n    assert candidate(2) == {2 * i}\n    assert candidate(0) == 0\n"}
            for i in range(1, n + 1)]


def apps_rows(n=4):
    return [{"question": f"Read a number and print it plus {i}.",
             "input_output": json.dumps({"inputs": ["1\n", "5\n"], "outputs": [f"{1 + i}\n", f"{5 + i}\n"]}),
             "solutions": json.dumps([f"print(int(input()) + {i})"])} for i in range(1, n + 1)]


def codecontests_rows(n=4):
    return [{"description": f"Print the sum of two numbers and {i}.",
             "public_tests": {"input": ["1 2\n", "3 4\n"], "output": [f"{3 + i}\n", f"{7 + i}\n"]},
             "solution": f"a, b = map(int, input().split())\nprint(a + b + {i})\n"} for i in range(1, n + 1)]


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# ------------------------------------------------------------------------------------------------ field mapping


def test_gsm8k_answer_after_marker_and_math_boxed_and_regex():
    row = gsm8k_rows(1)[0]
    assert map_row(row, FieldMap(prompt="question", answer_after="####"), "r")["answer"] == "13"
    m = math_rows(1)[0]
    assert map_row(m, FieldMap(prompt="problem", answer="solution", answer_boxed=True), "r")["answer"] == "1"
    got = map_row({"q": "x", "sol": "so x = 4 and then x = 7 (final)"},
                  FieldMap(prompt="q", answer="sol", answer_regex=r"x = (\d+)"), "r")
    assert got["answer"] == "7"  # the last match, its first group
    assert map_row({"q": "x", "a": "42"}, FieldMap(prompt="q", answer="a", answer_regex=r"\d+"), "r")["answer"] == "42"


def test_rows_without_the_marker_are_unmapped_with_the_reason():
    with pytest.raises(Unmapped, match=r"f\.jsonl:3: field 'answer' has no '####' marker"):
        map_row({"question": "q", "answer": "no marker"}, FieldMap(prompt="question", answer_after="####"),
                "f.jsonl:3")
    with pytest.raises(Unmapped, match=r"no field 'solution'"):
        map_row({"question": "q"}, FieldMap(prompt="question", answer="solution"), "f.jsonl:1")
    with pytest.raises(Unmapped, match=r"has no \\boxed"):
        map_row({"s": "the answer is 3"}, FieldMap(prompt="s", answer="s", answer_boxed=True), "w")


def test_code_shapes_map_to_the_code_verifiers_fields():
    mb = map_row(mbpp_rows(1)[0], FieldMap(prompt="text"), "r")
    assert mb["test_list"] == ["assert add_1(1) == 2", "assert add_1(-1) == 0"] and mb["reference"].startswith("def")
    renamed = map_row({"q": "x", "checks": "assert f()\nassert g()\n"}, FieldMap(prompt="q", tests="checks"), "r")
    assert renamed["tests"] == ["assert f()", "assert g()"]  # one string of lines becomes a list
    he = map_row(humaneval_rows(1)[0], FieldMap(), "r")
    assert he["reference"] == "    return x * 1\n" and he["entry_point"] == "times_1"
    ap = map_row(apps_rows(1)[0], FieldMap(prompt="question"), "r")
    assert ap["reference"] == "print(int(input()) + 1)"  # the first of APPS' JSON list of solutions
    cc = map_row(codecontests_rows(1)[0], FieldMap(prompt="description", inputs="public_tests.input",
                                                   outputs="public_tests.output", reference="solution"), "r")
    assert cc["inputs"] == ["1 2\n", "3 4\n"] and cc["outputs"] == ["4\n", "8\n"]
    io = map_row({"p": "x", "cases": json.dumps({"inputs": ["1"], "outputs": ["2"]})}, FieldMap(prompt="p", io="cases"),
                 "r")
    assert io["inputs"] == ["1"] and io["outputs"] == ["2"]
    js = map_row({"p": "x", "i": '["1", "2"]', "o": '["3", "4"]'}, FieldMap(prompt="p", inputs="i", outputs="o"), "r")
    assert js["inputs"] == ["1", "2"] and js["outputs"] == ["3", "4"]  # lists given as JSON strings


def test_mapping_contradictions_fail_naming_the_key():
    with pytest.raises(ConfigError, match=r"grpo\.fields: answer_after and answer_boxed are both set"):
        FieldMap(answer_after="####", answer_boxed=True).check("grpo.fields")
    with pytest.raises(ConfigError, match=r"grpo\.fields\.answer_regex: not a valid regex"):
        FieldMap(answer_regex="(").check("grpo.fields")


# ------------------------------------------------------------------------------------------------ templates


def test_template_fills_fields_keeps_latex_braces_and_names_a_missing_field():
    row = {"question": "What is 2+2?", "meta": {"n": 3}, "tests": ["assert f(1)", "assert f(2)"]}
    assert fill("{question} Put it in \\boxed{}.", row, "w") == "What is 2+2? Put it in \\boxed{}."
    assert fill("{{question}} {meta.n}", row, "w") == "{question} 3"
    assert fill("Tests:\n{tests}", row, "w") == "Tests:\nassert f(1)\nassert f(2)"
    with pytest.raises(DataError, match=r"f\.jsonl:2: the template names field 'problem', which the row does not "
                                        r"have \(fields present: question, meta, tests\)"):
        fill("{problem}", row, "f.jsonl:2")


def test_system_and_few_shot_render_with_a_chat_template_and_as_plain_text(tiny_model_dir):
    from raylign.engine.chat_format import render_prompt
    from raylign.engine.modeling import load_tokenizer
    from raylign.engine.tasks.data_check import PlainText

    shots = [{"question": "What is 1+1?", "response": "The answer is 2."}]
    msgs = build_messages({"question": "What is 2+3?"}, "question", "Q: {question}", "Be brief.", shots, "w")
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]
    assert msgs[1]["content"] == "Q: What is 1+1?" and msgs[3]["content"] == "Q: What is 2+3?"
    tok = load_tokenizer(tiny_model_dir)
    assert tok.chat_template  # the project's models carry one
    chat = render_prompt(tok, msgs)
    assert chat.index("Be brief.") < chat.index("The answer is 2.") < chat.index("Q: What is 2+3?")
    plain = render_prompt(PlainText(), msgs)
    assert plain == "Be brief.\nQ: What is 1+1?\nThe answer is 2.\nQ: What is 2+3?\n"
    # a row given as messages keeps its own system message first, few-shot turns after it
    own = build_messages({"prompt": [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]},
                         "prompt", "", "", [{"prompt": "What is 1+1?", "response": "The answer is 2."}], "w")
    assert [m["content"] for m in own] == ["S", "What is 1+1?", "The answer is 2.", "U"]


# ------------------------------------------------------------------------------------------------ the check


CONFIG = """
[run]
name = "check"
output_dir = "{out}"
pipeline = ["grpo"]
base_model = ""

[rewards]
num_workers = 2
timeout_s = 20.0

[grpo]
data = ["{data}"]
eval_fraction = 0.25
verifier = "{verifier}"
{extra}
"""


def check_config(tmp_path: Path, rows, verifier: str, extra: str, name: str = "rows.jsonl",
                 check: str = "check = { rows = 64, min_pass = 0.9, solve_rows = 0 }"):
    data = write_jsonl(tmp_path / name, rows)
    path = tmp_path / "task.toml"
    path.write_text(CONFIG.format(out=tmp_path / "runs", data=data.name, verifier=verifier, extra=extra + "\n" + check))
    return path


def run_check(path: Path, *overrides: str):
    """``raylign data check`` in-process (no model: prompts as plain text); returns the stage's report."""
    from rich.console import Console

    from raylign.engine.config import load_config
    from raylign.engine.plugins import get_registry
    from raylign.engine.tasks.data_check import check_stage

    reg = get_registry()
    cfg = load_config(path, reg, list(overrides))
    return check_stage(cfg, cfg.stages[0], reg, Console(file=open(os.devnull, "w")), 1, None, False)


def test_gsm8k_shape_checks_and_a_wrong_mapping_stops_with_one_line(tmp_path):
    path = check_config(tmp_path, gsm8k_rows(), "math", 'fields = { prompt = "question", answer_after = "####" }')
    report = run_check(path)
    assert report.checked == 9 and report.passed == 9  # every training row (3 of 12 held out)
    with pytest.raises(DataError) as err:  # the answer with its working left in
        run_check(path, 'grpo.fields={prompt="question"}')
    line = str(err.value)
    assert "\n" not in line
    assert "reference check failed: 0/9 rows of rows.jsonl with fields {prompt = \"question\"}" in line
    assert "rows.jsonl:" in line and "still holds its working" in line and "grpo.check.min_pass" in line
    with pytest.raises(DataError, match=r"is the prompt's own text"):  # the question's field as the answer
        run_check(path, 'grpo.fields={prompt="question", answer="question"}')
    with pytest.raises(DataError, match=r"rows\.jsonl:1: missing field 'query', the prompt \(fields\.prompt\)"):  # a prompt field the rows do not have
        run_check(path, 'grpo.fields={prompt="query", answer_after="####"}')


def test_the_math_verifier_refuses_references_that_cannot_be_answers():
    from raylign.verifiers.math.verifier import MathVerifier

    ok = {"72": "72", "\\frac{1}{2}": "\\frac{1}{2}", "\\text{no real solutions}": "\\text{no real solutions}"}
    for answer in ok:
        assert MathVerifier.reference_completion({"answer": answer}) == f"The answer is \\boxed{{{answer}}}."
    for answer, why in [("He has 3.\n#### 3", "still holds its working"), ("3+4 = <<3+4=7>>7", "still holds its work"),
                        ("How many apples does Tom have?", "is a question"),
                        ("Adding both we get seven apples in total", "reads as prose"),
                        ("First add.\nThen add again.", "spans several lines")]:
        with pytest.raises(ValueError, match=why):
            MathVerifier.reference_completion({"answer": answer})
    assert MathVerifier.reference_completion({"question": "q"}) is None


def test_math_shape_takes_the_last_box_of_the_solution(tmp_path):
    path = check_config(tmp_path, math_rows(), "math",
                        'fields = { prompt = "problem", answer = "solution", answer_boxed = true }')
    assert run_check(path).passed == 9
    # the math verifier reduces a boxed reference to its box itself: the whole solution works as the answer too
    assert run_check(path, 'grpo.fields={prompt="problem", answer="solution"}').passed == 9
    with pytest.raises(DataError, match=r"0/9 rows .* is the prompt's own text"):  # the problem as the answer
        run_check(path, 'grpo.fields={prompt="problem", answer="problem"}')
    with pytest.raises(DataError, match=r"no usable training rows in rows\.jsonl .* has no match of answer_regex"):
        run_check(path, 'grpo.fields={prompt="problem", answer="solution", answer_regex="#### (.*)"}')


def test_rows_left_out_by_the_mapping_count_as_failures(tmp_path):
    rows = gsm8k_rows(12)
    for r in rows[:6]:
        r["answer"] = r["answer"].replace("####", "Answer:")  # half the rows lack the marker
    path = check_config(tmp_path, rows, "math", 'fields = { prompt = "question", answer_after = "####" }')
    with pytest.raises(DataError, match=r"reference check failed: \d/\d+ .* has no '####' marker"):
        run_check(path)


@pytest.mark.skipif("namespaces" in os.environ.get("RAYLIGN_TEST_SKIP_SANDBOX", ""), reason="no sandbox here")
def test_code_shapes_check_with_their_reference_solutions(tmp_path):
    # MBPP: text + code + test_list: only the prompt field needs naming
    mbpp = check_config(tmp_path, mbpp_rows(), "code", 'fields = { prompt = "text" }', "mbpp.jsonl")
    assert run_check(mbpp).passed == run_check(mbpp).checked > 0
    with pytest.raises(DataError, match=r"reference check failed: 0/\d+ rows of mbpp.jsonl"):
        run_check(mbpp, 'grpo.fields={prompt="text", tests="text"}')  # the description taken as the tests
    # HumanEval: used as it is (prompt, test, entry_point; canonical_solution is the reference)
    he = check_config(tmp_path, humaneval_rows(), "code", "", "he.jsonl")
    assert run_check(he).passed == 3
    # APPS: input_output and solutions as JSON strings
    apps = check_config(tmp_path, apps_rows(), "code", 'fields = { prompt = "question" }', "apps.jsonl")
    assert run_check(apps).passed == 3
    # CodeContests: nested test tables, a reference named
    cc = check_config(tmp_path, codecontests_rows(), "code",
                      'fields = { prompt = "description", inputs = "public_tests.input", '
                      'outputs = "public_tests.output", reference = "solution" }', "cc.jsonl")
    assert run_check(cc).passed == 3
    with pytest.raises(DataError, match=r"0/3 rows of cc.jsonl"):  # outputs of the wrong cases
        run_check(cc, 'grpo.fields={prompt="description", inputs="public_tests.input", '
                      'outputs="public_tests.input", reference="solution"}')


# ------------------------------------------------------------------------------------------------ tasks


GYM = 'task = "reasoning_gym"\ntask_options = {{ dataset = "basic_arithmetic", size = 200, min_terms = 2, ' \
      'max_terms = 2, min_digits = 2, max_digits = 2, operators = ["+"], whitespace = "no_space", ' \
      'allow_negation = false }}\n' \
      'eval_size = 40\ntemplate = "What is {{metadata.expression}}?"'


def gym_config(tmp_path):
    path = tmp_path / "gym.toml"
    path.write_text(CONFIG.format(out=tmp_path / "runs", data="unused", verifier="math",
                                  extra=GYM.format() + "\ncheck = { rows = 64, solve_rows = 0 }")
                    .replace('data = ["unused"]\n', ""))
    return path


def test_reasoning_gym_task_rows_held_out_from_another_seed_and_scored_by_its_checker(tmp_path, tiny_model_dir):
    from raylign.engine.config import load_config
    from raylign.engine.modeling import load_tokenizer
    from raylign.engine.plugins import get_registry
    from raylign.engine.tasks.load import load_prompt_rows
    from raylign.verifiers.reasoning_gym import ReasoningGymVerifier

    reg = get_registry()
    cfg = load_config(gym_config(tmp_path), reg)
    spec = cfg.stages[0]
    rows = load_prompt_rows(spec.config, load_tokenizer(tiny_model_dir), tmp_path, 0, reg, "grpo", "math", {})
    assert rows.verifier == "reasoning_gym" and len(rows.train) == 200
    assert rows.train[0]["messages"][-1]["content"].startswith("What is ") and "+" in rows.train[0]["messages"][-1]["content"]
    train_q = {r["row"]["question"] for r in rows.train}
    assert rows.evals and not any(r["row"]["question"] in train_q for r in rows.evals)  # no overlap
    assert len(rows.evals) + rows.overlap == 40
    again = load_prompt_rows(spec.config, load_tokenizer(tiny_model_dir), tmp_path, 0, reg, "grpo", "math", {})
    assert [r["row"]["question"] for r in again.train] == [r["row"]["question"] for r in rows.train]  # seeded
    v = ReasoningGymVerifier(extract=["answer_tag", "answer_is"])
    row = rows.train[0]["row"]
    assert v(f"<answer>{row['answer']}</answer>", row).reward == 1.0
    assert v(f"Adding them. The answer is {row['answer']}.", row).reward == 1.0
    assert v("The answer is 0.", row).reward == 0.0
    assert v("no answer here", row).details["reason"] == "no answer found"
    assert v("<answer>1</answer>", {"question": "q", "answer": "1"}).status == "invalid"
    assert run_check(gym_config(tmp_path)).passed == 64


def test_reasoning_gym_options_are_checked_with_their_names(tmp_path):
    path = gym_config(tmp_path)
    with pytest.raises(ConfigError, match=r"grpo\.task_options: .*'basic_arithmetc' is not a reasoning-gym generator "
                                          r"\(did you mean basic_arithmetic"):
        run_check(path, 'grpo.task_options={dataset="basic_arithmetc"}')
    with pytest.raises(ConfigError, match=r"basic_arithmetic has no option 'digits' \(its options: .*max_digits"):
        run_check(path, 'grpo.task_options={dataset="basic_arithmetic", digits=2}')
    with pytest.raises(ConfigError, match=r"max_terms must be >= min_terms"):
        run_check(path, 'grpo.task_options={dataset="basic_arithmetic", min_terms=3, max_terms=2}')
    report = run_check(path, 'grpo.task_options={dataset="chain_sum", level=2, size=100}')  # a curriculum level
    assert report.passed == report.checked == 64
    with pytest.raises(ConfigError, match=r"grpo\.task = 'reasoning_gym' and grpo\.data are both set"):
        run_check(path, 'grpo.data=["x.jsonl"]')


def test_a_third_party_task_plugin_is_used_by_name(tmp_path):
    """``raylign_register_tasks``: a generator task registered by a plugin object, asked for by name."""
    from raylign.engine import hookimpl
    from raylign.engine.config import load_config
    from raylign.engine.plugins import build_registry
    from raylign.engine.tasks import Task
    from raylign.engine.tasks.data_check import PlainText
    from raylign.engine.tasks.load import load_prompt_rows

    calls = []

    def doubles(seed: int, size: int, top: int = 50):
        calls.append((seed, size, top))
        import random

        rng = random.Random(seed)
        return [{"q": f"Double {n}.", "a": str(2 * n)} for n in (rng.randrange(top) for _ in range(size))]

    class Plugin:
        @hookimpl
        def raylign_register_tasks(self, register):
            register("doubles", Task(verifier="math", rows=doubles, fields=FieldMap(prompt="q", answer="a"),
                                     system="Answer with a number."))

    reg = build_registry(extra_plugins=[Plugin()])
    path = tmp_path / "t.toml"
    path.write_text(CONFIG.format(out=tmp_path, data="x", verifier="math", extra='task = "doubles"\n'
                                  'task_options = { size = 30, top = 1000 }\neval_size = 10')
                    .replace('data = ["x"]\n', ""))
    cfg = load_config(path, reg)
    rows = load_prompt_rows(cfg.stages[0].config, PlainText(), tmp_path, 5, reg, "grpo", "math", {})
    assert calls[:2] == [(5, 30, 1000), (5 + 1_000_003, 10, 1000)]  # held out from another seed
    assert rows.train[0]["messages"][0] == {"role": "system", "content": "Answer with a number."}
    assert rows.train[0]["row"]["answer"] == str(2 * int(rows.train[0]["row"]["q"].split()[1][:-1]))
    # a held-out row asking a training row's prompt is dropped; none left is an error
    few = load_prompt_rows(cfg.stages[0].config.__class__(task="doubles", task_options={"size": 20, "top": 60},
                                                          eval_size=20), PlainText(), tmp_path, 5, reg, "grpo", "math", {})
    seen = {r["row"]["q"] for r in few.train}
    assert few.overlap > 0 and len(few.evals) + few.overlap == 20 and not any(r["row"]["q"] in seen for r in few.evals)
    with pytest.raises(DataError, match=r"every held-out row of task 'doubles' also appears among its training rows"):
        load_prompt_rows(cfg.stages[0].config.__class__(task="doubles", task_options={"size": 50, "top": 2}),
                         PlainText(), tmp_path, 5, reg, "grpo", "math", {})
    with pytest.raises(ConfigError, match=r"task 'doubles' refused them: .*unexpected keyword argument 'bottom'"):
        load_prompt_rows(cfg.stages[0].config.__class__(task="doubles", task_options={"bottom": 1}), PlainText(),
                         tmp_path, 5, reg, "grpo", "math", {})


def test_per_source_mapping_and_verifier_in_config(tmp_path):
    from raylign.engine.config import load_config
    from raylign.engine.plugins import get_registry
    from raylign.engine.tasks.data_check import PlainText
    from raylign.engine.tasks.load import load_prompt_rows

    write_jsonl(tmp_path / "gsm.jsonl", gsm8k_rows(4))
    write_jsonl(tmp_path / "plain.jsonl", [{"prompt": "Say hi", "format": "hi"}])
    path = tmp_path / "s.toml"
    path.write_text(CONFIG.format(out=tmp_path, data="gsm.jsonl", verifier="math", extra="").replace(
        'data = ["gsm.jsonl"]', 'data = [{ path = "gsm.jsonl", fields = { prompt = "question", answer_after = "####" } },'
                                ' { path = "plain.jsonl", verifier = "format" }]\neval_data = ["plain.jsonl"]'))
    reg = get_registry()
    rows = load_prompt_rows(load_config(path, reg).stages[0].config, PlainText(), tmp_path, 0, reg, "grpo", "math", {})
    assert [r["row"].get("answer") for r in rows.train] == ["13", "16", "19", "22", None]
    assert rows.train[-1]["row"]["verifier"] == "format" and "verifier" not in rows.train[0]["row"]
    bad = tmp_path / "bad.jsonl"
    write_jsonl(bad, [{"prompt": "x", "verifier": "maths"}])
    with pytest.raises(DataError, match=r"bad\.jsonl:1: unknown verifier 'maths'"):
        load_prompt_rows(load_config(path, reg, ['grpo.data=["bad.jsonl"]']).stages[0].config, PlainText(), tmp_path,
                         0, reg, "grpo", "math", {})


# ------------------------------------------------------------------------------------------------ the command


def test_data_check_command_prints_prompts_and_stops_on_a_wrong_mapping(tmp_path, tiny_model_dir):
    raylign = str(Path(sys.executable).parent / "raylign")
    path = check_config(tmp_path, gsm8k_rows(), "math", 'fields = { prompt = "question", answer_after = "####" }\n'
                        'template = "{question}\\nEnd with: The answer is N."', check="check = { rows = 8, solve_rows = 4, k = 2 }")
    good = subprocess.run([raylign, "data", "check", str(path), "--model", str(tiny_model_dir), "--show", "2"],
                          capture_output=True, text=True, timeout=300)
    assert good.returncode == 0, good.stderr[-2000:]
    assert "<|im_start|>user\nTom has 3 apples and buys 10 more. How many apples does he have?\nEnd with: The answer" \
           in good.stdout
    assert "reference check 8/8 pass" in good.stdout and "starting model solves 0.0% greedily" in good.stdout
    bad = subprocess.run([raylign, "data", "check", str(path), "--no-model", "--set", 'grpo.fields={prompt="question"}'],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2
    errors = [line for line in bad.stderr.splitlines() if line.startswith("raylign: error:")]
    assert len(errors) == 1 and "reference check failed: 0/8" in errors[0] and "Traceback" not in bad.stderr


# ------------------------------------------------------------------------------------------------ in a run


@pytest.mark.slow
def test_a_grpo_stage_with_a_wrong_mapping_stops_before_its_fleets(tmp_path, tiny_model_dir, ray_session):
    """The stage runs the reference check right after its reward fleet starts: one line, no learner, no vLLM."""
    from raylign.engine.config import load_config
    from raylign.engine.driver import run_pipeline
    from raylign.engine.plugins import build_registry

    path = check_config(tmp_path, gsm8k_rows(), "math", 'fields = { prompt = "question" }')
    text = path.read_text().replace('base_model = ""', f'base_model = "{tiny_model_dir}"')
    path.write_text(text.replace("[rewards]", "[ray]\nnum_cpus = 8\n\n[rewards]"))
    reg = build_registry()
    with pytest.raises(DataError, match=r"^grpo: reference check failed: 0/9 rows of rows\.jsonl with fields "
                                        r"\{prompt = \"question\"\} .* still holds its working"):
        run_pipeline(load_config(path, reg), reg)
    assert not (tmp_path / "runs" / "check" / "models" / "grpo").exists()
    # a verifier that cannot run here (a sandbox backend this machine lacks) stops the stage at once, one line
    mbpp = check_config(tmp_path, mbpp_rows(), "code", 'fields = { prompt = "text" }\n'
                        'verifier_options = { code = { sandbox = "nope" } }', "mbpp.jsonl")
    mbpp.write_text(mbpp.read_text().replace('base_model = ""', f'base_model = "{tiny_model_dir}"')
                    .replace('name = "check"', 'name = "nosandbox"'))
    with pytest.raises(PluginError, match=r"^verifier 'code' could not be loaded: RuntimeError: unknown sandbox "
                                          r"backend 'nope'"):
        run_pipeline(load_config(mbpp, reg), reg)


# ------------------------------------------------------------------------------------------------ the README


def readme_task_blocks() -> dict[str, str]:
    """The README's "Your own task" TOML blocks, by the dataset named on their first line."""
    import re

    text = (Path(__file__).parent.parent / "README.md").read_text()
    section = text[text.index("### Your own task"):]
    section = section[: section.index("\n## ")]
    blocks = re.findall(r"```toml\n(.*?)```", section, re.S)
    return {b.split(":", 1)[0].lstrip("# ").strip(): b for b in blocks}


README_ROWS = {"GSM8K": ("gsm8k_train.jsonl", gsm8k_rows), "MATH": ("math_train.jsonl", math_rows),
               "MBPP": ("mbpp_train.jsonl", mbpp_rows), "CodeContests": ("contests_train.jsonl", codecontests_rows),
               "reasoning-gym": (None, None)}


@pytest.mark.parametrize("shape", list(README_ROWS))
def test_the_readme_blocks_run_on_rows_of_their_shape(tmp_path, shape):
    blocks = readme_task_blocks()
    assert set(blocks) == set(README_ROWS), "the README's task blocks and this test list different shapes"
    if "code" in blocks[shape] and "namespaces" in os.environ.get("RAYLIGN_TEST_SKIP_SANDBOX", ""):
        pytest.skip("no sandbox here")
    name, make = README_ROWS[shape]
    if name:
        write_jsonl(tmp_path / name, make())
    path = tmp_path / "readme.toml"
    path.write_text(f'[run]\nname = "readme"\noutput_dir = "{tmp_path}"\npipeline = ["grpo"]\n\n'
                    + blocks[shape] + "check = { rows = 64, solve_rows = 0 }\n")
    report = run_check(path)
    assert report.checked >= 3 and report.passed == report.checked
