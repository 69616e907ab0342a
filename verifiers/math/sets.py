"""Sets as values (one job: a set-like value in, its canonical content out, and whether two are equal).

A set-like value (``values``) is a finite set ``\\{1, 2\\}``, an interval ``[0, 1)``, a union of intervals, a
set expression (``\\cup``, ``\\cap``, ``\\setminus`` or ``-``), a named set (``\\mathbb{R}``, ``\\mathbb{Z}^+``) or a
set written with an ellipsis (``\\{1, 2, 3, \\ldots\\}``). ``to_set`` computes its content:

- the real points and intervals it holds, as sorted disjoint pieces (``[a, a]`` is a point), when every endpoint
  and element has a real value (``\\sqrt2`` and ``\\pi`` included);
- the elements that are not real numbers (symbols, tuples), kept as values;
- integer progressions (``\\mathbb{Z}``, ``\\{2, 4, 6, \\ldots\\}``): step, residue and bounds;
- ``\\mathbb{Q}`` and ``\\mathbb{C}`` (and their signed parts) only by name.

``\\mathbb{N}`` is read both ways (``\\{1, 2, \\ldots\\}`` and ``\\{0, 1, \\ldots\\}``), so it equals either, but
``\\mathbb{N}`` != ``\\mathbb{Z}``. ``set_equal`` is None when a value has no content we can compute (symbolic
endpoints, operations on what only has a name): the caller then compares the written forms.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

from raylign.verifiers.math.evaluate import EvalError, evaluate
from raylign.verifiers.math.parse import INF

MAX_EXPAND = 256  # a finite progression (\{1, 2, \ldots, 100\}) is written out up to this many elements
_TOL = 1e-12
# endpoints computed in floating point are the same when they differ by rounding (sin(pi) is 1.2e-16, not 0), not by
# a gap the answer wrote (ln(1 + 10^{-14}) is not 0): a few units in the last place of a double
_ENDPOINT_TOL = 1e-15


class Unsupported(Exception):
    """No content we can compute; compare the written forms instead."""


@dataclass(frozen=True)
class End:
    num: object  # Fraction, float, or +-math.inf
    value: tuple | None  # the value it was written as (None for an infinity)
    closed: bool


@dataclass(frozen=True)
class Prog:
    step: Fraction
    residue: Fraction  # a member mod step
    lo: Fraction | None  # None: unbounded below
    hi: Fraction | None


@dataclass
class Content:
    pieces: list = field(default_factory=list)  # [(End, End)], sorted and disjoint once normalized
    others: list = field(default_factory=list)  # element values that are not real numbers
    progs: list = field(default_factory=list)  # [Prog]
    name: str | None = None  # "Q", "C", "Q+"...: known only by name

    def finite(self) -> bool:
        return not self.progs and self.name is None and all(_is_point(p) for p in self.pieces)


# ----------------------------------------------------------------------------------------------- numbers
def _infinite(x) -> bool:
    return isinstance(x, float) and math.isinf(x)


def _key(x) -> float:
    try:
        return float(x)
    except OverflowError:
        return math.inf if x > 0 else -math.inf


def _cmp(a, b) -> int:
    if a == b:
        return 0
    if isinstance(a, float) or isinstance(b, float):
        if _infinite(a) or _infinite(b):
            return -1 if a < b else 1
        if abs(_key(a) - _key(b)) <= _ENDPOINT_TOL * max(1.0, abs(_key(a)), abs(_key(b))):
            return 0
    return -1 if a < b else 1


def real_number(value: tuple):
    """The real number a scalar value stands for (Fraction, float, +-inf), or None."""
    if value[0] != "scalar":
        return None
    s = value[1]
    if s.pct:
        return None
    if s.rat is not None:
        return s.rat
    node = s.node
    if node == INF:
        return math.inf
    if node == ("neg", INF):
        return -math.inf
    if s.huge:
        return None
    try:
        v = evaluate(node, {})
    except (ArithmeticError, ValueError, EvalError, KeyError):
        return None
    if not (math.isfinite(v.real) and abs(v.imag) <= _TOL * max(1.0, abs(v.real))):
        return None
    return v.real


def _is_point(piece) -> bool:
    return _cmp(piece[0].num, piece[1].num) == 0


# ----------------------------------------------------------------------------------------------- real pieces
def _normalize(pieces: list) -> list:
    """Sorted, disjoint, merged pieces; empty ones dropped."""
    kept = []
    for lo, hi in pieces:
        c = _cmp(lo.num, hi.num)
        if c > 0 or (c == 0 and not (lo.closed and hi.closed)):
            continue
        kept.append((lo, hi))
    kept.sort(key=lambda p: (_key(p[0].num), not p[0].closed))
    out = []
    for lo, hi in kept:
        if out:
            plo, phi = out[-1]
            c = _cmp(lo.num, phi.num)
            if c < 0 or (c == 0 and (lo.closed or phi.closed)):
                ch = _cmp(hi.num, phi.num)
                if ch > 0 or (ch == 0 and hi.closed and not phi.closed):
                    out[-1] = (plo, hi)
                continue
        out.append((lo, hi))
    return out


def _complement(pieces: list) -> list:
    out, lo = [], End(-math.inf, None, False)
    for plo, phi in pieces:
        out.append((lo, End(plo.num, plo.value, not plo.closed)))
        lo = End(phi.num, phi.value, not phi.closed)
    out.append((lo, End(math.inf, None, False)))
    return _normalize(out)


def _intersect(a: list, b: list) -> list:
    out = []
    for alo, ahi in a:
        for blo, bhi in b:
            c = _cmp(alo.num, blo.num)
            lo = alo if c > 0 or (c == 0 and not alo.closed) else blo
            c = _cmp(ahi.num, bhi.num)
            hi = ahi if c < 0 or (c == 0 and not ahi.closed) else bhi
            out.append((lo, hi))
    return _normalize(out)


# ----------------------------------------------------------------------------------------------- progressions
def _prog_points(p: Prog) -> list | None:
    if p.lo is None or p.hi is None:
        return None
    count = (p.hi - p.lo) / p.step + 1
    if count > MAX_EXPAND:
        return None  # kept as a progression
    return [p.lo + k * p.step for k in range(int(count))] if count >= 1 else []


def _prog(step: Fraction, member: Fraction, lo=None, hi=None) -> Prog:
    """A progression through ``member`` with ``step``, bounds moved onto its members."""
    residue = member % step
    if lo is not None:
        lo = residue + math.ceil((lo - residue) / step) * step
    if hi is not None:
        hi = residue + math.floor((hi - residue) / step) * step
    return Prog(step, residue, lo, hi)


def _first_member(p: Prog, x, strict: bool, up: bool) -> Fraction:
    """The first member of ``p``'s lattice at or beyond ``x`` (beyond it when ``strict``), going up or down."""
    x = Fraction(x)
    k = (x - p.residue) / p.step
    k = math.ceil(k) if up else math.floor(k)
    m = p.residue + k * p.step
    if strict and m == x:
        m += p.step if up else -p.step
    return m


