"""Parse a cleaned LaTeX expression into a tuple AST (one job: expression text in, AST out), plus the helpers
that walk an AST.

Our own small recursive-descent parser: no ``eval`` and no third-party LaTeX grammar (sympy's ``parse_latex``
needs antlr4 4.11 exactly, which math-verify's 4.13 breaks). Nodes are tuples whose first item names the kind:
``("num", Fraction, text)`` ``("sym", name)`` ``("const", name)`` ``("add", items)`` ``("neg", x)``
``("mul", items)`` ``("inv", x)`` ``("pow", b, e)`` ``("root", x, n)`` ``("fact", x)`` ``("dfact", x)`` (``n!!``, the
double factorial) ``("binom", n, k)``
``("func", name, x)`` ``("agg", name, items)`` (``max``, ``min``, ``gcd``, ``lcm`` of a list)
``("log", x, base|None)`` ``("abs", x)`` ``("floor", x)`` ``("ceil", x)``.
``e`` is Euler's number, ``i`` the imaginary unit; an accented symbol (``\\bar{z}``, ``\\hat{x}``) is a symbol
of its own, while ``\\vec{v}`` and ``\\mathbf{v}`` are ``v``. A function's bare argument runs to the next operator or
function (``\\sin 2x`` is sin(2x), ``\\sin x\\cos x`` a product); ``\\sin^{-1}`` is arcsin (``\\sec^{-1}`` arcsec,
``\\sinh^{-1}`` arsinh). Nesting is bounded by
``MAX_DEPTH``.

The errors shared by the whole math pipeline live here, at its bottom layer.
"""
from __future__ import annotations

import re
from fractions import Fraction

from raylign.verifiers.math.numerals import fraction_text, to_fraction

MAX_DEPTH = 60  # parser nesting


class Unjudgeable(Exception):
    """The answer cannot be judged (too large, too deep, too many parts): the verifier reports ``invalid``."""


class TooLarge(Unjudgeable):
    """A power, factorial or binomial whose exact value would be astronomically large."""


class ParseError(Exception):
    """Not a math expression we understand; the answer is then compared as normalized text."""


_TOKEN = re.compile(r"(\d+(?:\.\d*)?|\.\d+)|(\\[a-zA-Z]+|\\.)|([a-zA-Z]+)|([-+*/^_()\[\]{}|!,'=<>≤≥≠%&])|(\s+)")
_NAMES = {"pi": ("const", "pi"), "inf": ("const", "oo"), "oo": ("const", "oo"), "infty": ("const", "oo"), "infinity": ("const", "oo")}
_FUNCS = {"sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos", "arctan", "arcsec", "arccsc", "arccot", "sinh",
          "cosh", "tanh", "arcsinh", "arccosh", "arctanh", "ln", "log", "lg", "exp", "sqrt"}  # lg: base 10
_GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta", "vartheta", "iota",
          "kappa", "lambda", "mu", "nu", "xi", "rho", "sigma", "tau", "upsilon", "phi", "varphi", "chi", "psi",
          "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Sigma", "Phi", "Psi", "Omega"}
_AGGREGATES = {"max", "min", "gcd", "lcm"}  # functions of a list: \max(3, 5), \gcd\{12, 18\}
_CLOSERS = {"(": ("op", ")"), "{": ("op", "}"), "\\{": ("cmd", "\\}")}
_INVERSE = {"sin": "arcsin", "cos": "arccos", "tan": "arctan", "sec": "arcsec", "csc": "arccsc", "cot": "arccot",
            "sinh": "arcsinh", "cosh": "arccosh", "tanh": "arctanh"}  # \sec^{-1} x is arcsec x, not cos x
_WRAPPERS = {"\\mathbf", "\\boldsymbol", "\\bm", "\\mathrm", "\\mathit", "\\vec", "\\hat", "\\bar", "\\tilde",
             "\\overline", "\\text", "\\operatorname", "\\mathsf", "\\textbf", "\\mbox"}
_ACCENTS = {"bar": "bar", "overline": "bar", "hat": "hat", "widehat": "hat", "tilde": "tilde", "widetilde": "tilde",
            "check": "check", "breve": "breve", "dot": "dot", "ddot": "ddot", "acute": "acute", "grave": "grave"}
