"""Comparing two policies' answers under a gold judge (preference stages: ppo, dpo). No Ray, no torch."""
from __future__ import annotations

from typing import Sequence


def gold_comparison(before: Sequence[float], after: Sequence[float], eps: float = 1e-6) -> dict[str, float]:
    """Per held-out prompt, the gold judge's score of the input model's answer (``before``) and of the trained
    policy's (``after``).

    ``gold_win_rate`` = wins / (wins + losses) (0.5 when every prompt is a tie), ``gold_tie_rate`` = ties / all
    prompts, and the counts ``gold_wins``, ``gold_losses``, ``gold_ties``.
    """
    if len(before) != len(after):
        raise ValueError(f"gold_comparison: {len(before)} scores before, {len(after)} after")
    wins = sum(a > b + eps for b, a in zip(before, after))
    losses = sum(a < b - eps for b, a in zip(before, after))
    ties = len(before) - wins - losses
    decided = wins + losses
    return {"gold_win_rate": wins / decided if decided else 0.5, "gold_tie_rate": ties / max(1, len(before)),
            "gold_wins": wins, "gold_losses": losses, "gold_ties": ties}
