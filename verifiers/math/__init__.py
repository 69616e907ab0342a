"""The ``math`` verifier and the pipeline it runs, one job per module (text in, equal or not out):

    verifier.py   MathVerifier and its registration (the ``math`` entry point); hedged boxes
    extract.py    the final answer in a completion (last ``\\boxed{}``, "answer is ...", opt-in last number)
    normalize.py  answer text cleaned before parsing (LaTeX spacing, ``\\over``, units, degrees, ...)
    units.py      units after a value: which words are units, and their canonical names
    numerals.py   plain numerals of any length: canonical digits, exact ints past the int-str limit
    parse.py      cleaned LaTeX -> tuple AST (our own parser, no ``eval``); the pipeline's shared errors
    evaluate.py   an AST's value: exact rational, floating point, or sympy's verdict
    values.py     cleaned text -> a typed value (scalar, tuple, interval, set, set expression, named set, ...)
    sets.py       set-like values' content (points, intervals, integer progressions) and set equality
    equiv.py      whether two answers are equivalent (clean -> parse_answer -> equal)
"""
from raylign.verifiers.math.verifier import MathVerifier

__all__ = ["MathVerifier"]
