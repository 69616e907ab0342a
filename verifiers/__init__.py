"""raylign's reward providers: pure Python scoring code. Nothing here imports Ray; the engine runs it in a pool.

A verifier is ``fn(completion: str, task: dict) -> Verdict | float`` (or a class with ``__call__``), registered
through the ``raylign_register_verifiers`` hook.
"""
from __future__ import annotations

import math as _math
from dataclasses import asdict, dataclass, field
from typing import Any

STATUSES = ("ok", "timeout", "error", "invalid")


@dataclass(frozen=True)
class Verdict:
    """The outcome of one verification.

    ``timeout`` and ``error`` are never folded silently into a zero: the engine counts them and a stage may drop
    such samples. ``invalid`` means the completion or task could not be judged (no answer found, bad task row).
    """

    reward: float = 0.0  # the score; for status != "ok" it is what the sample scores if it is kept
    status: str = "ok"  # ok | timeout | error | invalid
    error: str | None = None  # a message when status != "ok"
    details: dict[str, Any] = field(default_factory=dict)  # verifier-specific (extracted answer, failed tests...)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"Verdict.status must be one of {STATUSES}, got {self.status!r}")
        reward = float(self.reward)
        if _math.isnan(reward) or _math.isinf(reward):
            raise ValueError(f"Verdict.reward must be finite, got {self.reward!r}")
        object.__setattr__(self, "reward", reward)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def coerce(cls, value: Any) -> "Verdict":
        """Accept what a verifier returned: a Verdict, a number or a bool."""
        if isinstance(value, Verdict):
            return value
        if isinstance(value, (int, float)):
            return cls(reward=float(value))
        raise TypeError(f"a verifier must return a Verdict or a float, got {type(value).__name__}")


__all__ = ["Verdict", "STATUSES"]
