"""Reward provider ``reward_model``: a trained reward model (the ``reward_model`` stage's output, or any
transformers sequence-classification directory with one label) scoring completions in batches.

Used as a term of a stage's reward (see ``raylign.engine.rewards.mix``), where the engine runs it in its own Ray
actors (``replicas``, ``num_cpus``, ``num_gpus``, ``batch_size`` on the term)::

    rewards = [{ name = "reward_model", model = "reward_model" }]   # an earlier stage of the run, or a model dir

Each sample is rendered as the chat the model was trained on (the row's ``prompt`` + the completion) and scored
at the reply's last real token, exactly as the stage trained it. By default the score is normalized with the
mean and std the stage measured on held-out pairs (``reward_stats.json``); a model without that file is refused
unless ``normalize = false`` is asked for by name: a reward is never silently left on an unknown scale.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from raylign.engine import hookimpl
from raylign.engine.types import Verdict

STATS_FILE = "reward_stats.json"


class RewardModelProvider:
    """:param model: the reward model directory (the engine resolves a stage name to it).
    :param normalize: subtract the stored mean and divide by the stored std.
    :param batch_size: sequences per forward pass. :param max_len: longer chats are cut from the left.
    :param system: the system message the reward model was trained with ("" = none).
    :param device: cpu | cuda | auto."""

    def __init__(self, model: str, normalize: bool = True, batch_size: int = 32, max_len: int = 1024,
                 system: str = "", device: str = "auto") -> None:
        import torch

        from raylign.engine.modeling import load_tokenizer, load_value_model

        self.dir = Path(model)
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        self.tok = load_tokenizer(self.dir)
        self.model = load_value_model(self.dir, self.device).eval()
        self.batch_size, self.max_len, self.system = int(batch_size), int(max_len), system
        self.mean, self.std = 0.0, 1.0
        if normalize:
            stats_path = self.dir / STATS_FILE
            if not stats_path.is_file():
                raise FileNotFoundError(f"reward model {self.dir} has no {STATS_FILE} (written by the reward_model "
                                        f"stage): set options.normalize = false to use its raw scores")
            stats = json.loads(stats_path.read_text())
            self.mean, self.std = float(stats["mean"]), max(float(stats["std"]), 1e-6)

    def encode(self, sample: Mapping[str, Any]) -> tuple[list[int], int] | str:
        """(token ids, read position), or the reason the sample cannot be scored."""
        from raylign.engine.chat_format import conversation, encode_conversation, reply_end

        task = sample.get("task") or {}
        prompt, completion = task.get("prompt"), sample.get("completion")
        if not isinstance(prompt, (str, list)):
            return "the task row has no prompt (string or chat messages) to score the reply against"
        if not isinstance(completion, str):
            return "the completion is not a string"
        ids, mask = encode_conversation(self.tok, conversation(prompt, completion), self.system)
        end = reply_end(self.tok, ids, mask)
        if end < 0:
            return "nothing to score: the reply encodes to no tokens"
        ids = ids[: end + 1]
        cut = max(0, len(ids) - self.max_len)
        return ids[cut:], end - cut

    def score(self, samples: Sequence[Mapping[str, Any]]) -> list[Verdict]:
        import torch

        from raylign.engine.modeling import value_forward
        from raylign.engine.ops import pad_sequences

        encoded = [self.encode(s) for s in samples]
        out: list[Verdict | None] = [None] * len(samples)
        ok = [i for i, e in enumerate(encoded) if not isinstance(e, str)]
        for i, e in enumerate(encoded):
            if isinstance(e, str):
                out[i] = Verdict(status="invalid", error=e)
        with torch.no_grad():
            for start in range(0, len(ok), self.batch_size):
                idx = ok[start:start + self.batch_size]
                ids, attn = pad_sequences([encoded[i][0] for i in idx], self.tok.pad_token_id)
                values = value_forward(self.model, ids.to(self.device), attn.to(self.device)).float().cpu()
                for row, i in enumerate(idx):
                    raw = float(values[row, encoded[i][1]])
                    out[i] = Verdict(reward=(raw - self.mean) / self.std, details={"rm_raw": raw})
        return out


@hookimpl
def raylign_register_reward_providers(register):
    register("reward_model", RewardModelProvider)
