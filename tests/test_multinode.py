"""A GRPO job on a Ray cluster of three nodes on this machine, each role pinned to its own node by a custom resource
(``rollout.resources``, ``ray.learner_resources``, ``rewards.resources``), asserted from Ray's state API; and
clusters/README.md's local recipe (``ray start --head``, ``ray start --address``, ``RAY_ADDRESS=... raylign run``,
``ray stop``) run as written.

The driver always runs in a subprocess (``raylign run --address``): the test session's own local Ray
(conftest's ``ray_session``) stays untouched. The README's recipe runs in a fresh user, PID and network namespace
(``unshare``): its ``ray start --port=6379`` cannot meet another Ray on this machine, and its ``ray stop``, which
stops every Ray process it can see, sees only the recipe's own.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import finish_run, start_run

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RAYLIGN = str(BIN / "raylign")
STEPS = 2
PINS = {"rollout": "node_b", "learner": "node_c", "rewards": "node_a"}

CONFIG = """
[run]
name = "{name}"
output_dir = "{out}"
seed = 0
pipeline = ["grpo"]
base_model = "{model}"
probes = []

[rollout]
max_model_len = 256
kv_cache_gb = 1
{rollout_pin}
[rewards]
num_workers = 1
{rewards_pin}
[ray]
{learner_pin}
[grpo]
data = ["tasks.jsonl"]
eval_data = ["tasks.jsonl"]
eval_size = 2
verifier = "length"
check = {{ rows = 0, solve_rows = 0 }}
steps = {steps}
prompts_per_step = 2
group_size = 4
micro_batch_size = 8
max_new_tokens = 8
checkpoint_every = 1
"""

# What the state API says about a cluster: every node's custom resources, every actor's class and node, every
# placement group's name, strategy and state. Run by the tests here and inside the README recipe's namespace.
REPORT = """
import json, sys
import ray
from ray.util.state import list_actors, list_nodes

addr = sys.argv[1]
nodes = {n.node_id: {k: v for k, v in n.resources_total.items() if k.startswith("node_")}
         for n in list_nodes(address=addr)}
actors = [[a.class_name, a.node_id, a.state] for a in list_actors(address=addr, limit=1000)]
ray.init(address=addr, logging_level="ERROR")  # the state API does not give a group's strategy; the GCS table does
groups = [[g["name"], g["strategy"], g["state"]] for g in ray.util.placement_group_table().values()]
json.dump({"nodes": nodes, "actors": actors, "groups": groups}, open(sys.argv[2], "w"))
"""


def write_job(work: Path, model: Path, name: str, pinned: bool) -> Path:
    """``work/cfg.toml`` (a 2-step GRPO job on the tiny model, replies of 8 tokens) and its prompt rows; with
    ``pinned`` each role is pinned to its node by the config itself."""
    work.mkdir(parents=True, exist_ok=True)
    with open(work / "tasks.jsonl", "w") as fh:
        for i in range(4):
            fh.write(json.dumps({"prompt": f"Say anything, {i}."}) + "\n")
    pins = {"rollout_pin": f"resources = {{ {PINS['rollout']} = 1 }}\n",
            "rewards_pin": f"resources = {{ {PINS['rewards']} = 1 }}\n",
            "learner_pin": f"learner_resources = {{ {PINS['learner']} = 1 }}\n"} if pinned else \
        {"rollout_pin": "", "rewards_pin": "", "learner_pin": ""}
    (work / "cfg.toml").write_text(CONFIG.format(name=name, out=work / "runs", model=model, steps=STEPS, **pins))
    return work / "cfg.toml"


def state_report(address: str, where: Path) -> dict:
    out = where / "state.json"
    subprocess.run([sys.executable, "-c", REPORT, address, str(out)], check=True, timeout=120)
    return json.loads(out.read_text())


def assert_roles_on_their_nodes(report: dict) -> None:
    """The rollout worker, learner and verifier actor each ran on the node that offers the resource its role is
    pinned with, three different nodes; each role's placement group has the strategy engine/placement.py gives."""
    node_of = {name: node for node, res in report["nodes"].items() for name in res}
    ran = {}
    for cls, node, _state in report["actors"]:
        ran.setdefault(cls, set()).add(node)
    assert ran.get("RolloutWorker") == {node_of[PINS["rollout"]]}, (ran, node_of)
    assert ran.get("Learner") == {node_of[PINS["learner"]]}, (ran, node_of)
    assert ran.get("VerifierActor") == {node_of[PINS["rewards"]]}, (ran, node_of)
    assert len({node_of[p] for p in PINS.values()}) == 3
    groups = {name.rsplit("/", 1)[-1]: strategy for name, strategy, _state in report["groups"]}
    assert groups == {"rollout": "SPREAD", "learner policy": "PACK", "verifiers": "SPREAD"}, report["groups"]


def logged_steps(run_dir: Path) -> list[int]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["step"] for r in rows if r.get("stage") == "grpo" and "reward_mean" in r]


# ---------------------------------------------------------------------------------------------- ray.cluster_utils


@pytest.fixture(scope="module")
def three_nodes():
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "resources": {"node_a": 100}})
    ids = {"node_a": cluster.head_node.node_id}
    for name in ("node_b", "node_c"):
        ids[name] = cluster.add_node(num_cpus=2, resources={name: 100}).node_id
    cluster.wait_for_nodes()
    yield cluster, ids
    cluster.shutdown()


