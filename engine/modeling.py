"""HF-format model directories: load, save, and build a small Qwen2 from a few size knobs.

torch and transformers are imported by the functions that use them: stage plugins import this module when
they are registered, and ``raylign plugins`` starts without torch.
"""
from __future__ import annotations

import functools
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from raylign.engine.errors import ModelError

if TYPE_CHECKING:
    import torch

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "tekken.json")
SUPPORTED_HINT = "an HF causal-LM directory (config.json, *.safetensors, tokenizer files), e.g. Qwen2 or Llama"


@dataclass(frozen=True)
class ModelSize:
    hidden_size: int = 128  # width of the residual stream
    num_layers: int = 4  # transformer blocks
    num_heads: int = 4  # attention heads (head dim = hidden_size / num_heads)
    num_kv_heads: int = 2  # grouped-query attention KV heads
    intermediate_size: int = 384  # MLP width
    max_position_embeddings: int = 1024  # longest sequence
    tie_word_embeddings: bool = True  # share input and output embeddings


@functools.cache
def _quiet_transformers() -> None:
    """No per-file progress bars when loading tiny models (once, before transformers loads anything)."""
    try:
        from transformers.utils import logging as _hf_logging

        _hf_logging.disable_progress_bar()
    except Exception:  # pragma: no cover
        pass


def check_model_dir(path: str | Path) -> Path:
    """Fail with a clear message unless ``path`` is a loadable HF model directory."""
    p = Path(path)
    if not p.is_dir():
        raise ModelError(f"model directory {p} does not exist (expected {SUPPORTED_HINT})")
    if not (p / "config.json").is_file():
        raise ModelError(f"{p} has no config.json: not an HF model directory (expected {SUPPORTED_HINT})")
    if not any(p.glob("*.safetensors")) and not any(p.glob("*.bin")):
        raise ModelError(f"{p} has no weights (*.safetensors or *.bin)")
    return p


