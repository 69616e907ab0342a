"""The verifier service: a real Ray Serve deployment on a free loopback port, called over real HTTP."""
from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request

import pytest

from test_rewards import TIMEOUT, write_test_plugin


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url: str, body: dict | None = None, timeout: float = 30.0) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def service(ray_session, tmp_path_factory):
    from ray import serve

    from raylign.engine.rewards.serve import build_app, start

    plugin = write_test_plugin(tmp_path_factory.mktemp("serve_plugin"))
    t0 = time.monotonic()
    try:
        url = start(build_app(workers=2, timeout_s=TIMEOUT, plugins=[plugin], entry_points=False,
                              verifier_options={"scaled": {"scale": 4.0}}), "127.0.0.1", free_port())
        print(f"Serve start-up: {time.monotonic() - t0:.1f} s")
        yield url
    finally:
        serve.shutdown()


def test_lists_verifiers_and_health(service):
    status, body = call(f"{service}/verifiers")
    assert status == 200 and {"echo", "sleepy", "scaled"} <= set(body["verifiers"])
    assert call(f"{service}/health") == (200, {"status": "ok", "verifiers": len(body["verifiers"])})


def test_openapi_schema_describes_the_api(service):
    status, schema = call(f"{service}/openapi.json")
    assert status == 200
    assert {"/verify/{name}", "/verifiers", "/health"} <= set(schema["paths"])
    components = schema["components"]["schemas"]
    assert {"VerifyRequest", "VerifyItem", "VerifyResponse", "VerdictOut"} <= set(components)
    assert components["VerdictOut"]["properties"]["status"]["enum"] == ["ok", "timeout", "error", "invalid"]


def test_verify_scores_items_in_order(service):
    items = [{"completion": "3", "task": {"answer": "3"}}, {"completion": "3", "task": {"answer": "4"}},
             {"completion": "3", "task": {}}]
    status, body = call(f"{service}/verify/echo", {"items": items})
    assert status == 200
    assert [(v["reward"], v["status"]) for v in body["verdicts"]] == [(1.0, "ok"), (0.0, "ok"), (0.0, "invalid")]
    assert set(body["verdicts"][0]) == {"reward", "status", "error", "details"}
    _, body = call(f"{service}/verify/scaled", {"items": [{"completion": "x"}]})
    assert body["verdicts"][0]["reward"] == 4.0  # verifier options reach the workers


def test_timeout_and_crash_then_keeps_serving(service):
    status, body = call(f"{service}/verify/sleepy", {"items": [{"completion": "x"}]})
    assert status == 200 and body["verdicts"][0]["status"] == "timeout"  # it sleeps an hour: the deadline ended it
    assert "deadline" in body["verdicts"][0]["error"]
    _, body = call(f"{service}/verify/segv", {"items": [{"completion": "x"}]})
    assert body["verdicts"][0]["status"] == "error" and "SIGSEGV" in body["verdicts"][0]["error"]
    _, body = call(f"{service}/verify/echo", {"items": [{"completion": "1", "task": {"answer": "1"}}] * 4})
    assert [v["reward"] for v in body["verdicts"]] == [1.0] * 4


def test_unknown_verifier_is_404_with_the_known_list(service):
    status, body = call(f"{service}/verify/ecoh", {"items": []})
    assert status == 404
    assert "Did you mean 'echo'" in body["detail"]["error"] and "echo" in body["detail"]["known"]


@pytest.mark.parametrize("body", [{}, {"items": [{"task": {}}]}, {"items": [{"completion": 3}]},
                                  {"items": "nope"}])
def test_bad_body_is_422(service, body):
    assert call(f"{service}/verify/echo", body)[0] == 422
