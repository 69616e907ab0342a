"""``raylign plan``: roles, placement, batch arithmetic and memory per role, without starting an actor; one clear
line when the cluster cannot hold the plan. The described local Ray, and a running two-node cluster with a custom
resource per node (``ray.cluster_utils.Cluster``, started once for the module)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from raylign.engine.cluster_view import Bundle, ClusterView, Node, fit
from raylign.engine.config import build_config
from raylign.engine.param_count import formula_params, model_info, size_params
from raylign.engine.plan import PlanError, plan_stages, problems, render
from raylign.engine.plugins import build_registry
from test_light_imports import HEAVY, run_watched

RAYLIGN = str(Path(sys.executable).with_name("raylign"))
LIGHT_FORBIDDEN = ("torch", "vllm", "transformers")

CONFIG = """
[run]
name = "plan"
pipeline = ["sft", "grpo"]
base_model = "{model}"

[ray]
num_cpus = 6
num_gpus = 0

[rollout]
num_workers = 2
kv_cache_gb = 1

[rewards]
num_workers = 2
num_cpus = 0.5

[sft]
batch_size = 16
micro_batch_size = 8
max_len = 128
steps = 10

[grpo]
prompts_per_step = 8
group_size = 4
micro_batch_size = 8
updates_per_batch = 2
max_prompt_tokens = 100
max_new_tokens = 28
kl_coef = 0.1
"""


@pytest.fixture(scope="module")
def config_file(tmp_path_factory, tiny_model_dir) -> Path:
    path = tmp_path_factory.mktemp("plan") / "plan.toml"
    path.write_text(CONFIG.format(model=tiny_model_dir))
    return path


def view(*nodes: dict) -> ClusterView:
    return ClusterView("test", tuple(Node(f"n{i}", res) for i, res in enumerate(nodes)))


# ---------------------------------------------------------------------------------------------- pieces


def test_param_count_matches_the_model(tiny_model_dir):
    from raylign.engine.modeling import ModelSize, load_model

    n = sum(p.numel() for p in load_model(tiny_model_dir).parameters())
    info = model_info(tiny_model_dir)
    assert info.params == n and info.dtype == "float32" and "safetensors" in info.source
    assert formula_params(json.loads((tiny_model_dir / "config.json").read_text())) == n
    size = ModelSize(hidden_size=64, num_layers=2, num_heads=2, num_kv_heads=1, intermediate_size=128,
                     max_position_embeddings=512)  # conftest's tiny model
    assert size_params(size, json.loads((tiny_model_dir / "config.json").read_text())["vocab_size"]) == n


@pytest.mark.parametrize("nodes,bundles,error", [
    ([{"CPU": 4}], [{"CPU": 1, "node_b": 1}], "asks for custom resource 'node_b' (1) that no node has"),
    ([{"CPU": 4, "GPU": 1}], [{"CPU": 1, "GPU": 2}], "asks for GPU 2 per actor but the largest node has 1"),
    ([{"CPU": 2}, {"CPU": 2}], [{"CPU": 1.5}] * 3, "the stage's 3 actors ask for CPU 4.5 together, the cluster has "
                                                     "CPU 4 over 2 node(s)"),
    ([{"CPU": 2}, {"CPU": 2, "node_b": 1}], [{"CPU": 1, "node_b": 1}, {"CPU": 1}, {"CPU": 1}], ""),
])
def test_fit(nodes, bundles, error):
    result = fit([Bundle(f"role #{i}", b) for i, b in enumerate(bundles)], view(*nodes))
    assert (error in result.problem) if error else (result.problem == "" and len(result.placed) == len(bundles))
    if not error:
        placed = dict((b.owner, node) for b, node in result.placed)
        assert placed["role #0"] == "n1"  # pinned by its custom resource
        assert sorted(placed.values()) == ["n0", "n0", "n1"]  # the others spread to the node with room


def test_plan_of_an_rl_stage(config_file, tiny_model_dir):
    from raylign.engine.config import load_config

    registry = build_registry()
    cfg = load_config(config_file, registry)
    cluster = view({"CPU": 6, "GPU": 0})
    sft, grpo = plan_stages(cfg, registry, cluster)
    params = model_info(tiny_model_dir).params
    assert [r.name for r in sft.roles] == ["learner"]
    assert sft.roles[0].memory == params * 16
    assert sft.batch == ["16 sequences per optimizer step, 2 micro-batch(es) of <= 8, 10 steps",
                         "tokens per step <= 16 x 128 = 2,048"]
    names = [r.name for r in grpo.roles]
    assert names == ["rollout", "learner", "learner reference", "verifiers (each row's verifier)"]
    roles = {r.name: r for r in grpo.roles}
    assert roles["rollout"].actors == 2 and roles["rollout"].memory == params * 4 + (1 << 30)
    assert roles["learner reference"].memory == params * 4
    assert roles["verifiers (each row's verifier)"].resources == {"CPU": 0.5}
    assert grpo.batch[:3] == [
        "8 prompts x 4 samples = 32 completions per step, 20 steps",
        "2 optimizer update(s) per batch (the batch split into 2 part(s) of 16), 2 micro-batch(es) of <= 8 "
        "sequences each",
        "tokens per step <= 32 x (100 prompt + 28 new) = 4,096"]
    assert len(grpo.placement.placed) == 6 and problems([sft, grpo]) == []
    text = render([sft, grpo], cluster)
    assert "rollout: 2 x [CPU 1] on n0" in text and "learner reference: 1 x [CPU 1] on n0" in text

    tight = view({"CPU": 3})  # 2 rollouts + 2 learners + 2 x 0.5 verifiers = 5 CPUs
    (line,) = problems(plan_stages(cfg, registry, tight))
    assert line.startswith("stage grpo: ") and "ask for CPU 5 together, the cluster has CPU 3" in line


def test_reward_model_provider_and_gold_roles(tiny_model_dir):
    registry = build_registry()
    cfg = build_config({
        "run": {"pipeline": ["ppo"], "base_model": str(tiny_model_dir)},
        "ppo": {"rewards": [{"name": "reward_model", "model": str(tiny_model_dir), "num_cpus": 2, "replicas": 2},
                            {"name": "length", "weight": -0.01}],
                "gold": "style_judge", "prompts_per_step": 4, "samples_per_prompt": 2, "epochs": 2,
                "mini_batches": 2, "micro_batch_size": 2}}, registry)
    (ppo,) = plan_stages(cfg, registry, view({"CPU": 16}))
    roles = {r.name: r for r in ppo.roles}
    assert set(roles) == {"rollout", "learner", "learner critic", "learner reference", "verifiers (length)",
                          "provider reward_model", "gold verifiers (style_judge)"}
    assert roles["provider reward_model"].actors == 2 and roles["provider reward_model"].resources == {
        "CPU": 2.0, "GPU": 0.0}
    assert ppo.batch[1] == ("4 optimizer update(s) per batch (2 epochs x 2 mini-batches of 4), 2 micro-batch(es) "
                            "of <= 2 sequences each")


# ---------------------------------------------------------------------------------------------- the command


def test_plan_command_local_imports_no_torch_or_vllm(config_file, tmp_path):
    result, _pid, seen, wall = run_watched(["plan", str(config_file)], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "cluster: a local Ray as `raylign run` would start it ([ray] num_cpus = 6, num_gpus = 0" in result.stdout
    assert "plan fits: the largest stage (grpo) runs 6 actor(s) at once" in result.stdout
    assert [name for _p, name in seen if name in HEAVY] == []  # not even Ray for a described local cluster
    print(f"raylign plan (local), cold: {wall:.2f} s")


def test_plan_command_fails_with_one_line(config_file):
    result = subprocess.run([RAYLIGN, "plan", str(config_file), "--set", "rollout.num_gpus=1"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "raylign: error: the cluster cannot hold this plan: stage grpo: rollout #1 asks for resource 'GPU' (1) "
        "that no node has (nodes offer: CPU, GPU)"]
    assert "rollout: 2 x [CPU 1, GPU 1] not placed" in result.stdout  # the plan is printed before the error


def test_plan_error_is_a_config_error():
    from raylign.engine.errors import ConfigError

    assert issubclass(PlanError, ConfigError)


# ---------------------------------------------------------------------------------------------- a running cluster


@pytest.fixture(scope="module")
def two_nodes():
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "resources": {"node_a": 1}})
    cluster.add_node(num_cpus=2, resources={"node_b": 1})
    cluster.wait_for_nodes()
    yield cluster
    cluster.shutdown()


def test_plan_on_a_running_cluster(two_nodes, config_file, tmp_path):
    result, _pid, seen, _wall = run_watched(["plan", str(config_file), "--address", two_nodes.address,
                                             "--set", "rollout.num_workers=1"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert f"the running cluster at {two_nodes.address} (2 node(s)" in out
    assert out.count("  node ") == 2 and "node_a 1" in out and "node_b 1" in out and "free now: CPU 2" in out
    assert [name for _p, name in seen if name in LIGHT_FORBIDDEN] == []
    # 2 rollouts + 2 learners + 1 CPU of verifiers = 5 CPUs on a 4-CPU cluster
    result = subprocess.run([RAYLIGN, "plan", str(config_file), "--address", two_nodes.address],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "the stage's 6 actors ask for CPU 5 together, the cluster has CPU 4 over 2 node(s)" in result.stderr


def test_doctor_on_the_running_cluster(two_nodes):  # here to share the module's cluster
    result = subprocess.run([RAYLIGN, "doctor", "--address", two_nodes.address], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"  ok  cluster at {two_nodes.address}: 2 node(s) alive, Ray " in result.stdout
    nodes = [line for line in result.stdout.splitlines() if line.startswith("info    node ")]
    assert len(nodes) == 2 and any("node_b 1" in n for n in nodes), result.stdout


def test_gpu_roles_on_a_described_gpu_node(tmp_path):
    from raylign.engine.cluster_view import Gpu

    big = tmp_path / "big"  # a config.json alone (no weights): counted by the formula, ~8B parameters
    big.mkdir()
    (big / "config.json").write_text(json.dumps({
        "model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
        "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 128256, "tie_word_embeddings": False,
        "torch_dtype": "bfloat16"}))
    registry = build_registry()
    cfg = build_config({"run": {"pipeline": ["grpo"], "base_model": str(big)},
                        "ray": {"learner_num_gpus": 1},
                        "rollout": {"num_gpus": 1, "tensor_parallel_size": 2, "gpu_memory_utilization": 0.5}},
                       registry)
    node = Node("gpu0", {"CPU": 16, "GPU": 1}, None, 128.0, (Gpu("NVIDIA H200", 139.8),))
    (grpo,) = plan_stages(cfg, registry, ClusterView("test", (node,)))
    assert grpo.model.params == 8_030_261_248 and grpo.model.dtype == "bfloat16"
    stop = problems([grpo])
    assert "stage grpo: learner does not fit" in stop[0]  # rollout (1 GPU) + learner (1 GPU) on a 1-GPU node
    assert any("rollout.tensor_parallel_size 2 needs rollout.num_gpus = 2" in s for s in stop)
    assert not any("learner needs" in s for s in stop)  # 8B x 16 B = 120 GiB fits a 140 GiB GPU
    text = render([grpo], ClusterView("test", (node,)))
    assert "1 x NVIDIA H200 139.8 GiB" in text
    assert "vLLM takes gpu_memory_utilization 0.5 of each of its 2 GPU(s) (weights 15 GiB / 2 + KV cache)" in text

    cfg = build_config({"run": {"pipeline": ["grpo"], "base_model": str(big)},
                        "ray": {"learner_num_gpus": 0.5}, "rollout": {"num_gpus": 0.5, "gpu_memory_utilization": 0.05}},
                       registry)  # separate mode, halves of one GPU: both fit as resources, not as memory
    # ([ray] placement = "colocated", which shares bundles and sleeps the engine: tests/test_colocated.py)
    (grpo,) = plan_stages(cfg, registry, ClusterView("test", (node,)))
    assert grpo.placement.problem == ""
    assert problems([grpo]) == [
        "stage grpo: rollout needs >= 15 GiB per GPU (bfloat16 weights over tensor_parallel_size 1), "
        "it gets 6.99 GiB (gpu_memory_utilization 0.05 of 140 GiB)",
        "stage grpo: learner needs >= 120 GiB per GPU (fp32 weights + grads + AdamW moments, 16 B/param), it gets "
        "69.9 GiB (0.5 of a 140 GiB GPU)"]
