"""Every raylign hook, grouped by lifecycle phase.

Implement a hook with ``@raylign.engine.hookimpl`` on a function of the same name in a module (or object)
registered through the ``raylign`` entry-point group. The engine always calls hooks with keyword arguments.

Registration hooks receive a ``register`` callback: one plugin may register any number of things, and
built-in stages, verifiers, losses and sandboxes are registered exactly this way too.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

from raylign.engine import hookspec
from raylign.engine.protocols import AdvantageEstimator, Loss, RewardProvider, SandboxBackend, Stage, Verifier
from raylign.engine.tasks.spec import Task

# A register callback: register(name, obj). Names are unique per kind; a duplicate fails at start-up,
# naming both plugins. Each registration hook's callback takes the kind of object its Protocol describes.
Register = Callable[[str, Any], None]
RegisterStage = Callable[[str, type[Stage]], None]
RegisterVerifier = Callable[[str, "Verifier | type[Verifier]"], None]
RegisterRewardProvider = Callable[[str, type[RewardProvider]], None]
RegisterLoss = Callable[[str, Loss], None]
RegisterAdvantageEstimator = Callable[[str, AdvantageEstimator], None]
RegisterSandbox = Callable[[str, type[SandboxBackend]], None]
RegisterTask = Callable[[str, Task], None]


# --------------------------------------------------------------------------------------------------------
# Registration: called once when a plugin manager is built (in the driver and again inside every actor). Each
# returns None: a plugin registers through ``register``, and whatever a hook returns is ignored.
# --------------------------------------------------------------------------------------------------------

@hookspec
def raylign_register_stages(register: RegisterStage) -> None:
    """Register pipeline stages.

    :param register: ``register(name, stage_cls)``. ``stage_cls`` has a class attribute ``config_cls`` (a frozen
        dataclass: the stage's own config section), optionally ``needs_input_model = False`` and
        ``side_model = True`` (its model is not the next stage's policy: a reward model), and a method
        ``run(ctx: StageContext) -> dict`` returning the stage's final eval metrics
        (:class:`raylign.engine.protocols.Stage`; ``engine/stage.py`` documents everything ``ctx`` offers).
    """


@hookspec
def raylign_register_verifiers(register: RegisterVerifier) -> None:
    """Register verifiers (reward functions that score a completion against a dataset row).

    :param register: ``register(name, fn_or_cls)``; ``fn(completion: str, task: dict) -> Verdict | float``.
        A class is instantiated once per worker process with the stage's ``verifier_options[name]`` as keyword
        arguments and its instance called the same way; a function receives those options as keyword arguments
        (:class:`raylign.engine.protocols.Verifier`).
    """


@hookspec
def raylign_register_reward_providers(register: RegisterRewardProvider) -> None:
    """Register reward providers that are not plain verifiers (for example a served reward model).

    :param register: ``register(name, provider_cls)``; ``provider_cls(**options)`` is built inside a Ray actor and
        called as ``provider.score(samples: list[dict]) -> list[Verdict]``
        (:class:`raylign.engine.protocols.RewardProvider`). A ``model`` option naming a directory on the driver
        reaches the constructor as the path of the actor's own copy (shipped through the object store: no
        shared disk), whose weight files are deleted once the constructor returns: load them in ``__init__``.
    """


@hookspec
def raylign_register_losses(register: RegisterLoss) -> None:
    """Register learner objectives, run inside the learner actor.

    :param register: ``register(name, loss_fn)`` with
        ``loss_fn(logits: Tensor[B,T,V], batch: TrainBatch, **options) -> (loss: Tensor[], metrics: dict)``.
        ``loss`` must be the micro-batch's contribution to the step's mean (see ``TrainBatch.loss_scale``).
        The options are the function's keyword-only parameters; a stage's options are validated against them on
        the driver (:class:`raylign.engine.protocols.Loss`, :mod:`raylign.engine.options`).
    """


@hookspec
def raylign_register_advantage_estimators(register: RegisterAdvantageEstimator) -> None:
    """Register advantage estimators for policy-gradient stages.

    :param register: ``register(name, fn)`` with
        ``fn(rewards: Tensor[N_groups, G], **options) -> Tensor[N_groups, G]`` of per-sample advantages; options
        are keyword-only parameters (:class:`raylign.engine.protocols.AdvantageEstimator`).
    """


@hookspec
def raylign_register_sandboxes(register: RegisterSandbox) -> None:
    """Register sandbox backends that run untrusted code.

    :param register: ``register(name, backend_cls)``; ``backend_cls.available() -> bool`` says whether the
        machine supports it and ``backend_cls.strength`` (int, higher is stronger) orders the defaults
        (:class:`raylign.engine.protocols.SandboxBackend`).
    """


@hookspec
def raylign_register_tasks(register: RegisterTask) -> None:
    """Register tasks: rows, how they are asked and how they are scored, under one name (``[grpo] task = "name"``).

    :param register: ``register(name, task)`` with a :class:`raylign.engine.tasks.spec.Task`: its verifier, and
        either a row generator ``rows(seed=..., size=..., **options) -> rows`` (held-out rows come from another
        seed and are checked not to overlap) or ``data``/``eval_data`` files; optionally its field mapping,
        prompt template, system message and verifier options. A stage's ``task_options`` reach the generator
        (``size`` sets the number of training rows); the generator raises ``ValueError`` for options it refuses.
    """


# --------------------------------------------------------------------------------------------------------
# Run lifecycle: observers. Return values are ignored.
# --------------------------------------------------------------------------------------------------------

@hookspec
def raylign_run_start(config: Mapping[str, Any], run_dir: Path) -> None:
    """A run is starting.

    :param config: the fully resolved config as plain data (what ``config.toml`` in the run dir holds).
    :param run_dir: the run directory.
    """


@hookspec
def raylign_stage_start(stage: str, input_model: Path | None, run_dir: Path) -> None:
    """A stage is starting.

    :param stage: the stage's name in the pipeline.
    :param input_model: the HF model directory it starts from (None for a stage that builds one).
    :param run_dir: the run directory.
    """


@hookspec
def raylign_step_end(stage: str, step: int, metrics: Mapping[str, float]) -> None:
    """A training step ended and its metrics were logged.

    :param stage: the stage's name.
    :param step: the 1-based step number within the stage.
    :param metrics: the metrics logged for that step.
    """


@hookspec
def raylign_checkpoint_saved(stage: str, step: int, path: Path) -> None:
    """A checkpoint was written completely (after its atomic rename).

    :param stage: the stage's name.
    :param step: the step the checkpoint resumes after.
    :param path: the checkpoint directory.
    """


@hookspec
def raylign_weights_synced(stage: str, version: int, seconds: float, canary_max_abs_diff: float) -> None:
    """The rollout fleet received new weights and passed its canary check (fired by ``StageContext.sync_weights``).

    :param stage: the stage's name.
    :param version: the weights version now served.
    :param seconds: wall time of the sync.
    :param canary_max_abs_diff: largest |logprob difference| between learner and fleet on the canary.
    """


@hookspec
def raylign_stage_end(stage: str, metrics: Mapping[str, float], model_dir: Path) -> None:
    """A stage finished and wrote its final model directory.

    :param stage: the stage's name.
    :param metrics: the stage's final eval metrics (also in ``summary.json``).
    :param model_dir: the final HF-format model directory of the stage.
    """


@hookspec
def raylign_run_end(summary: Mapping[str, Any], run_dir: Path) -> None:
    """The run finished (every stage done).

    :param summary: what ``summary.json`` holds.
    :param run_dir: the run directory.
    """