def _prog_in_piece(p: Prog, lo: End, hi: End) -> Prog:
    """The members of ``p`` inside one real piece."""
    new_lo, new_hi = p.lo, p.hi
    if not _infinite(lo.num):
        bound = _first_member(p, lo.num, not lo.closed, True)
        new_lo = bound if new_lo is None else max(new_lo, bound)
    if not _infinite(hi.num):
        bound = _first_member(p, hi.num, not hi.closed, False)
        new_hi = bound if new_hi is None else min(new_hi, bound)
    return Prog(p.step, p.residue, new_lo, new_hi)


def _prog_meet(p: Prog, q: Prog) -> Prog:
    if (p.step, p.residue) != (q.step, q.residue):
        raise Unsupported("intersection of two different progressions")
    lo = q.lo if p.lo is None else p.lo if q.lo is None else max(p.lo, q.lo)
    hi = q.hi if p.hi is None else p.hi if q.hi is None else min(p.hi, q.hi)
    return Prog(p.step, p.residue, lo, hi)


def _merge_progs(progs: list[Prog]) -> list[Prog]:
    """Progressions on one lattice that overlap or touch become one."""
    out: list[Prog] = []
    for p in sorted(set(progs), key=lambda p: (p.step, p.residue, -math.inf if p.lo is None else p.lo)):
        if out and (out[-1].step, out[-1].residue) == (p.step, p.residue):
            last = out[-1]
            if last.hi is None or p.lo is None or p.lo <= last.hi + p.step:
                hi = None if last.hi is None or p.hi is None else max(last.hi, p.hi)
                out[-1] = Prog(p.step, p.residue, last.lo, hi)
                continue
        out.append(p)
    return out


def _settle(c: Content) -> Content:
    """Finite progressions become points; a point next to a progression's end extends it."""
    progs = []
    for p in c.progs:
        pts = _prog_points(p)
        if pts is None:
            progs.append(p)
        else:
            c.pieces += [_point(x) for x in pts]
    c.pieces = _normalize(c.pieces)
    for i, p in enumerate(progs):
        changed = True
        while changed:
            changed = False
            for piece in list(c.pieces):
                if not _is_point(piece) or not isinstance(piece[0].num, Fraction):
                    continue
                x = piece[0].num
                inside = (x - p.residue) % p.step == 0 and (p.lo is None or x >= p.lo) and (p.hi is None or x <= p.hi)
                if inside or (p.lo is not None and x == p.lo - p.step) or (p.hi is not None and x == p.hi + p.step):
                    lo = p.lo if p.lo is None else min(p.lo, x)
                    hi = p.hi if p.hi is None else max(p.hi, x)
                    progs[i] = p = Prog(p.step, p.residue, lo, hi)
                    c.pieces.remove(piece)
                    changed = True
    c.progs = _merge_progs(progs)
    return c


