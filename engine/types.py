"""Typed containers for what flows between roles. Shapes are in the comments; B = sequences, T = tokens.

This module imports no torch at run time (``raylign verify`` and the verifier workers use :class:`Verdict`
without it); the tensor containers only name ``torch.Tensor`` in annotations and use the tensors they are given.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

STATUSES = ("ok", "timeout", "error", "invalid")
MAX_REWARD = 1e6  # |reward| a verdict may carry: past it float32 advantages and losses overflow


# ---------------------------------------------------------------------------------------------- rewards


@dataclass(frozen=True)
class Verdict:
    """The outcome of one verification (also exported as ``raylign.verifiers.Verdict``).

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
        if not abs(reward) <= MAX_REWARD:  # (NaN included)
            raise ValueError(f"Verdict.reward must be finite and within ±{MAX_REWARD:g}, got {self.reward!r}")
        object.__setattr__(self, "reward", reward)

    @property
    def failed(self) -> bool:
        """The verifier could not finish (``timeout`` or ``error``): the reward is not a judgement."""
        return self.status in ("timeout", "error")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def coerce(cls, value: Any) -> "Verdict":
        """Accept what a verifier returned: a Verdict, a number or a bool."""
        if isinstance(value, Verdict):  # (a subclass is rebuilt as a Verdict: its checks are ours)
            return value if type(value) is cls else cls(value.reward, value.status, value.error, dict(value.details))
        if isinstance(value, (int, float)):
            return cls(reward=float(value))
        raise TypeError(f"a verifier must return a Verdict or a float, got {type(value).__name__}")


# ---------------------------------------------------------------------------------------------- rollouts


@dataclass
class Completion:
    """One generated sample from the rollout fleet."""

    prompt_index: int  # index of the prompt in the request
    sample_index: int  # 0..n-1 within the prompt's group
    prompt_token_ids: list[int]  # the prompt as tokenized by the engine
    token_ids: list[int]  # generated tokens
    text: str  # generated text
    logprobs: list[float]  # the sampler's logprob of each generated token
    finish_reason: str  # "stop" | "length"
    weights_version: int  # the weights version that generated it

    @property
    def truncated(self) -> bool:
        """Cut by the token limit rather than ended by a stop token."""
        return self.finish_reason == "length"


@dataclass
class RolloutGroup:
    """The G completions of one prompt with their verdicts: what a group-sampled policy-gradient stage trains on.

    ``completions[i]`` carries the sampler's token logprobs and the weights version it was sampled with;
    ``verdicts[i]`` is its score. ``keep[i] = False`` leaves sample i out of the loss (its reward still counts in
    the metrics).
    """

    task: dict[str, Any]  # the dataset row
    prompt_ids: list[int]  # the rendered prompt's tokens
    completions: list[Completion]
    verdicts: list[Verdict]  # one per completion
    keep: list[bool] = field(default_factory=list)  # one per completion; empty = keep all

    def __post_init__(self) -> None:
        if len(self.verdicts) != len(self.completions):
            raise ValueError(f"a group has {len(self.completions)} completions but {len(self.verdicts)} verdicts")
        if not self.keep:
            self.keep = [True] * len(self.completions)

    @property
    def rewards(self) -> list[float]:
        return [v.reward for v in self.verdicts]

    @property
    def statuses(self) -> list[str]:
        return [v.status for v in self.verdicts]

    @property
    def weights_version(self) -> int:
        """The oldest weights version among the group's completions."""
        return min((c.weights_version for c in self.completions), default=0)


# ---------------------------------------------------------------------------------------------- learner


