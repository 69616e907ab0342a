"""The ``code`` verifier: runs a Python completion against a task's tests in a sandbox.

Task formats (the dataset row, ``task``):

- HumanEval: ``prompt``, ``test``, ``entry_point``. The program is prompt + completion (or prompt + the
  completion's code block, which usually restates the whole function), then ``test`` and
  ``check(<entry_point>)``. Reward 1 or 0.
- Assert list (MBPP): ``tests`` (or ``test_list``): assert statements, each run against the code (optional
  ``test_setup_code``/``test_imports`` run before each). Reward: fraction passed (all-or-nothing by option).
- Standard I/O (CodeContests/APPS): ``inputs`` and ``outputs`` lists (or APPS' ``input_output`` JSON); the
  program runs once per input with it on stdin, its stdout compared with the output, whitespace-normalised
  (:func:`normalize_output`: tokens split on ASCII whitespace, blank lines and trailing spaces ignored).
  Reward: fraction of cases passed (all-or-nothing by option).

Code is the last fenced code block of the completion when it has one, else the whole completion.

Statuses: a program that fails is ``ok`` with reward 0 and ``details["failures"]`` saying which tests failed
and why (``assertion``, an exception type name, ``timeout``, ``memory``, ``output_limit``, ``killed``,
``exit``, ``daemon``, ``gone``, ``protocol``, ``tester``, ``wrong_answer``); a program that runs into the
task's time limit is ``ok``, reward 0, ``details["reason"] == "time_limit"`` (the limit is part of the task, so a
program cannot pick ``timeout``, which a stage may drop from its loss, by running on; a signal it sends itself,
SIGXCPU included, is ``killed``, scored 0); ``timeout`` is the harness's own trouble only (the host's deadline
for a whole job); a bad task row is ``invalid`` (the error names the
field); a sandbox job that fails is ``error``; a sandbox backend that cannot run here stops the verifier's
construction (RuntimeError). A completion with no code is ``ok``, reward 0, reason
``no code``. Every verdict that ran has ``details["sandbox"]`` (the backend's name), ``details["isolation"]``
and ``details["bounds"]`` (``cgroup``, or ``rlimits: <why>`` when the job's total memory and process count
could not be bounded; see :mod:`.sandbox`).
"""
from __future__ import annotations

import __future__
import ast
import json
import re
import textwrap
from typing import Any, Iterable, Mapping

from raylign.engine import hookimpl
from raylign.verifiers import Verdict
from raylign.verifiers.code.sandbox import Job, Limits, SandboxBackend, SandboxResult, get_backend, run_many
from raylign.verifiers.code.sandbox_tester import test_classes, test_names

