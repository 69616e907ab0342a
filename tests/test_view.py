"""``raylign view RUN`` in a real browser (headless Chromium over the DevTools protocol, see tests/chromium.py)
on a short real GRPO run through the CLI: opened while the run writes (the page follows it without a reload),
then on the finished run (curves and the rollouts table show the run's own numbers, filters from the URL and
from typing, a group side by side, eval answers step after step, a screenshot), and on a copy without
``rollouts/`` (an older run). Plus: the command starts without torch, vLLM or Ray.

``RAYLIGN_VIEW_SCREENSHOT=PATH`` copies the finished run's screenshot to PATH (the README's docs/view.png).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chromium import Chromium, start_view, stop
from conftest import finish_run, kill_run, start_run

RAYLIGN = str(Path(sys.executable).with_name("raylign"))
STEPS, PROMPTS, GROUP, EVAL_EVERY = 10, 4, 4, 4

CONFIG = f"""
[run]
name = "view"
output_dir = "runs"
seed = 1
pipeline = ["grpo"]
base_model = "{{model}}"
probes = ["What is 12+30?"]
probe_max_tokens = 8
rollout_groups_per_step = -1

[ray]
num_cpus = 8

[rollout]
max_model_len = 256

[rewards]
num_workers = 1
timeout_s = 10.0

