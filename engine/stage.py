"""What a stage is, and everything the engine hands it: read this module to write a stage.

A stage plugin registers a class with a ``config_cls`` (its frozen config dataclass) and a ``run(ctx)`` method
that trains, writes ``ctx.output_model`` and returns its final eval metrics (see
:class:`raylign.engine.protocols.Stage`). The loop and the algorithm live in the stage; everything else comes
from the :class:`StageContext` it receives:

- **what to run on**: ``ctx.config`` (its own section), ``ctx.input_model`` (the previous stage's HF model dir),
  ``ctx.output_model`` (where to write its own), ``ctx.base_dir`` (relative data paths), ``ctx.seed``,
  ``ctx.run`` (the ``[run]`` section), ``ctx.registry`` (registered losses, estimators, verifiers...).
- **roles**, each stopped when the stage ends:
  - ``ctx.start_learner(model_dir, optim, total_steps, role=..., trainable=...)`` ->
    :class:`~raylign.engine.learner_handle.LearnerHandle`: ``train_step(batches, loss, options)``,
    ``eval_loss``, ``token_logprobs``, ``sequence_logprobs``, ``generate``, ``version``, ``save_model``.
    Several learners may run side by side (policy, reference, critic), each with its own model and optimizer.
  - ``ctx.start_rollout_fleet(model_dir)`` -> :class:`~raylign.engine.rollout.RolloutFleet`:
    ``generate(prompt_ids, n=..., temperature=..., seed=...)`` returns :class:`~raylign.engine.types.Completion`
    groups with sampler logprobs and the weights version; ``generate_greedy`` for evals.
  - ``ctx.start_reward_fleet(default_verifier, verifier_options)`` -> :class:`~raylign.engine.rewards.RewardFleet`:
    ``score(samples)`` returns one :class:`~raylign.engine.types.Verdict` per ``{"completion", "task"}``.
  - ``ctx.sync_weights(learner, fleet)``: the learner's weights into every engine, stamped with its version,
    checked by the engine's canary, announced to ``raylign_weights_synced``; returns the sync's metrics.
  - ``[ray] placement = "colocated"`` changes nothing a stage writes: the first fleet and the ``policy`` learner
    share placement bundles, and the engine puts the engines to sleep between a ``rollout_stream`` batch and its
    sync (:mod:`raylign.engine.colocate`).
- **state and output**: ``ctx.log(step, metrics)`` (metrics.jsonl, TensorBoard, ``raylign_step_end``),
  ``ctx.log_rollouts(step, groups, kind=..., advantages=..., extras=...)`` (a sample of the step's groups with
  their verdicts in ``rollouts/<stage>.jsonl``; ``kind="eval"`` for greedy held-out answers),
  ``ctx.progress(total, start)``, ``ctx.resume_point()`` / ``ctx.restore(learners, resume)`` /
  ``ctx.save_checkpoint(step, learners, state)`` (atomic; ``raylign_checkpoint_saved``), ``ctx.console``.
- **tasks** (RL stages whose config inherits :class:`~raylign.engine.tasks.spec.PromptDataConfig`):
  ``ctx.prompt_rows(tok, default_verifier, verifier_options)`` (sources or a registered task, field-mapped,
  templated, rendered, held out), ``ctx.check_references(rows, rewards)`` (the verifiers constructed, rows
  scored with their own references: a wrong mapping stops the stage) and ``ctx.solve_rates(rows, rewards, fleet,
  max_tokens, stops)`` (the starting model's greedy and pass@k shares).
- **data**: :mod:`raylign.engine.data` (``read_rows``, ``read_texts``, ``split_holdout``, ``require``, and
  ``indices_at`` / ``batch_indices``: the seeded, resumable example order), typed containers in
  :mod:`raylign.engine.types` (``TrainBatch``, ``SequenceBatch``, ``RolloutGroup``).
- **models and prompts**: :mod:`raylign.engine.modeling` (``load_tokenizer``, ``stop_token_ids``),
  :mod:`raylign.engine.chat_format` (``render_prompt``: a prompt in the model's chat format).
- **checking options early**: :mod:`raylign.engine.options` (``validate(fn, options, owner)`` checks a loss's or
  estimator's options against its declared keyword-only parameters before any actor starts).

A stage imports no Ray: the handles make the remote calls.
"""
from __future__ import annotations

