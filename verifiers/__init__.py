"""raylign's reward providers: pure Python scoring code. Nothing here imports Ray; the engine runs it in a pool.

A verifier is ``fn(completion: str, task: dict) -> Verdict | float`` (or a class with ``__call__``), registered
through the ``raylign_register_verifiers`` hook. Grouped by kind:

    math/      the ``math`` verifier (``math.verifier``) and its answer pipeline (extract, normalize, parse, ...)
    code/      the ``code`` verifier (``code.verifier``) and the sandbox it runs programs in (``code.sandbox``)
    format.py  the ``format`` verifier

From the engine, verifiers import only its public API: ``raylign.engine.hookimpl`` and ``raylign.engine.types``.
"""
from __future__ import annotations

from raylign.engine.types import STATUSES, Verdict

__all__ = ["Verdict", "STATUSES"]