def build_qwen2(size: ModelSize, tokenizer, seed: int = 0):
    """A randomly initialized Qwen2ForCausalLM sized by ``size`` for ``tokenizer``'s vocabulary."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    _quiet_transformers()

    cfg = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=size.hidden_size,
        intermediate_size=size.intermediate_size,
        num_hidden_layers=size.num_layers,
        num_attention_heads=size.num_heads,
        num_key_value_heads=size.num_kv_heads,
        max_position_embeddings=size.max_position_embeddings,
        tie_word_embeddings=size.tie_word_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.pad_token_id,
        rope_theta=10000.0,
        torch_dtype="float32",
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(cfg)
    eos = [tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.eos_token_id]
    model.generation_config.eos_token_id = eos
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def load_model(path: str | Path, device: str = "cpu", dtype: torch.dtype | None = None):
    """The model in ``path`` on ``device``, in ``dtype`` (None = float32)."""
    import torch
    from transformers import AutoModelForCausalLM

    _quiet_transformers()
    dtype = torch.float32 if dtype is None else dtype
    p = check_model_dir(path)
    try:
        model = AutoModelForCausalLM.from_pretrained(str(p), dtype=dtype)
    except Exception as exc:
        raise ModelError(f"cannot load the model in {p}: {exc}") from exc
    return model.to(device)


def is_value_model(path: str | Path) -> bool:
    """The directory holds a sequence-classification model (a reward model or critic), not a causal LM."""
    cfg = json.loads((Path(path) / "config.json").read_text())
    return any(a.endswith("ForSequenceClassification") for a in cfg.get("architectures") or [])


def load_value_model(path: str | Path, device: str = "cpu", seed: int = 0):
    """A model with a scalar head (HF ``...ForSequenceClassification``, one label) from ``path``.

    A sequence-classification directory (a reward model) loads as it is; a causal-LM directory loads its
    transformer body and gets a new head (normal, std = the config's ``initializer_range``, seeded), its
    ``lm_head`` dropped. The pad token is set in the config, so transformers' own pooling works on the saved dir.
    """
    import torch
    from transformers import AutoModelForSequenceClassification

    _quiet_transformers()
    p = check_model_dir(path)
    tok = load_tokenizer(p)
    torch.manual_seed(seed)
    try:
        model = AutoModelForSequenceClassification.from_pretrained(str(p), num_labels=1, dtype=torch.float32,
                                                                   pad_token_id=tok.pad_token_id)
    except Exception as exc:
        raise ModelError(f"cannot load {p} as a model with a scalar head: {exc}") from exc
    if getattr(model, "score", None) is None:
        raise ModelError(f"{p}: {type(model).__name__} has no `score` head (raylign reads values from it)")
    model.config.pad_token_id = tok.pad_token_id
    return model.to(device)


def value_forward(model, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                  position_ids: torch.Tensor | None = None) -> torch.Tensor:
    """The scalar head on every position: [B, T] values, position t having seen tokens 0..t.

    Position ids count real tokens only, so a sequence scores the same left- or right-padded. Packed rows
    (:class:`raylign.engine.ops.Packing`) pass no mask and their own ``position_ids``, restarting per sequence.
    """
    if position_ids is None:
        position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    body = getattr(model, model.base_model_prefix)
    hidden = body(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                  use_cache=False).last_hidden_state
    return model.score(hidden).squeeze(-1)


def load_tokenizer(path: str | Path):
    from transformers import AutoTokenizer

    _quiet_transformers()
    p = Path(path)
    if p.is_dir() and not any((p / f).is_file() for f in TOKENIZER_FILES):
        # transformers would build an empty tokenizer from config.json's model_type instead of failing
        raise ModelError(f"{p} has no tokenizer files (one of {', '.join(TOKENIZER_FILES)})")
    try:
        tok = AutoTokenizer.from_pretrained(str(p))
    except Exception as exc:
        raise ModelError(f"cannot load a tokenizer from {p}: {exc}") from exc
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def stop_token_ids(tokenizer) -> list[int]:
    """Tokens that end a reply: <|im_end|> when the tokenizer has it, and EOS."""
    ids = []
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if isinstance(im_end, int) and im_end != tokenizer.unk_token_id and im_end is not None:
        ids.append(im_end)
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


def generate_greedy(model, tokenizer, prompts: list[str], max_new_tokens: int, batch_size: int = 32,
                    device: str = "cpu") -> list[dict]:
    """Greedy replies to already-rendered prompts, batched with left padding (no autograd).

    Returns ``{"text": reply, "finished": True when a stop token ended it}`` per prompt.
    """
    import torch

    stops = stop_token_ids(tokenizer)
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    out: list[dict] = []
    try:
        with torch.no_grad():
            for i in range(0, len(prompts), batch_size):
                enc = tokenizer(prompts[i : i + batch_size], return_tensors="pt", padding=True,
                                add_special_tokens=False).to(device)
                gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=stops,
                                     pad_token_id=tokenizer.pad_token_id)
                for row in gen[:, enc["input_ids"].shape[1]:].tolist():
                    finished = any(t in stops for t in row)
                    if finished:
                        row = row[: min(row.index(t) for t in stops if t in row)]
                    out.append({"text": tokenizer.decode(row, skip_special_tokens=True), "finished": finished})
    finally:
        tokenizer.padding_side = side
    return out


def save_model_dir(model, tokenizer, directory: str | Path) -> Path:
    """Write an HF model directory atomically: into ``<dir>.tmp``, then rename over ``<dir>``."""
    final = Path(directory)
    tmp = final.with_name(final.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    model.save_pretrained(str(tmp), safe_serialization=True)
    tokenizer.save_pretrained(str(tmp))
    _fsync_dir(tmp)
    if final.exists():
        old = final.with_name(final.name + ".old")
        if old.exists():
            shutil.rmtree(old)
        os.rename(final, old)
        os.rename(tmp, final)
        shutil.rmtree(old)
    else:
        os.rename(tmp, final)
    return final


def _fsync_dir(path: Path) -> None:
    for f in path.iterdir():
        if f.is_file():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())


def model_summary(path: str | Path) -> dict:
    cfg = json.loads((Path(path) / "config.json").read_text())
    return {k: cfg.get(k) for k in ("model_type", "hidden_size", "num_hidden_layers", "vocab_size")}
