"""reasoning-gym as a task source: its procedural generators as the task ``reasoning_gym``, scored by the package's
own answer checkers through the verifier ``reasoning_gym``. Needs the optional extra (``pip install
'raylign[tasks]'``, which installs ``reasoning-gym``); nothing is imported from it until a row is made or scored.

    [grpo]
    task = "reasoning_gym"
    task_options = { dataset = "basic_arithmetic", size = 2000, min_terms = 2, max_terms = 2 }  # or level = 0
    verifier_options = { reasoning_gym = { extract = ["answer_tag", "answer_is"] } }

``task_options``: ``dataset`` (a generator's name: ``raylign data check`` lists them when it is wrong), ``size``
(training rows), ``level`` (the generator's curriculum difficulty, 0 = easiest; it sets the attributes the
curriculum defines) and any field of the generator's own config dataclass (``min_terms``, ``max_digits``, ...).
Training rows come from the run's seed, held-out rows from another seed; a held-out row asking a training row's
question is dropped (the engine checks it). The prompt is the row's ``question`` (a ``template`` may wrap it).

The verifier takes the answer out of the completion (``extract``, in order: ``answer_tag`` is reasoning-gym's own
``<answer>...</answer>``, then ``boxed``, ``answer_is``, ``last_line``) and returns the generator's
``score_answer(answer, row)`` as the reward (some generators give partial credit). A row without
``metadata.source_dataset`` is ``invalid``. The checkers that ``eval`` or ``parse_expr`` the answer or the row read
plain math and literals only (:mod:`.reasoning_gym_guard`; a checker's helpers included): an answer, or a row,
that is code is never run. Wrong answers some checkers pay for (``nan``, constants ``countdown`` cannot see, any
24 in ``puzzle24``, the integral restated) score 0 first (:mod:`.reasoning_gym_checks`).
"""
from __future__ import annotations

import dataclasses
import difflib
from typing import Any, Iterable, Mapping

from raylign.engine import hookimpl
from raylign.engine.tasks import FieldMap, Task
from raylign.verifiers import Verdict
from raylign.verifiers.reasoning_gym_checks import refused

METHODS = ("answer_tag", "boxed", "answer_is", "last_line")


def _gym():
    try:
        import reasoning_gym
    except ImportError:
        raise ValueError("the reasoning-gym package is not installed: pip install 'raylign[tasks]'") from None
    return reasoning_gym


def generator_names() -> list[str]:
    """Every generator reasoning-gym registers."""
    return sorted(_gym().factory.DATASETS)


def rows(seed: int, size: int, dataset: str = "", level: int | None = None, **config: Any) -> list[dict[str, Any]]:
    """``size`` rows of generator ``dataset`` seeded with ``seed`` (``level``: its curriculum's difficulty)."""
    gym = _gym()
    known = gym.factory.DATASETS
    if not dataset:
        raise ValueError(f"option 'dataset' is required: one of reasoning-gym's {len(known)} generators, e.g. "
                         f"basic_arithmetic, chain_sum, leg_counting")
    if dataset not in known:
        close = difflib.get_close_matches(dataset, list(known), n=3)
        raise ValueError(f"dataset {dataset!r} is not a reasoning-gym generator"
                         + (f" (did you mean {', '.join(close)}?)" if close else ""))
    dataset_cls, config_cls = known[dataset]
    allowed = {f.name for f in dataclasses.fields(config_cls)} - {"seed", "size"}
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise ValueError(f"{dataset} has no option {', '.join(map(repr, unknown))} (its options: "
                         f"{', '.join(sorted(allowed))}, level, size)")
    if level is not None:
        if dataset not in gym.factory.CURRICULA:
            raise ValueError(f"{dataset} has no curriculum, so no 'level'; set its options instead")
        curriculum = gym.factory.create_curriculum(dataset)
        if int(level) < 0:
            raise ValueError(f"level must be >= 0 (0 = easiest), got {level}")
        curriculum.set_global_level(int(level))
        cfg = curriculum.generate_configuration({**config, "seed": seed, "size": size})
    else:
        cfg = config_cls(**config, seed=seed, size=size)
    if hasattr(cfg, "validate"):
        try:
            cfg.validate()
        except AssertionError as exc:
            raise ValueError(f"{dataset} refused its options: {exc}") from None
    data = dataset_cls(config=cfg)
    return [dict(data[i]) for i in range(size)]


