"""The driver-side handle on a learner actor: what a stage holds instead of a raw Ray actor.

Every method is a blocking call on the actor (the Ray round trip is the engine's business, never a stage's).
A stage may hold several handles (policy, critic, reference), each with its own model and optimizer; ``role``
names each one in errors and in checkpoints.

A handle may stand for N data-parallel ranks (``[ray] learners = N``, :mod:`raylign.engine.learner_group`), and
a stage cannot tell: each call's micro-batches are split among the ranks (balanced by tokens, deterministic),
the results come back in the micro-batches' order and the metrics are reduced to what one learner returns.
Rank 0 alone answers what needs one model (``version``, ``sequence_logprobs``, ``generate``), sends the weights
(one copy per sync) and writes the model and the checkpoint; every rank loads a checkpoint.

A sharded group (``[ray] learner_strategy = "fsdp2"``) holds no whole model on any rank, so there every call goes
to every rank (each takes part in the gathers): a forward-only call with fewer micro-batches than ranks still
calls them all, and a call that needs one model is made on all of them and rank 0's answer kept.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from raylign.engine import learner_group as group
from raylign.engine import options as loss_options
from raylign.engine.errors import ConfigError
from raylign.engine.types import TrainBatch


class LearnerHandle:
    """A PyTorch learner (model + optimizer) running in its own Ray actor.

    :param actor: the Ray actor of :class:`raylign.engine.learner.Learner`, or the list of a data-parallel
        group's actors (rank 0 first).
    :param registry: the driver's plugin registry (loss options are validated against it before a call).
    :param role: what this learner is to the stage ("policy", "reference", "critic", ...).
    :param trainable: False for a frozen learner (no optimizer: ``train_step`` is refused on the driver).
    :param head: ``lm`` (a causal LM: losses receive logits [B,T,V]) or ``value`` (a scalar head, a reward model
        or critic: losses receive values [B,T]).
    """

    def __init__(self, actor: Any, registry: Any, role: str = "policy", trainable: bool = True, head: str = "lm"):
        self.actors = list(actor) if isinstance(actor, (list, tuple)) else [actor]
        self.actor = self.actors[0]  # rank 0
        self.registry = registry
        self.role = role
        self.trainable = trainable
        self.head = head
        self._sharded: bool | None = None  # asked of rank 0 on first use (a single learner never is)
        self._followers: list = []  # the other ranks' calls of a sharded rank-0 call (their errors raise later)

    def __repr__(self) -> str:
        ranks = f", ranks={len(self.actors)}" if len(self.actors) > 1 else ""
        return f"LearnerHandle(role={self.role!r}, trainable={self.trainable}, head={self.head!r}{ranks})"

    @property
    def ranks(self) -> int:
        """Data-parallel learners behind this handle (``[ray] learners``)."""
        return len(self.actors)

    @property
    def sharded(self) -> bool:
        """The ranks hold shards of one model (FSDP2): every call must reach every rank."""
        if self._sharded is None:
            self._sharded = self.ranks > 1 and bool(self._get(self.actor.is_sharded.remote()))
        return self._sharded

    # ------------------------------------------------------------------------------------------ compute
    def check_loss(self, loss: str, options: Any = None) -> dict[str, Any]:
        """The loss's options as plain data, validated on the driver against what the loss declares (its
        keyword-only parameters), and its head (a loss's ``head`` attribute, default ``lm``) against this
        learner's. Raises PluginError for an unknown loss, ConfigError for a bad option or the wrong head."""
        fn = self.registry.get("losses", loss)
        wants = getattr(fn, "head", "lm")
        if wants != self.head:
            raise ConfigError(f"loss {loss!r} trains a learner with head={wants!r}, but the {self.role} learner has "
                              f"head={self.head!r}")
        return loss_options.validate(fn, options, f"loss {loss!r}")

    def train_step(self, batches: Sequence[TrainBatch], loss: str, options: Any = None) -> dict[str, float]:
        """One optimizer step over ``batches`` (micro-batches: gradient accumulation) with the registered
        ``loss`` and its ``options`` (a mapping or the loss's options object). Returns the step's metrics: the
        loss's own (token-weighted means) plus ``grad_norm``, ``lr``, ``step_tokens``, ``tokens``,
        ``learner_seconds``."""
        if not self.trainable:
            raise RuntimeError(f"the {self.role} learner is frozen: it cannot train")
        checked = self.check_loss(loss, options)
        if self.ranks == 1:
            return self._get(self.actor.train_step.remote(list(batches), loss, checked))
        _, results = self._scatter(batches, "train_step", loss, checked)  # every rank steps, even with no share
        return group.reduce_train_metrics(results)

    def eval_loss(self, batches: Sequence[TrainBatch], loss: str, options: Any = None) -> dict[str, float]:
        """Token-weighted means of every metric the loss reports over ``batches`` (``loss`` among them), no
        update; ``tokens``: the loss tokens counted."""
        checked = self.check_loss(loss, options)
        if self.ranks == 1:
            return self._get(self.actor.eval_loss.remote(list(batches), loss, checked))
        _, results = self._scatter(batches, "eval_loss", loss, checked, every_rank=self.sharded)
        return group.reduce_eval_metrics(results) if results else {"tokens": 0}

    def token_logprobs(self, batches: Sequence[TrainBatch]) -> list:
        """Per-token logprobs [B, T] of each micro-batch under the current weights (column 0 is 0)."""
        return self._per_batch(batches, "token_logprobs")

    def values(self, batches: Sequence[TrainBatch]) -> list:
        """The scalar head's value at every position [B, T] of each micro-batch (``head="value"`` learners)."""
        return self._per_batch(batches, "values")

    def sequence_logprobs(self, token_ids: Sequence[int]) -> list[float]:
        """Logprob of each of ``token_ids[1:]`` given the tokens before it."""
        return self._on_rank0("sequence_logprobs", [int(t) for t in token_ids])

    def generate(self, prompts: Sequence[str], max_new_tokens: int, batch_size: int = 32) -> list[dict]:
        """Greedy HF generation on the learner (probes, small evals): ``{"text", "finished"}`` per prompt."""
        return self._on_rank0("generate", list(prompts), max_new_tokens, batch_size)

    # ------------------------------------------------------------------------------------------ weights
    @property
    def version(self) -> int:
        """The weights version: the number of optimizer steps taken (restored with the state)."""
        return self._get(self.actor.get_version.remote())

    def weights_ref(self, dtype: str = "auto"):
        """An ObjectRef to the current weights (CPU tensors, HF names, floating point ones cast to ``dtype`` unless
        ``auto``), for the engine's weight sync: rank 0's (every rank holds the same weights; a sharded group
        gathers them whole, rank 0 keeps them), so a sync sends one copy."""
        return self._rank0("weights", dtype)

    def weights_flat_refs(self, dtype: str = "auto", parts: int = 1) -> list:
        """ObjectRefs to the current weights for the ``flat`` sync: ``parts`` ``FlatWeights`` parts of rank 0's
        copy, in order (:meth:`raylign.engine.learner.Learner.weights_flat`). A sharded group gathers the whole
        tensors one at a time into rank 0's buffers while part 0 is made."""
        refs = [self._rank0("weights_flat", dtype, 0, parts)]
        return refs + [self.actor.weights_flat.remote(dtype, i, parts) for i in range(1, parts)]

    def weights_group_ref(self, dtype: str = "auto"):
        """The ObjectRef of rank 0's ``weight_group_pack`` for the ``collective`` sync: the layout of the weights
        it packed into its sync buffers, which it then broadcasts (:mod:`raylign.engine.weight_group`). A
        sharded group gathers them into rank 0's buffers."""
        return self._rank0("weight_group_pack", dtype)

    def save_model(self, directory: str | Path) -> Path:
        """Write the model as an HF model directory (transformers and vLLM load it unchanged)."""
        return Path(self._on_rank0("save_model", str(directory)))

    def save_state(self, directory: str | Path) -> None:
        """Model, optimizer, scheduler, RNG and version into ``directory`` (part of a checkpoint); rank 0 writes
        them (the ranks' states are the same; a sharded group gathers them whole first)."""
        self._on_rank0("save_state", str(directory))

    def load_state(self, directory: str | Path) -> int:
        """Restore what :meth:`save_state` wrote into every rank (each reads ``directory``); returns the restored
        weights version."""
        versions = self._get_all([a.load_state.remote(str(directory)) for a in self.actors])
        return versions[0]

    # ------------------------------------------------------------------------------------------ lifetime
    def kill(self) -> None:
        import ray

        for actor in self.actors:
            try:
                ray.kill(actor)
            except Exception:
                pass

    # ------------------------------------------------------------------------------------------ ranks
    def _on_rank0(self, method: str, *args) -> Any:
        """Rank 0's ``method(*args)``; a sharded group's every rank runs it (each takes part in the gathers) and
        the first rank that fails raises at once."""
        self._settle()
        if self.ranks > 1 and self.sharded:
            return self._get_all([getattr(a, method).remote(*args) for a in self.actors])[0]
        return self._get(getattr(self.actor, method).remote(*args))

    def _rank0(self, method: str, *args):
        """The ObjectRef of rank 0's ``method(*args)``, not waited for (the weight sync's). A sharded group calls
        it on every rank (the others take part in the gathers and return None) and keeps their refs, whose
        errors the next call raises."""
        self._settle()
        if self.ranks > 1 and self.sharded:
            self._followers = [getattr(a, method).remote(*args) for a in self.actors[1:]]
        return getattr(self.actor, method).remote(*args)

    def _settle(self) -> None:
        """Raise the error of an earlier sharded call on a rank other than 0, if one failed."""
        followers, self._followers = self._followers, []
        if followers:
            self._get_all(followers)

    def _scatter(self, batches: Sequence[TrainBatch], method: str, *args,
                 every_rank: bool = True) -> tuple[list[list[int]], list]:
        """Call ``method`` on the ranks with their shares of ``batches`` (:func:`~raylign.engine.learner_group.
        split_balanced` by tokens): every rank (``train_step``: each takes part in the all-reduce) or, for a
        forward-only call, only those with a share. Returns the shares' indices and the results, in rank order."""
        self._settle()
        batches = list(batches)
        parts = group.split_balanced([group.batch_tokens(b) for b in batches], self.ranks)
        calls = [(a, idx) for a, idx in zip(self.actors, parts) if every_rank or idx]
        refs = [getattr(a, method).remote([batches[i] for i in idx], *args) for a, idx in calls]
        return [idx for _, idx in calls], self._get_all(refs)

    def _per_batch(self, batches: Sequence[TrainBatch], method: str) -> list:
        """A per-micro-batch result list, computed on the ranks' shares, in the order of ``batches``."""
        if self.ranks == 1:
            return self._get(getattr(self.actor, method).remote(list(batches)))
        parts, results = self._scatter(batches, method, every_rank=self.sharded)
        return group.gather(parts, results)

    @staticmethod
    def _get(ref):
        import ray

        return ray.get(ref)

    @staticmethod
    def _get_all(refs: list) -> list:
        """Every rank's result; the first rank that fails raises at once (the others may be waiting for it in a
        collective, which would otherwise hold ``ray.get`` until the group's timeout)."""
        import ray

        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            ray.get(done)  # raises the rank's error
        return ray.get(refs)