_BINARY = {"\\cdot", "\\times", "\\div", "\\ast"}
PI, E, I, INF = ("const", "pi"), ("const", "E"), ("const", "I"), ("const", "oo")
TWO = ("num", Fraction(2), "2")


def tokenize(s: str) -> list[tuple[str, str]]:
    toks, pos = [], 0
    for m in _TOKEN.finditer(s):
        if m.start() != pos:
            raise ParseError(f"unexpected character {s[pos]!r}")
        pos = m.end()
        num, cmd, word, op, _ws = m.groups()
        if num is not None:
            toks.append(("num", num))
        elif cmd is not None:
            toks.append(("cmd", cmd))
        elif word is not None:
            low = word.lower()
            if low in _NAMES or low in _FUNCS or low in _AGGREGATES:
                toks.append(("name", low))
            else:
                toks.extend(("letter", ch) for ch in word)
        elif op is not None:
            toks.append(("op", op))
    if pos != len(s):
        raise ParseError(f"unexpected character {s[pos]!r}")
    return toks


class _Parser:
    """Recursive descent over tokens -> tuple AST (the node kinds are listed in the module docstring)."""

    def __init__(self, toks):
        self.t, self.i, self.depth, self.abs_depth = toks, 0, 0, 0

    def peek(self):
        return self.t[self.i] if self.i < len(self.t) else (None, None)

    def take(self, kind, text):
        if self.peek() != (kind, text):
            raise ParseError(f"expected {text!r}")
        self.i += 1

    def enter(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise Unjudgeable(f"expression nested deeper than {MAX_DEPTH} levels")

    def parse(self):
        node = self.expr()
        if self.i != len(self.t):
            raise ParseError(f"unexpected {self.peek()[1]!r}")
        return node

    def expr(self):
        self.enter()
        items = [self.term(self.factor())]
        while self.peek() in (("op", "+"), ("op", "-")):
            sign = self.t[self.i][1]
            self.i += 1
            t = self.term(self.factor())
            items.append(t if sign == "+" else ("neg", t))
        self.depth -= 1
        return items[0] if len(items) == 1 else ("add", tuple(items))

    def term(self, first):
        items = [first]
        while True:
            k, v = self.peek()
            if (k == "op" and v in "*/") or (k == "cmd" and v in _BINARY):
                self.i += 1
                f = self.factor()
                items.append(("inv", f) if v in ("/", "\\div") else f)
            elif k in ("letter", "name") or (k == "op" and (v in "([{" or (v == "|" and not self.abs_depth))) or (
                    k == "cmd" and v not in _BINARY and v not in ("\\rfloor", "\\rceil", "\\}", "\\cup", "\\pm")) or (
                    k == "num" and self.t[self.i - 1] == ("op", "!")):
                items.append(self.power())  # implicit multiplication (a number after a factorial: 2!3!)
            else:
                break
        return items[0] if len(items) == 1 else ("mul", tuple(items))

    def factor(self):
        neg = False
        while self.peek() in (("op", "-"), ("op", "+")):
            neg ^= self.t[self.i][1] == "-"
            self.i += 1
        node = self.power()
        return ("neg", node) if neg else node

    def power(self):
        base = self.postfix()
        if self.peek() == ("op", "^"):
            self.i += 1
            return ("pow", base, self.exponent())
        return base

    def exponent(self):
        self.enter()
        k, v = self.peek()
        if k == "op" and v in "-+":
            self.i += 1
            node = self.exponent()
            node = ("neg", node) if v == "-" else node
        elif k == "num":
            self.i += 1
            node = ("num", to_fraction(v), v)
        elif k == "op" and v in "({" or k in ("letter", "cmd", "name"):
            node = self.postfix()
        else:
            raise ParseError("bad exponent")
        if self.peek() == ("op", "^"):  # 9^9^9 is right-associative
            self.i += 1
            node = ("pow", node, self.exponent())
        self.depth -= 1
        return node

    def postfix(self):
        node, count = self.atom(), 0
        while self.peek() == ("op", "!"):
            self.i += 1
            count += 1
            if count > 3:
                raise TooLarge("factorial tower")
            if self.peek() == ("op", "!") and count < 3:  # n!! is the double factorial, not (n!)!
                self.i += 1
                count += 1
                node = ("dfact", node)
            else:
                node = ("fact", node)
        return node

    def group(self):
        """``{expr}`` or a single atom (``\\sqrt2``)."""
        if self.peek() == ("op", "{"):
            self.i += 1
            self.enter()
            node = self.expr()
            self.depth -= 1
            self.take("op", "}")
            return node
        return self.atom()

    def subscript(self) -> str:
        if self.peek() == ("op", "{"):
            self.i += 1
            parts, depth = [], 1
            while self.i < len(self.t):
                k, v = self.t[self.i]
                self.i += 1
                depth += (v == "{") - (v == "}") if k == "op" else 0
                if depth == 0:
                    return "".join(parts)
                parts.append(v.lstrip("\\"))
            raise ParseError("unclosed subscript")
        k, v = self.peek()
        if k in ("num", "letter", "cmd", "name"):
            self.i += 1
            return v.lstrip("\\")
        raise ParseError("bad subscript")

    def atom(self):
        k, v = self.peek()
        self.i += 1
        if k == "num":
            return ("num", to_fraction(v), v)
        if k == "letter":
            if self.peek() == ("op", "_"):
                self.i += 1
                return ("sym", f"{v}_{self.subscript()}")
            return E if v == "e" else I if v == "i" else ("sym", v)
        if k == "name":
            if v in _NAMES:
                return _NAMES[v]
            return self.aggregate(v) if v in _AGGREGATES else self.function(v)
        if k == "op" and v in "([{":
            close = {"(": ")", "[": "]", "{": "}"}[v]
            self.enter()
            node = self.expr()
            self.depth -= 1
            self.take("op", close)
            return node
        if k == "op" and v == "|":
            self.abs_depth += 1
            self.enter()
            node = self.expr()
            self.depth -= 1
            self.abs_depth -= 1
            self.take("op", "|")
            return ("abs", node)
        if k == "cmd":
            return self.command(v)
        raise ParseError(f"unexpected {v!r}")

    def command(self, v):
        name = v[1:]
        if name == "frac":
            num = self.group()
            return ("mul", (num, ("inv", self.group())))
        if name == "sqrt":
            index = TWO
            if self.peek() == ("op", "["):
                self.i += 1
                index = self.expr()
                self.take("op", "]")
            return ("root", self.group(), index)
        if name == "binom":
            n = self.group()
            return ("binom", n, self.group())
        if name == "pi":
            return PI
        if name in ("infty", "infinity"):
            return INF
        if name in _GREEK:
            if self.peek() == ("op", "_"):
                self.i += 1
                return ("sym", f"{name}_{self.subscript()}")
            return ("sym", name)
        if name in _FUNCS:
            return self.function(name)
        if name in _AGGREGATES:
            return self.aggregate(name)
        if name in ("lfloor", "lceil"):
            self.enter()
            node = self.expr()
            self.depth -= 1
            self.take("cmd", "\\rfloor" if name == "lfloor" else "\\rceil")
            return ("floor" if name == "lfloor" else "ceil", node)
        if name in _ACCENTS:
            node = self.group()  # \\bar{z}, \\hat{x}: another quantity than z, x; \\bar{2+3i} keeps its value
            return ("sym", f"{_ACCENTS[name]}:{node[1]}") if node[0] == "sym" else node
        if v in _WRAPPERS:
            return self.group()
        raise ParseError(f"unsupported command {v}")

    def function(self, name):
        power = base = None
        if name == "sqrt":
            return ("root", self.atom(), TWO)
        if self.peek() == ("op", "^"):
            self.i += 1
            power = self.exponent()
        if name == "log" and self.peek() == ("op", "_"):
            self.i += 1
            base = self.group()
        if self.peek() == ("op", "("):
            self.i += 1
            self.enter()
            arg = self.expr()
            self.depth -= 1
            self.take("op", ")")
        elif self.peek() == ("op", "{"):
            arg = self.group()
        else:
            arg = self.bare_argument()
        if power is not None and name in _INVERSE and power == ("neg", ("num", Fraction(1), "1")):
            return ("func", _INVERSE[name], arg)  # \sin^{-1} x is arcsin x
        if name == "lg":
            name, base = "log", ("num", Fraction(10), "10")
        node = ("log", arg, base) if name in ("log", "ln") else ("func", name, arg)
        return ("pow", node, power) if power is not None else node

    def aggregate(self, name):
        """``\\max(a, b, ...)``, ``\\min``, ``\\gcd``, ``\\operatorname{lcm}`` of a bracketed list (``(...)``,
        ``\\{...\\}`` or ``{...}``): ``("agg", name, items)``. Without brackets (``\\max_x f``) it is no value."""
        k, v = self.peek()
        close = _CLOSERS.get(v) if k in ("op", "cmd") else None
        if close is None:
            raise ParseError(f"{name} without a bracketed list")
        self.i += 1
        self.enter()
        items = [self.expr()]
        while self.peek() == ("op", ","):
            self.i += 1
            items.append(self.expr())
        self.depth -= 1
        self.take(*close)
        return ("agg", name, tuple(items))

    def bare_argument(self):
        """A function's argument written without brackets: a numeric coefficient takes the symbol after it
        (``\\sin 2x`` is sin(2x), ``\\cos \\pi x`` is cos(pi x)); otherwise the argument is one factor
        (``\\sin x \\cos x`` and ``\\sin x\\, e^x`` are products)."""
        items = [self.power()]
        while items[-1][0] == "num" or items[-1] == PI:
            k, v = self.peek()
            if k in ("num", "letter") or (k == "cmd" and (v[1:] in _GREEK or v == "\\pi")) or (k, v) == ("name", "pi"):
                items.append(self.power())
            else:
                break
        return items[0] if len(items) == 1 else ("mul", tuple(items))



def parse_expr(s: str) -> tuple:
    """The tuple AST of a cleaned expression; raises ParseError, or Unjudgeable when nested too deeply."""
    toks = tokenize(s)
    if not toks:
        raise ParseError("empty expression")
    node = _Parser(toks).parse()
    # each node on a path down the AST takes a token of its own, or two nodes share one (\frac: mul and inv): an
    # AST is at most twice as deep as its tokens are many, so only long expressions are walked
    if len(toks) > 2 * MAX_DEPTH and ast_depth(node) > 4 * MAX_DEPTH:
        raise Unjudgeable("expression nested too deeply")
    return node


# ----------------------------------------------------------------------------------------------- walking an AST
def children(node):
    """The sub-ASTs of a node, in order (the items of ``add``/``mul`` included)."""
    for child in node[1:]:
        if isinstance(child, tuple) and child and isinstance(child[0], str):
            yield child
        elif isinstance(child, tuple):
            yield from child


def ast_depth(node) -> int:
    """Depth of a tuple AST, computed without recursion."""
    best, stack = 0, [(node, 1)]
    while stack:
        n, d = stack.pop()
        best = max(best, d)
        stack.extend((c, d + 1) for c in children(n))
    return best


def contains(node, test) -> bool:
    """Whether ``test(n)`` holds for the node or any node below it, computed without recursion."""
    stack = [node]
    while stack:
        n = stack.pop()
        if test(n):
            return True
        stack.extend(children(n))
    return False


def symbols(node) -> frozenset:
    """The names of the free symbols of an AST."""
    found, stack = set(), [node]
    while stack:
        n = stack.pop()
        if n[0] == "sym":
            found.add(n[1])
        elif n[0] not in ("num", "const"):
            stack.extend(children(n))
    return frozenset(found)


def canon(node) -> str:
    """A deterministic string of the AST (structural comparison and details)."""
    k = node[0]
    if k == "num":
        return fraction_text(node[1])
    if k in ("sym", "const"):
        return node[1]
    if k == "add":
        return "(" + "+".join(map(canon, node[1])) + ")"
    if k == "mul":
        return "(" + "*".join(map(canon, node[1])) + ")"
    if k == "neg":
        return "-" + canon(node[1])
    if k == "inv":
        return "1/" + canon(node[1])
    if k == "pow":
        return f"({canon(node[1])})^({canon(node[2])})"
    if k == "root":
        return f"root({canon(node[1])},{canon(node[2])})"
    if k == "func":
        return f"{node[1]}({canon(node[2])})"
    if k == "agg":
        return f"{node[1]}(" + ",".join(map(canon, node[2])) + ")"
    if k == "log":
        return f"log({canon(node[1])}{',' + canon(node[2]) if node[2] is not None else ''})"
    return f"{k}(" + ",".join(canon(c) for c in node[1:]) + ")"