[grpo]
data = ["tasks.jsonl"]
eval_data = ["tasks.jsonl"]
eval_size = 4
eval_every = {EVAL_EVERY}
verifier = "format"
steps = {STEPS}
prompts_per_step = {PROMPTS}
group_size = {GROUP}
micro_batch_size = 32
max_new_tokens = 8
checkpoint_every = 0
optim = {{ lr = 3e-3, warmup_steps = 0, schedule = "constant", weight_decay = 0.0 }}
"""


def _records(run_dir: Path) -> list[dict]:
    path = run_dir / "rollouts" / "grpo.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def _metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_model_dir):
    """A short GRPO run through the CLI, started here and left running: the first test watches it write."""
    work = tmp_path_factory.mktemp("view")
    with open(work / "tasks.jsonl", "w") as fh:
        for i in range(16):  # every fourth row has a broken pattern: status "invalid" beside "ok" verdicts
            fh.write(json.dumps({"prompt": f"Say anything {i}", "format": "[" if i % 4 == 3 else r"[^e]*",
                                 "verifier": "format"}) + "\n")
    (work / "cfg.toml").write_text(CONFIG.replace("{model}", str(tiny_model_dir)))
    proc = start_run(RAYLIGN, work, [], "run")
    yield {"work": work, "proc": proc, "dir": work / "runs" / "view"}
    if proc.poll() is None:
        kill_run(proc)


@pytest.fixture(scope="module")
def finished(run):
    finish_run(run["proc"], run["work"], "run", 900)
    return run["dir"]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    b = Chromium(tmp_path_factory.mktemp("chromium"))
    yield b
    b.close()


@pytest.fixture
def view(tmp_path):
    """Starts ``raylign view`` (a subprocess) on a run directory; returns its URL."""
    procs = []

    def start(run_dir: Path) -> str:
        proc, url = start_view(RAYLIGN, run_dir, tmp_path / f"view{len(procs)}.log")
        procs.append(proc)
        return url

    yield start
    for p in procs:
        stop(p)


def _shown_step(browser) -> int | None:
    value = browser.evaluate("document.getElementById('ro-step').value")
    return int(value) if value not in (None, "") else None


# ---------------------------------------------------------------------------------------------- live


@pytest.mark.vllm
@pytest.mark.slow
def test_the_page_follows_a_run_while_it_writes(run, browser, view):
    t0 = time.monotonic()
    while not (run["dir"] / "config.toml").exists():
        assert run["proc"].poll() is None, (run["work"] / "run.err").read_text()[-3000:]
        assert time.monotonic() - t0 < 120, "the run made no run directory"
        time.sleep(0.1)
    url = view(run["dir"])
    browser.goto(url + "?poll=100")
    browser.evaluate("window.__opened = 1")  # gone if the page reloads
    assert browser.evaluate("document.querySelector('.stage[data-stage=grpo]').dataset.status") == "running"
    browser.wait_for("+document.getElementById('rollout-count').dataset.total > 0", 600, "a first rollout step")
    first = _shown_step(browser)
    # the rollouts of a step are written before its metrics line: the curve may come a poll later
    first_points = int(browser.wait_for("(() => { const s = document.querySelector('svg[data-metric=reward_mean]');"
                                        " return s && +s.dataset.points; })()", 600, "a first reward point"))
    assert run["proc"].poll() is None, "the run ended before the page saw it write: make it longer"
    later = browser.wait_for(f"+document.getElementById('ro-step').value > {first} && "
                             f"document.getElementById('ro-step').value", 600, "a later step")
    points = browser.wait_for(f"(() => {{ const s = document.querySelector('svg[data-metric=reward_mean]');"
                              f" return s && +s.dataset.points > {first_points} && +s.dataset.points; }})()",
                              600, "the reward curve to grow")
    assert browser.evaluate("window.__opened") == 1  # the same page: it polled, it did not reload
    rows = [r for r in _metrics(run["dir"]) if "reward_mean" in r]
    assert len(rows) >= points > first_points >= 1
    records = [r for r in _records(run["dir"]) if r["kind"] == "train" and r["step"] == int(later)]
    assert len(records) == PROMPTS * GROUP  # rollout_groups_per_step = -1: every group
    print(f"\nlive: first step shown {first}, later {later}; reward curve {first_points} -> {points} points "
          f"(run still going: {run['proc'].poll() is None})")


# ---------------------------------------------------------------------------------------------- finished


@pytest.mark.vllm
@pytest.mark.slow
def test_the_page_shows_the_runs_numbers_and_filters_its_rollouts(finished, browser, view, tmp_path):
    metrics, records, summary = _metrics(finished), _records(finished), json.loads((finished / "summary.json").read_text())
    url = view(finished)
    browser.goto(url)
    # the pipeline: the stage is done, with its final metrics
    assert browser.evaluate("document.querySelector('.stage[data-stage=grpo]').dataset.status") == "done"
    card = browser.evaluate("document.querySelector('.stage[data-stage=grpo]').innerText")
    acc = summary["stages"]["grpo"]["metrics"]["eval_accuracy"]
    assert "eval_accuracy" in card and _shown(acc) in card, card
    # curves: one per metric, drawn from every logged value
    steps = [r for r in metrics if r["stage"] == "grpo" and "reward_mean" in r]
    assert len(steps) == STEPS
    for key in ("reward_mean", "pass_rate", "loss"):
        chart = browser.evaluate(f"(() => {{ const s = document.querySelector('svg[data-metric={key}]');"
                                 f" return [s.dataset.points, s.dataset.last, s.querySelector('polyline')"
                                 f".getAttribute('points').split(' ').length]; }})()")
        assert int(chart[0]) == chart[2] == len(steps), (key, chart)
        assert float(chart[1]) == steps[-1][key], (key, chart)
    eval_acc = browser.evaluate("document.querySelector('svg[data-metric=eval_accuracy]').dataset.points")
    evals = [r for r in metrics if r["stage"] == "grpo" and "eval_accuracy" in r]
    assert int(eval_acc) == len(evals) + 1  # the eval_every points, the final one, and the one before training
    # the rollouts table: the latest training step, every sample with its reward and status
    last = max(r["step"] for r in records if r["kind"] == "train")
    block = [r for r in records if r["kind"] == "train" and r["step"] == last]
    table = browser.evaluate("[...document.querySelectorAll('#rollouts tbody tr')].map(tr => [+tr.dataset.group,"
                             " +tr.dataset.sample, +tr.dataset.reward, tr.dataset.status, +tr.dataset.length,"
                             " tr.querySelector('td.reward').textContent])")
    assert [(g, s, rw, st, n) for g, s, rw, st, n, _ in table] == \
           [(r["group"], r["sample"], r["reward"], r["status"], r["length"]) for r in block]
    assert all(float(text) == pytest.approx(rw, abs=1e-3) for *_, rw, _, _, text in table)
    # filters from the URL: a step with both verdict kinds, only its "ok" samples with reward >= 1
    step = next((s for s in sorted({r["step"] for r in records if r["kind"] == "train"})
                 if {"ok", "invalid"} <= {r["status"] for r in records if r["step"] == s and r["kind"] == "train"}),
                last)
    chosen = [r for r in records if r["kind"] == "train" and r["step"] == step]
    browser.goto(f"{url}?rs=grpo&step={step}&status=ok&rmin=1")
    want = [r for r in chosen if r["status"] == "ok" and r["reward"] >= 1]
    count = browser.evaluate("({...document.getElementById('rollout-count').dataset})")
    assert (int(count["shown"]), int(count["total"])) == (len(want), len(chosen)), (step, count)
    assert browser.evaluate("document.getElementById('f-status').value") == "ok"
    browser.goto(f"{url}?rs=grpo&step={step}&status=invalid")
    shown = browser.evaluate("[...document.querySelectorAll('#rollouts tbody tr')].map(tr => tr.dataset.status)")
    assert shown == ["invalid"] * sum(r["status"] == "invalid" for r in chosen)
    # typing into the search box (real input events) filters by text; the URL keeps it
    browser.goto(f"{url}?rs=grpo&step={step}")
    word = next(w for r in chosen for w in r["completion"].split() if len(w) >= 3)
    browser.type("#f-q", word)
    browser.wait_for("location.search.includes('q=')", 10)
    shown = int(browser.evaluate("document.getElementById('rollout-count').dataset.shown"))
    assert shown == sum(word.lower() in _haystack(r) for r in chosen) >= 1, word
    assert "q=" in browser.evaluate("location.search")
    # a click on a row puts its group's samples side by side
    browser.evaluate("document.getElementById('f-clear').click()")
    browser.click("#rollouts tbody tr")
    browser.wait_for("!document.getElementById('group').hidden", 10)
    cols = browser.evaluate("[...document.querySelectorAll('#group .col')].map(c => +c.dataset.sample)")
    assert cols == list(range(GROUP))
    # eval answers: one held-out prompt's greedy answer at each eval (0 = before training, then every EVAL_EVERY)
    browser.goto(f"{url}?rs=grpo&kind=eval&group=0")
    browser.wait_for("!document.getElementById('group').hidden", 10)
    eval_steps = browser.evaluate("[...document.querySelectorAll('#group .col')].map(c => +c.dataset.step)")
    assert eval_steps == [0, *range(EVAL_EVERY, STEPS, EVAL_EVERY), STEPS]
    assert eval_steps == sorted({r["step"] for r in records if r["kind"] == "eval"})
    # the probes table and a screenshot of the whole page
    assert "What is 12+30?" in browser.evaluate("document.getElementById('probes').innerText")
    browser.goto(f"{url}?rs=grpo&group=1")
    browser.wait_for("!document.getElementById('group').hidden", 10)
    shot = browser.screenshot(tmp_path / "view.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    if os.environ.get("RAYLIGN_VIEW_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["RAYLIGN_VIEW_SCREENSHOT"])
    assert browser.console == [], browser.console


def _shown(value: float) -> str:
    """How the page writes a number (its fmt(): 4 significant digits)."""
    return str(int(value)) if float(value).is_integer() else f"{float(f'{value:.4g}'):g}"


def _haystack(r: dict) -> str:
    def js(value) -> str:  # JSON.stringify's spelling
        return json.dumps(value or {}, separators=(",", ":"), ensure_ascii=False)

    return "\n".join([r["prompt"], r["completion"], js(r["details"]), r["error"] or "", js(r["task"])]).lower()


@pytest.mark.vllm
@pytest.mark.slow
def test_a_run_without_rollouts_still_opens(finished, browser, view, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(finished, old, ignore=shutil.ignore_patterns("rollouts", "models", "checkpoints", "tensorboard"))
    url = view(old)
    browser.goto(url)
    assert browser.evaluate("document.getElementById('rollouts-empty').hidden") is False
    assert browser.evaluate("document.getElementById('rollouts-ui').hidden") is True
    assert int(browser.evaluate("document.querySelector('svg[data-metric=reward_mean]').dataset.points")) == STEPS
    assert browser.evaluate("document.querySelector('.stage[data-stage=grpo]').dataset.status") == "done"


# ---------------------------------------------------------------------------------------------- light


def test_view_starts_without_importing_torch_vllm_or_ray(tmp_path):
    """DESIGN 3 (CLI): the page's server is stdlib only; it answers without torch, vLLM or Ray loaded."""
    (tmp_path / "metrics.jsonl").write_text('{"stage": "sft", "step": 1, "loss": 2.5}\n')
    code = (
        "import json, sys, threading, urllib.request\n"
        "from raylign.engine import cli\n"
        "from raylign.engine.view import server\n"
        "srv, url = server.serve_in_thread(sys.argv[1])\n"
        "run = json.load(urllib.request.urlopen(url + 'api/run'))\n"
        "page = urllib.request.urlopen(url).read().decode()\n"
        "srv.shutdown()\n"
        "print(json.dumps([run['stages'][0]['name'], 'view.js' in page, srv.server_address[0],"
        " sorted(m for m in ('torch', 'vllm', 'ray', 'transformers') if m in sys.modules)]))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == ["sft", True, "127.0.0.1", []]


def test_the_server_serves_loopback_names_only_and_nothing_outside_its_page(tmp_path):
    import urllib.error
    import urllib.request

    from raylign.engine.view.server import serve_in_thread

    (tmp_path / "metrics.jsonl").write_text('{"stage": "grpo", "step": 1, "loss": 2.5}\n{"stage": "grpo", "st')
    server, url = serve_in_thread(tmp_path)

    def get(path: str, host: str | None = None) -> tuple[int, bytes]:
        req = urllib.request.Request(url + path.lstrip("/"), headers={"Host": host} if host else {})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    try:
        assert server.server_address[0] == "127.0.0.1"
        status, body = get("/api/metrics?since=0")
        assert status == 200 and json.loads(body)["rows"] == [{"stage": "grpo", "step": 1, "loss": 2.5}]  # torn line
        assert get("/api/run", host="localhost:1")[0] == 200
        assert get("/api/run", host="evil.example:8765")[0] == 403  # DNS rebinding
        assert get("/static/..%2Frundir.py")[0] == 404 and get("/static/.hidden")[0] == 404
        assert get("/api/rollouts/..%2F..%2Fetc?step=1")[0] == 404  # only stages with a rollouts file
        status, body = get("/api/rollouts/grpo/index")
        assert status == 200 and json.loads(body)["blocks"] == []  # an older run: no rollouts/, still answers
        assert get("/api/metrics?since=x")[0] == 400
    finally:
        server.shutdown()
        server.server_close()
