"""What each kind of registered object is: one typed Protocol per registration hook.

``engine/hookspecs.py`` names these in its annotations; the engine calls registered objects only through the
shapes written here. A plugin does not subclass them: any object of the right shape is accepted.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Protocol, Sequence, runtime_checkable

from raylign.engine.types import TrainBatch, Verdict

if TYPE_CHECKING:
    import torch

    from raylign.engine.stage import StageContext


@runtime_checkable
class Stage(Protocol):
    """A pipeline stage: registered as a class, instantiated once per run of the stage.

    ``needs_input_model`` is read from the class; a stage that builds its own model (``scratch``) sets it False,
    and a class without it is taken to need one (the previous stage's model dir or ``run.base_model``).
    ``side_model`` (default False when absent): the stage's model is not the next policy (a reward model); the
    next stage starts from the same model this one started from, and the probes are not asked.
    """

    config_cls: ClassVar[type]  # a frozen dataclass: the stage's own [section]
    needs_input_model: ClassVar[bool]  # False: the stage starts without a model dir (default True when absent)
    side_model: ClassVar[bool]  # True: its output is a side model (reward model), not the pipeline's policy

    def run(self, ctx: "StageContext") -> Mapping[str, float]:
        """Train; write the final HF model dir to ``ctx.output_model``; return the stage's final eval metrics."""


@runtime_checkable
class Verifier(Protocol):
    """Scores one completion against its dataset row. A function, or a class instantiated once per worker
    process with the stage's ``verifier_options[name]`` as keyword arguments and then called the same way."""

    def __call__(self, completion: str, task: Mapping[str, Any]) -> Verdict | float: ...


@runtime_checkable
class RewardProvider(Protocol):
    """Scores batches inside a Ray actor (for example a trained reward model). Built as ``cls(**options)``."""

    def score(self, samples: Sequence[Mapping[str, Any]]) -> list[Verdict]:
        """One Verdict per ``{"completion": str, "task": dict}`` sample, in order."""


@runtime_checkable
class Loss(Protocol):
    """A learner objective, run inside the learner actor on one micro-batch.

    Its options are its keyword-only parameters (names, annotated types, defaults): the driver validates what a
    stage passes against them (:mod:`raylign.engine.options`) before anything crosses to the actor.
    ``loss`` is the micro-batch's contribution to the step's mean (see ``TrainBatch.loss_scale``); ``metrics``
    are plain floats (means over the micro-batch's loss tokens).
    """

    def __call__(self, logits: "torch.Tensor", batch: TrainBatch, **options: Any) -> tuple["torch.Tensor", dict[str, float]]: ...


@runtime_checkable
class AdvantageEstimator(Protocol):
    """Maps the rewards of N prompts x G samples ([N, G]) to one advantage per sample ([N, G]).

    Options are keyword-only parameters, validated on the driver like a loss's."""

    def __call__(self, rewards: "torch.Tensor", **options: Any) -> "torch.Tensor": ...


@runtime_checkable
class SandboxBackend(Protocol):
    """A way to run untrusted programs. Registered as a class; ``strength`` orders the defaults (higher is
    stronger) and ``available()`` says whether this machine supports it."""

    name: ClassVar[str]
    strength: ClassVar[int]

    @classmethod
    def available(cls) -> bool: ...
