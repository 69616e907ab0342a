"""engine/placement.py: each role's placement group from its config section, where ``raylign plan``'s fit puts a
group's bundles under its strategy, and reserving groups on the session's real Ray (actor i in bundle i, one-line
errors naming the config key)."""
from __future__ import annotations

import pytest

from raylign.engine.cluster_view import ClusterView, Node, fit
from raylign.engine.config import RayConfig, RewardsConfig, RolloutConfig
from raylign.engine.placement import (
    PlacementError,
    bundles,
    learner_group,
    provider_group,
    reserve,
    rollout_group,
    verifier_group,
)
from raylign.engine.rewards.mix import RewardTerm


def view(*nodes: dict) -> ClusterView:
    return ClusterView("test", tuple(Node(f"n{i}", res) for i, res in enumerate(nodes)))


def test_groups_from_config():
    r = rollout_group(RolloutConfig(num_workers=3, num_cpus=2, num_gpus=2, tensor_parallel_size=2,
                                    resources={"node_b": 1}))
    assert r.strategy == "SPREAD" and r.key == "rollout.resources"
    assert r.bundles == ({"CPU": 2.0, "GPU": 2.0, "node_b": 1.0},) * 3  # one bundle per replica: all its TP GPUs
    assert r.custom(2) == {"node_b": 1.0}
    lg = learner_group(RayConfig(learner_num_cpus=1, learner_num_gpus=1, learner_resources={"node_c": 1}), 2)
    assert lg.strategy == "PACK" and lg.role == "learner policy" and len(lg.bundles) == 2
    v = verifier_group(RewardsConfig(num_workers=2, num_cpus=0.5))
    assert v.bundles == ({"CPU": 0.5, "GPU": 0.0},) * 2 and v.custom() == {}
    p = provider_group(RewardTerm(name="reward_model", replicas=2, num_gpus=1, resources={"gpu_node": 1}),
                       "ppo.rewards[0]")
    assert p.key == "ppo.rewards[0].resources" and p.bundles[1] == {"CPU": 1.0, "GPU": 1.0, "gpu_node": 1.0}


@pytest.mark.parametrize("strategy,nodes", [("SPREAD", ["n0", "n1", "n2"]), ("PACK", ["n0", "n0", "n0"])])
def test_fit_follows_the_group_strategy(strategy, nodes):
    rollout = rollout_group(RolloutConfig(num_workers=3))
    group = type(rollout)(rollout.role, rollout.key, rollout.bundles, strategy)
    placed = fit(bundles(group, ""), view({"CPU": 4}, {"CPU": 4}, {"CPU": 4})).placed
    assert [node for _b, node in placed] == nodes


def test_fit_strict_pack_and_pinning():
    rollout = rollout_group(RolloutConfig(num_workers=2, num_cpus=3))
    strict = type(rollout)(rollout.role, rollout.key, rollout.bundles, "STRICT_PACK")
    assert "does not fit on node n0 with the rest of rollout (STRICT_PACK)" in fit(
        bundles(strict, ""), view({"CPU": 4}, {"CPU": 4})).problem
    pinned = rollout_group(RolloutConfig(num_workers=2, resources={"node_b": 1}))
    placed = fit(bundles(pinned, ""), view({"CPU": 4}, {"CPU": 4, "node_b": 10})).placed
    assert [node for _b, node in placed] == ["n1", "n1"]  # SPREAD is soft: only n1 offers node_b
    missing = fit(bundles(pinned, ""), view({"CPU": 4})).problem
    assert missing.endswith("that no node has (nodes offer: CPU); set by rollout.resources")


# ---------------------------------------------------------------------------------------------- on Ray


def test_reserve_places_actor_i_in_bundle_i(ray_session):
    ray = ray_session

    @ray.remote(num_cpus=0.25)
    class Where:
        def bundle(self):
            return ray.get_runtime_context().get_placement_group_id(), ray.util.get_current_placement_group()

    group = verifier_group(RewardsConfig(num_workers=2, num_cpus=0.25))
    placement = reserve(group, "test/verifiers", timeout_s=60)
    try:
        opts = [placement.options(i) for i in range(2)]
        assert [o["scheduling_strategy"].placement_group_bundle_index for o in opts] == [0, 1]
        actors = [Where.options(**o).remote() for o in opts]
        for a in actors:
            pg_id, _pg = ray.get(a.bundle.remote())
            assert pg_id == placement.pg.id.hex()
        assert len(placement.nodes()) == 2 and all(placement.nodes())
        table = ray.util.placement_group_table(placement.pg)
        assert table["name"] == "test/verifiers" and table["strategy"] == "SPREAD"
    finally:
        placement.remove()


def test_reserve_fails_with_one_line(ray_session):
    with pytest.raises(PlacementError) as err:
        reserve(learner_group(RayConfig(learner_resources={"node_x": 1})), "test/learner", timeout_s=5)
    assert str(err.value).startswith("learner policy asks for custom resource 'node_x' (1) that no node has")
    assert str(err.value).endswith("; set by ray.learner_resources")

    cpus = ray_session.cluster_resources()["CPU"]
    hold = reserve(learner_group(RayConfig(learner_num_cpus=cpus - 1)), "test/hold", timeout_s=60)
    try:  # fits the cluster, not what is free now: Ray cannot reserve it within the timeout
        with pytest.raises(PlacementError) as err:
            reserve(learner_group(RayConfig(learner_num_cpus=2)), "test/wait", timeout_s=2)
        assert str(err.value).startswith("cannot place learner policy: Ray did not reserve 1 x [CPU 2] within "
                                         "ray.placement_timeout_s = 2 s (free now: ")
    finally:
        hold.remove()


def test_a_stage_places_a_role_twice(ray_session, tmp_path):
    """Two verifier fleets in one stage (its reward and a gold judge) get two groups: Ray refuses a name twice."""
    from raylign.engine.config import build_config
    from raylign.engine.plugins import build_registry
    from raylign.engine.stage import StageContext

    cfg = build_config({"run": {"name": "r", "pipeline": ["grpo"]}, "rewards": {"num_workers": 1, "num_cpus": 0.25}},
                       build_registry())
    ctx = StageContext("grpo", cfg.stages[0].config, cfg, tmp_path, None, tmp_path, tmp_path, None, None, None)
    try:
        first, second = (ctx.place(verifier_group(cfg.rewards)) for _ in range(2))
        names = [ray_session.util.placement_group_table(p.pg)["name"] for p in (first, second)]
        assert names == ["r/grpo/verifiers", "r/grpo/verifiers #2"]
    finally:
        ctx.close()
    assert ray_session.util.placement_group_table(first.pg)["state"] == "REMOVED"


def test_run_stops_before_anything_on_a_pin_no_node_offers(tmp_path):
    """``raylign run`` with a role pinned to a custom resource the (local) cluster lacks: one line naming the key,
    exit 2, no run directory and no Ray started."""
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "cfg.toml").write_text('[run]\nname = "pinned"\noutput_dir = "runs"\npipeline = ["sft"]\n'
                                       '[ray]\nlearner_resources = { node_c = 1 }\n[sft]\ndata = ["x.jsonl"]\n')
    raylign = str(Path(sys.executable).with_name("raylign"))
    out = subprocess.run([raylign, "run", "cfg.toml"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "raylign: error: learner policy asks for custom resource 'node_c' (1) that no node has (nodes offer: CPU, "
        "GPU); set by ray.learner_resources"]
    assert not (tmp_path / "runs").exists()