def test_plan_shows_each_role_on_its_node(three_nodes, tiny_model_dir, tmp_path):
    """``raylign plan`` places the pinned roles with the engine's placement groups on the cluster it sees, and a
    resource no node offers stops it with one line naming the config key."""
    cluster, ids = three_nodes
    cfg = write_job(tmp_path, tiny_model_dir, "plan", pinned=True)
    out = subprocess.run([RAYLIGN, "plan", str(cfg), "--address", cluster.address], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = {line.strip().split(":")[0]: line for line in out.stdout.splitlines() if line.startswith("  ")}
    assert f"{ids['node_b'][:8]};" in lines["rollout"] and "[CPU 1, node_b 1]" in lines["rollout"]
    assert f"{ids['node_c'][:8]};" in lines["learner"]
    assert f"{ids['node_a'][:8]};" in lines["verifiers (each row's verifier)"]

    bad = subprocess.run([RAYLIGN, "plan", str(cfg), "--address", cluster.address, "--set",
                          "rollout.resources.node_x=1"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2
    (line,) = bad.stderr.strip().splitlines()
    assert line.startswith("raylign: error: the cluster cannot hold this plan: stage grpo: rollout asks for custom "
                           "resource 'node_x' (1) that no node has (nodes offer: ")
    assert line.endswith("; set by rollout.resources"), line


def test_grpo_roles_land_on_their_nodes(three_nodes, tiny_model_dir, tmp_path):
    """A 2-step GRPO job through ``raylign run --address``: rollout on node_b, learner on node_c, verifiers on the
    head (node_a), from Ray's state API; every step logged and the model written."""
    cluster, _ids = three_nodes
    write_job(tmp_path, tiny_model_dir, "multinode", pinned=True)
    proc = start_run(RAYLIGN, tmp_path, ["--address", cluster.address], "run")
    finish_run(proc, tmp_path, "run", timeout=900)
    run_dir = tmp_path / "runs" / "multinode"
    assert logged_steps(run_dir) == list(range(1, STEPS + 1))
    assert (run_dir / "models" / "grpo" / "config.json").is_file()
    assert_roles_on_their_nodes(state_report(cluster.address, tmp_path))


# ---------------------------------------------------------------------------------------------- the README recipe


def readme_recipe() -> list[str]:
    """The commands of clusters/README.md's local multi-node recipe (its first bash block), continuations joined."""
    text = (REPO / "clusters" / "README.md").read_text()
    section = text.split("## Local multi-node recipe", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [c.strip() for c in block.replace("\\\n", " ").splitlines() if c.strip()]


def namespaces_work() -> bool:
    try:
        return subprocess.run(["unshare", "--user", "--map-root-user", "--pid", "--fork", "--mount-proc", "--net",
                               "true"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def test_readme_recipe_matches_this_test():
    """The recipe the next test runs: three nodes, each with its custom resource; the job joins through
    RAY_ADDRESS and pins each role with --set; ray stop at the end."""
    cmds = readme_recipe()
    assert cmds[0] == "export RAY_AUTH_MODE=token"
    assert cmds[1].startswith("ray start --head --port=6379 ") and '{"node_a": 100}' in cmds[1]
    for cmd, node in zip(cmds[2:4], ("node_b", "node_c")):
        assert cmd.startswith("ray start --address=127.0.0.1:6379 ") and f'{{"{node}": 100}}' in cmd
    run = cmds[4]
    assert run.startswith("RAY_ADDRESS=127.0.0.1:6379 .venv/bin/raylign run examples/grpo_math.toml ")
    for key, role in (("rollout.resources", "rollout"), ("ray.learner_resources", "learner"),
                      ("rewards.resources", "rewards")):
        assert f"--set {key}.{PINS[role]}=1" in run
    assert cmds[5:] == ["ray stop"]


def test_readme_recipe_runs(tiny_model_dir, tmp_path, tiny_job_env):
    """clusters/README.md's recipe, command by command (only the config is the tiny job's, not
    examples/grpo_math.toml); the state API is read before ``ray stop``."""
    if not namespaces_work():
        pytest.skip("needs unprivileged user namespaces (unshare --user --pid --net) to isolate the recipe's Ray")
    cfg = write_job(tmp_path / "job", tiny_model_dir, "readme", pinned=False)  # the pins come from the README
    cmds = [c.replace("examples/grpo_math.toml", str(cfg)) for c in readme_recipe()]
    report = tmp_path / "state.json"
    stop = cmds.index("ray stop")
    script = "\n".join(["set -e", "ip link set lo up", *cmds[:stop],
                        f"python -c {shlex.quote(REPORT)} 127.0.0.1:6379 {report}", *cmds[stop:]])
    (tmp_path / "recipe.sh").write_text(script + "\n")
    proc = subprocess.run(["unshare", "--user", "--map-root-user", "--pid", "--fork", "--mount-proc", "--net",
                           "bash", str(tmp_path / "recipe.sh")], cwd=REPO, env=tiny_job_env, capture_output=True,
                          text=True, timeout=1200)
    (tmp_path / "recipe.log").write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert logged_steps(tmp_path / "job" / "runs" / "readme") == list(range(1, STEPS + 1))
    assert_roles_on_their_nodes(json.loads(report.read_text()))


@pytest.fixture
def tiny_job_env():
    """The recipe's environment: this venv's ``ray`` first on PATH, Ray's files in a short private temp dir."""
    tmp = tempfile.mkdtemp(prefix="rl", dir="/tmp")  # sockets live under it: keep the path short
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}", "TMPDIR": tmp, "RAY_DEDUP_LOGS": "0",
           "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS", None)
    yield env
    shutil.rmtree(tmp, ignore_errors=True)
