"""Models and tokenizers in HF format: the from-scratch byte-level BPE and its chat template, Qwen2 save/load in
transformers, atomic model dirs, clear errors, and a Llama directory (made here with plain transformers, no
raylign code) as the starting model of a ``pretrain`` stage: any HF causal-LM directory works.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from raylign.engine.errors import ModelError
from raylign.engine.modeling import (ModelSize, build_qwen2, check_model_dir, load_model, load_tokenizer,
                                     save_model_dir, stop_token_ids)
from raylign.engine.tokenizer import CHAT_TEMPLATE, SPECIAL_TOKENS, train_bpe

DATA = Path(__file__).parent / "data"
TEXTS = [json.loads(line)["text"] for line in (DATA / "engine_pre.jsonl").read_text().splitlines()]
SIZE = ModelSize(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=64,
                 max_position_embeddings=128)


@pytest.fixture(scope="module")
def tok():
    return train_bpe(TEXTS, 300)


# ---------------------------------------------------------------------------------------------- tokenizer


def test_bpe_is_byte_level_and_round_trips_any_text(tok):
    assert len(tok) <= 300
    for text in ["The red fox jumps over the dog at the lake.", "naïve café — 日本語 🤖\ttabs\n\nnew lines",
                 "  leading spaces", "x = {'a': [1, 2]}  # code", ""]:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids) == text
    # Never an unknown token: every byte has an id.
    assert tok.unk_token_id is None or tok.unk_token_id not in tok("€∑ü😀", add_special_tokens=False)["input_ids"]
    # The merges learned something: the training text takes fewer tokens than bytes.
    sample = TEXTS[0]
    assert len(tok(sample, add_special_tokens=False)["input_ids"]) < 0.7 * len(sample.encode())


def test_special_tokens_are_single_ids(tok):
    for special in SPECIAL_TOKENS:
        ids = tok(special, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1 and tok.convert_ids_to_tokens(ids) == [special]
    assert tok.eos_token == "<|endoftext|>" and tok.pad_token == "<|pad|>" and tok.bos_token == "<|bos|>"
    assert len({tok.convert_tokens_to_ids(s) for s in SPECIAL_TOKENS}) == len(SPECIAL_TOKENS)
    assert stop_token_ids(tok) == [tok.convert_tokens_to_ids("<|im_end|>"), tok.eos_token_id]


def test_chat_template(tok):
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"},
            {"role": "assistant", "content": "Hello."}]
    assert tok.chat_template == CHAT_TEMPLATE
    assert tok.apply_chat_template(msgs, tokenize=False) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi?<|im_end|>\n"
        "<|im_start|>assistant\nHello.<|im_end|>\n")
    assert tok.apply_chat_template(msgs[1:2], tokenize=False, add_generation_prompt=True) == (
        "<|im_start|>user\nHi?<|im_end|>\n<|im_start|>assistant\n")


# ---------------------------------------------------------------------------------------------- Qwen2 dirs


def test_qwen2_saves_and_loads_in_transformers(tok, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = build_qwen2(SIZE, tok, seed=3).eval()
    assert model.config.model_type == "qwen2" and model.config.vocab_size == len(tok)
    path = save_model_dir(model, tok, tmp_path / "m")
    assert check_model_dir(path) == path
    assert not list(tmp_path.glob("m.*")), "no .tmp or .old directory is left"
    loaded = AutoModelForCausalLM.from_pretrained(str(path)).eval()
    tok2 = AutoTokenizer.from_pretrained(str(path))
    assert tok2.chat_template == CHAT_TEMPLATE
    assert tok2.get_vocab() == tok.get_vocab()
    text = tok2.apply_chat_template([{"role": "user", "content": "What is 3 plus 4?"}], tokenize=False,
                                    add_generation_prompt=True)
    ids = tok2(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
    assert tok2.decode(ids[0]) == text
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=ids).logits, model(input_ids=ids).logits)
    # Generation stops at <|im_end|> as well as EOS; padding is the pad token.
    eos = loaded.generation_config.eos_token_id
    assert tok.convert_tokens_to_ids("<|im_end|>") in eos and tok.eos_token_id in eos
    assert loaded.generation_config.pad_token_id == tok.pad_token_id
    # The engine's loaders agree with transformers'.
    mine = load_model(path)
    assert mine.dtype == torch.float32 and load_tokenizer(path).pad_token == "<|pad|>"
    for (k, a), (_, b) in zip(mine.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k


def test_a_saved_tokenizer_is_stable_across_save_and_load(tok, tmp_path):
    """Everything in the engine (stages, learner, vLLM) loads the model dir's tokenizer with AutoTokenizer; a
    second save/load cycle must not change it, and it must round-trip text."""
    from transformers import AutoTokenizer

    first = save_model_dir(build_qwen2(SIZE, tok), tok, tmp_path / "a")
    tok_a = AutoTokenizer.from_pretrained(str(first))
    second = save_model_dir(build_qwen2(SIZE, tok_a), tok_a, tmp_path / "b")
    tok_b = AutoTokenizer.from_pretrained(str(second))
    for text in TEXTS[:20] + ["naïve café — 日本語 🤖\n\n  x", "What is 3 plus 4?"]:
        ids = tok_a(text, add_special_tokens=False)["input_ids"]
        assert tok_b(text, add_special_tokens=False)["input_ids"] == ids
        assert tok_a.decode(ids) == text
    assert tok_b.chat_template == CHAT_TEMPLATE and len(tok_b) == len(tok)


def test_same_seed_same_weights(tok):
    a, b, c = (build_qwen2(SIZE, tok, seed=s).state_dict() for s in (1, 1, 2))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_save_model_dir_replaces_an_existing_dir(tok, tmp_path):
    first = build_qwen2(SIZE, tok, seed=1)
    second = build_qwen2(SIZE, tok, seed=2)
    save_model_dir(first, tok, tmp_path / "m")
    (tmp_path / "m" / "stale.txt").write_text("from the first save")
    save_model_dir(second, tok, tmp_path / "m")
    assert not (tmp_path / "m" / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    w = load_model(tmp_path / "m").state_dict()
    assert all(torch.equal(w[k], v) for k, v in second.state_dict().items())


def test_bad_model_dirs_fail_clearly(tok, tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        check_model_dir(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no config.json"):
        check_model_dir(tmp_path / "empty")
    (tmp_path / "empty" / "config.json").write_text("{}")
    with pytest.raises(ModelError, match="no weights"):
        check_model_dir(tmp_path / "empty")
    (tmp_path / "empty" / "model.safetensors").write_bytes(b"not a safetensors file")
    (tmp_path / "empty" / "config.json").write_text('{"model_type": "qwen2"}')
    with pytest.raises(ModelError, match="cannot load the model"):
        load_model(tmp_path / "empty")
    with pytest.raises(ModelError, match="has no tokenizer files"):
        load_tokenizer(tmp_path / "empty")  # not an empty Qwen2Tokenizer built from model_type
    (tmp_path / "empty" / "tokenizer.json").write_text("{broken")
    with pytest.raises(ModelError, match="cannot load a tokenizer"):
        load_tokenizer(tmp_path / "empty")


# ---------------------------------------------------------------------------------------------- Llama


def make_llama_dir(directory: Path) -> Path:
    """A tiny Llama built with transformers alone: its own tokenizer (no chat template, no pad token)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    raw.train_from_iterator(TEXTS, trainers.BpeTrainer(vocab_size=280, special_tokens=["<s>", "</s>"],
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                       show_progress=False))
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<s>", eos_token="</s>")
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, tie_word_embeddings=False)
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg)
    model.save_pretrained(str(directory))
    tok.save_pretrained(str(directory))
    return directory


