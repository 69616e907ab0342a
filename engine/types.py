"""Typed containers that cross Ray boundaries. Shapes are in the comments; B = sequences, T = tokens."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class TrainBatch:
    """One micro-batch for the learner. Position t of every per-token tensor refers to token ``input_ids[:, t]``;
    ``loss_mask[:, t] = 1`` trains the prediction of token t from the tokens before it (so column 0 is always 0).
    """

    input_ids: torch.Tensor  # [B, T] int64
    attention_mask: torch.Tensor  # [B, T] int64, 1 = real token
    loss_mask: torch.Tensor  # [B, T] float32, 1 = token contributes to the loss
    loss_scale: float = 1.0  # this micro-batch's weight: the step's loss is sum(loss_scale * micro_loss)
    extras: dict[str, torch.Tensor] = field(default_factory=dict)  # per-token [B, T] tensors a loss needs

    @property
    def num_tokens(self) -> int:
        return int(self.loss_mask.sum().item())


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


@dataclass
class Sample:
    """A completion joined with its task row and its verdict (what a policy-gradient stage trains on)."""

    task: dict[str, Any]  # the dataset row
    completion: Completion
    reward: float
    status: str  # Verdict status
    details: dict[str, Any] = field(default_factory=dict)
