"""raylign's reward providers: pure Python scoring code. Nothing here imports Ray; the engine runs it in a pool.

A verifier is ``fn(completion: str, task: dict) -> Verdict | float`` (or a class with ``__call__``), registered
through the ``raylign_register_verifiers`` hook.
"""
from __future__ import annotations

from raylign.engine.types import STATUSES, Verdict

__all__ = ["Verdict", "STATUSES"]
