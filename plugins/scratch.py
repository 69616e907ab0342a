"""Stage ``scratch``: a model from random weights.

Trains a byte-level BPE tokenizer on the pretraining corpus, gives it the ChatML chat template, builds a small
Qwen2 from a few size knobs and saves it in HF format (loadable by transformers and vLLM unchanged).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from raylign.engine import hookimpl
from raylign.engine.data import read_texts
from raylign.engine.modeling import ModelSize, build_qwen2, save_model_dir
from raylign.engine.tokenizer import train_bpe


@dataclass(frozen=True)
class ScratchConfig:
    corpus: tuple[str, ...] = ()  # text sources the tokenizer is trained on (usually the pretraining data)
    text_field: str = "text"  # field holding the text in JSONL/Parquet rows
    vocab_size: int = 2048  # BPE vocabulary size (special tokens included)
    size: ModelSize = field(default_factory=ModelSize)  # the model's shape


class ScratchStage:
    config_cls = ScratchConfig
    needs_input_model = False

    def run(self, ctx):
        cfg: ScratchConfig = ctx.config
        if not cfg.corpus:
            from raylign.engine.errors import ConfigError

            raise ConfigError(f"{ctx.name}.corpus is empty: list the text files to train the tokenizer on")
        texts = read_texts(cfg.corpus, ctx.base_dir, cfg.text_field)
        tokenizer = train_bpe(texts, cfg.vocab_size)
        model = build_qwen2(cfg.size, tokenizer, seed=ctx.seed)
        save_model_dir(model, tokenizer, ctx.output_model)
        n_params = sum(p.numel() for p in model.parameters())
        ctx.console.print(f"built a random {n_params / 1e6:.2f}M-parameter Qwen2, vocabulary {len(tokenizer)}")
        return {"parameters": n_params, "vocab_size": len(tokenizer)}


@hookimpl
def raylign_register_stages(register):
    register("scratch", ScratchStage)