def _point(x) -> tuple:
    return (End(x, None, True), End(x, None, True))


# ----------------------------------------------------------------------------------------------- named sets
def named_alternatives(letter: str, qual: str) -> list[Content]:
    """What ``\\mathbb{letter}`` with a qualifier (``pos``, ``nonneg``, ``neg``, ``nonpos``, ``nonzero``, ``""``)
    holds; ``\\mathbb{N}`` has two readings."""
    inf_lo, inf_hi = End(-math.inf, None, False), End(math.inf, None, False)
    zero_open, zero_closed = End(Fraction(0), None, False), End(Fraction(0), None, True)
    if letter == "R":
        pieces = {"": [(inf_lo, inf_hi)], "pos": [(zero_open, inf_hi)], "nonneg": [(zero_closed, inf_hi)],
                  "neg": [(inf_lo, zero_open)], "nonpos": [(inf_lo, zero_closed)],
                  "nonzero": [(inf_lo, zero_open), (zero_open, inf_hi)]}[qual]
        return [Content(pieces=pieces)]
    one = Fraction(1)
    if letter == "Z":
        if qual == "nonzero":
            return [Content(progs=[_prog(one, one, hi=-one), _prog(one, one, lo=one)])]
        lo, hi = {"": (None, None), "pos": (one, None), "nonneg": (Fraction(0), None), "neg": (None, -one),
                  "nonpos": (None, Fraction(0))}[qual]
        return [Content(progs=[_prog(one, one, lo, hi)])]
    if letter == "N":
        if qual in ("pos", "nonzero"):
            return [Content(progs=[_prog(one, one, one)])]
        if qual == "nonneg":
            return [Content(progs=[_prog(one, one, Fraction(0))])]
        if qual == "":
            return [Content(progs=[_prog(one, one, one)]), Content(progs=[_prog(one, one, Fraction(0))])]
        raise Unsupported("negative naturals")
    return [Content(name=letter + qual)]


# ----------------------------------------------------------------------------------------------- building
def _ellipsis_set(items: tuple) -> Content:
    """``\\{1, 2, 3, \\ldots\\}``, ``\\{\\ldots, -1, 0, 1, \\ldots\\}``, ``\\{1, 3, \\ldots, 99\\}``."""
    dots = [i for i, v in enumerate(items) if v == ("ellipsis",)]
    nums = [real_number(v) for v in items if v != ("ellipsis",)]
    if any(not isinstance(x, Fraction) for x in nums) or len(nums) < 2:
        raise Unsupported("ellipsis with non-rational or too few elements")
    n = len(items)
    if dots == [n - 1] or dots == [0] or dots == [0, n - 1]:
        run = nums
    elif len(dots) == 1:  # a, b, ..., z
        run = [real_number(v) for v in items[: dots[0]]]
    else:
        raise Unsupported("ellipsis in an unexpected place")
    if len(run) < 2:
        raise Unsupported("ellipsis after fewer than two elements")
    step = run[1] - run[0]
    if step == 0 or any(b - a != step for a, b in zip(run, run[1:])):
        raise Unsupported("not an arithmetic progression")
    if dots == [n - 1]:
        lo, hi = (run[0], None) if step > 0 else (None, run[0])
    elif dots == [0]:
        lo, hi = (None, run[-1]) if step > 0 else (run[-1], None)
    elif dots == [0, n - 1]:
        lo = hi = None
    else:
        last = nums[-1]
        if (last - run[0]) % step != 0 or (last - run[0]) / step < len(run) - 1:
            raise Unsupported("the last element is not on the progression")
        lo, hi = min(run[0], last), max(run[0], last)
    return _settle(Content(progs=[_prog(abs(step), run[0], lo, hi)]))


def _elements(items: tuple) -> Content:
    if ("ellipsis",) in items:
        return _ellipsis_set(items)
    c = Content()
    for v in items:
        x = real_number(v)
        if x is None or _infinite(x):
            c.others.append(v)
        else:
            c.pieces.append((End(x, v, True), End(x, v, True)))
    return _settle(c)


def _interval(v: tuple) -> Content:
    _, left, right, (a, b) = v
    x, y = real_number(a), real_number(b)
    if x is None or y is None or _cmp(x, y) > 0:
        raise Unsupported("not an interval")
    lo = End(x, None if _infinite(x) else a, left == "[" and not _infinite(x))
    hi = End(y, None if _infinite(y) else b, right == "]" and not _infinite(y))
    return _settle(Content(pieces=[(lo, hi)]))


