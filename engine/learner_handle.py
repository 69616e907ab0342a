"""The driver-side handle on a learner actor: what a stage holds instead of a raw Ray actor.

Every method is a blocking call on the actor (the Ray round trip is the engine's business, never a stage's).
A stage may hold several handles (policy, critic, reference), each with its own model and optimizer; ``role``
names each one in errors and in checkpoints.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from raylign.engine import options as loss_options
from raylign.engine.errors import ConfigError
from raylign.engine.types import TrainBatch


class LearnerHandle:
    """A PyTorch learner (model + optimizer) running in its own Ray actor.

    :param actor: the Ray actor of :class:`raylign.engine.learner.Learner`.
    :param registry: the driver's plugin registry (loss options are validated against it before a call).
    :param role: what this learner is to the stage ("policy", "reference", "critic", ...).
    :param trainable: False for a frozen learner (no optimizer: ``train_step`` is refused on the driver).
    :param head: ``lm`` (a causal LM: losses receive logits [B,T,V]) or ``value`` (a scalar head, a reward model
        or critic: losses receive values [B,T]).
    """

    def __init__(self, actor: Any, registry: Any, role: str = "policy", trainable: bool = True, head: str = "lm"):
        self.actor = actor
        self.registry = registry
        self.role = role
        self.trainable = trainable
        self.head = head

    def __repr__(self) -> str:
        return f"LearnerHandle(role={self.role!r}, trainable={self.trainable}, head={self.head!r})"

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
        return self._get(self.actor.train_step.remote(list(batches), loss, checked))

    def eval_loss(self, batches: Sequence[TrainBatch], loss: str, options: Any = None) -> dict[str, float]:
        """Token-weighted means of every metric the loss reports over ``batches`` (``loss`` among them), no
        update; ``tokens``: the loss tokens counted."""
        checked = self.check_loss(loss, options)
        return self._get(self.actor.eval_loss.remote(list(batches), loss, checked))

    def token_logprobs(self, batches: Sequence[TrainBatch]) -> list:
        """Per-token logprobs [B, T] of each micro-batch under the current weights (column 0 is 0)."""
        return self._get(self.actor.token_logprobs.remote(list(batches)))

    def values(self, batches: Sequence[TrainBatch]) -> list:
        """The scalar head's value at every position [B, T] of each micro-batch (``head="value"`` learners)."""
        return self._get(self.actor.values.remote(list(batches)))

    def sequence_logprobs(self, token_ids: Sequence[int]) -> list[float]:
        """Logprob of each of ``token_ids[1:]`` given the tokens before it."""
        return self._get(self.actor.sequence_logprobs.remote([int(t) for t in token_ids]))

    def generate(self, prompts: Sequence[str], max_new_tokens: int, batch_size: int = 32) -> list[dict]:
        """Greedy HF generation on the learner (probes, small evals): ``{"text", "finished"}`` per prompt."""
        return self._get(self.actor.generate.remote(list(prompts), max_new_tokens, batch_size))

    # ------------------------------------------------------------------------------------------ weights
    @property
    def version(self) -> int:
        """The weights version: the number of optimizer steps taken (restored with the state)."""
        return self._get(self.actor.get_version.remote())

    def weights_ref(self):
        """An ObjectRef to the current weights (CPU tensors, HF names), for the engine's weight sync."""
        return self.actor.weights.remote()

    def save_model(self, directory: str | Path) -> Path:
        """Write the model as an HF model directory (transformers and vLLM load it unchanged)."""
        return Path(self._get(self.actor.save_model.remote(str(directory))))

    def save_state(self, directory: str | Path) -> None:
        """Model, optimizer, scheduler, RNG and version into ``directory`` (part of a checkpoint)."""
        self._get(self.actor.save_state.remote(str(directory)))

    def load_state(self, directory: str | Path) -> int:
        """Restore what :meth:`save_state` wrote; returns the restored weights version."""
        return self._get(self.actor.load_state.remote(str(directory)))

    # ------------------------------------------------------------------------------------------ lifetime
    def kill(self) -> None:
        import ray

        try:
            ray.kill(self.actor)
        except Exception:
            pass

    @staticmethod
    def _get(ref):
        import ray

        return ray.get(ref)
