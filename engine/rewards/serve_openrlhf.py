"""OpenRLHF's remote-reward protocol on the verifier service: ``POST /openrlhf/{verifier}``.

OpenRLHF's trainer (``--reward.remote_url URL``; ``--remote_rm_url`` before 2026-04) posts one
JSON object per request and reads the rewards back from the reply; this module turns that object into the
service's ``(verifier, completion, task)`` rows and the verdicts into OpenRLHF's reply. Every field name below
is the trainer's, read in OpenRLHF's source (``openrlhf/utils/remote_rm_utils.py`` from 2024-07 to 2026-01,
``openrlhf/utils/agent.py`` since, and ``openrlhf/cli/serve_rm.py``, its own reward server):

- request ``{"query": [...], "prompts": [...], "labels": [...]}``: ``query`` is each sample's prompt and response
  as the trainer decoded them (chat template and special tokens included), ``prompts`` the prompts alone and
  ``labels`` the dataset's ``--data.label_key`` column. The oldest clients send only ``query``; ``prompts``
  came in 2025-02 and ``labels`` weeks later. Other fields are ignored.
- reply ``{"rewards": [...], "scores": [...], "extra_logs": {key: [...]}}``, one value per query: ``rewards``
  feeds the advantages (clients before 2025-05 read only this key), ``scores`` OpenRLHF's dynamic filtering
  (newer clients read it first, falling back to ``rewards``), ``extra_logs`` is logged per sample. raylign adds
  ``verdicts`` (status, error, details per query), which OpenRLHF ignores.

How a query becomes a row: the response is what follows the prompt in the query (the first occurrence, so a
BOS token before the prompt does no harm; the whole query when there is no prompt or it is not found). The
label is the verifier's task: a JSON object (or a string holding one) is the task row itself (``tests``,
HumanEval fields, ``inputs``/``outputs`` for ``code``); anything else is the reference answer,
``{"answer": label}`` (``math``); no label is an empty task.
"""
from __future__ import annotations

import json
from typing import Any, Sequence

from pydantic import BaseModel, Field, model_validator

from raylign.engine.rewards.pool import Item
from raylign.engine.rewards.serve_schema import VerdictOut
from raylign.engine.types import Verdict

# extra_logs keys: per sample, 1.0 when the verdict has that status (OpenRLHF logs their means)
STATUS_LOGS = {"timeout": "verifier_timeout", "error": "verifier_error", "invalid": "verifier_invalid"}


class OpenRLHFRequest(BaseModel):
    query: list[str] = Field(description="each sample's prompt + response as the trainer decoded them")
    prompts: list[str] | None = Field(default=None, description="the prompts, to split each response off its "
                                                                "query (absent from clients before 2025-02)")
    labels: list[Any] | None = Field(default=None, description="the dataset's label column: the reference answer, "
                                                               "or a JSON object that is the verifier's task row")

    @model_validator(mode="after")
    def _same_lengths(self) -> "OpenRLHFRequest":
        for field in ("prompts", "labels"):
            values = getattr(self, field)
            if values is not None and len(values) != len(self.query):
                raise ValueError(f"{field} has {len(values)} entries and query has {len(self.query)}")
        return self


class OpenRLHFResponse(BaseModel):
    rewards: list[float] = Field(description="one reward per query (what OpenRLHF's advantages use)")
    scores: list[float] = Field(description="the same values, read by OpenRLHF's dynamic filtering")
    extra_logs: dict[str, list[float]] = Field(description="per query: 1.0 where the verdict was a timeout, an "
                                                           "error or invalid (OpenRLHF logs the means)")
    verdicts: list[VerdictOut] = Field(description="raylign's full verdicts (OpenRLHF ignores them)")


def response_text(query: str, prompt: str | None) -> str:
    """The part of ``query`` after ``prompt`` (its first occurrence); the whole query without a prompt in it."""
    if prompt:
        at = query.find(prompt)
        if at >= 0:
            return query[at + len(prompt):]
    return query


def label_task(label: Any) -> dict[str, Any]:
    """The verifier's task row from an OpenRLHF label (see the module docstring)."""
    if label is None:
        return {}
    if isinstance(label, dict):
        return dict(label)
    if isinstance(label, str) and label.lstrip().startswith("{"):
        try:
            parsed = json.loads(label)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            return parsed
    return {"answer": label}


def to_items(name: str, body: OpenRLHFRequest) -> list[Item]:
    """The service's rows for one OpenRLHF request, in query order."""
    n = len(body.query)
    prompts: Sequence[str | None] = body.prompts if body.prompts is not None else [None] * n
    labels: Sequence[Any] = body.labels if body.labels is not None else [None] * n
    return [(name, response_text(q, p), label_task(lab)) for q, p, lab in zip(body.query, prompts, labels)]


def to_response(verdicts: Sequence[Verdict]) -> OpenRLHFResponse:
    rewards = [v.reward for v in verdicts]
    logs = {key: [float(v.status == status) for v in verdicts] for status, key in STATUS_LOGS.items()}
    return OpenRLHFResponse(rewards=rewards, scores=list(rewards), extra_logs=logs,
                            verdicts=[VerdictOut(**v.to_dict()) for v in verdicts])
