"""Colocated mode (``[ray] placement = "colocated"``, engine/colocate.py): the policy learner and the rollout engine
share one placement-group bundle, and the engine sleeps while the learner trains. Real Ray, real vLLM (CPU), real
learner, the session's tiny model.

Two GRPO runs of one job (same seed) run side by side in this process on the session's Ray: S in separate mode, C
colocated; beside them P, a 2-step PPO run colocated at sleep_level 2 whose first step trains only the critic. While C runs, the test watches Ray's placement-group table and resource view: C's learner and rollout
worker fill bundle 0 of C's one ``colocated`` group (1 + 1 of its 2 CPUs), and C has no rollout or policy-learner
group of its own. C's sleep/wake calls are read from the ``raylign.engine.colocate`` logger; when C's engine goes
to sleep after step 2's batch, the test SIGKILLs its process (the learner is about to train): the wake before the
sync finds it dead, and it comes back in the same bundle, awake, with step 1's weights, then loads step 2's.

Asserted: the bundle sharing; per step the order rollout -> sleep -> learner trains -> wake(weights) -> load ->
wake(kv_cache) -> canary -> next generation, with vLLM's own ``is_sleeping`` after each call; the per-step sleep/wake
metrics; that C's per-step rewards, completions and losses equal S's (the sleeping changes nothing); and that PPO,
unchanged, gets the same sequence (its warm-up step, which pushes no policy weights, wakes the engine with a load).
"""
from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

STEPS, PROMPTS, GROUP, UPDATES = 3, 4, 4, 2
KILL_AT_SLEEP = 2  # the engine is SIGKILLed as it falls asleep for the n-th time (after step 2's batch)

CONFIG = """
[run]
name = "{name}"
output_dir = "{out}"
seed = 5
pipeline = ["grpo"]
base_model = "{model}"
probes = []

[ray]
placement = "{placement}"

[rollout]
max_model_len = 256
kv_cache_gb = 1

[rewards]
num_workers = 1

[grpo]
data = ["tasks.jsonl"]
eval_data = ["tasks.jsonl"]
eval_size = 2
verifier = "length"
check = {{ rows = 0, solve_rows = 0 }}
steps = {steps}
prompts_per_step = {prompts}
group_size = {group}
updates_per_batch = {updates}
micro_batch_size = 16
max_new_tokens = 16
checkpoint_every = 0
optim = {{ lr = 5e-3, warmup_steps = 0, schedule = "constant", weight_decay = 0.0 }}
"""


PPO_CONFIG = """
[run]
name = "p"
output_dir = "{out}"
seed = 5
pipeline = ["ppo"]
base_model = "{model}"
probes = []

[ray]
placement = "colocated"
learner_num_cpus = 0.5    # policy, critic and reference: room for all three runs on the session's 8 CPUs

[rollout]
num_cpus = 0.5
max_model_len = 256
kv_cache_gb = 1
sleep_level = 2           # weights discarded: every wake is followed by a load, the warm-up step's too

[rewards]
num_workers = 1

[ppo]
data = ["tasks.jsonl"]
eval_size = 2
rewards = [{{ name = "length" }}]
critic = ""
critic_warmup_steps = 1   # step 1 trains the critic only: no new policy weights, the engine wakes all the same
check = {{ rows = 0, solve_rows = 0 }}
steps = 2
prompts_per_step = 4
samples_per_prompt = 2
max_new_tokens = 16
epochs = 2
micro_batch_size = 16
checkpoint_every = 0
optim = {{ lr = 5e-3, warmup_steps = 0, schedule = "constant", weight_decay = 0.0 }}
"""


def write_job(work: Path, model: Path, name: str, placement: str) -> Path:
    with open(work / "tasks.jsonl", "w") as fh:
        for i in range(12):
            fh.write(json.dumps({"prompt": f"Say anything, {i}."}) + "\n")
    cfg = work / f"{name}.toml"
    if name == "p":
        cfg.write_text(PPO_CONFIG.format(out=work / "runs", model=model))
        return cfg
    cfg.write_text(CONFIG.format(name=name, out=work / "runs", model=model, placement=placement, steps=STEPS,
                                 prompts=PROMPTS, group=GROUP, updates=UPDATES))
    return cfg


