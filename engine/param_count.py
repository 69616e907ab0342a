"""Parameter counts and dtypes of model directories, read without torch (for ``raylign plan``).

A model directory's count comes from its safetensors headers when they are there (exact: the tensor shapes), else
from ``config.json`` by the decoder-only transformer formula below (embeddings, attention with grouped KV heads,
a gated MLP, norms; Qwen2's q/k/v biases; an untied LM head). A model that a stage builds from a ``size`` table
(``scratch``) is counted by the same formula.
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "int8": 1, "fp8": 1}
_SAFETENSORS_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
                      "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}


@dataclass(frozen=True)
class ModelInfo:
    """How big a model is and where that number came from."""

    params: int  # parameter count
    dtype: str  # the checkpoint's dtype ("float32", "bfloat16", ...)
    source: str  # where the count comes from, for the plan's reader

    @property
    def dtype_bytes(self) -> int:
        return DTYPE_BYTES.get(self.dtype, 4)


def formula_params(cfg: Mapping[str, Any]) -> int:
    """Parameters of a decoder-only transformer described by an HF ``config.json`` (Llama/Qwen2/Mistral keys)."""
    h = int(cfg["hidden_size"])
    layers = int(cfg["num_hidden_layers"])
    heads = int(cfg["num_attention_heads"])
    kv = int(cfg.get("num_key_value_heads") or heads)
    head_dim = int(cfg.get("head_dim") or h // heads)
    inter = int(cfg.get("intermediate_size") or 4 * h)
    vocab = int(cfg["vocab_size"])
    attn = h * heads * head_dim + 2 * h * kv * head_dim + heads * head_dim * h
    if cfg.get("model_type") == "qwen2" or cfg.get("attention_bias"):
        attn += heads * head_dim + 2 * kv * head_dim
    mlp = 3 * h * inter
    per_layer = attn + mlp + 2 * h
    lm_head = 0 if cfg.get("tie_word_embeddings", True) else vocab * h
    return vocab * h + layers * per_layer + h + lm_head


def size_params(size: Any, vocab_size: int) -> int:
    """Parameters of the Qwen2 that ``engine.modeling.build_qwen2`` builds from a ``ModelSize``."""
    return formula_params({
        "model_type": "qwen2", "hidden_size": size.hidden_size, "num_hidden_layers": size.num_layers,
        "num_attention_heads": size.num_heads, "num_key_value_heads": size.num_kv_heads,
        "intermediate_size": size.intermediate_size, "vocab_size": vocab_size,
        "tie_word_embeddings": size.tie_word_embeddings,
    })


def _safetensors_params(path: Path) -> tuple[int, str] | None:
    """(parameters, dtype) from one safetensors file's JSON header (its first 8 bytes give the header's length)."""
    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        if n > 100 << 20:
            return None
        header = json.loads(fh.read(n))
    total, dtypes = 0, {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        count = 1
        for d in meta["shape"]:
            count *= int(d)
        total += count
        dtypes[meta["dtype"]] = dtypes.get(meta["dtype"], 0) + count
    main = max(dtypes, key=dtypes.get) if dtypes else "F32"
    names = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64"}
    return total, names.get(main, "float32")


def model_info(model_dir: str | Path) -> ModelInfo | None:
    """The size of the model in ``model_dir`` (None when it has neither safetensors nor a readable config.json)."""
    d = Path(model_dir)
    cfg: dict[str, Any] = {}
    if (d / "config.json").is_file():
        try:
            cfg = json.loads((d / "config.json").read_text())
        except (OSError, json.JSONDecodeError):
            cfg = {}
    dtype = str(cfg.get("dtype") or cfg.get("torch_dtype") or "float32")
    files = sorted(d.glob("*.safetensors"))
    if files:
        try:
            counts = [_safetensors_params(f) for f in files]
            if all(counts):
                return ModelInfo(sum(c[0] for c in counts), counts[0][1], f"{d} (safetensors)")
        except (OSError, ValueError, KeyError, struct.error):
            pass
    try:
        return ModelInfo(formula_params(cfg), dtype, f"{d}/config.json")
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None


def human(n: float) -> str:
    """2_050_000 → '2.05M'."""
    for unit, div in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.3g}{unit}"
    return str(int(n))


def human_bytes(n: float) -> str:
    """Bytes in binary units: '1.5 GiB'."""
    for unit, div in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= div:
            return f"{n / div:.3g} {unit}"
    return f"{int(n)} B"
