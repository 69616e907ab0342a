"""The ``math`` verifier and the pipeline it runs, one job per module (text in, equal or not out):

    verifier.py   MathVerifier and its registration (the ``math`` entry point)
    extract.py    the final answer in a completion (last ``\\boxed{}``, "answer is ...", last number)
    normalize.py  answer text cleaned before parsing (LaTeX spacing, units, degrees, ...)
    parse.py      cleaned LaTeX -> tuple AST (our own parser, no ``eval``); the pipeline's shared errors
    evaluate.py   an AST's value: exact rational, floating point, or sympy's verdict
    values.py     cleaned text -> a typed value (scalar, tuple, interval, set, matrix, equation, ...)
    equiv.py      whether two answers are equivalent (clean -> parse_answer -> equal)
"""
from raylign.verifiers.math.verifier import MathVerifier

__all__ = ["MathVerifier"]
