"""Bad input through the CLI: every case exits non-zero with one clear ``raylign: error: ...`` line on stderr and
no traceback. Config, plugin and model-path mistakes fail before Ray starts; data mistakes fail once the stage
reads the data. The main cases run ``raylign`` in a subprocess; a few more call the same ``main()`` in-process
(to save process start-ups). Half-written checkpoints are covered in test_checkpoint.py.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from raylign.engine.data import read_rows, read_texts
from raylign.engine.errors import DataError

DATA = Path(__file__).parent / "data"
RAYLIGN = str(Path(sys.executable).with_name("raylign"))

CONFIG = """
[run]
name = "bad"
output_dir = "runs"
pipeline = ["scratch"]
probes = []

[ray]
num_cpus = 2

[scratch]
corpus = ["pre.jsonl"]
vocab_size = 320
size = { hidden_size = 32, num_layers = 1, num_heads = 2, num_kv_heads = 1, intermediate_size = 64 }
"""


def _fail(workdir: Path, *args: str, timeout: float = 240) -> str:
    """Run ``raylign run cfg.toml ARGS`` and return its one error message (after checking how it failed)."""
    out = subprocess.run([RAYLIGN, "run", "cfg.toml", *args], cwd=workdir, capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode != 0, f"expected a failure, got success:\n{out.stdout[-2000:]}"
    err = out.stderr
    assert "Traceback" not in err and "Error:" not in err.replace("raylign: error:", ""), err
    errors = [line for line in err.splitlines() if line.startswith("raylign: error: ")]
    assert len(errors) == 1, err
    assert err.rstrip().splitlines()[-1] == errors[0], "the error is the last thing printed"
    return errors[0][len("raylign: error: "):]


@pytest.fixture
def work(tmp_path):
    (tmp_path / "cfg.toml").write_text(CONFIG)
    (tmp_path / "pre.jsonl").write_text((DATA / "engine_pre.jsonl").read_text())
    return tmp_path


# ---------------------------------------------------------------------------------------------- before Ray


def test_unknown_config_key(work):
    msg = _fail(work, "--set", "scratch.vocab_sise=300")
    assert msg.startswith("unknown config key scratch.vocab_sise. Did you mean scratch.vocab_size?")
    assert not (work / "runs").exists(), "nothing is created before the config is valid"


def test_wrong_type(work):
    msg = _fail(work, "--set", "scratch.size.num_layers=two")
    assert msg == "scratch.size.num_layers: expected an integer, got str 'two'"


def test_unknown_stage_in_pipeline_lists_known_stages(work):
    msg = _fail(work, "--set", 'run.pipeline=["scratch", "pretrian"]')
    assert msg.startswith("unknown stage 'pretrian'. Did you mean 'pretrain'? Known: ")
    assert {"scratch", "pretrain", "sft"} <= set(msg.split("Known: ")[1].split(", "))


# ---------------------------------------------------------------------------------------------- at run time


def test_malformed_jsonl_names_file_and_line(work):
    lines = (DATA / "engine_pre.jsonl").read_text().splitlines()[:5]
    lines.insert(3, '{"text": "an unfinished line')
    (work / "pre.jsonl").write_text("\n".join(lines) + "\n")
    msg = _fail(work)
    assert msg.startswith(f"{work / 'pre.jsonl'}:4: not valid JSON"), msg


def test_missing_field_names_field_and_line(work, tiny_model_dir):
    (work / "sft.jsonl").write_text('{"prompt": "Hi?", "response": "Hello."}\n\n'
                                    '{"prompt": "Where is the cat?", "answer": "At the lake."}\n')
    (work / "cfg.toml").write_text(CONFIG.replace('pipeline = ["scratch"]', 'pipeline = ["sft"]')
                                   .split("[scratch]")[0] + '\n[sft]\ndata = ["sft.jsonl"]\nsteps = 1\n')
    msg = _fail(work, "--set", f'run.base_model="{tiny_model_dir}"')
    assert msg.startswith(f"{work / 'sft.jsonl'}:3: missing field 'response'"), msg
    assert "prompt, answer" in msg  # what the row does have


def test_missing_model_directory(work):
    (work / "cfg.toml").write_text(CONFIG.replace('pipeline = ["scratch"]', 'pipeline = ["pretrain"]')
                                   .split("[scratch]")[0] + '\n[pretrain]\ndata = ["pre.jsonl"]\n')
    msg = _fail(work, "--set", "run.base_model=/nonexistent/model")
    assert msg.startswith("model directory /nonexistent/model does not exist"), msg
    assert "HF causal-LM directory" in msg
    assert not (work / "runs").exists(), "no run dir is left behind (fixing the path needs no --resume)"


# ------------------------------------------------------------------ more cases, in-process (same entry point)


def _fail_in_process(capsys, workdir: Path, monkeypatch, *argv: str) -> str:
    from raylign.engine.cli import main

    monkeypatch.chdir(workdir)
    rc = main(list(argv))
    err = capsys.readouterr().err
    assert rc != 0 and "Traceback" not in err
    (line,) = err.strip().splitlines()
    assert line.startswith("raylign: error: ")
    return line[len("raylign: error: "):]


def test_wrong_type_in_the_file(work, capsys, monkeypatch):
    (work / "cfg.toml").write_text(CONFIG.replace("vocab_size = 320", 'vocab_size = "320"'))
    msg = _fail_in_process(capsys, work, monkeypatch, "run", "cfg.toml")
    assert msg == "scratch.vocab_size: expected an integer, got str '320'"


def test_unknown_stage_plugin_lists_known_stages(work, capsys, monkeypatch):
    (work / "cfg.toml").write_text(CONFIG.replace('pipeline = ["scratch"]', 'pipeline = ["scratch", "tune"]')
                                   + '\n[tune]\nplugin = "sfft"\n')
    msg = _fail_in_process(capsys, work, monkeypatch, "run", "cfg.toml")
    assert msg.startswith("unknown stage 'sfft'. Did you mean 'sft'? Known: ")


def test_invalid_literal(work, capsys, monkeypatch):
    msg = _fail_in_process(capsys, work, monkeypatch, "run", "cfg.toml", "--set", "run.device=tpu")
    assert "run.device: must be one of ['auto', 'cpu', 'cuda'], got 'tpu'" in msg


def test_unknown_section(work, capsys, monkeypatch):
    (work / "cfg.toml").write_text(CONFIG + "\n[raay]\nnum_cpus = 2\n")
    msg = _fail_in_process(capsys, work, monkeypatch, "run", "cfg.toml")
    assert msg.startswith("unknown config section [raay]") and msg.endswith("Did you mean [ray]?")


def test_missing_config_file(work, capsys, monkeypatch):
    assert _fail_in_process(capsys, work, monkeypatch, "run", "nope.toml") == "config file nope.toml does not exist"


def test_resume_without_a_run_dir(work, capsys, monkeypatch):
    assert "nothing to resume" in _fail_in_process(capsys, work, monkeypatch, "run", "cfg.toml", "--resume")


# ---------------------------------------------------------------------------------------------- readers


def test_data_readers_name_the_problem(tmp_path):
    with pytest.raises(DataError, match="data file .*absent.jsonl does not exist"):
        read_texts(["absent.jsonl"], tmp_path)
    (tmp_path / "list.jsonl").write_text('{"text": "ok"}\n[1, 2]\n')
    with pytest.raises(DataError, match=r"list.jsonl:2: expected a JSON object, got list"):
        read_texts(["list.jsonl"], tmp_path)
    (tmp_path / "num.jsonl").write_text('{"text": 5}\n')
    with pytest.raises(DataError, match=r"num.jsonl:1: field 'text' must be str, got int"):
        read_texts(["num.jsonl"], tmp_path)
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(DataError, match="no rows found"):
        read_rows(["empty.jsonl"], tmp_path)
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(DataError, match="unsupported data format '.csv'"):
        read_rows(["x.csv"], tmp_path)
    with pytest.raises(DataError, match="matches no file"):
        read_rows(["*.parquet"], tmp_path)