import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from raylign.engine.checkpoint import CheckpointManager
from raylign.engine.config import Config, RunConfig
from raylign.engine.learner_handle import LearnerHandle
from raylign.engine.metrics import MetricsLog
from raylign.engine.protocols import Stage

AHEAD_FILE = "rollouts_ahead.pkl"  # in a checkpoint: RolloutStream.ahead() when it was saved

__all__ = ["Stage", "StageContext", "Resume", "Progress", "LearnerHandle"]


@dataclass
class Resume:
    """Where an interrupted stage continues: after ``step``, with the stage's saved ``state``."""

    step: int
    state: dict[str, Any]
    path: Path


@dataclass
class StageContext:
    name: str  # the stage's name in the pipeline
    config: Any  # the stage's own frozen config
    engine: Config  # the whole config (engine sections: ray, rollout, rewards)
    run_dir: Path
    input_model: Path | None  # the previous stage's model dir (or run.base_model)
    output_model: Path  # where the stage writes its final model dir
    base_dir: Path  # relative data paths resolve against this (the config file's folder)
    checkpoints: CheckpointManager
    metrics: MetricsLog
    registry: Any  # raylign.engine.plugins.Registry
    resume: bool = False  # continue from the latest checkpoint if there is one
    console: Any = None  # rich Console
    _learners: list = field(default_factory=list)
    _closers: list = field(default_factory=list)
    _rollouts: Any = None  # RolloutLog, made on first use
    _placements: list = field(default_factory=list)  # the roles' placement groups, released last
    _stream: Any = None  # the open RolloutStream: checkpoints keep the batches it made ahead
    _resumed: Any = None  # the Resume that resume_point returned: rollout_stream gives those batches back
    _colocation: Any = None  # [ray] placement = "colocated": the fleet's and policy learner's shared bundles

    @property
    def run(self) -> RunConfig:
        return self.engine.run

    @property
    def seed(self) -> int:
        return self.engine.run.seed

    def model_ref(self, ref: str, key: str) -> Path:
        """The model directory ``ref`` names: an earlier stage of this run (its ``models/<stage>`` dir), else a
        path (relative to the config file's folder). ``key`` names the config key in the error."""
        from raylign.engine.errors import ConfigError
        from raylign.engine.modeling import check_model_dir

        names = [s.name for s in self.engine.stages]
        if ref in names:
            if names.index(ref) >= names.index(self.name):
                raise ConfigError(f"{key} = {ref!r} names a stage that runs after {self.name!r}: put it earlier in "
                                  f"run.pipeline")
            return check_model_dir(self.run_dir / "models" / ref)
        path = Path(ref) if Path(ref).is_absolute() else self.base_dir / ref
        if not path.exists():
            raise ConfigError(f"{key} = {ref!r} is neither a stage of this run ({', '.join(names)}) nor a model "
                              f"directory ({path} does not exist)")
        return check_model_dir(path)

    # ---------------------------------------------------------------------------------------------- roles
    def place(self, group):
        """Reserve a role's placement group (:mod:`raylign.engine.placement`), named after the run, stage and
        role (``#2``, ... for a role's second group in the stage, e.g. a gold judge's verifiers: Ray refuses a name
        twice) so a resumed run asks for the same layout; released when the stage ends."""
        from raylign.engine.placement import reserve

        name = f"{self.run.name}/{self.name}/{group.role}"
        same = sum(p.group.role == group.role for p in self._placements)
        placement = reserve(group, name + (f" #{same + 1}" if same else ""), self.engine.ray.placement_timeout_s)
        self._placements.append(placement)
        return placement

    def start_learner(self, model_dir: Path, optim, total_steps: int, trainable: bool = True,
                      role: str | None = None, head: str = "lm", pack: str = "none") -> LearnerHandle:
        """A learner actor on ``model_dir`` (its own model and, when ``trainable``, its own optimizer with a
        schedule over ``total_steps``); killed when the stage ends. ``role`` names it (default "policy" for a
        trainable learner, "reference" for a frozen one) and must be unique within the stage. ``head="value"``
        gives it a scalar head (a reward model or critic; a causal-LM dir gets a new head). ``pack``: how it
        spends compute on padding (``none``, ``sort``, ``pack``: :data:`raylign.engine.ops.PACK_MODES`).

        A trainable learner runs as ``[ray] learners`` data-parallel ranks behind the one handle (same results as
        one learner; :mod:`raylign.engine.learner_group`); a frozen one, which only scores, as one actor."""
        from raylign.engine.learner import LearnerSpec
        from raylign.engine.learner_group import start_learner_group
        from raylign.engine.placement import learner_group

        role = role or ("policy" if trainable else "reference")
        if any(h.role == role for h in self._learners):
            raise ValueError(f"stage {self.name!r} already has a {role!r} learner: give each learner its own role")
        ray_cfg = self.engine.ray
        spec = LearnerSpec(model_dir=str(model_dir), optim=optim, total_steps=total_steps, seed=self.seed,
                           device=self.run.device, torch_threads=ray_cfg.learner_threads, trainable=trainable,
                           head=head, pack=pack, strategy=ray_cfg.learner_strategy,
                           param_dtype=ray_cfg.learner_param_dtype)
        ranks = ray_cfg.learners if trainable else 1
        colo = self._colocation if trainable and role == "policy" and self._colocation else None
        if colo is not None:  # colocated: rank i beside rollout replica i, started once the engines hold their memory
            from raylign.engine.colocate import ColocatedLearner
            from raylign.engine.placement import Share

            colo.fleet.wait_ready()
            placement = Share(colo.placement, learner_group(ray_cfg, ranks, role))
        else:
            placement = self.place(learner_group(ray_cfg, ranks, role))  # ranks packed, rank i in bundle i
        actors = start_learner_group(spec, ranks, num_cpus=ray_cfg.learner_num_cpus,
                                     num_gpus=ray_cfg.learner_num_gpus,
                                     per_rank=[placement.options(i) for i in range(ranks)])
        handle = (ColocatedLearner if colo else LearnerHandle)(actors, self.registry, role=role, trainable=trainable,
                                                               head=head)
        if colo is not None:
            handle.colocation, colo.learner = colo, handle
        self._learners.append(handle)
        return handle

    def start_rollout_fleet(self, model_dir: Path, wait: bool = True):
        """A vLLM rollout fleet serving ``model_dir`` (``[rollout]`` section); shut down when the stage ends.
        ``wait=False``: return while the engines start, so the stage starts its other roles meanwhile (the fleet's
        first call waits for them)."""
        from raylign.engine.placement import rollout_group
        from raylign.engine.rollout import RolloutFleet

        group, colo = rollout_group(self.engine.rollout), None
        if self.engine.ray.placement == "colocated" and self._colocation is None and not self._learners:
            from raylign.engine.colocate import Colocation
            from raylign.engine.placement import Share, colocated_group

            colo = Colocation(self.place(colocated_group(self.engine.ray, self.engine.rollout)),
                              self.engine.rollout.sleep_level, name=f"{self.run.name}/{self.name}")
        elif self.engine.ray.placement == "colocated" and self.console:
            self.console.print(f"[yellow]{self.name}: this rollout fleet is placed on its own (colocated mode shares "
                               f"the stage's first fleet, started before its learners)")
        fleet = RolloutFleet(model_dir, self.engine.rollout, seed=self.seed, wait=wait, sleeper=colo,
                             placement=Share(colo.placement, group) if colo else self.place(group))
        if colo is not None:
            colo.fleet, self._colocation = fleet, colo
        self._closers.append(fleet.shutdown)
        return fleet

    def start_reward_fleet(self, default_verifier: str | None, verifier_options: Mapping[str, Any] | None = None):
        """The verifier pool (``[rewards]`` section); shut down when the stage ends."""
        from raylign.engine.placement import verifier_group
        from raylign.engine.rewards import RewardFleet

        fleet = RewardFleet(self.engine.rewards, default_verifier=default_verifier,
                            verifier_options=dict(verifier_options or {}),
                            procs_per_actor=self.engine.rewards.procs_per_worker, registry=self.registry,
                            placement=self.place(verifier_group(self.engine.rewards)))
        self._closers.append(fleet.shutdown)
        return fleet

    def start_rewards(self, terms, default_verifier: str | None = None,
                      verifier_options: Mapping[str, Any] | None = None, key: str = "rewards"):
        """A stage's reward as a weighted sum of ``terms`` (:class:`~raylign.engine.rewards.mix.RewardTerm`:
        verifiers in the verifier pool, reward providers in their own actors); shut down when the stage ends.
        A provider term's ``model`` (an earlier stage of the run, or a model dir) reaches it as option ``model``.
        ``key`` names the terms' config key in errors (``ppo.rewards``)."""
        from raylign.engine.placement import provider_group, verifier_group
        from raylign.engine.rewards.mix import RewardMix
        from raylign.engine.rewards.providers import ProviderPool

        def start_provider(term):
            options = dict(term.options)
            if term.model:
                options["model"] = str(self.model_ref(term.model, f"{key}.{term.key}.model"))
            pool = ProviderPool(term.name, options, replicas=term.replicas, num_cpus=term.num_cpus,
                                num_gpus=term.num_gpus, batch_size=term.batch_size,
                                torch_threads=self.engine.ray.torch_threads,
                                placement=self.place(provider_group(term, f"{key}.{term.key}")),
                                max_restarts=self.engine.rewards.max_restarts)
            return pool

        def start_verifiers(default, options):
            from raylign.engine.rewards import RewardFleet

            return RewardFleet(self.engine.rewards, default_verifier=default, verifier_options=options,
                               procs_per_actor=self.engine.rewards.procs_per_worker, registry=self.registry,
                               placement=self.place(verifier_group(self.engine.rewards)))

        mix = RewardMix(list(terms), self.registry, start_verifiers, start_provider, default_verifier,
                        verifier_options, owner=key)
        self._closers.append(mix.shutdown)
        return mix

    def sync_weights(self, learner: LearnerHandle, fleet) -> dict[str, float]:
        """Push ``learner``'s weights to every engine of ``fleet``, stamped with the learner's version, and check
        them with the engine's canary (raises WeightSyncError on a deadline or a mismatch); fires
        ``raylign_weights_synced``. Returns ``weight_sync_seconds``, ``canary_max_abs_diff``, ``weights_version``."""
        from raylign.engine.weight_sync import push_weights

        report = push_weights(learner, fleet)
        self.registry.hook.raylign_weights_synced(stage=self.name, version=report.version, seconds=report.seconds,
                                                  canary_max_abs_diff=report.canary_max_abs_diff)
        return {"weight_sync_seconds": report.seconds, "canary_max_abs_diff": report.canary_max_abs_diff,
                "weights_version": report.version}

    def rollout_stream(self, produce, start: int, last: int, learner: LearnerHandle, fleet):
        """Steps ``start + 1 .. last``'s batches from ``produce(step)``, made up to ``rollout.max_staleness``
        weight versions ahead of ``learner`` (a :class:`~raylign.engine.rollout_stream.RolloutStream`; use it as a
        context manager). ``stream.batch(step)`` hands over a batch, ``stream.sync(step)`` pushes the learner's
        weights into ``fleet`` (as :meth:`sync_weights`), ``stream.staleness(version)`` says how many syncs old a
        completion's weights are. With k = 0 this is the synchronous loop, in the stage's thread."""
        from raylign.engine.rollout_stream import RolloutStream

        k = self.engine.rollout.max_staleness
        colo = self._colocation if self._colocation is not None and self._colocation.fleet is fleet else None
        sync, idle = (lambda: self.sync_weights(learner, fleet)), None
        if colo is not None:  # colocated: engines sleep once a batch is made, wake in the sync (engine/colocate.py)
            from raylign.engine.weight_sync import push_weights

            produce = colo.after_batch(produce)
            sync = (lambda: {**self.sync_weights(learner, fleet), **colo.take_metrics()})
            idle = (lambda: colo.idle(lambda: push_weights(learner, fleet)))
        made = versions = None
        if self._resumed is not None and self._resumed.step == start:  # the batches made ahead before the stop
            path = self._resumed.path / AHEAD_FILE
            if path.exists():
                with open(path, "rb") as f:
                    made, versions = pickle.load(f)
        self._stream = RolloutStream(produce, sync, start, last, max_staleness=k, version=fleet.version, made=made,
                                     versions=versions, idle=idle)
        return self._stream

    # ---------------------------------------------------------------------------------------------- tasks
    def prompt_rows(self, tok, default_verifier: str = "", verifier_options: Mapping[str, Any] | None = None):
        """The stage's prompt rows (its config is a :class:`~raylign.engine.tasks.spec.PromptDataConfig`): sources
        or a registered task, field-mapped, templated and rendered with ``tok``, held out; a
        :class:`~raylign.engine.tasks.load.PromptRows` whose ``verifier``/``verifier_options`` are the stage's
        own, or its task's. A row naming an unknown verifier fails here, before anything starts."""
        from raylign.engine.tasks.load import load_prompt_rows

        rows = load_prompt_rows(self.config, tok, self.base_dir, self.seed, self.registry, self.name,
                                default_verifier, verifier_options)
        notes = []
        if rows.unmapped:
            notes.append(f"{len(rows.unmapped)} rows left out by the field mapping (e.g. {rows.unmapped[0][1]})")
        if rows.overlap:
            notes.append(f"{rows.overlap} generated held-out rows dropped: a training row asks the same prompt")
        if notes:
            self.console.print(f"{self.name}: " + "; ".join(notes), markup=False)
        return rows

    def check_references(self, rows, rewards) -> dict[str, float]:
        """Construct the verifiers the rows use (one that cannot run here, e.g. without a code sandbox, stops the
        stage with its one-line PluginError), then the reference check (:mod:`raylign.engine.tasks.check`,
        ``[stage] check``): score ``check.rows`` sampled rows with their own reference through ``rewards``'
        verifier term, and stop (DataError, one line naming the source, the mapping and a failing row) when fewer
        than ``check.min_pass`` pass. Run it before starting the fleets: a wrong mapping stops in seconds.
        Returns ``check_reference_pass`` when measured."""
        from raylign.engine.tasks.check import CheckReport, reference_check, require_pass

        used = {r["row"].get("verifier") or rows.verifier for r in rows.train + rows.evals} - {""}
        rewards.load_verifiers(sorted(used))  # a verifier that cannot run here (no sandbox) stops the stage now
        cfg, report = self.config.check, CheckReport()
        score = rewards.verifier_score()
        if cfg.rows <= 0 or score is None:
            if score is None:
                self.console.print(f"{self.name}: no reference check: the reward has no verifier term")
            return {}

        def verifier_of(row):
            return self.registry.get("verifiers", row.get("verifier") or rows.verifier)

        reference_check(rows.train, rows.unmapped, verifier_of, score, cfg.rows, self.seed, report)
        self.console.print(f"{self.name}: {report.line()}", markup=False)
        require_pass(report, cfg.min_pass, self.name, rows.sources)
        return report.metrics()

    def solve_rates(self, rows, rewards, fleet, max_tokens: int, stop_token_ids: Sequence[int] = ()
                    ) -> dict[str, float]:
        """The share of ``check.solve_rows`` sampled training rows the starting model on ``fleet`` solves greedily
        and with ``check.k`` samples (``check_solve_greedy``, ``check_solve_at_k``): a task too easy or too hard
        shows before the training does. Scored by ``rewards``' verifier term; {} without one."""
        from raylign.engine.tasks.check import CheckReport, solve_rates

        cfg, report = self.config.check, CheckReport()
        score = rewards.verifier_score()
        if cfg.solve_rows <= 0 or score is None:
            return {}

        def generate(ids, n, temperature):
            outs = fleet.generate(ids, n=n, temperature=temperature, top_p=1.0, max_tokens=max_tokens,
                                  stop_token_ids=list(stop_token_ids), seed=self.seed + 17)
            return [[c.text for c in cs] for cs in outs]

        solve_rates(rows.train, generate, score, cfg.solve_rows, cfg.k, self.seed, report)
        self.console.print(f"{self.name}: {report.line()}", markup=False)
        return report.metrics()

    # ---------------------------------------------------------------------------------------------- state
    def log(self, step: int, metrics: Mapping[str, Any]) -> None:
        self.metrics.log(self.name, step, metrics)

    @property
    def rollouts(self):
        """This stage's :class:`~raylign.engine.rollout_log.RolloutLog` (``rollouts/<stage>.jsonl``)."""
        if self._rollouts is None:
            from raylign.engine.rollout_log import RolloutLog

            self._rollouts = RolloutLog(self.run_dir, self.name, self.run.rollout_groups_per_step,
                                        self.run.rollout_eval_prompts, self.run.rollout_max_chars)
        return self._rollouts

    def log_rollouts(self, step: int, groups: Sequence[Any], kind: str = "train", advantages: Any = None,
                     extras: Sequence[Sequence[Mapping[str, Any]]] | None = None) -> float:
        """Write a sample of ``groups`` (:class:`~raylign.engine.types.RolloutGroup`: prompt, completions,
        verdicts) as step ``step``'s block of ``rollouts/<stage>.jsonl``: ``[run] rollout_groups_per_step``
        groups of a training step, ``rollout_eval_prompts`` of an eval (``kind="eval"``: greedy answers on
        held-out prompts, one completion per group). ``advantages[g][i]`` and ``extras[g][i]`` (more fields, e.g.
        a gold score) are optional, aligned with the completions. One write per block, fsynced; a block already
        in the file (a resumed stage's repeated eval) is not written again. Returns the seconds it took."""
        return self.rollouts.log(step, groups, kind, advantages, extras)

    def resume_point(self) -> Resume | None:
        """The latest complete checkpoint when resuming (metrics after it are dropped), else None."""
        if not self.resume:
            return None
        latest = self.checkpoints.latest()
        if latest is None:  # the stage starts over: it logs every step again, step 0 included
            self.metrics.truncate_after(self.name, -1)
            self.rollouts.truncate_after(0)  # only its step-0 blocks (evals) stay: they are not written twice
            return None
        step, path = latest
        self.metrics.truncate_after(self.name, step)
        self.rollouts.truncate_after(step)
        self._resumed = Resume(step=step, state=CheckpointManager.read_state(path), path=path)
        return self._resumed

    def save_checkpoint(self, step: int, learners: LearnerHandle | Sequence[LearnerHandle],
                        state: Mapping[str, Any]) -> Path:
        """Atomically checkpoint the learners (model, optimizer, scheduler, RNG each) and the stage's ``state``.
        The first learner's files go in the checkpoint directory itself, every other one's in a folder named
        after its role. With a rollout stream open, the batches it made ahead of ``step`` and their weights
        versions go with them (``rollouts_ahead.pkl``), so that a resume trains on the same samples."""
        handles = _as_list(learners)

        def write(tmp: Path) -> None:
            _each(handles, tmp, "save_state")
            if self._stream is not None and self._stream.k > 0:
                with open(tmp / AHEAD_FILE, "wb") as f:
                    pickle.dump(self._stream.ahead(), f, protocol=pickle.HIGHEST_PROTOCOL)

        path = self.checkpoints.save(step, dict(state), write)
        self.registry.hook.raylign_checkpoint_saved(stage=self.name, step=step, path=path)
        return path

    def restore(self, learners: LearnerHandle | Sequence[LearnerHandle], resume: Resume) -> None:
        """Load what :meth:`save_checkpoint` wrote into the same learners."""
        _each(_as_list(learners), resume.path, "load_state")

    def progress(self, total: int, start: int = 0) -> "Progress":
        return Progress(self, total, start)

    def dead_learner(self, exc: BaseException) -> str | None:
        """For the driver: one line naming the learner of this stage whose death ``exc`` reports (role, rank,
        node, pid, cause), or None when ``exc`` is something else (:func:`raylign.engine.faults.dead_learner`)."""
        from raylign.engine.faults import dead_learner

        return dead_learner(exc, self._learners)

    def close(self) -> None:
        for close in reversed(self._closers):
            try:
                close()
            except Exception as exc:  # shutting down must not hide the stage's own error
                if self.console:
                    self.console.print(f"[yellow]warning: shutdown failed: {exc!r}")
        for learner in self._learners:
            learner.kill()
        for placement in self._placements:
            placement.remove()
        self._closers.clear()
        self._learners.clear()
        self._placements.clear()
        self._colocation = None


def _as_list(learners: LearnerHandle | Sequence[LearnerHandle]) -> list[LearnerHandle]:
    return [learners] if isinstance(learners, LearnerHandle) else list(learners)


def _each(handles: list[LearnerHandle], directory: Path, method: str) -> None:
    for i, h in enumerate(handles):
        where = Path(directory) if i == 0 else Path(directory) / h.role
        where.mkdir(parents=True, exist_ok=True)
        getattr(h, method)(where)


class Progress:
    """A rich progress bar for one stage's steps, showing a few live metrics."""

    def __init__(self, ctx: StageContext, total: int, start: int):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeRemainingColumn

        self._p = RichProgress(TextColumn(f"[bold]{ctx.name}"), BarColumn(), MofNCompleteColumn(),
                               TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                               console=ctx.console, transient=False)
        self._task = self._p.add_task(ctx.name, total=total, completed=start, info="")
        self._t0 = time.perf_counter()

    def __enter__(self) -> "Progress":
        self._p.start()
        return self

    def update(self, step: int, **shown: float) -> None:
        info = "  ".join(f"{k}={v:.4g}" for k, v in shown.items())
        self._p.update(self._task, completed=step, info=info)

    def __exit__(self, *exc) -> None:
        self._p.stop()