_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)^[ \t]*```", re.S | re.M)
_OPEN_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+#.-]*)[^\n]*\n", re.M)
_PYTHON = {"python", "py", "python3", "py3"}
_NON_PYTHON = {"text", "txt", "output", "console", "bash", "sh", "shell", "json", "plaintext"}


def _compiles(source: str) -> bool:
    try:
        compile(source, "solution.py", "exec", __future__.annotations.compiler_flag, dont_inherit=True)
    except (SyntaxError, ValueError, MemoryError, RecursionError, OverflowError):
        return False
    return True


def extract_code(completion: str, names: Iterable[str] = (), stdin: bool = False) -> str:
    """The last fenced code block (the last Python-tagged one if any, else the last one not tagged as
    output/shell) that defines one of ``names`` (the functions the tests call, the entry point) when one does
    (a block of example usage after the solution is not the solution); for a program that reads stdin
    (``stdin``), the last block that reads it (not a block running it under ``subprocess`` after it); an
    unterminated final block's body, or the completion itself when it has no fence."""
    blocks = [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(completion)]
    if not blocks:
        opener = None
        for opener in _OPEN_FENCE.finditer(completion):
            pass
        if opener is not None:  # truncated generation: take what follows the last opener
            return completion[opener.end():].strip("\n")
        return completion.strip("\n")
    python = [b for lang, b in blocks if lang in _PYTHON]
    other = [b for lang, b in blocks if lang not in _NON_PYTHON]
    candidates = python or other or [blocks[-1][1]]
    names = [n for n in names if n.isidentifier()]
    if stdin and len(candidates) > 1:
        reading = [b for b in candidates if _READS_STDIN.search(b)]
        if reading:
            return reading[-1].strip("\n")
    if names and len(candidates) > 1:
        defines = re.compile(r"^(?:(?:async\s+)?def|class)\s+(?:" + "|".join(map(re.escape, names)) + r")\b"
                             r"|^(?:" + "|".join(map(re.escape, names)) + r")\s*=", re.M)
        last = max((i for i, b in enumerate(candidates) if defines.search(b)), default=None)
        if last is not None:  # the solution's block, with the other blocks that only define (its helpers, its
            # imports, before it or after it); a block that runs something (an example) is left out
            used = set(re.findall(r"[A-Za-z_]\w*", candidates[last]))
            return "\n\n".join(b.strip("\n") for i, b in enumerate(candidates)
                                 if i == last or _helper_block(b, used))
    return candidates[-1].strip("\n")


def _helper_block(block: str, used: set) -> bool:
    """Whether a code block only imports, defines and assigns at its top level (no call runs there), defines a
    name the solution's block reads, and is no block of tests (it imports no ``solution``, ``pytest`` or
    ``unittest`` and defines no ``test...``)."""
    import ast
    try:
        body = ast.parse(block).body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    defined = set()
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [(a.asname or a.name).split(".")[0] for a in node.names]
            module = node.module if isinstance(node, ast.ImportFrom) else None
            if {module, *(a.name.split(".")[0] for a in node.names)} & {"solution", "pytest", "unittest"}:
                return False
            defined.update(names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.name.lower().startswith("test"):
                return False
            defined.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            defined.update(n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store))
    return _defines_only(body) and bool(defined & used)


def _defines_only(body) -> bool:
    """Whether top-level statements only import, define and assign (no call runs there)."""
    import ast
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and not any(isinstance(n, ast.Call)
                                                                     for n in ast.walk(node)):
            continue
        return False
    return True


_READS_STDIN = re.compile(r"\binput\s*\(|\bstdin\b|\bopen\s*\(\s*0\b|\bfileinput\b")
_ASCII_SPACE = re.compile(r"[ \t\r\f\v]+")


def normalize_output(text: str) -> list[list[str]]:
    """Whitespace-normalised lines: the tokens of each non-blank line. Lines end at ``\n`` and tokens are
    separated by ASCII whitespace only (space, tab, ``\r``, ``\f``, ``\v``), as a judge reads them: a
    no-break space, an ideographic space or a Unicode line separator is part of a token, never a separator, so
    ``"1\u00a02"`` is not ``"1 2"``."""
    lines = (_ASCII_SPACE.split(line) for line in text.split("\n"))
    return [[t for t in tokens if t] for tokens in lines if any(tokens)]


def _as_str_list(value: Any, field: str) -> list[str]:
    if isinstance(value, str):
        raise ValueError(f"task field {field!r} must be a list, got a string")
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"task field {field!r} must be a list, got {type(value).__name__}")
    return [v if isinstance(v, str) else "\n".join(map(str, v)) if isinstance(v, list) else str(v) for v in value]


def parse_task(task: dict) -> tuple[str, dict[str, Any]]:
    """(format, fields) of a task row; raises ValueError naming what is missing or malformed."""
    if not isinstance(task, dict):
        raise ValueError(f"task must be a dict, got {type(task).__name__}")
    if "input_output" in task and "inputs" not in task:  # APPS stores a JSON string
        io = task["input_output"]
        io = json.loads(io) if isinstance(io, str) else io
        if not isinstance(io, dict):
            raise ValueError("task field 'input_output' must be a JSON object with 'inputs' and 'outputs'")
        if io.get("fn_name"):  # a call-based row: the function (or LeetCode's Solution method) is called
            return "asserts", {"tests": _call_tests(io), "entry_point": str(io["fn_name"])}
        task = {**task, "inputs": io.get("inputs"), "outputs": io.get("outputs")}
    if "inputs" in task or "outputs" in task:
        for f in ("inputs", "outputs"):
            if task.get(f) is None:
                raise ValueError(f"task is missing field {f!r} (stdio tasks need 'inputs' and 'outputs')")
        inputs, outputs = _as_str_list(task["inputs"], "inputs"), _as_str_list(task["outputs"], "outputs")
        if len(inputs) != len(outputs) or not inputs:
            raise ValueError(f"task fields 'inputs' and 'outputs' must be non-empty and of equal length "
                             f"({len(inputs)} vs {len(outputs)})")
        return "stdio", {"inputs": inputs, "outputs": outputs}
    if "tests" in task or "test_list" in task:
        tests = _as_str_list(task.get("tests", task.get("test_list")), "tests")
        if not tests:
            raise ValueError("task field 'tests' is empty")
        setup = "\n".join(s for s in (_join(task.get("test_imports")), task.get("test_setup_code") or "") if s)
        return "asserts", {"tests": [f"{setup}\n{t}" if setup else t for t in _checks(tests)]}
    if "test" in task or "entry_point" in task:
        for f in ("test", "entry_point"):
            if not task.get(f):
                raise ValueError(f"task is missing field {f!r} (HumanEval tasks need 'prompt', 'test', "
                                 f"'entry_point')")
        if not re.fullmatch(r"[A-Za-z_]\w*", str(task["entry_point"])):
            raise ValueError(f"task field 'entry_point' is not an identifier: {task['entry_point']!r}")
        return "humaneval", {"prompt": str(task.get("prompt") or ""), "test": str(task["test"]),
                             "entry_point": str(task["entry_point"])}
    raise ValueError("task has no tests: give 'prompt'/'test'/'entry_point' (HumanEval), 'tests' (a list of "
                     "asserts) or 'inputs'/'outputs' (stdin/stdout)")


def _wanted_names(fmt: str, fields: dict) -> list[str]:
    """The names a solution must define for a task: its entry point and the functions its tests call."""
    if fmt == "stdio":
        return []
    names = [fields["entry_point"]] if fields.get("entry_point") else []
    return names + (test_names(fields["tests"])[0] if fmt == "asserts" else [])


_HELPER_BODY = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Pass, ast.AnnAssign)


def _test_classes(code: str, tests) -> tuple[str, ...]:
    """The tests' module-level classes that the program names but does not define (LeetCode's ``ListNode``
    and ``TreeNode``, which its judge defines for the solution: ``dummy = ListNode(0)``), as source the solution's
    process runs before the program (each as ``ast.unparse`` gives it, as T sends the source of a class whose
    objects it passes: S then has one class of that name). Only classes whose bodies hold methods, field
    annotations and a docstring: never data the tests keep."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return ()
    named = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    named |= {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
              and n.value.isidentifier()}  # ("head: 'ListNode'")
    defined = {n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))}
    out = {}
    for node in test_classes(tests):
        if node.name in named and node.name not in defined and node.name not in out and all(
                isinstance(st, _HELPER_BODY) or (isinstance(st, ast.Expr) and isinstance(st.value, ast.Constant)
                                                 and isinstance(st.value.value, str)) for st in node.body):
            out[node.name] = ast.unparse(node)
    return tuple(out.values())


def _checks(tests: list[str]) -> list[str]:
    """The items of a test list that check something, each after the items before it that only set up
    ("nums = [1, 2, 3]", "random.seed(0)", "s = Solution()", a helper ``def check(candidate): ...``), which count
    as no test: a program passes no test by an item that checks nothing, and a name an item binds reaches the
    items after it. An item checks when it asserts or raises outside a function it only defines, calls a function
    as a statement (``check(add)``, ``run_case(1, 2)``, ``f(1)``; a method of an imported module aside), defines
    pytest/unittest tests, or does not parse (it fails as a test). ValueError when none checks."""
    import ast
    trees = []
    for test in tests:
        try:
            trees.append(ast.parse(test))
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            trees.append(None)
    modules, helpers = set(), set()  # names the items import (calling them sets up), functions they define
    for tree in trees:
        for node in ast.walk(tree) if tree is not None else ():
            if isinstance(node, (ast.Import, ast.ImportFrom)) and not (
                    isinstance(node, ast.ImportFrom) and node.module == "solution"):
                modules.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                helpers.add(node.name)
    checks, preamble, trailing = [], [], []
    for test, tree in zip(tests, trees):
        if tree is None or _checking(tree.body, modules, helpers):
            checks.append("\n".join([*preamble, test]))
            trailing = []
        else:
            preamble.append(test)
            trailing.append(test)
    if not checks:
        raise ValueError("task field 'tests' checks nothing: no item asserts, raises or calls a function")
    if trailing:  # items after the last check run with it: never dropped (they may check in a way not seen here)
        checks[-1] = "\n".join([checks[-1], *trailing])
    return checks


# context managers that check their block: it must raise (or warn) what they name
_EXPECTING = frozenset(("raises", "warns", "deprecated_call", "assertRaises", "assertRaisesRegex", "assertWarns",
                        "assertWarnsRegex"))


def _checking(statements, modules: set, helpers: set = frozenset()) -> bool:
    import ast
    import builtins
    for node in statements:
        if isinstance(node, (ast.Assert, ast.Raise)):
            return True
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.name.lower().startswith("test"):
                return True
            continue  # a helper it only defines: its asserts run when something calls it
        if isinstance(node, ast.ClassDef):
            if node.name.lower().startswith("test") or any(
                    (b.attr if isinstance(b, ast.Attribute) else getattr(b, "id", "")).endswith("TestCase")
                    for b in node.bases):
                return True
            continue
        if isinstance(node, ast.With) and any(
                isinstance(item.context_expr, ast.Call) and (
                    getattr(item.context_expr.func, "attr", None) or getattr(item.context_expr.func, "id", ""))
                in _EXPECTING for item in node.items):
            return True  # with pytest.raises(AttributeError): p.x = 2 (a check, whatever its body)
        calls = [n for n in ast.walk(node) if isinstance(n, ast.Call)] if not isinstance(
            node, (ast.If, ast.For, ast.While, ast.With, ast.Try, ast.Match)) else []
        for call in calls:
            f = call.func
            if isinstance(f, ast.Name) and f.id in helpers:
                return True  # a helper the items define: ok = check(f), [run_case(a, b) for ...]
            if isinstance(f, ast.Attribute) and (f.attr.startswith("assert") or (
                    f.attr == "main" and getattr(f.value, "id", None) == "unittest")):
                return True  # unittest.TestCase().assertEqual(...), unittest.main()
            if isinstance(node, ast.Expr) and isinstance(f, ast.Name) and f.id not in modules \
                    and f.id not in builtins.__dict__:
                return True  # check(add), print(f(1)): a call made as a statement
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):  # if / for / while / with / try / match
            inner = getattr(node, field, None)
            if isinstance(inner, list) and _checking(
                    [h for x in inner for h in (x.body if isinstance(x, (ast.ExceptHandler, ast.match_case))
                                                else [x])], modules, helpers):
                return True
    return False


def _call_tests(io: dict) -> list[str]:
    """APPS' call-based rows (``fn_name``) as asserts, judged the way APPS' own harness judges them: the function
    (or ``Solution().fn_name`` when the program defines LeetCode's ``class Solution``) called with each argument
    list; a tuple is compared as a list, and an expected list of one value also matches that value."""
    name, inputs, outputs = io.get("fn_name"), io.get("inputs"), io.get("outputs")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_]\w*", name):
        raise ValueError(f"task field 'input_output' names no function: fn_name {name!r}")
    if not isinstance(inputs, list) or not isinstance(outputs, list) or len(inputs) != len(outputs) or not inputs:
        raise ValueError("task field 'input_output' needs non-empty 'inputs' and 'outputs' of equal length")
    tests = []
    for args, want in zip(inputs, outputs):
        args = args if isinstance(args, list) else [args]
        data = json.dumps([args, want])  # as JSON, read back in the test: Infinity and NaN stay numbers
        tests.append(f"import json as _json\n_args, _want = _json.loads({data!r})\n"
                     f"_f = Solution().{name} if 'Solution' in globals() else {name}\n"
                     f"_r = _f(*_args)\n_r = list(_r) if isinstance(_r, tuple) else _r\n"
                     f"_rows = [list(x) if isinstance(x, tuple) else x for x in _r] if isinstance(_r, list) else _r\n"
                     f"assert _r == _want or _rows == _want or (isinstance(_want, list) and len(_want) == 1 "
                     f"and (_r == _want[0] or _rows == _want[0]))\n")
    return tests


def _join(value: Any) -> str:
    if not value:
        return ""
    return value if isinstance(value, str) else "\n".join(map(str, value))


DEADLINE_MARGIN_S = 2.0  # of the pool's deadline, kept for the job's start, its leftovers and the reply


class CodeVerifier:
    """Score Python completions by running them against the task's tests in a sandbox.

    :param sandbox: backend name (``"auto"``: the strongest available of strong isolation, see
        :func:`.sandbox.get_backend`; the weaker ``"rlimits"`` only when named). Raises RuntimeError, one line
        saying why, when that backend cannot run here.
    :param timeout_s: wall-clock limit per program run (per stdin case; for tests: the whole run).
    :param memory_mb: address-space limit of the program.
    :param all_or_nothing: reward 1 only if every test/case passes (else the fraction passed).
    :param max_output_bytes: cap on stdout/stderr (and any file the program writes).
    :param max_procs: processes + threads the program may have.
    :param site_packages: let programs import the host interpreter's third-party packages (numpy...).
    :param sandboxes: the backends ``sandbox`` names one of, ``{name: backend class}``. The engine's verifier
        workers pass the sandboxes of their plugin registry (``raylign_register_sandboxes``); None: the
        built-in ones (:data:`.sandbox.BUILTIN_BACKENDS`).
    :param deadline_s: the verifier pool's deadline per verification (the engine's workers pass it), past which
        the pool kills the worker and the verdict is ``timeout``: a job's runs then share ``deadline_s`` less
        ``DEADLINE_MARGIN_S`` (stdin cases past it fail as the program's, reason ``time_limit`` when none
        passed), so no program, however many its cases, runs into the pool's deadline. None: no shared limit.
    """

    def __init__(self, sandbox: str | SandboxBackend = "auto", timeout_s: float = 5.0, memory_mb: int = 512,
                 all_or_nothing: bool = False, max_output_bytes: int = 4 << 20, max_procs: int = 32,
                 site_packages: bool = False, sandboxes: Mapping[str, type] | None = None,
                 deadline_s: float | None = None) -> None:
        total = None if deadline_s is None else max(0.5, float(deadline_s) - DEADLINE_MARGIN_S)
        self.limits = Limits(timeout_s=float(timeout_s) if total is None else min(float(timeout_s), total),
                             memory_mb=int(memory_mb), max_procs=int(max_procs),
                             max_output_bytes=int(max_output_bytes), total_s=total)
        self.all_or_nothing = bool(all_or_nothing)
        self.site_packages = bool(site_packages)
        # a sandbox that cannot run here stops the run now, with one line saying why (RuntimeError); "auto"
        # never falls back to the weaker rlimits backend, which a config must name to get
        self.backend: SandboxBackend = sandbox if isinstance(sandbox, SandboxBackend) else get_backend(sandbox,
                                                                                                       sandboxes)
        self._sandbox_name = self.backend.name

    @property
    def backend_name(self) -> str:
        """The sandbox backend in use (the engine reports it in metrics and ``raylign verify``)."""
        return self._sandbox_name

    # -- one sample --------------------------------------------------------------------------------------
    def __call__(self, completion: str, task: dict) -> Verdict:
        prepared = self.prepare(completion, task)
        if isinstance(prepared, Verdict):
            return prepared
        return self.judge(prepared, self.backend.run(prepared[1]))

    # -- many samples, concurrently --------------------------------------------------------------------
    def verify_many(self, items: Iterable[tuple[str, dict]], workers: int | None = None) -> list[Verdict]:
        """Verify (completion, task) pairs with a pool of ``workers`` sandboxes (default: one per CPU)."""
        prepared = [self.prepare(c, t) for c, t in items]
        todo = [p for p in prepared if not isinstance(p, Verdict)]
        results = iter(run_many([p[1] for p in todo], workers=workers, backend=self.backend) if todo else [])
        return [p if isinstance(p, Verdict) else self.judge(p, next(results)) for p in prepared]

    # -- the two halves --------------------------------------------------------------------------------
    def prepare(self, completion: str, task: dict) -> Verdict | tuple[str, Job, dict]:
        """The job to run, or the verdict when there is nothing to run."""
        details: dict[str, Any] = {"sandbox": self._sandbox_name}
        try:
            fmt, fields = parse_task(task)
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            return Verdict(0.0, "invalid", str(exc), details)
        details["format"] = fmt
        if not isinstance(completion, str):
            return Verdict(0.0, "invalid", f"completion must be a str, got {type(completion).__name__}", details)
        code = extract_code(completion, _wanted_names(fmt, fields), stdin=fmt == "stdio")
        if not code.strip():
            details.update(reason="no code", passed=0, total=_total(fmt, fields), failures=[])
            return Verdict(0.0, "ok", None, details)
        if fmt == "humaneval":
            # a fenced block usually restates the whole function; a bare completion continues the prompt
            program = fields["prompt"] + ("\n" + code if _OPEN_FENCE.search(completion) else completion)
            if _OPEN_FENCE.search(completion) and not _compiles(program):  # a fence holding the body alone,
                indented = fields["prompt"] + textwrap.indent(code, "    ")  # written without its indentation
                program = indented if _compiles(indented) else program
            test = f"{fields['test']}\n\ncheck({fields['entry_point']})\n"
            # the prompt runs in the test process too: its helpers (poly, encode_cyclic...) are the task's,
            # whatever the completion redefines; only the entry point is the solution's
            job = Job(program, tests=(test,), limits=self.limits, site_packages=self.site_packages,
                      setup=fields["prompt"], entry_points=(fields["entry_point"],))
        elif fmt == "asserts":
            job = Job(code, tests=tuple(fields["tests"]), limits=self.limits, site_packages=self.site_packages,
                      entry_points=(fields["entry_point"],) if fields.get("entry_point") else (),
                      helpers=_test_classes(code, fields["tests"]))
        else:
            job = Job(code, inputs=tuple(fields["inputs"]), limits=self.limits, site_packages=self.site_packages)
        return fmt, job, fields

    def judge(self, prepared: tuple[str, Job, dict], res: SandboxResult) -> Verdict:
        fmt, job, fields = prepared
        details: dict[str, Any] = {"sandbox": res.backend, "isolation": res.isolation, "format": fmt,
                                   "bounds": res.bounds}
        if res.error:
            return Verdict(0.0, "error", res.error, details)
        failures: list[dict[str, Any]] = []
        if fmt == "stdio":
            expected = fields["outputs"]
            n_pass = n_timeout = 0
            for i, (run, want) in enumerate(zip(res.runs, expected)):
                if run.reason is None and same_output(run.stdout, want):
                    n_pass += 1
                    continue
                n_timeout += run.reason == "timeout"
                reason, message = (run.reason, run.message) if run.reason else ("wrong_answer", _diff(run.stdout, want))
                failures.append({"test": i, "reason": reason, "message": message})
            total = len(expected)
            all_timed_out = n_timeout == total
        else:
            total = len(res.tests)
            n_pass = sum(t.passed for t in res.tests)
            for i, t in enumerate(res.tests):
                if not t.passed:
                    failures.append({"test": i, "reason": t.reason, "message": t.message})
            all_timed_out = bool(res.runs) and res.runs[0].reason == "timeout"
        details.update(passed=n_pass, total=total, failures=failures[:20])
        if len(failures) > 20:
            details["failures_omitted"] = len(failures) - 20
        run0 = res.runs[0] if res.runs else None
        if run0 is not None and (run0.stderr or fmt != "stdio"):
            details["stderr"] = run0.stderr[-1000:]
        if all_timed_out:  # the program's own failure: never a status it can choose by running on
            details["reason"] = "time_limit"
            details["message"] = f"the program exceeded its {self.limits.timeout_s:g}s limit"
            return Verdict(0.0, "ok", None, details)
        if fmt == "humaneval" or self.all_or_nothing:
            reward = float(n_pass == total)
        else:
            reward = n_pass / total if total else 0.0
        return Verdict(reward, "ok", None, details)


def _total(fmt: str, fields: dict) -> int:
    return len(fields["inputs"]) if fmt == "stdio" else len(fields["tests"]) if fmt == "asserts" else 1


_WHITE = (b" ", b"\t", b"\n", b"\r", b"\x0b", b"\x0c")
_BLANK_RUNS = re.compile(r"\n[ \t\r\f\v\n]*\n")  # blank lines, which normalization drops: gone in C first (each
# match starts at a newline: no backtracking over a long run of spaces)


def _ink(text: str) -> int:
    """How many bytes of ``text`` are not ASCII whitespace (what normalization keeps), counted in C."""
    b = text.encode("utf-8", "surrogatepass")
    return len(b) - sum(b.count(w) for w in _WHITE)


def same_output(got: str, want: str) -> bool:
    """Whether a program's output is the expected one, token by token and line by line (``normalize_output``);
    one that differs in size is told apart without being split (4 MB of "1\\n" per case made the judge itself
    run past the pool's deadline)."""
    return _ink(got) == _ink(want) and normalize_output(_BLANK_RUNS.sub("\n", got)) == normalize_output(want)


_DIFF_CHARS = 200_000  # of a wrong output read for the failure's message


def _diff(got: str, want: str) -> str:
    g, w = normalize_output(_BLANK_RUNS.sub("\n", got[:_DIFF_CHARS])), normalize_output(want[:_DIFF_CHARS])
    for k, (a, b) in enumerate(zip(g, w)):
        if a != b:
            return f"line {k + 1}: expected {' '.join(b)[:80]!r}, got {' '.join(a)[:80]!r}"
    return f"expected {len(w)} non-blank lines, got {len(g)}"


@hookimpl
def raylign_register_verifiers(register):
    register("code", CodeVerifier)


__all__ = ["CodeVerifier", "extract_code", "normalize_output", "parse_task", "raylign_register_verifiers",
           "same_output"]
