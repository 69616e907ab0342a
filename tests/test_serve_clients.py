"""Other trainers as clients of ``raylign serve verifiers``: TRL's GRPOTrainer and OpenRLHF's remote reward.

One service for the module (real Ray Serve on a free loopback port, a bearer token, the built-in verifiers plus
the tests' toy ones). TRL trains a tiny from-scratch model for two GRPO steps with reward functions that call
``/verify/{name}`` over HTTP, built by the README's own code; OpenRLHF is not installed, so its side is a client written to its protocol as its
own source sends it (see ``raylign.engine.rewards.serve_openrlhf``): the 2026 single-sample aiohttp client, and
the older batch clients that sent only ``query`` (2024-07) or ``query`` and ``prompts`` (2025-02).
"""
from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from test_rewards import write_test_plugin
from test_serve import call, free_port

TOKEN = "clients-token-4Hs"
MAX_ITEMS = 16


@pytest.fixture(scope="module")
def service(ray_session, tmp_path_factory) -> str:
    from ray import serve

    from raylign.engine.rewards.serve import build_app, start

    plugin = write_test_plugin(tmp_path_factory.mktemp("clients_plugin"))
    t0 = time.monotonic()
    try:
        url = start(build_app(workers=2, timeout_s=20.0, plugins=[plugin], token=TOKEN, max_items=MAX_ITEMS,
                              verifier_options={"length": {"unit": "chars"}}), "127.0.0.1", free_port())
        print(f"Serve start-up: {time.monotonic() - t0:.1f} s")
        yield url
    finally:
        serve.shutdown()


# ------------------------------------------------------------------ TRL

README = Path(__file__).resolve().parents[1] / "README.md"
README_SECTION = "### raylign's verifiers from TRL or OpenRLHF"


def readme_reward_function():
    """``raylign_reward`` exactly as the README shows it: its section's first Python block, up to the trainer."""
    text = README.read_text()
    section = text[text.index(README_SECTION):]
    block = section[section.index("```python\n") + len("```python\n"):]
    code = block[:block.index("\ntrainer = ")]
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)
    return namespace["raylign_reward"]


def test_trl_grpo_trainer_trains_with_raylign_verifiers_over_http(service, tiny_model_dir, tmp_path):
    from datasets import Dataset
    from transformers import AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    seen: dict[str, list[list[float]]] = {"math": [], "length": []}

    def recorded(verifier, fields):
        inner = readme_reward_function()(verifier, fields, url=service, token=TOKEN)

        def reward(prompts, completions, **columns):
            rewards = inner(prompts, completions, **columns)
            seen[verifier].append(rewards)
            return rewards

        reward.__name__ = inner.__name__
        return reward

    class Logs(TrainerCallback):
        def __init__(self):
            self.logs: list[dict] = []

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "rewards/raylign_length/mean" in logs:
                self.logs.append(dict(logs))

    rows = [{"prompt": f"What is {a}+{b}?", "answer": str(a + b)} for a, b in [(12, 30), (2, 2), (7, 5), (1, 9)]]
    config = GRPOConfig(
        output_dir=str(tmp_path / "trl"), report_to="none", logging_steps=1, save_strategy="no", disable_tqdm=True,
        seed=0, use_cpu=True, bf16=False, fp16=False, dataloader_num_workers=0, max_steps=2,
        per_device_train_batch_size=4, gradient_accumulation_steps=1, num_generations=4, max_completion_length=8,
        temperature=1.0, learning_rate=1e-4, beta=0.0, model_init_kwargs={"dtype": "float32"},
    )
    logs = Logs()
    trainer = GRPOTrainer(model=str(tiny_model_dir), args=config, train_dataset=Dataset.from_list(rows),
                          reward_funcs=[recorded("math", ("answer",)), recorded("length", ())],
                          processing_class=AutoTokenizer.from_pretrained(str(tiny_model_dir)), callbacks=[logs])
    trainer.train()

    assert len(seen["math"]) == len(seen["length"]) == 2  # one HTTP call per reward function per step
    assert all(len(r) == 4 for r in seen["math"] + seen["length"])  # a group of 4 completions each time
    assert all(r in (0.0, 1.0) for batch in seen["math"] for r in batch)  # math verdicts: 0 or 1 per answer
    assert any(r < 0 for batch in seen["length"] for r in batch)  # length penalties: -chars, never 0 here
    assert len(logs.logs) == 2
    for log, math, length in zip(logs.logs, seen["math"], seen["length"]):  # TRL trained on the service's rewards
        assert log["rewards/raylign_math/mean"] == pytest.approx(sum(math) / 4)
        assert log["rewards/raylign_length/mean"] == pytest.approx(sum(length) / 4)


# ------------------------------------------------------------------ OpenRLHF's remote-reward protocol

def _creds(url: str) -> str:
    """``url`` with the token as Basic credentials: how a client that cannot set headers authenticates."""
    return url.replace("http://", f"http://raylign:{TOKEN}@", 1)


