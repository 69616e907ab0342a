"""Keep reasoning-gym's answer checkers from running text as code (one job: patch the checkers that evaluate).

Some of reasoning-gym's ``score_answer`` functions read the answer, or a field of the task row, with Python's
``eval`` or sympy's ``parse_expr`` (which is ``eval`` after a few rewrites): ``countdown``, ``puzzle24``, the
integration and polynomial generators, ``n_queens``, ``spiral_matrix``, ``binary_matrix``, ``string_insertion``,
``number_sorting``. A completion's ``<answer>__import__('os').system(...)</answer>`` then ran in the verifier
worker, unsandboxed, with the service's token in its environment; and since the code runs in the process that
computes the score, no sandbox around the call could stop it from choosing its own score. So the text never gets
there: :func:`guard` finds every checker whose source, or the source of a function of its module or class it
calls (``bitwise_arithmetic``'s ``verify_solution`` evaluates the row's problem), evaluates text, and gives its
module a ``parse_expr`` (and a ``sympy`` whose ``parse_expr``/``sympify`` are these) that accept only a small
expression grammar (:func:`safe_expression`: numbers, arithmetic, small powers, a few math functions, short
names), and an ``eval`` that reads literals and arithmetic on numbers only (:func:`restricted_eval`). Everything
else raises the errors the checkers already catch (their score is then 0).
"""
from __future__ import annotations

import ast
import inspect
import re
import sys
import textwrap
import types

_EVALUATES = re.compile(r"(?<![\w.])(?:eval|exec)\(|parse_expr\(|sympify\(")
MAX_TEXT = 10_000  # characters of text a checker may parse
MAX_NODES = 2_000
_FUNCTIONS = {"sin", "cos", "tan", "cot", "sec", "csc", "asin", "acos", "atan", "acot", "asec", "acsc", "atan2",
              "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "exp", "log", "ln", "sqrt", "Abs", "abs", "sign",
              "floor", "ceiling", "erf", "erfc", "gamma", "Integral"}  # (Integral: an answer sympy left unsolved;
# reasoning_gym_checks refuses it where the row's answer has none: the question restated is no antiderivative)
_BOUNDED_ARGS = {"gamma", "floor", "ceiling"}  # an integer argument at most MAX_FUNCTION_INT (gamma(n) is (n-1)!)
MAX_FUNCTION_INT = 1000
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
    try:
        _check_tree(tree, count)
    except RecursionError:
        raise UnsafeText("expression nested too deeply") from None


def _check_tree(tree, count) -> None:
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
            if node.func.id in _BOUNDED_ARGS and any(isinstance(a, ast.Constant) and isinstance(a.value, (int, float))
                                                     and abs(a.value) > MAX_FUNCTION_INT for a in node.args):
                raise UnsafeText(f"{node.func.id} of a number past {MAX_FUNCTION_INT}")
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
    """An exponent: a number up to ``MAX_EXPONENT``, a name, or a sum, ratio or negation of those, or a product
    of a name and those (``2**(100*100*100)`` is a number far past the bound)."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        return _exponent(node.operand)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult) and not any(
            isinstance(n, ast.Name) for side in (node.left, node.right) for n in ast.walk(side)):
        raise UnsafeText("a product of numbers in an exponent")
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


_ARITHMETIC = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
               ast.Div: lambda a, b: a / b, ast.FloorDiv: lambda a, b: a // b, ast.Mod: lambda a, b: a % b,
               ast.LShift: lambda a, b: a << b, ast.RShift: lambda a, b: a >> b, ast.BitAnd: lambda a, b: a & b,
               ast.BitOr: lambda a, b: a | b, ast.BitXor: lambda a, b: a ^ b, ast.Pow: lambda a, b: a ** b}
MAX_BITS = 100_000  # of any number restricted_eval computes


def restricted_eval(text, *args, **kwargs):
    """``eval`` for a checker: a literal, or arithmetic on numbers (``(0xc3ce << 0x3) + (0x1907 - 0x7de4)``, as
    ``bitwise_arithmetic`` evaluates its row's problem): no names, calls or attributes, and no number past
    ``MAX_BITS`` bits (shifts and powers are bounded before they are computed)."""
    try:
        return literal_only(text)
    except (ValueError, SyntaxError, TypeError):
        pass
    try:
        tree = ast.parse(text.strip(), mode="eval")
        if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
            raise UnsafeText("expression too large")
        return _arith(tree.body)
    except (SyntaxError, RecursionError, MemoryError):
        raise UnsafeText("not arithmetic on numbers") from None


def _arith(node):
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub, ast.Invert)):
        v = _arith(node.operand)
        return +v if isinstance(node.op, ast.UAdd) else -v if isinstance(node.op, ast.USub) else ~_int(v)
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
        a, b = _arith(node.left), _arith(node.right)
        if isinstance(node.op, (ast.LShift, ast.Pow)) and abs(b) * max(1, abs(a).bit_length() if isinstance(a, int)
                                                                         else 64) > MAX_BITS:
            raise UnsafeText("number too large")
        value = _ARITHMETIC[type(node.op)](a, b)
        if isinstance(value, int) and value.bit_length() > MAX_BITS:
            raise UnsafeText("number too large")
        return value
    raise UnsafeText(f"{type(node).__name__} is not arithmetic on numbers")


def _int(v):
    if not isinstance(v, int):
        raise UnsafeText("bitwise operations take integers")
    return v


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
        for module in _evaluating_modules(dataset_cls):
            _patch(module)
            if name not in patched:
                patched.append(name)
    return patched


_PACKAGE = "reasoning_gym"


def _evaluating_modules(dataset_cls) -> list:
    """The modules whose functions evaluate text on the way of ``dataset_cls.score_answer``: it, and what it calls,
    transitively (a function of its module, a method of its class)."""
    found, seen, todo = [], set(), [dataset_cls.score_answer]
    while todo:
        fn = inspect.unwrap(todo.pop())
        if id(fn) in seen or not callable(fn):
            continue
        seen.add(id(fn))
        module = sys.modules.get(getattr(fn, "__module__", None) or "")
        if module is None or not module.__name__.startswith(_PACKAGE):
            continue  # (sympy's own parse_expr evaluates, as it must: its callers are what gets patched)
        try:
            source = inspect.getsource(fn)
        except (OSError, TypeError):
            source = "eval("  # cannot tell: treat as evaluating
        if _EVALUATES.search(source) and module is not None and module not in found:
            found.append(module)
        try:
            tree = ast.parse(textwrap.dedent(source))
        except SyntaxError:
            continue
        scope = vars(module) if module is not None else {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(scope.get(node.id), types.FunctionType):
                todo.append(scope[node.id])  # a function of the module, called or handed on
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.value.id in ("self", "cls") and callable(getattr(dataset_cls, node.attr, None)):
                todo.append(getattr(dataset_cls, node.attr))
    return found


def _patch(module) -> None:
    g = module.__dict__
    if g.get("__raylign_guarded__"):
        return
    g["eval"] = restricted_eval
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


__all__ = ["UnsafeText", "guard", "literal_only", "restricted_eval", "safe_expression"]