def to_sets(v: tuple, eq) -> list[Content]:
    """The contents a set-like value may have (one, or two for ``\\mathbb{N}``); raises Unsupported. ``eq`` is the
    caller's equality of elements (for the elements that are not real numbers)."""
    k = v[0]
    if k == "set":
        return [_elements(v[1])]
    if k == "scalar":
        return [_elements((v,))]
    if k == "seq" and len(v[3]) == 2:
        return [_interval(v)]
    if k == "named":
        return named_alternatives(v[1], v[2])
    if k == "union":
        out = to_sets(v[1][0], eq)
        for item in v[1][1:]:
            out = [_combine("cup", a, b, eq) for a in out for b in to_sets(item, eq)]
        return out
    if k == "setop":
        return [_combine(v[1], a, b, eq) for a in to_sets(v[2], eq) for b in to_sets(v[3], eq)]
    raise Unsupported(f"not a set: {k}")


def _kept(xs: list, ys: list, keep_common: bool, eq) -> list:
    return [x for x in xs if any(eq(x, y) for y in ys) == keep_common]


def _combine(op: str, a: Content, b: Content, eq) -> Content:
    if a.name or b.name:
        raise Unsupported("operation on a set known only by name")
    if op == "cup":
        return _settle(Content(a.pieces + b.pieces, a.others + b.others, a.progs + b.progs))
    if op == "cap":
        progs = [_prog_in_piece(p, lo, hi) for p in a.progs for lo, hi in b.pieces]
        progs += [_prog_in_piece(p, lo, hi) for p in b.progs for lo, hi in a.pieces]
        progs += [_prog_meet(p, q) for p in a.progs for q in b.progs]
        return _settle(Content(_intersect(a.pieces, b.pieces), _kept(a.others, b.others, True, eq), progs))
    if op == "minus":
        if b.progs:
            raise Unsupported("removing an integer set")
        progs = list(a.progs)
        for lo, hi in b.pieces:
            if progs and not (_is_point((lo, hi)) and isinstance(lo.num, Fraction)):
                raise Unsupported("removing an interval from an integer set")
            progs = [q for p in progs for q in _drop_point(p, lo.num)]
        pieces = _intersect(a.pieces, _complement(b.pieces))
        return _settle(Content(pieces, _kept(a.others, b.others, False, eq), progs))
    raise Unsupported(op)


def _drop_point(p: Prog, x: Fraction) -> list[Prog]:
    """A progression without one of its points: split in two where the point is inside."""
    if (x - p.residue) % p.step != 0 or (p.lo is not None and x < p.lo) or (p.hi is not None and x > p.hi):
        return [p]
    return [q for q in (Prog(p.step, p.residue, p.lo, x - p.step), Prog(p.step, p.residue, x + p.step, p.hi))
            if q.lo is None or q.hi is None or q.lo <= q.hi]


# ----------------------------------------------------------------------------------------------- equality
def _same_end(a: End, b: End, eq) -> bool:
    """Two endpoints written as values compare as values (``1.5708`` may stand for ``\\frac{\\pi}{2}``);
    otherwise by number."""
    if a.closed != b.closed:
        return False
    if a.value is not None and b.value is not None:
        return eq(a.value, b.value)
    return _cmp(a.num, b.num) == 0


def _content_equal(a: Content, b: Content, eq) -> bool:
    if a.name or b.name:
        return a.name == b.name and not (a.pieces or a.others or a.progs or b.pieces or b.others or b.progs)
    if a.progs != b.progs:
        return False
    if a.finite() and b.finite():
        items_a = [p[0].value for p in a.pieces] + a.others
        items_b = [p[0].value for p in b.pieces] + b.others
        if all(x is not None for x in items_a + items_b):
            return finite_set_equal(items_a, items_b, eq)
    if len(a.pieces) != len(b.pieces):
        return False
    if not all(_same_end(x[0], y[0], eq) and _same_end(x[1], y[1], eq) for x, y in zip(a.pieces, b.pieces)):
        return False
    return finite_set_equal(a.others, b.others, eq)


def finite_set_equal(xs, ys, eq) -> bool:
    """Set equality: every element of each side equals one of the other's (repeats do not count)."""
    return all(any(eq(x, y) for y in ys) for x in xs) and all(any(eq(x, y) for x in xs) for y in ys)


def set_equal(r: tuple, c: tuple, eq) -> bool | None:
    """Whether two set-like values hold the same elements; None when either has no content we can compute."""
    try:
        ra, ca = to_sets(r, eq), to_sets(c, eq)
    except Unsupported:
        return None
    return any(_content_equal(a, b, eq) for a in ra for b in ca)


__all__ = ["MAX_EXPAND", "finite_set_equal", "named_alternatives", "real_number", "set_equal", "to_sets"]