async def _openrlhf_2026(url: str, query: str, prompt: str, label) -> tuple[float, float, dict]:
    """OpenRLHF's single-turn agent (``openrlhf/utils/agent.py``, 2026): one sample per request through aiohttp,
    ``scores`` read first with ``rewards`` as the fallback, ``extra_logs`` logged."""
    import aiohttp

    payload = {"query": [query], "prompts": [prompt], "labels": [label]}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=180)) as session:
        async with session.post(url, json=payload) as response:
            response.raise_for_status()
            info = await response.json()
    score = info.get("scores")
    if score is None:
        score = info.get("rewards")
    return info.get("rewards")[0], score[0], info.get("extra_logs") or {}


def test_openrlhf_client_scores_math_with_labels_as_answers(service):
    url = _creds(f"{service}/openrlhf/math")
    prompt = "<|im_start|>user\nWhat is 6*7?<|im_end|>\n<|im_start|>assistant\n"

    async def scenario():
        return await asyncio.gather(
            _openrlhf_2026(url, prompt + r"6*7 = \boxed{42}<|im_end|>", prompt, "42"),
            _openrlhf_2026(url, prompt + r"I think \boxed{41}<|im_end|>", prompt, "42"),
            _openrlhf_2026(url, "<s>" + prompt + r"So \boxed{42}.", prompt, 42))  # a BOS before the prompt

    (right, wrong, bos) = asyncio.run(scenario())
    assert right[:2] == (1.0, 1.0) and wrong[:2] == (0.0, 0.0) and bos[:2] == (1.0, 1.0)
    assert right[2] == {"verifier_timeout": [0.0], "verifier_error": [0.0], "verifier_invalid": [0.0]}


def test_openrlhf_labels_that_are_json_objects_are_the_task_row(service):
    prompt = "Say three: "
    status, body = call(f"{service}/openrlhf/echo", {
        "query": [prompt + "3", prompt + "3", prompt + "3", prompt + "4", prompt + "3"],
        "prompts": [prompt] * 5,
        "labels": [{"answer": "3"}, '{"answer": "3"}', "3", '{"answer": "3"}', None]}, token=TOKEN)
    assert status == 200
    assert body["rewards"] == body["scores"] == [1.0, 1.0, 1.0, 0.0, 0.0]
    assert [v["status"] for v in body["verdicts"]] == ["ok", "ok", "ok", "ok", "invalid"]  # no label: no answer
    assert body["extra_logs"]["verifier_invalid"] == [0.0, 0.0, 0.0, 0.0, 1.0]


def test_openrlhf_older_batch_clients(service):
    """2024-07: ``{"query"}`` only, ``rewards`` read; 2025-02: ``prompts`` too (raylign splits the response off)."""
    import requests

    url = _creds(f"{service}/openrlhf/length")
    reply = requests.post(url, json={"query": ["abcd", "ab"]}, headers={"Content-Type": "application/json"},
                          timeout=180)
    reply.raise_for_status()
    assert reply.json()["rewards"] == [-4.0, -2.0]  # no prompt: the whole query is scored (length in chars)
    reply = requests.post(url, json={"query": ["Q: xyz?abcd", "Q: xyz?ab"], "prompts": ["Q: xyz?"] * 2}, timeout=180)
    assert reply.json()["rewards"] == [-4.0, -2.0]  # only the response is scored


def test_openrlhf_refusals(service):
    import requests

    url = f"{service}/openrlhf/math"
    body = {"query": ["x"], "prompts": [""], "labels": ["1"]}
    assert call(url, body, token=None)[0] == 401  # no credentials
    assert requests.post(_creds(url).replace(TOKEN, "wrong"), json=body, timeout=60).status_code == 401
    status, detail = call(f"{service}/openrlhf/mathh", body, token=TOKEN)
    assert status == 404 and "Did you mean 'math'" in detail["detail"]["error"]
    secret = "SECRET-QUERY-91c"
    status, detail = call(url, {"query": [secret, secret], "labels": ["1"]}, token=TOKEN)
    assert status == 422 and secret not in json.dumps(detail)
    assert "labels has 1 entries and query has 2" in detail["detail"][0]["msg"]
    assert call(url, {"prompts": ["p"]}, token=TOKEN)[0] == 422  # query is required
    assert call(url, {"query": ["x"] * (MAX_ITEMS + 1)}, token=TOKEN)[0] == 413


def test_basic_credentials_carry_the_token():
    import base64

    from raylign.engine.rewards.serve_guard import token_matches

    def basic(text: str) -> str:
        return "Basic " + base64.b64encode(text.encode()).decode()

    assert token_matches(basic(f"raylign:{TOKEN}"), TOKEN) and token_matches(basic(f":{TOKEN}"), TOKEN)
    for header in [basic(TOKEN), basic(f"{TOKEN}:x"), basic(f"raylign:{TOKEN}x"), f"Basic {TOKEN}", "Basic !!",
                   basic(f"raylign:{TOKEN[:-1]}")]:
        assert not token_matches(header, TOKEN), header


def test_openapi_describes_the_openrlhf_route(service):
    status, schema = call(f"{service}/openapi.json", token=TOKEN)
    assert status == 200 and "/openrlhf/{name}" in schema["paths"]
    assert {"OpenRLHFRequest", "OpenRLHFResponse"} <= set(schema["components"]["schemas"])
    assert set(schema["components"]["schemas"]["OpenRLHFRequest"]["properties"]) == {"query", "prompts", "labels"}
