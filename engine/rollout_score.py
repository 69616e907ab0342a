"""Generating and scoring at once: each prompt's group goes to the reward fleet as soon as its samples are done.

    scored = generate_and_score(fleet, rewards, prompt_ids, samples_of, n=8, temperature=1.0, max_tokens=64,
                                stop_token_ids=stops, seed=seed)
    scored.groups[i], scored.verdicts[i]     # prompt i's completions and their verdicts, in prompt order

The rollout fleet yields groups as they finish (:meth:`RolloutFleet.generate_stream`); once ``chunk_groups`` of
them are in, they are scored in a background thread while generation goes on, so the reward fleet (verifier
sandboxes, a reward model) works while the engines still generate. Completions and verdicts are the same as
generating everything and then scoring it (samples are seeded per prompt and sample; a verdict depends on its
sample only), so a stage can switch to this without changing a metric. The timings say how much of the scoring
the generation hid: ``score_seconds`` is the scoring calls' own time, ``score_tail_seconds`` the part of it the
stage still waited for after the last group was generated.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from raylign.engine.types import Completion, Verdict

SCORE_THREADS = 2  # scoring calls in flight at once (each is spread over every reward actor)


@dataclass
class ScoredRollouts:
    groups: list[list[Completion]]  # per prompt, its completions in sample order
    verdicts: list[list[Verdict]]  # per prompt, one verdict per completion
    generate_seconds: float  # from the first request to the last group generated
    score_seconds: float  # the scoring calls' own time (summed over calls)
    score_tail_seconds: float  # scoring still running after generation ended: what the overlap did not hide

    @property
    def overlap_seconds(self) -> float:
        """Scoring time hidden behind generation (the calls' time minus the tail; at most the whole)."""
        return max(0.0, self.score_seconds - self.score_tail_seconds)


def generate_and_score(fleet, rewards, prompts: Sequence[Any], samples_of: Callable[[int, list[Completion]], list],
                       chunk_groups: int = 0, **generate: Any) -> ScoredRollouts:
    """Generate ``prompts`` on ``fleet`` (``generate``: :meth:`RolloutFleet.generate`'s keywords) and score each
    group with ``rewards.score`` (a RewardMix or RewardFleet) as groups come in, ``chunk_groups`` at a time
    (0 = a quarter of the prompts). ``samples_of(i, group)`` makes prompt i's ``{"completion", "task"}`` samples."""
    n = len(prompts)
    chunk = chunk_groups or max(1, -(-n // 4))
    groups: list[list[Completion] | None] = [None] * n
    verdicts: list[list[Verdict] | None] = [None] * n
    spent: list[float] = []

    def score(indices: list[int]) -> None:
        t0 = time.perf_counter()
        sizes = [len(groups[i]) for i in indices]
        flat = rewards.score([s for i in indices for s in samples_of(i, groups[i])])
        k = 0
        for i, size in zip(indices, sizes):
            verdicts[i] = list(flat[k:k + size])
            k += size
        spent.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    futures, waiting = [], []
    with ThreadPoolExecutor(max_workers=SCORE_THREADS, thread_name_prefix="raylign-score") as pool:
        try:
            for i, group in fleet.generate_stream(list(prompts), **generate):
                groups[i] = group
                waiting.append(i)
                if len(waiting) >= chunk:
                    futures.append(pool.submit(score, waiting))
                    waiting = []
            generated = time.perf_counter()
            if waiting:
                futures.append(pool.submit(score, waiting))
            for f in futures:
                f.result()  # a scoring failure is raised here
        finally:
            for f in futures:
                f.cancel()
    end = time.perf_counter()
    missing = [i for i in range(n) if groups[i] is None or verdicts[i] is None]
    if missing:
        raise RuntimeError(f"rollouts: no completions or verdicts for prompts {missing[:5]}")
    return ScoredRollouts(groups=groups, verdicts=verdicts, generate_seconds=generated - t0,
                          score_seconds=sum(spent), score_tail_seconds=end - generated)