def step_rows(run_dir: Path, stage: str = "grpo") -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.get("stage") == stage and r["step"] > 0
            and ("reward_mean" in r or "score_mean" in r)]


def rollouts(run_dir: Path) -> list[tuple]:
    rows = [json.loads(line) for line in (run_dir / "rollouts" / "grpo.jsonl").read_text().splitlines()]
    return [(r["step"], r["kind"], r["group"], r["sample"], r["completion"], r["reward"], r["status"]) for r in rows]


class Events(logging.Handler):
    """Colocated mode's sleep/wake/train/use records, in order; SIGKILLs the engine at its KILL_AT_SLEEP-th sleep."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.rows: list[dict] = []  # run C's
        self.ppo: list[dict] = []  # run P's
        self.killed: dict = {}

    def emit(self, record: logging.LogRecord) -> None:
        row = getattr(record, "raylign_event", None)
        if row is None:
            return
        if row["colocation"] == "p/ppo":
            self.ppo.append(row)
            return
        assert row["colocation"] == "c/grpo", row
        self.rows.append(row)
        if row["event"] == "sleep" and sum(r["event"] == "sleep" for r in self.rows) == KILL_AT_SLEEP:
            (state,) = row["workers"]
            os.kill(state["pid"], signal.SIGKILL)  # asleep, the learner about to train
            self.killed = {"pid": state["pid"], "at": time.time()}


def run_in_process(cfg: Path) -> None:
    from rich.console import Console

    from raylign.engine.config import load_config
    from raylign.engine.driver import run_pipeline
    from raylign.engine.plugins import build_registry

    reg = build_registry()
    run_pipeline(load_config(cfg, reg), reg, console=Console(quiet=True))


def watch_bundles(ray, stop: threading.Event, seen: list) -> None:
    """Every 50 ms: the placement groups by name and, for C's colocated group, its id and the CPUs free in its
    bundle 0."""
    while not stop.is_set():
        groups = {g["name"]: g for g in ray.util.placement_group_table().values() if g["state"] == "CREATED"}
        col = groups.get("c/grpo/colocated")
        free = None
        if col is not None:
            free = ray.available_resources().get(f"CPU_group_0_{col['placement_group_id']}", 0.0)
        seen.append({"t": time.time(), "groups": {k: (v["strategy"], v["bundles"]) for k, v in groups.items()},
                     "bundle0_free_cpu": free, "colocated_id": col and col["placement_group_id"]})
        stop.wait(0.05)


@pytest.fixture(scope="module")
def runs(ray_session, tiny_model_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("colocated")
    events = Events()
    logger = logging.getLogger("raylign.engine.colocate")
    logger.addHandler(events)
    logger.setLevel(logging.DEBUG)
    errors: dict = {}
    seconds: dict = {}

    def run(name: str, placement: str) -> None:
        t0 = time.perf_counter()
        try:
            run_in_process(write_job(work, tiny_model_dir, name, placement))
        except BaseException as exc:  # noqa: BLE001 - raised in the test's thread
            errors[name] = exc
        seconds[name] = time.perf_counter() - t0

    stop, seen = threading.Event(), []
    watcher = threading.Thread(target=watch_bundles, args=(ray_session, stop, seen), daemon=True)
    threads = [threading.Thread(target=run, args=(n, p))
               for n, p in (("s", "separate"), ("c", "colocated"), ("p", "colocated"))]
    watcher.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=1200)
    stop.set()
    watcher.join(timeout=5)
    logger.removeHandler(events)
    for name, exc in errors.items():
        raise AssertionError(f"run {name} failed: {exc!r}") from exc
    print(f"\nrun s (separate) {seconds['s']:.1f} s, run c (colocated, one engine SIGKILL) {seconds['c']:.1f} s, "
          f"run p (PPO, colocated, level 2) {seconds['p']:.1f} s, side by side")
    return {"s": work / "runs" / "s", "c": work / "runs" / "c", "p": work / "runs" / "p", "events": events.rows,
            "ppo_events": events.ppo, "killed": events.killed, "seen": seen}


# ---------------------------------------------------------------------------------------------- placement


def test_learner_and_rollout_share_one_bundle_before_and_after_the_engine_is_replaced(runs):
    seen, killed = runs["seen"], runs["killed"]
    names = set().union(*(s["groups"] for s in seen))
    assert "c/grpo/colocated" in names and "s/grpo/rollout" in names and "s/grpo/learner policy" in names
    assert not {"c/grpo/rollout", "c/grpo/learner policy"} & names  # no role group of their own in C
    strategy, bundles = next(s["groups"]["c/grpo/colocated"] for s in seen if "c/grpo/colocated" in s["groups"])
    assert strategy == "PACK" and bundles == {0: {"CPU": 2.0}}  # learner_num_cpus 1 + rollout.num_cpus 1
    # both actors ask for 1 CPU of that bundle: it is full only while both live in it, before the kill and after
    before = [s["bundle0_free_cpu"] for s in seen if s["t"] < killed["at"]]
    after = [s["bundle0_free_cpu"] for s in seen if s["t"] > killed["at"]]
    assert 0.0 in before and 0.0 in after, (before[-5:], after[:50])
    # the replacement is a new process placed in that same group (the moment its predecessor's CPU is free in the
    # bundle can be shorter than the watcher's 50 ms and Ray's resource-view lag, so it is not asserted)
    (group_id,) = {s["colocated_id"] for s in seen if s["colocated_id"]}
    sleeps = [w for r in runs["events"] if r["event"] == "sleep" for w in r["workers"]]
    assert {w["placement_group_id"] for w in sleeps} == {group_id}, sleeps
    assert killed["pid"] in {w["pid"] for w in sleeps} and {w["pid"] for w in sleeps} - {killed["pid"]}


# ---------------------------------------------------------------------------------------------- sequencing


def label(e: dict) -> str:
    return e["event"] + (":" + ",".join(e["tags"]) if "tags" in e else "") + (":" + e["what"] if "what" in e else "")


def steps_of(events: list[dict]) -> list[list[dict]]:
    """The events of each training step, from its ``rollout`` (recorded once the batch is made and scored) to the
    next step's, leaving out the fleet's ``use:generate`` records (every generate call makes one)."""
    out: list[list[dict]] = []
    for e in events:
        if e["event"] == "rollout":
            out.append([])
        if out and label(e) != "use:generate":
            out[-1].append(e)
    return out


def test_each_step_generates_sleeps_trains_wakes_syncs_and_checks_in_order(runs):
    events = runs["events"]
    steps = steps_of(events)
    assert len(steps) == STEPS
    for n, ev in enumerate(steps, start=1):
        kinds = [label(e) for e in ev]
        assert kinds == ["rollout", "sleep"] + ["train"] * UPDATES + ["wake:weights", "loaded", "wake:kv_cache",
                                                                      "use:canary"], (n, kinds)
        rollout, sleep, *trains, wake_w, loaded, wake_kv, canary = ev
        assert rollout["step"] == n
        times = [rollout["t1"], sleep["t0"], sleep["t1"], *[t for e in trains for t in (e["t0"], e["t1"])],
                 wake_w["t0"], wake_w["t1"], loaded["t0"], wake_kv["t0"], wake_kv["t1"], canary["t0"]]
        assert times == sorted(times), n
        (slept,) = sleep["workers"]
        assert slept["sleeping"] is True  # vLLM's own is_sleeping() after LLM.sleep(level=1)
        (w,), (kv,) = wake_w["workers"], wake_kv["workers"]
        if n == KILL_AT_SLEEP:  # the replacement started awake in the bundle: nothing to wake
            assert (w["was_sleeping"], w["awake"]) == (False, True)
        else:  # weights awake, the KV cache still asleep: vLLM serves nothing until both are
            assert (w["was_sleeping"], w["awake"]) == (True, False)
        assert kv["awake"] is True
    # what the engine does between one step's canary and the next step's rollout: generate that batch, awake
    labels = [label(e) for e in events]
    canaries = [i for i, k in enumerate(labels) if k == "use:canary" and i > labels.index("rollout")]
    rollouts_at = [i for i, k in enumerate(labels) if k == "rollout"]
    for c, r in zip(canaries, rollouts_at[1:]):
        assert set(labels[c + 1:r]) == {"use:generate"}, labels[c:r + 1]
    assert set(labels[canaries[-1] + 1:]) <= {"use:generate"}  # the final eval: generation only, nothing slept


def test_sleep_and_wake_times_are_per_step_metrics(runs):
    for r in step_rows(runs["c"]):
        print(f"\nstep {r['step']}: sleep {r['rollout_sleep_seconds']:.3f} s, wake {r['rollout_wake_seconds']:.3f} s, "
              f"asleep {r['rollout_asleep_seconds']:.2f} s, weight sync {r['weight_sync_seconds']:.2f} s, "
              f"step {r['step_seconds']:.1f} s")
        assert r["rollout_sleep_seconds"] > 0 and r["rollout_wake_seconds"] > 0, r
        assert r["rollout_asleep_seconds"] > 0, r  # the learner's time alone in the bundle
    assert all("rollout_sleep_seconds" not in r for r in step_rows(runs["s"]))


def test_the_killed_engine_came_back_with_the_current_weights(runs):
    c = step_rows(runs["c"])
    assert [r["rollout_restarts"] for r in c] == [0, 1, 1]
    assert runs["killed"]["pid"] not in {w["pid"] for e in runs["events"] if e["event"] == "wake" for w in
                                         e["workers"] if e["t0"] > runs["killed"]["at"]}


def test_ppo_gets_the_same_sequence_with_no_stage_change_and_level_2(runs):
    """PPO (policy, critic, reference; the critic's warm-up step pushes no policy weights) at sleep_level 2: every
    step sleeps after its batch and wakes with a weight load, the warm-up step reloading the unchanged weights."""
    steps = steps_of(runs["ppo_events"])
    assert len(steps) == 2
    for n, ev in enumerate(steps, start=1):
        kinds = [label(e) for e in ev]
        trains = ["train"] * (0 if n == 1 else 2)  # step 1: the critic only; step 2: 2 epochs x 1 mini-batch
        assert kinds == ["rollout", "sleep", *trains, "wake:weights", "loaded", "wake:kv_cache", "use:canary"], kinds
        assert ev[1]["level"] == 2 and ev[1]["workers"][0]["sleeping"] is True
        times = [t for e in ev for t in (e["t0"], e["t1"])]
        assert times == sorted(times), n
    rows = step_rows(runs["p"], "ppo")
    assert [r["step"] for r in rows] == [1, 2]
    assert "weight_sync_seconds" not in rows[0] and rows[1]["weights_version"] >= 1  # step 1 pushed nothing new
    assert all(r["rollout_sleep_seconds"] > 0 and r["rollout_wake_seconds"] > 0 for r in rows)
    groups = {g for s in runs["seen"] for g in s["groups"] if g.startswith("p/")}
    assert "p/ppo/colocated" in groups and not {"p/ppo/rollout", "p/ppo/learner policy"} & groups
    assert {"p/ppo/learner critic", "p/ppo/learner reference"} <= groups  # frozen and critic learners: their own


# ---------------------------------------------------------------------------------------------- same results


def test_colocated_run_equals_separate_run(runs):
    s, c = step_rows(runs["s"]), step_rows(runs["c"])
    assert [r["step"] for r in c] == [r["step"] for r in s] == list(range(1, STEPS + 1))
    for rs, rc in zip(s, c):
        print(f"\nstep {rs['step']}: reward_mean {rs['reward_mean']:.4f} / {rc['reward_mean']:.4f}, loss "
              f"{rs['loss']:.6f} / {rc['loss']:.6f}, canary {rs['canary_max_abs_diff']:.2g} / "
              f"{rc['canary_max_abs_diff']:.2g} (separate / colocated)")
        for key in ("reward_mean", "pass_rate", "response_length", "verdict/ok", "weights_version"):
            assert rc[key] == rs[key], (rs["step"], key)
        for key in ("loss", "ratio_mean", "canary_max_abs_diff"):
            if key in rs:
                assert rc[key] == pytest.approx(rs[key], rel=1e-4, abs=1e-5), (rs["step"], key)
    assert rollouts(runs["c"]) == rollouts(runs["s"])
    assert (runs["c"] / "models" / "grpo" / "config.json").is_file()


# ---------------------------------------------------------------------------------------------- sleep levels


def test_a_sleeping_fleet_wakes_only_as_its_sleep_level_allows(ray_session, tiny_model_dir):
    """One engine of its own, asleep at level 2 (weights discarded on a GPU) then level 1, woken by a weight load, by
    a step that loads nothing (``idle``), and by a generation."""
    from raylign.engine.colocate import Colocation
    from raylign.engine.config import RolloutConfig
    from raylign.engine.errors import WeightSyncError
    from raylign.engine.modeling import load_model
    from raylign.engine.rollout import RolloutFleet

    colo = Colocation(placement=None, level=2)
    fleet = RolloutFleet(tiny_model_dir, RolloutConfig(kv_cache_gb=1, max_model_len=256), seed=0, sleeper=colo)
    colo.fleet = fleet
    prompts = [[5, 6, 7, 8], [9, 10, 11]]

    def greedy() -> list[list[int]]:
        return [c.token_ids for c in fleet.generate_greedy(prompts, max_tokens=8)]

    try:
        awake = greedy()
        assert fleet.info[0]["sleeping"] is False
        colo.sleep()
        assert ray_session.get(fleet.workers[0].ready.remote())["sleeping"] is True  # vLLM's is_sleeping()
        with pytest.raises(WeightSyncError, match="asleep at rollout.sleep_level = 2, whose weights were discarded"):
            greedy()
        state = load_model(tiny_model_dir).state_dict()
        fleet.sync_weights(state, version=1)  # wake(weights), load, wake(kv_cache)
        assert [label(e) for e in colo.events[-4:]] == ["sleep", "wake:weights", "loaded", "wake:kv_cache"]
        assert greedy() == awake
        colo.sleep()
        pushed = []
        colo.idle(lambda: pushed.append(fleet.sync_weights(state, version=1)))  # level 2: loaded again
        assert len(pushed) == 1 and greedy() == awake

        colo.level = 1  # weights kept (in CPU memory on a GPU): waking needs no load
        colo.sleep()
        metrics = colo.idle(lambda: pytest.fail("a level-1 wake loaded weights"))
        assert metrics["rollout_sleep_seconds"] > 0 and metrics["rollout_wake_seconds"] > 0
        assert greedy() == awake
        colo.sleep()
        assert greedy() == awake  # a generation on a sleeping level-1 fleet wakes it first
        assert [label(e) for e in colo.events[-3:]] == ["sleep", "wake:weights,kv_cache", "use:generate"]
        assert ray_session.get(fleet.workers[0].ready.remote())["sleeping"] is False
    finally:
        fleet.shutdown()


# ---------------------------------------------------------------------------------------------- config and plan


@pytest.mark.parametrize("sections, message", [
    ({"ray": {"placement": "colocated"}, "rollout": {"max_staleness": 1}},
     'ray.placement = "colocated" needs rollout.max_staleness = 0'),
    ({"ray": {"placement": "side-by-side"}}, "ray.placement: must be one of ['separate', 'colocated'], got "
                                             "'side-by-side'"),
    ({"ray": {"placement": "colocated", "learners": 2}}, "set rollout.num_workers = ray.learners (they are 1 and 2)"),
    ({"ray": {"placement": "colocated"}, "rollout": {"num_gpus": 2, "tensor_parallel_size": 2}},
     "rollout.tensor_parallel_size must be 1, got 2"),
    ({"rollout": {"sleep_level": 3}}, "rollout: sleep_level must be 1 (weights offloaded to CPU) or 2"),
])
def test_config_errors(sections, message):
    from raylign.engine.config import build_config
    from raylign.engine.errors import ConfigError
    from raylign.engine.plugins import build_registry

    with pytest.raises(ConfigError) as info:
        build_config({"run": {"pipeline": ["grpo"]}, **sections}, build_registry())
    assert message in str(info.value) and "\n" not in str(info.value)


def big_model(tmp_path: Path) -> Path:
    big = tmp_path / "big"  # a config.json alone: ~8B parameters counted by the formula
    big.mkdir(parents=True)
    (big / "config.json").write_text(json.dumps({
        "model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
        "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 128256, "tie_word_embeddings": False,
        "torch_dtype": "bfloat16"}))
    return big


def test_plan_shows_the_colocated_layout_and_memory_per_gpu(tmp_path):
    from raylign.engine.cluster_view import ClusterView, Gpu, Node
    from raylign.engine.config import build_config
    from raylign.engine.plan import plan_stages, problems, render
    from raylign.engine.plugins import build_registry

    registry = build_registry()
    node = Node("gpu0", {"CPU": 16, "GPU": 2}, None, 512.0, (Gpu("NVIDIA H200", 139.8),) * 2)
    view = ClusterView("test", (node,))

    def plan(util: float):
        cfg = build_config({"run": {"pipeline": ["grpo"], "base_model": str(big_model(tmp_path / str(util)))},
                            "ray": {"placement": "colocated", "learners": 2, "learner_num_gpus": 0.5},
                            "rollout": {"num_workers": 2, "num_gpus": 0.5, "gpu_memory_utilization": util}},
                           registry)
        (grpo,) = plan_stages(cfg, registry, view)
        return grpo, render([grpo], view)

    grpo, text = plan(0.12)  # 120 GiB learner + 0.12 x 140 GiB engine: 136 GiB of a 140 GiB GPU
    print(text)
    assert problems([grpo]) == []
    line = next(ln for ln in text.splitlines() if ln.startswith("  rollout + learner"))
    assert line.startswith("  rollout + learner (colocated, bundle i = replica i + rank i): 2 x [CPU 2, GPU 1] on "
                           "gpu0 (PACK group); memory ~136 GiB each (per GPU: learner 120 GiB")
    assert "vLLM gpu_memory_utilization 0.12 x 140 GiB = 16.8 GiB" in line and "= 136 GiB of 140 GiB" in line
    assert "asleep at rollout.sleep_level 1 while the learner trains" in line
    assert not any(ln.startswith("  rollout:") or ln.startswith("  learner:") for ln in text.splitlines())

    grpo, _ = plan(0.3)  # the engine's share and the learner do not fit one GPU together
    assert problems([grpo]) == ["stage grpo: colocated learner 120 GiB + vLLM 41.9 GiB (gpu_memory_utilization "
                                "0.3) need 162 GiB per GPU, it has 140 GiB: lower rollout.gpu_memory_utilization or "
                                "add learners"]


def test_plan_of_a_colocated_cpu_run(tiny_model_dir):
    from raylign.engine.cluster_view import ClusterView, Node
    from raylign.engine.config import build_config
    from raylign.engine.plan import plan_stages, problems, render
    from raylign.engine.plugins import build_registry

    registry = build_registry()
    cfg = build_config({"run": {"pipeline": ["grpo"], "base_model": str(tiny_model_dir)},
                        "ray": {"placement": "colocated"}}, registry)
    view = ClusterView("test", (Node("cpu0", {"CPU": 4}, None, 16.0),))
    (grpo,) = plan_stages(cfg, registry, view)
    text = render([grpo], view)
    assert problems([grpo]) == []
    assert "  rollout + learner (colocated, bundle i = replica i + rank i): 1 x [CPU 2] on cpu0; memory ~" in text
    assert "the engine sleeps while the learner trains (on CPU it frees nothing)" in text
