"""Headless Chromium for the page tests, driven over the DevTools protocol (the ``websockets`` package Ray's
dependencies already bring; no browser-automation dependency).

``setup.sh`` installs Debian's ``chromium``; a machine without it fails these tests with that hint, unless the
run opts out by name: ``RAYLIGN_TEST_SKIP_BROWSER=1`` (then they skip).
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

EXECUTABLES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str:
    for name in EXECUTABLES:
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("RAYLIGN_TEST_SKIP_BROWSER"):
        pytest.skip("no Chromium (RAYLIGN_TEST_SKIP_BROWSER is set)")
    pytest.fail("no Chromium found: ./setup.sh installs Debian's `chromium` (apt); "
                "RAYLIGN_TEST_SKIP_BROWSER=1 skips the browser tests instead")


class Chromium:
    """One headless Chromium with one page; ``evaluate`` runs JavaScript in it, ``click`` and ``type`` send real
    input events, ``screenshot`` writes a PNG."""

    def __init__(self, workdir: Path, width: int = 1400, height: int = 1000):
        from websockets.sync.client import connect

        self.workdir = Path(workdir)
        profile = self.workdir / "chromium-profile"
        profile.mkdir(parents=True, exist_ok=True)
        args = [find_chromium(), "--headless=new", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
                "--disable-extensions", "--disable-background-networking", "--disable-sync", "--hide-scrollbars",
                "--mute-audio", "--remote-debugging-port=0", "--remote-allow-origins=*",
                f"--user-data-dir={profile}", f"--window-size={width},{height}", "about:blank"]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # Chromium refuses to run its sandbox as root
        port_file = profile / "DevToolsActivePort"
        port_file.unlink(missing_ok=True)  # a reused profile's file names the port of a Chromium that is gone
        self._log = open(self.workdir / "chromium.log", "w")
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"Chromium did not start:\n{(self.workdir / 'chromium.log').read_text()[-2000:]}")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            page = next(t for t in json.load(r) if t["type"] == "page")
        self.ws = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=30)
        self._id = 0
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=False)
        self.console: list[str] = []

    # ------------------------------------------------------------------------------------------ protocol
    def send(self, method: str, timeout: float = 60, **params: Any) -> dict[str, Any]:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if msg.get("method") == "Runtime.exceptionThrown":
                self.console.append(json.dumps(msg["params"]["exceptionDetails"])[:2000])
            elif msg.get("method") == "Runtime.consoleAPICalled" and msg["params"].get("type") == "error":
                self.console.append(" ".join(str(a.get("value", a.get("description", "")))
                                             for a in msg["params"].get("args", [])))

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (awaited when it is a promise)."""
        out = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in out:
            raise RuntimeError(f"{expression[:200]}: {out['exceptionDetails']}")
        return out["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60, what: str = "") -> Any:
        """Poll until ``expression`` is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what or expression}; page errors: {self.console}")
            time.sleep(0.1)

    # ------------------------------------------------------------------------------------------ actions
    def goto(self, url: str, ready: str = "document.body && document.body.dataset.ready === '1'",
             timeout: float = 60) -> None:
        self.send("Page.navigate", url="about:blank")  # the previous page stops (and stops polling) first
        self.wait_for("location.href === 'about:blank' && document.readyState === 'complete'", timeout)
        self.console = []  # errors from here on are this page's
        self.send("Page.navigate", url=url)
        self.wait_for(f"location.href === {json.dumps(url)} && document.readyState === 'complete' && ({ready})",
                      timeout, f"{url} to load")

    def click(self, selector: str) -> None:
        """A real mouse click at the middle of the first element ``selector`` matches."""
        box = self.evaluate(f"""(() => {{ const e = document.querySelector({json.dumps(selector)});
            e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect();
            return [r.left + r.width / 2, r.top + r.height / 2]; }})()""")
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)

    def type(self, selector: str, text: str) -> None:
        """Focus the element and type ``text`` into it (an input event, as from a keyboard)."""
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        self.send("Input.insertText", text=text)

    def screenshot(self, path: Path, full_page: bool = True) -> Path:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.send("Page.getLayoutMetrics")["cssContentSize"]
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})
        data = base64.b64decode(self.send("Page.captureScreenshot", **params)["data"])
        Path(path).write_bytes(data)
        return Path(path)

    def close(self) -> None:
        try:
            if getattr(self, "ws", None) is not None:
                self.ws.close()
        finally:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=30)
            self._log.close()


def start_view(raylign: str, run_dir: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """``raylign view RUN_DIR --port 0`` in its own session; returns it and the URL it printed."""
    out = open(log, "w")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([raylign, "view", str(run_dir), "--port", "0"], stdout=out, stderr=subprocess.STDOUT,
                            env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while True:
        text = Path(log).read_text()
        if " at http://" in text:
            return proc, text.split(" at ", 1)[1].split()[0]
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            raise RuntimeError(f"raylign view did not start ({proc.returncode}):\n{text[-2000:]}")
        time.sleep(0.05)


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=20)