LLAMA_TOML = """
[run]
name = "llama"
output_dir = "{out}"
base_model = "{base}"
pipeline = ["pretrain"]
probes = ["The red fox"]
probe_max_tokens = 4

[pretrain]
data = ["{data}/engine_pre.jsonl"]
steps = 8
block_size = 32
batch_size = 4
micro_batch_size = 4
eval_every = 0
eval_blocks = 8
eval_fraction = 0.1
checkpoint_every = 0
log_every = 4

[pretrain.optim]
lr = 0.01
warmup_steps = 2
"""


def test_a_llama_directory_starts_a_pretrain_stage(tmp_path, ray_session):
    from rich.console import Console
    from transformers import AutoModelForCausalLM

    from raylign.engine.config import load_config
    from raylign.engine.driver import run_pipeline
    from raylign.engine.plugins import build_registry

    base = make_llama_dir(tmp_path / "llama")
    assert not load_tokenizer(base).chat_template  # plain text probes, pad falls back to EOS
    path = tmp_path / "llama.toml"
    path.write_text(LLAMA_TOML.format(out=tmp_path / "runs", base=base, data=DATA))
    registry = build_registry()
    summary = run_pipeline(load_config(path, registry), registry, console=Console(quiet=True))
    metrics = summary["stages"]["pretrain"]["metrics"]
    assert metrics["eval_loss"] < metrics["eval_loss_initial"], metrics
    out = tmp_path / "runs" / "llama" / "models" / "pretrain"
    assert json.loads((out / "config.json").read_text())["model_type"] == "llama"
    trained = AutoModelForCausalLM.from_pretrained(str(out))
    start = AutoModelForCausalLM.from_pretrained(str(base))
    assert type(trained).__name__ == "LlamaForCausalLM"
    assert not torch.equal(trained.model.embed_tokens.weight, start.model.embed_tokens.weight)
    assert load_tokenizer(out).get_vocab() == load_tokenizer(base).get_vocab()
    (probe,) = summary["stages"]["pretrain"]["probes"]
    assert probe["prompt"] == "The red fox" and isinstance(probe["answer"], str)
