"""CheckpointManager: atomic write-then-rename, the COMPLETE marker, keep-last-K, latest(), state.json.

No Ray here: the learner's part of a checkpoint is a ``write(tmp_dir)`` callback, so a plain function stands in
for ``learner.save_state`` and the manager's own guarantees are tested directly on real files.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from raylign.engine.checkpoint import MARKER, CheckpointManager


def _writer(payload: bytes = b"weights"):
    seen: list[Path] = []

    def write(tmp: Path) -> None:
        seen.append(tmp)
        assert tmp.name.endswith(".tmp"), "the learner must write into the .tmp directory, never the final one"
        assert not (tmp / MARKER).exists(), "COMPLETE must be written after the learner's files"
        (tmp / "learner.pt").write_bytes(payload)

    return write, seen


def test_save_writes_into_tmp_then_renames(tmp_path):
    mgr = CheckpointManager(tmp_path / "ck")
    write, seen = _writer()
    path = mgr.save(7, {"step": 7, "epoch": 0}, write)
    assert path == tmp_path / "ck" / "step_00000007"
    assert seen == [tmp_path / "ck" / "step_00000007.tmp"]
    assert not seen[0].exists(), "the .tmp directory is renamed away"
    assert sorted(p.name for p in path.iterdir()) == [MARKER, "learner.pt", "state.json"]
    assert (path / MARKER).read_text() == "7"
    assert (path / "learner.pt").read_bytes() == b"weights"


def test_state_json_round_trip(tmp_path):
    mgr = CheckpointManager(tmp_path)
    state = {"step": 3, "data": {"epoch": 1, "offset": 42}, "seen": [1, 2, 3], "note": "é", "lr": 1.5e-4}
    path = mgr.save(3, state, _writer()[0])
    assert CheckpointManager.read_state(path) == state
    assert json.loads((path / "state.json").read_text()) == state


def test_latest_and_keep_last_k(tmp_path):
    mgr = CheckpointManager(tmp_path, keep=2)
    assert mgr.latest() is None
    assert mgr.complete() == []
    for step in (10, 20, 30, 40):
        mgr.save(step, {"step": step}, _writer()[0])
    assert [s for s, _ in mgr.complete()] == [30, 40]
    assert mgr.latest() == (40, tmp_path / "step_00000040")
    assert not (tmp_path / "step_00000010").exists() and not (tmp_path / "step_00000020").exists()


def test_latest_orders_numerically_not_by_mtime(tmp_path):
    mgr = CheckpointManager(tmp_path, keep=5)
    for step in (100, 9, 20):
        mgr.save(step, {"step": step}, _writer()[0])
    os.utime(tmp_path / "step_00000009", (2e9, 2e9))  # the newest on disk is not the latest step
    assert mgr.latest()[0] == 100


def test_saving_the_same_step_again_replaces_it(tmp_path):
    mgr = CheckpointManager(tmp_path)
    mgr.save(5, {"step": 5, "try": 1}, _writer(b"one")[0])
    path = mgr.save(5, {"step": 5, "try": 2}, _writer(b"two")[0])
    assert CheckpointManager.read_state(path)["try"] == 2
    assert (path / "learner.pt").read_bytes() == b"two"
    assert [s for s, _ in mgr.complete()] == [5]


def test_half_written_checkpoints_never_look_complete(tmp_path):
    mgr = CheckpointManager(tmp_path)
    mgr.save(10, {"step": 10}, _writer()[0])
    # An interrupted save: the .tmp dir even carries every file and the marker, but was never renamed.
    tmp = tmp_path / "step_00000030.tmp"
    tmp.mkdir()
    (tmp / "learner.pt").write_bytes(b"x")
    (tmp / "state.json").write_text('{"step": 30}')
    (tmp / MARKER).write_text("30")
    # A final-looking name without the marker (e.g. copied by hand, or a crash inside a non-atomic copy).
    unmarked = tmp_path / "step_00000020"
    unmarked.mkdir()
    (unmarked / "state.json").write_text('{"step": 20}')
    # Names that are not checkpoints at all.
    (tmp_path / "step_40").mkdir()
    (tmp_path / "step_40" / MARKER).write_text("40")
    (tmp_path / "notes.txt").write_text("hello")
    assert mgr.latest() == (10, tmp_path / "step_00000010")
    assert [s for s, _ in mgr.complete()] == [10]


def test_leftover_tmp_is_cleaned_when_the_manager_starts(tmp_path):
    CheckpointManager(tmp_path).save(10, {"step": 10}, _writer()[0])
    tmp = tmp_path / "step_00000020.tmp"
    (tmp / "sub").mkdir(parents=True)
    (tmp / "learner.pt").write_bytes(b"partial")
    mgr = CheckpointManager(tmp_path)  # what a resumed run does
    assert not tmp.exists()
    assert mgr.latest()[0] == 10


def test_failed_write_leaves_no_complete_checkpoint(tmp_path):
    mgr = CheckpointManager(tmp_path)
    mgr.save(10, {"step": 10}, _writer()[0])

    def crash(tmp: Path) -> None:
        (tmp / "learner.pt").write_bytes(b"half")
        raise RuntimeError("learner died mid-write")

    with pytest.raises(RuntimeError, match="mid-write"):
        mgr.save(20, {"step": 20}, crash)
    assert mgr.latest()[0] == 10
    assert not (tmp_path / "step_00000020").exists()
    # The next attempt at the same step starts from a clean .tmp and succeeds.
    path = mgr.save(20, {"step": 20}, _writer(b"full")[0])
    assert (path / "learner.pt").read_bytes() == b"full"
    assert mgr.latest()[0] == 20
