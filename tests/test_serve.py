"""The verifier service: real Ray Serve deployments on a free loopback port, called over real HTTP.

Two applications share one Serve instance: the main one has a bearer token, small caps and the tests' short
deadline; the "open" one (route prefix ``/open``) has no token and a long deadline, so that a batch of sleepers
would hold its workers for minutes unless abandoning the request stops them. One test runs the real
``raylign serve verifiers`` command and looks at every port its process tree listens on.
"""
from __future__ import annotations

import asyncio
import http.client
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from test_rewards import TIMEOUT, pid_alive, write_test_plugin

TOKEN = "test-token-Zq8"
MAX_ITEMS = 8
MAX_BODY = 64 << 10  # bytes (the main app's --max-body-mb)
SLOW_TIMEOUT = 120.0  # the open app's deadline: far longer than any answer the tests wait for
RAYLIGN = str(Path(sys.executable).with_name("raylign"))

NAPPER_SOURCE = textwrap.dedent('''
    """A verifier that notes its start in the file the row names, then sleeps until it is killed."""
    import os
    import time

    from raylign.engine import hookimpl


    def napper(completion, task):
        with open(task["log"], "a") as f:
            f.write(f"start {os.getpid()}\\n")
        time.sleep(3600)


    @hookimpl
    def raylign_register_verifiers(register):
        register("napper", napper)
''')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url: str, body: dict | None = None, token: str | None = TOKEN, headers: dict | None = None,
         timeout: float = 60.0) -> tuple[int, object]:
    """One request; returns (status, JSON body or text)."""
    data = None if body is None else json.dumps(body).encode()
    hdrs = {"content-type": "application/json", **(headers or {})}
    if token is not None:
        hdrs.setdefault("authorization", f"Bearer {token}")
    req = urllib.request.Request(url, data=data, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def raw_head(path: str, extra: str) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {TOKEN}\r\n{extra}\r\n").encode()


def read_response(sock: socket.socket) -> tuple[int, dict, bytes]:
    """Parse one HTTP response from ``sock`` (status, headers, body)."""
    sock.settimeout(60)
    resp = http.client.HTTPResponse(sock)
    resp.begin()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()


@pytest.fixture(scope="module")
def plugins(tmp_path_factory) -> list[str]:
    directory = tmp_path_factory.mktemp("serve_plugin")
    napper = directory / "raylign_test_napper.py"
    napper.write_text(NAPPER_SOURCE)
    return [write_test_plugin(directory), str(napper)]


@pytest.fixture(scope="module")
def apps(ray_session, plugins):
    """(main URL, open URL, port): both applications deployed on one Serve HTTP proxy on loopback."""
    from ray import serve

    from raylign.engine.rewards.serve import build_app, start

    port = free_port()
    t0 = time.monotonic()
    try:
        main = start(build_app(workers=2, timeout_s=TIMEOUT, plugins=plugins, entry_points=False,
                               verifier_options={"scaled": {"scale": 4.0}}, token=TOKEN,
                               max_body_mb=MAX_BODY / (1 << 20), max_items=MAX_ITEMS), "127.0.0.1", port)
        opened = start(build_app(workers=2, timeout_s=SLOW_TIMEOUT, plugins=plugins, entry_points=False),
                       "127.0.0.1", port, name="raylign-verifiers-open", route_prefix="/open")
        print(f"Serve start-up (two applications): {time.monotonic() - t0:.1f} s")
        yield main, opened, port
    finally:
        serve.shutdown()


@pytest.fixture(scope="module")
def service(apps) -> str:
    return apps[0]


def test_lists_verifiers_and_health(service):
    status, body = call(f"{service}/verifiers")
    assert status == 200 and {"echo", "sleepy", "scaled", "napper"} <= set(body["verifiers"])
    assert call(f"{service}/health") == (200, {"status": "ok", "verifiers": len(body["verifiers"])})


def test_openapi_schema_describes_the_api(service):
    status, schema = call(f"{service}/openapi.json")
    assert status == 200
    assert {"/verify/{name}", "/verifiers", "/health"} <= set(schema["paths"])
    components = schema["components"]["schemas"]
    assert {"VerifyRequest", "VerifyItem", "VerifyResponse", "VerdictOut"} <= set(components)
    assert components["VerdictOut"]["properties"]["status"]["enum"] == ["ok", "timeout", "error", "invalid"]
    assert {"401", "413", "422"} <= set(schema["paths"]["/verify/{name}"]["post"]["responses"])


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


# ------------------------------------------------------------------ the token

def test_token_matching_is_exact():
    from raylign.engine.rewards.serve_guard import token_matches

    assert token_matches(f"Bearer {TOKEN}", TOKEN) and token_matches(f"bearer {TOKEN}", TOKEN)
    for header in [None, "", "Bearer", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", TOKEN,
                   f"Token {TOKEN}", "Bearer \udcff"]:
        assert not token_matches(header, TOKEN), header


@pytest.mark.parametrize("method,path", [("GET", "/verifiers"), ("GET", "/openapi.json"), ("GET", "/docs"),
                                         ("POST", "/verify/echo"), ("POST", "/verify/nope"), ("GET", "/nowhere")])
def test_every_endpoint_but_health_needs_the_token(service, method, path):
    body = {"items": [{"completion": "1", "task": {"answer": "1"}}]} if method == "POST" else None
    for headers in [{}, {"authorization": "Bearer wrong"}, {"authorization": f"Basic {TOKEN}"}]:
        status, detail = call(f"{service}{path}", body, token=None, headers=headers)
        assert status == 401, (path, headers)
        assert "bearer token" in detail["detail"]
    status, _ = call(f"{service}{path}", body, token=None, headers={"authorization": f"bearer {TOKEN}"})
    assert status in (200, 404)  # the token opens every route (nope and nowhere do not exist)
    assert call(f"{service}/health", token=None)[0] == 200


def test_a_401_says_bearer(apps):
    _, _, port = apps
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", "/verifiers")
    resp = conn.getresponse()
    assert resp.status == 401 and resp.getheader("www-authenticate") == "Bearer"
    conn.close()


def test_without_a_token_the_service_is_open(apps):
    _, opened, _ = apps
    status, body = call(f"{opened}/verify/echo", {"items": [{"completion": "2", "task": {"answer": "2"}}]},
                        token=None)
    assert status == 200 and body["verdicts"][0]["reward"] == 1.0


# ------------------------------------------------------------------ malformed bodies: the message, never the input

@pytest.mark.parametrize("body", [{}, {"items": [{"task": {}}]}, {"items": [{"completion": 3}]},
                                  {"items": "nope"}])
def test_bad_body_is_422(service, body):
    assert call(f"{service}/verify/echo", body)[0] == 422


def test_validation_errors_name_the_field_not_the_input(service):
    secret = "SECRET-ROW-CONTENT-7f3a"
    status, body = call(f"{service}/verify/echo", {"items": [{"completion": {"leak": secret * 50}},
                                                             {"completion": "ok", "task": [secret]}]})
    assert status == 422
    text = json.dumps(body)
    assert secret not in text and len(text) < 1000
    assert [(d["loc"], d["type"]) for d in body["detail"]] == [
        (["body", "items", 0, "completion"], "string_type"), (["body", "items", 1, "task"], "dict_type")]
    assert all(set(d) == {"loc", "msg", "type"} for d in body["detail"])


def test_invalid_json_is_422_without_the_text(service):
    secret = "SECRET-IN-BROKEN-JSON"
    req = urllib.request.Request(f"{service}/verify/echo", data=f'{{"items": [{{"completion": "{secret}"'.encode(),
                                 headers={"content-type": "application/json", "authorization": f"Bearer {TOKEN}"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=60)
    assert err.value.code == 422
    text = err.value.read().decode()
    assert secret not in text and "JSON" in text


def test_many_problems_are_listed_a_few_at_a_time(service):
    from raylign.engine.rewards.serve_schema import MAX_PROBLEMS

    items = [{"completion": i} for i in range(3 * MAX_PROBLEMS)]
    status, body = call(f"{service}/verify/echo", {"items": items})
    assert status == 422 and len(body["detail"]) <= MAX_PROBLEMS + 1


# ------------------------------------------------------------------ caps: rows, and bytes before they are read

def test_too_many_items_is_413_with_a_short_message(service):
    row = {"completion": "1", "task": {"answer": "1"}}
    assert call(f"{service}/verify/echo", {"items": [row] * MAX_ITEMS})[0] == 200
    status, body = call(f"{service}/verify/echo", {"items": [row] * (MAX_ITEMS + 1)})
    assert status == 413
    assert body["detail"] == f"{MAX_ITEMS + 1} items in one request; the limit is {MAX_ITEMS} (--max-items)"


def test_a_body_declared_too_large_is_refused_before_it_is_read(apps):
    """Content-Length says 50 MB; the client sends 100 bytes and waits: a server reading first would never answer."""
    _, _, port = apps
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(raw_head("/verify/echo", "Content-Length: 50000000\r\n") + b"{" * 100)
        status, headers, body = read_response(sock)
    assert status == 413 and headers.get("connection") == "close"
    assert "limit" in json.loads(body)["detail"]


def test_a_streamed_body_is_counted_and_refused_past_the_cap(apps):
    """Chunked, no length: bytes are counted as they arrive; the body is never finished, yet 413 comes back."""
    _, _, port = apps
    chunk = b"[" * 8192
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(raw_head("/verify/echo", "Transfer-Encoding: chunked\r\n"))
        while sent < 4 * MAX_BODY and not select.select([sock], [], [], 0.05)[0]:
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
        status, headers, body = read_response(sock)  # the terminating chunk is never sent
    assert status == 413 and "limit" in json.loads(body)["detail"]
    assert sent > MAX_BODY


def test_a_body_under_the_cap_is_read(service):
    row = {"completion": "1", "task": {"answer": "1", "pad": "x" * (MAX_BODY // 2)}}
    assert call(f"{service}/verify/echo", {"items": [row]})[0] == 200


# ------------------------------------------------------------------ a client that goes away

def _wait_for_lines(path: Path, n: int, timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = path.read_text().splitlines()
        if len(lines) >= n:
            return lines
        time.sleep(0.1)
    raise AssertionError(f"{path} has {len(path.read_text().splitlines())} lines, expected {n}")


def test_an_abandoned_batch_stops_and_the_next_request_is_served(apps, tmp_path):
    """Six sleeping rows on the open app (2 workers, a 120 s deadline); the client leaves once two have started.

    Without cancellation both workers sleep until the deadline and the next request queues behind the four rows
    not started; with it, those rows never start, the two running workers are killed, and the next request is
    answered long before the deadline.
    """
    _, opened, port = apps
    log = tmp_path / "napper.log"
    log.touch()
    body = json.dumps({"items": [{"completion": "z", "task": {"log": str(log)}}] * 6}).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sock.sendall(raw_head("/open/verify/napper", f"Content-Length: {len(body)}\r\n") + body)
    started = _wait_for_lines(log, 2, timeout=SLOW_TIMEOUT / 2)  # both workers now sleep for this request
    sock.close()  # the client goes away
    t0 = time.monotonic()
    status, reply = call(f"{opened}/verify/echo", {"items": [{"completion": "1", "task": {"answer": "1"}}]},
                         token=None, timeout=SLOW_TIMEOUT)
    waited = time.monotonic() - t0
    assert status == 200 and reply["verdicts"][0]["reward"] == 1.0
    assert waited < SLOW_TIMEOUT, waited  # a worker was free long before a sleeper's deadline
    assert log.read_text().splitlines() == started  # the four rows not started never started
    pids = [int(line.split()[1]) for line in started]
    deadline = time.monotonic() + 30
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(pid_alive(p) for p in pids), "the abandoned rows' workers still run"
    status, reply = call(f"{opened}/verify/echo", {"items": [{"completion": "1", "task": {"answer": "1"}}] * 4},
                         token=None, timeout=SLOW_TIMEOUT)
    assert [v["reward"] for v in reply["verdicts"]] == [1.0] * 4  # both slots serve again
    assert log.read_text().splitlines() == started


@pytest.mark.parametrize("how", ["disconnect", "cancel"])
def test_scorer_drops_and_kills_an_abandoned_requests_rows(plugins, tmp_path, how):
    """The same without Serve: the client is seen gone by polling, or the handler is cancelled."""
    from raylign.engine.rewards.pool import VerifierPool
    from raylign.engine.rewards.serve_scorer import CancellableScorer

    class Client:  # what the scorer uses of a Starlette request
        gone = False

        async def is_disconnected(self) -> bool:
            return self.gone

    log = tmp_path / "napper.log"
    log.touch()
    client = Client()

    async def scenario(scorer):
        batch = asyncio.ensure_future(scorer.score([("napper", "z", {"log": str(log)})] * 5, client))
        while len(log.read_text().splitlines()) < 2:
            await asyncio.sleep(0.05)
        started = log.read_text().splitlines()
        if how == "disconnect":
            client.gone = True
            assert await batch is None
        else:
            batch.cancel()
            with pytest.raises(asyncio.CancelledError):
                await batch
        return started, await scorer.score([("echo", "1", {"answer": "1"})] * 3)

    with VerifierPool(workers=2, timeout_s=SLOW_TIMEOUT, plugins=plugins, entry_points=False) as pool:
        started, verdicts = asyncio.run(asyncio.wait_for(scenario(CancellableScorer(pool, 2)), SLOW_TIMEOUT))
        assert [v.reward for v in verdicts] == [1.0] * 3  # answered before a sleeper's deadline
        assert log.read_text().splitlines() == started  # the three rows not started never started
        assert not any(pid_alive(int(line.split()[1])) for line in started)  # the running two were killed


# ------------------------------------------------------------------ the command: every port on loopback

def _listening(root: int) -> list[tuple[str, str, int, str]]:
    """(proto, address, port, command) of every listening socket of ``root``'s process tree, from /proc."""
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    kids.setdefault(int(f.read().rsplit(")", 1)[1].split()[1]), []).append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    tree = [root]
    for pid in tree:
        tree.extend(kids.get(pid, []))
    sockets = {}
    for proto, state in [("tcp", "0A"), ("tcp6", "0A"), ("udp", "07"), ("udp6", "07")]:
        with open(f"/proc/net/{proto}") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == state:
                    ip, port = fields[1].split(":")
                    raw = b"".join(struct.pack("<I", int(ip[i:i + 8], 16)) for i in range(0, len(ip), 8))
                    addr = socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)
                    sockets[fields[9]] = (proto, addr, int(port, 16))
    found = set()
    for pid in tree:
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                inode = target[8:-1] if target.startswith("socket:[") else None
                if inode in sockets:
                    found.add((*sockets[inode], comm))
        except OSError:
            pass
    return sorted(found)


def _is_loopback(addr: str) -> bool:
    import ipaddress

    ip = ipaddress.ip_address(addr)
    return ip.is_loopback or (ip.version == 6 and ip.ipv4_mapped is not None and ip.ipv4_mapped.is_loopback)


def _start_command(args: list[str], env: dict, err_path: Path, attempts: int = 3) -> subprocess.Popen:
    """Start ``raylign serve verifiers ARGS`` and wait for its 'serving' line.

    Ray gives its node 30 s to start (not configurable); on a loaded machine its agents can take longer, and
    ``ray.init`` fails with "timed out during startup". Only that failure is retried.
    """
    for attempt in range(attempts):
        with open(err_path, "w") as err:
            proc = subprocess.Popen([RAYLIGN, "serve", "verifiers", *args], stdout=subprocess.DEVNULL, stderr=err,
                                    env=env, cwd=err_path.parent, start_new_session=True)
        deadline = time.monotonic() + 300
        while "serving verifiers at" not in err_path.read_text():
            if proc.poll() is not None:
                break
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                raise AssertionError("the service did not start")
            time.sleep(1)
        else:
            return proc
        text = err_path.read_text()
        if "timed out during startup" not in text or attempt == attempts - 1:
            raise AssertionError(text[-3000:])
    raise AssertionError("unreachable")


def test_command_listens_on_loopback_only_and_reads_the_token_from_the_environment(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(RAYLIGN_SERVE_TOKEN=TOKEN, PYTHONUNBUFFERED="1")
    err_path = tmp_path / "serve.err"
    proc = _start_command(["--port", str(port), "--workers", "1", "--max-items", "2"], env, err_path)
    try:
        url = f"http://127.0.0.1:{port}"
        assert "bearer token required" in err_path.read_text()
        assert call(f"{url}/health", token=None)[0] == 200
        assert call(f"{url}/verifiers", token=None)[0] == 401
        status, body = call(f"{url}/verifiers")
        assert status == 200 and "math" in body["verifiers"]
        rows = [{"completion": r"\boxed{2}", "task": {"answer": "2"}}]
        assert call(f"{url}/verify/math", {"items": rows * 3})[0] == 413  # --max-items reached the app
        status, body = call(f"{url}/verify/math", {"items": rows * 2})
        assert status == 200 and [v["reward"] for v in body["verdicts"]] == [1.0, 1.0]
        listening = _listening(proc.pid)
        assert any(p == port for _, _, p, _ in listening)  # the HTTP proxy is in the tree
        assert len(listening) > 3  # and so are Ray's own (GCS, raylet, workers, agents)
        assert [s for s in listening if not _is_loopback(s[1])] == [], listening
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # stops Serve and Ray cleanly
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=60)
    assert proc.returncode == 0, err_path.read_text()[-3000:]


# ------------------------------------------------------------------ the fourth attacker pass (session 16)

def test_a_row_with_a_lone_surrogate_fails_alone(service):
    """Before: one "\\ud800" (legal JSON) made the worker message encoder raise: the whole request was a 500 and
    its other rows kept running on the workers after the client had its answer."""
    body = ('{"items": [{"completion": "7", "task": {"answer": "7"}}, {"completion": "\\ud800", "task": {}},'
            ' {"completion": "8", "task": {"answer": "\\udc80"}}]}').encode()
    req = urllib.request.Request(f"{service}/verify/echo", data=body,
                                 headers={"content-type": "application/json", "authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        status, reply = resp.status, json.loads(resp.read())
    assert status == 200 and len(reply["verdicts"]) == 3
    assert reply["verdicts"][0]["status"] == "ok"


def test_health_answers_head_and_stalled_uploads_do_not_stop_the_service(apps):
    """Before: five connections that sent headers and one byte of body filled Serve's five request slots for as
    long as they stayed open: /health and every request timed out."""
    main, _, port = apps
    with urllib.request.urlopen(urllib.request.Request(f"{main}/health", method="HEAD"), timeout=30) as resp:
        assert resp.status == 200
    stalled = []
    try:
        for _ in range(8):
            sock = socket.create_connection(("127.0.0.1", port), timeout=60)
            sock.sendall(raw_head("/verify/echo", "Content-Length: 100\r\n") + b"{")
            stalled.append(sock)
        time.sleep(0.5)
        t0 = time.monotonic()
        assert call(f"{main}/health", token=None, timeout=20)[0] == 200
        assert call(f"{main}/verify/echo", {"items": [{"completion": "1", "task": {"answer": "1"}}]},
                    timeout=20)[0] == 200
        assert time.monotonic() - t0 < 10
    finally:
        for sock in stalled:
            sock.close()


def test_a_stalled_body_gets_a_408(apps, monkeypatch):
    from raylign.engine.rewards import serve_guard

    async def app(scope, receive, send):
        await receive()
        raise AssertionError("the body never came: the guard answers first")

    async def run():
        sent = []
        guard = serve_guard.Guard(app, settings=(None, 1 << 20))
        scope = {"type": "http", "method": "POST", "path": "/verify/echo", "headers": [(b"content-length", b"9")]}

        async def receive():
            await asyncio.sleep(3600)

        async def send(message):
            sent.append(message)
        monkeypatch.setattr(serve_guard, "BODY_READ_S", 0.1)
        try:
            await guard(scope, receive, send)
        except Exception as exc:  # noqa: BLE001 - FastAPI turns this into the response
            return exc
    exc = asyncio.run(run())
    assert getattr(exc, "status_code", None) == 408


def test_websocket_connections_are_refused_by_the_guard():
    from raylign.engine.rewards.serve_guard import Guard

    async def app(scope, receive, send):
        raise AssertionError("no app code may see a websocket")

    async def run():
        sent = []

        async def receive():
            return {"type": "websocket.connect"}

        async def send(message):
            sent.append(message)
        await Guard(app, settings=("tok", 1 << 20))({"type": "websocket", "path": "/verify/echo", "headers": []},
                                                    receive, send)
        return sent
    assert asyncio.run(run()) == [{"type": "websocket.close", "code": 1008}]


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_a_body_cap_that_is_no_number_is_refused_at_once(value):
    proc = subprocess.run([RAYLIGN, "serve", "verifiers", "--max-body-mb", value], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and "--max-body-mb" in proc.stderr and "Traceback" not in proc.stderr


def test_requests_take_turns_on_the_workers():
    """Before: one first-come, first-served queue: a request of many slow rows held every later client behind
    all of them (eight ten-second programs kept a one-row math request waiting 19 s)."""
    from raylign.engine.rewards.serve_scorer import FairRows

    rows, started = FairRows(2), {}

    def slow(name):
        started[name] = time.monotonic()
        time.sleep(0.3)
        return name

    t0 = time.monotonic()
    hog = rows.submit(1, [(slow, (f"a{i}",)) for i in range(8)])
    time.sleep(0.05)
    quick = rows.submit(2, [(slow, ("b0",))])
    assert quick[0].result(timeout=10) == "b0"
    assert started["b0"] - t0 < 0.5  # after the two rows running, not after all eight
    assert [f.result(timeout=10) for f in hog] == [f"a{i}" for i in range(8)]
    busy = rows.submit(4, [(slow, ("d0",)), (slow, ("d1",))])  # both threads taken: the next rows wait
    time.sleep(0.1)
    cancelled = rows.submit(3, [(slow, ("c0",)), (slow, ("c1",))])
    assert all(f.cancel() for f in cancelled)  # still queued: a cancelled row is never run
    assert [f.result(timeout=10) for f in busy] == ["d0", "d1"]
    time.sleep(0.2)
    assert "c0" not in started and "c1" not in started