@dataclass
class TrainBatch:
    """One micro-batch for the learner. Position t of every per-token tensor refers to token ``input_ids[:, t]``;
    ``loss_mask[:, t] = 1`` trains the prediction of token t from the tokens before it (so column 0 is always 0).
    """

    input_ids: "torch.Tensor"  # [B, T] int64
    attention_mask: "torch.Tensor"  # [B, T] int64, 1 = real token
    loss_mask: "torch.Tensor"  # [B, T] float32, 1 = token contributes to the loss
    loss_scale: float = 1.0  # this micro-batch's weight: the step's loss is sum(loss_scale * micro_loss)
    extras: dict[str, "torch.Tensor"] = field(default_factory=dict)  # per-token [B, T] tensors a loss needs

    @property
    def num_tokens(self) -> int:
        return int(self.loss_mask.sum().item())

    def columns(self, start: int, stop: int) -> "TrainBatch":
        """The same sequences cut to columns [start, stop): every per-token tensor, and the extras that are
        per-token ([B, T, ...]; per-sequence ones such as a [B] margin stay whole)."""
        sl = (slice(None), slice(start, stop))
        T = self.input_ids.shape[1]
        return TrainBatch(self.input_ids[sl], self.attention_mask[sl], self.loss_mask[sl], self.loss_scale,
                          {k: v[sl] if v.dim() >= 2 and v.shape[1] == T else v for k, v in self.extras.items()})

    def to(self, device: Any) -> "TrainBatch":
        return TrainBatch(self.input_ids.to(device), self.attention_mask.to(device), self.loss_mask.to(device),
                          self.loss_scale, {k: v.to(device) for k, v in self.extras.items()})


@dataclass
class SequenceBatch:
    """A padded batch of S whole sequences before it is cut into micro-batches (one optimizer step's data).

    Same alignment as :class:`TrainBatch`; ``extras`` are per-token [S, T] tensors (advantages, sampler or
    reference logprobs, ...).
    """

    input_ids: "torch.Tensor"  # [S, T] int64
    attention_mask: "torch.Tensor"  # [S, T] int64
    loss_mask: "torch.Tensor"  # [S, T] float32
    extras: dict[str, "torch.Tensor"] = field(default_factory=dict)  # [S, T] each

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def loss_tokens(self) -> float:
        """Tokens under the loss mask (at least 1: a divisor)."""
        return float(self.loss_mask.sum().clamp(min=1))

    @property
    def loss_sequences(self) -> float:
        """Sequences with at least one loss token (at least 1: a divisor)."""
        return float((self.loss_mask.sum(1) > 0).sum().clamp(min=1))

    def micro_batches(self, size: int, token_weighted: bool = False, by_length: bool = False) -> list[TrainBatch]:
        """Consecutive micro-batches of ``size`` sequences. ``token_weighted`` sets each one's ``loss_scale`` to
        its share of the loss tokens (so per-micro-batch means add up to the step's token mean); otherwise 1.0
        (the loss normalizes by a step-wide constant itself).

        ``by_length`` cuts them from the sequences ordered by length (longest first, ties in order) and cuts each
        to the columns that hold its real tokens, so little compute goes to padding. The step's loss is the same
        when the loss is a sum over sequences divided by step-wide constants (``norm_tokens``/``norm_seqs``, or
        ``token_weighted``); a loss normalized per micro-batch, or a metric averaged per micro-batch, depends on
        which sequences share one. The micro-batches no longer line up with the batch's rows: use it for
        ``train_step``, not for results that are concatenated back (``token_logprobs``, ``values``), nor for
        losses that read rows together (chosen/rejected pairs)."""
        import torch

        total = float(self.loss_mask.sum().clamp(min=1))
        order = None
        if by_length:
            order = torch.argsort(self.attention_mask.sum(1), descending=True, stable=True)
        out = []
        for start in range(0, len(self), size):
            sl = slice(start, start + size) if order is None else order[start : start + size]
            lm = self.loss_mask[sl]
            scale = float(lm.sum()) / total if token_weighted else 1.0
            mb = TrainBatch(self.input_ids[sl], self.attention_mask[sl], lm, loss_scale=scale,
                            extras={k: v[sl] for k, v in self.extras.items()})
            if by_length:
                cols = torch.nonzero(mb.attention_mask.any(0)).flatten()
                if len(cols):
                    mb = mb.columns(int(cols[0]), int(cols[-1]) + 1)
            out.append(mb)
        return out
