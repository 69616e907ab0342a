"""Keep reasoning-gym's answer checkers from running text as code (one job: patch the checkers that evaluate).

Some of reasoning-gym's ``score_answer`` functions read the answer, or a field of the task row, with Python's
``eval`` or sympy's ``parse_expr`` (which is ``eval`` after a few rewrites): ``countdown``, ``puzzle24``, the
integration and polynomial generators, ``n_queens``, ``spiral_matrix``, ``binary_matrix``, ``string_insertion``,
``number_sorting``. A completion's ``<answer>__import__('os').system(...)</answer>`` then ran in the verifier
worker, unsandboxed, with the service's token in its environment; and since the code runs in the process that
computes the score, no sandbox around the call could stop it from choosing its own score. So the text never gets
there: :func:`guard` finds every checker whose source evaluates text and gives its module a ``parse_expr`` (and a
``sympy`` whose ``parse_expr``/``sympify`` are these) that accept only a small expression grammar
(:func:`safe_expression`: numbers, arithmetic, small powers, a few math functions, short names), and an ``eval``
that reads literals only (``ast.literal_eval``: lists, tuples, numbers, strings). Everything else raises the
errors the checkers already catch (their score is then 0).
"""
from __future__ import annotations

import ast
import inspect
import re
import sys
import types

_EVALUATES = re.compile(r"(?<![\w.])(?:eval|exec)\(|parse_expr\(|sympify\(")
MAX_TEXT = 10_000  # characters of text a checker may parse
MAX_NODES = 2_000
_FUNCTIONS = {"sin", "cos", "tan", "cot", "sec", "csc", "asin", "acos", "atan", "acot", "asec", "acsc", "atan2",
              "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "exp", "log", "ln", "sqrt", "Abs", "abs", "sign",
              "floor", "ceiling", "erf", "erfc", "gamma", "Integral"}  # (Integral: an answer sympy left unsolved)
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{0,2}")  # x, C, C1, pi, exp... (never a dunder, never an attribute)
_OPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.Mod, ast.FloorDiv, ast.BitXor)
MAX_EXPONENT = 100
MAX_INT_DIGITS = 100


class UnsafeText(ValueError):
    """Text a checker would evaluate that is not a plain math expression or literal."""


def safe_expression(text: str) -> None:
    """Raise :class:`UnsafeText` unless ``text`` parses as a small math expression: numbers (at most
    ``MAX_INT_DIGITS`` digits), names of up to three letters or digits, ``+ - * / % // ^ **`` (an exponent is a
    number up to ``MAX_EXPONENT``, a name or a ratio of those; powers nest at most twice), the functions of
    ``_FUNCTIONS`` called with positional arguments, lists and tuples of those."""
    if not isinstance(text, str):
        return  # (a checker handed something else than text: nothing is parsed from it here)
    if len(text) > MAX_TEXT:
        raise UnsafeText(f"answer longer than {MAX_TEXT} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        raise UnsafeText(f"not an expression: {exc}") from None
    count = [0]

    def check(node, pow_depth=0):
        count[0] += 1
        if count[0] > MAX_NODES:
            raise UnsafeText("expression too large")
        if isinstance(node, ast.Expression):
            return check(node.body, pow_depth)
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float, complex)):
                raise UnsafeText("only numbers are constants here")
            if isinstance(node.value, int) and node.value.bit_length() > MAX_INT_DIGITS * 3.33:
                raise UnsafeText("number too long")
            return
        if isinstance(node, ast.Name):
            if not _NAME.fullmatch(node.id):
                raise UnsafeText(f"name {node.id!r} is not allowed")
            return
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
            return check(node.operand, pow_depth)
        if isinstance(node, ast.BinOp) and isinstance(node.op, _OPS):
            if isinstance(node.op, (ast.Pow, ast.BitXor)):
                if pow_depth >= 2:
                    raise UnsafeText("powers nested too deeply")
                _exponent(node.right)
                check(node.left, pow_depth + 1)
                return check(node.right, pow_depth + 1)
            check(node.left, pow_depth)
            return check(node.right, pow_depth)
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS or node.keywords \
                    or len(node.args) > 3:
                raise UnsafeText("only math functions may be called")
            for arg in node.args:
                check(arg, pow_depth)
            return
        if isinstance(node, (ast.List, ast.Tuple)):
            for item in node.elts:
                check(item, pow_depth)
            return
        raise UnsafeText(f"{type(node).__name__} is not allowed")

    check(tree)


def _exponent(node) -> None:
    """An exponent: a number up to ``MAX_EXPONENT``, a name, or a sum, ratio or negation of those."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        return _exponent(node.operand)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Div, ast.Add, ast.Sub, ast.Mult)):
        _exponent(node.left)
        return _exponent(node.right)
    if isinstance(node, ast.Name):
        return
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool) \
            and abs(node.value) <= MAX_EXPONENT:
        return
    raise UnsafeText(f"exponents are numbers up to {MAX_EXPONENT} or names")


def literal_only(text, *args, **kwargs):
    """``eval`` for a checker: literals only (``ast.literal_eval``)."""
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise UnsafeText("only short literals are read")
    try:
        return ast.literal_eval(text.strip())
    except (RecursionError, MemoryError):
        raise UnsafeText("literal nested too deeply") from None


def _checked(parse):
    def parse_checked(text, *args, **kwargs):
        safe_expression(text)
        return parse(text, *args, **kwargs)
    parse_checked.__wrapped__ = parse
    return parse_checked


def _sympy_view(sympy):
    """A module that is ``sympy`` but for ``parse_expr`` and ``sympify``, which check their text first."""
    view = types.ModuleType("sympy")
    view.__dict__.update(sympy.__dict__)
    view.parse_expr = _checked(sympy.parse_expr)
    view.sympify = _checked(sympy.sympify)
    view.__guarded__ = True
    return view


def guard(gym) -> list[str]:
    """Patch the module of every reasoning-gym checker whose source evaluates text (idempotent); returns the
    datasets whose checkers were patched."""
    patched = []
    for name, (dataset_cls, _config) in sorted(gym.factory.DATASETS.items()):
        try:
            source = inspect.getsource(dataset_cls.score_answer)
        except (OSError, TypeError):
            source = "eval("  # cannot tell: treat as evaluating
        if not _EVALUATES.search(source):
            continue
        module = sys.modules.get(dataset_cls.score_answer.__module__)
        if module is None:
            continue
        _patch(module)
        patched.append(name)
    return patched


def _patch(module) -> None:
    g = module.__dict__
    if g.get("__raylign_guarded__"):
        return
    g["eval"] = literal_only
    g["exec"] = _no_exec
    for key, value in list(g.items()):
        if key in ("parse_expr", "sympify") and callable(value) and not hasattr(value, "__wrapped__"):
            g[key] = _checked(value)
        elif isinstance(value, types.ModuleType) and value.__name__ == "sympy" and not getattr(value, "__guarded__",
                                                                                               False):
            g[key] = _sympy_view(value)
    g["__raylign_guarded__"] = True


def _no_exec(*args, **kwargs):
    raise UnsafeText("a checker may not run code")


__all__ = ["UnsafeText", "guard", "literal_only", "safe_expression"]