def _answer_tag(completion: str) -> str | None:
    """The last ``<answer>...</answer>``'s content, as reasoning-gym's ``extract_answer`` reads it, in linear time
    (its regex took 31 s on 160,000 characters of unclosed tags)."""
    end = completion.rfind("</answer>")
    start = completion.rfind("<answer>", 0, end) if end >= 0 else -1
    return None if start < 0 else completion[start + len("<answer>"):end].strip()


def _extract(completion: str, methods: Iterable[str]) -> tuple[str | None, str | None]:
    from raylign.verifiers.math.extract import answer_is, last_boxed

    for method in methods:
        if method == "answer_tag":
            found = _answer_tag(completion)
        elif method == "boxed":
            found = last_boxed(completion)
        elif method == "answer_is":
            found = answer_is(completion)
            found = found.rstrip(". ") if found else found
        else:
            lines = [line.strip() for line in completion.strip().splitlines() if line.strip()]
            found = lines[-1] if lines else None
        if found is not None and found.strip():
            return found.strip(), method
    return None, None


class ReasoningGymVerifier:
    """The reward reasoning-gym's own checker gives the extracted answer.

    :param extract: extraction methods in order, among ``answer_tag``, ``boxed``, ``answer_is``, ``last_line``.
    """

    def __init__(self, extract=("answer_tag", "boxed", "answer_is")):
        order = tuple(extract) if not isinstance(extract, str) else tuple(m.strip() for m in extract.split(","))
        bad = [m for m in order if m not in METHODS]
        if bad or not order:
            raise ValueError(f"extract must name methods among {METHODS}, got {extract!r}")
        self.extract = order
        self.gym = _gym()
        from raylign.verifiers.reasoning_gym_guard import guard
        guard(self.gym)  # checkers that eval the answer (or the row) read plain math and literals only

    def __call__(self, completion: str, task: dict) -> Verdict:
        meta = task.get("metadata") if isinstance(task, Mapping) else None
        source = meta.get("source_dataset") if isinstance(meta, Mapping) else None
        if not source or source not in self.gym.factory.DATASETS:
            return Verdict(0.0, "invalid", "task row has no reasoning-gym metadata.source_dataset "
                                           f"(got {source!r}): rows come from task 'reasoning_gym'", {})
        if not isinstance(completion, str):
            return Verdict(0.0, "invalid", f"completion must be a string, got {type(completion).__name__}", {})
        answer, method = _extract(completion, self.extract)
        if answer is None:
            return Verdict(0.0, "ok", None, {"extracted": None, "reason": "no answer found"})
        details = {"extracted": answer[:200], "method": method, "dataset": source}
        why = refused(source, answer, task)
        if why is not None:  # wrong answers the upstream checker would pay for
            return Verdict(0.0, "ok", None, {**details, "reason": why})
        reward = float(self.gym.get_score_answer_fn(source)(answer, dict(task)))
        return Verdict(reward, "ok", None, details)

    @staticmethod
    def reference_completion(task: Mapping) -> str | None:
        """The row's own answer in reasoning-gym's answer tags (the reference check)."""
        answer = task.get("answer") if isinstance(task, Mapping) else None
        return None if answer is None else f"<answer>{answer}</answer>"


@hookimpl
def raylign_register_verifiers(register):
    register("reasoning_gym", ReasoningGymVerifier)


@hookimpl
def raylign_register_tasks(register):
    register("reasoning_gym", Task(verifier="reasoning_gym", rows=rows, fields=FieldMap(prompt="question"),
                                   description="reasoning-gym's procedural generators (task_options.dataset), "
                                               "scored by the package's own checkers"))
