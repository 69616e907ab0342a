"""``raylign verify``: file in, file out, same order, every status, malformed input named by file and line.

Scoring runs through the test plugin file (``run_verify(..., plugins=[...], entry_points=False)``); the
installed-package path through the real ``raylign`` command is in test_verifier_plugin.py.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from raylign.engine.cli import main
from raylign.engine.errors import DataError, PluginError
from raylign.engine.rewards.verify_cmd import read_jsonl, run_verify
from test_rewards import TIMEOUT, write_test_plugin


@pytest.fixture(scope="module")
def plugin_file(tmp_path_factory) -> str:
    return write_test_plugin(tmp_path_factory.mktemp("verify_cli_plugin"))


def write_rows(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_verify_writes_one_line_per_input_in_order(tmp_path, plugin_file, capsys):
    rows = [{"id": i, "completion": str(i % 3), "answer": "1"} for i in range(12)] + [{"id": 12, "completion": "1"}]
    src = write_rows(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    run_verify("echo", src, str(out), workers=3, timeout_s=TIMEOUT, plugins=[plugin_file], entry_points=False)
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert [g["id"] for g in got] == list(range(13))
    for row, g in zip(rows, got):
        assert {k: g[k] for k in row} == row  # the input's fields are kept
        assert isinstance(g["reward"], float) and "details" in g
    assert [g["reward"] for g in got[:3]] == [0.0, 1.0, 0.0]
    assert (got[12]["status"], got[12]["error"]) == ("invalid", "the row has no answer")
    assert all(g["status"] == "ok" and g["error"] is None for g in got[:12])
    assert not (tmp_path / "out.jsonl.tmp").exists()
    assert "13 rows" in capsys.readouterr().err


def test_verify_reports_timeouts_and_errors_and_prints_to_stdout(tmp_path, plugin_file, capsys):
    rows = [{"completion": "x"}] * 2
    for name, status, error in [("sleepy", "timeout", "deadline"), ("raiser", "error", "ValueError: boom")]:
        src = write_rows(tmp_path / f"{name}.jsonl", rows)
        run_verify(name, src, None, workers=2, timeout_s=TIMEOUT, plugins=[plugin_file], entry_points=False)
        got = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [g["status"] for g in got] == [status] * 2 and error in got[0]["error"]


def test_verify_prints_the_sandbox_backend(tmp_path, plugin_file, capsys):
    src = write_rows(tmp_path / "in.jsonl", [{"completion": "x"}])
    run_verify("scaled", src, str(tmp_path / "out.jsonl"), timeout_s=TIMEOUT, plugins=[plugin_file],
               entry_points=False)
    assert "'toy' sandbox backend" in capsys.readouterr().err


def test_verify_starts_without_importing_torch_or_vllm(tmp_path):
    """DESIGN: ``raylign verify`` starts without torch or vLLM (its worker processes load the plugins, not it)."""
    src = write_rows(tmp_path / "in.jsonl", [{"completion": "The answer is 42", "answer": "42"}])
    code = ("import json, sys\nfrom raylign.engine.cli import main\n"
            f"rc = main(['verify', 'math', '--input', {src!r}, '--output', {str(tmp_path / 'out.jsonl')!r}])\n"
            "print(json.dumps([rc, sorted(m for m in ('torch', 'vllm') if m in sys.modules)]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[-1]) == [0, []]
    assert json.loads((tmp_path / "out.jsonl").read_text())["reward"] == 1.0


def test_unknown_verifier_lists_the_known_ones(tmp_path, plugin_file):
    src = write_rows(tmp_path / "in.jsonl", [{"completion": "x"}])
    with pytest.raises(PluginError, match=r"unknown verifier 'ehco'.*Did you mean 'echo'"):
        run_verify("ehco", src, None, plugins=[plugin_file], entry_points=False)


def test_malformed_line_names_file_and_line_and_leaves_no_output(tmp_path, capsys):
    src = tmp_path / "bad.jsonl"
    src.write_text('{"completion": "a"}\n\n{"completion": "b"}\n{"completion": \n')
    out = tmp_path / "out.jsonl"
    assert main(["verify", "whatever", "--input", str(src), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{src}:4: not valid JSON" in err and "Traceback" not in err
    assert not out.exists() and not (tmp_path / "out.jsonl.tmp").exists()
    src.write_text('{"completion": "a"}\n[1, 2]\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: expected a JSON object, got list"):
        read_jsonl(src)
    with pytest.raises(DataError, match="no such file"):
        read_jsonl(tmp_path / "missing.jsonl")
