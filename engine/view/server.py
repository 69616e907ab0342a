"""``raylign view RUN``: a local page over a run directory, live while the run writes it.

A stdlib HTTP server bound to 127.0.0.1 (never another address) serves a static page (``static/``: plain HTML,
CSS and JS; the charts are inline SVG drawn by the page; nothing is fetched from elsewhere) and JSON endpoints
the page polls:

    GET /api/run                                the pipeline: each stage's status, final metrics, probe answers
    GET /api/metrics?since=N&generation=G       metrics.jsonl rows after the first N (all when G is stale)
    GET /api/rollouts/<stage>/index             the stage's whole rollout blocks (step, kind, summary)
    GET /api/rollouts/<stage>?step=S&kind=K     one block's records
    GET /api/rollouts/<stage>/prompt?kind=K&group=I   group I of every K block (an eval prompt step by step)
"""
from __future__ import annotations

import json
import mimetypes
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from raylign.engine.view.rundir import RunDir

STATIC = Path(__file__).with_name("static")
HOST = "127.0.0.1"
LOCAL_NAMES = {"127.0.0.1", "localhost", "[::1]"}  # Host headers a browser on this machine sends


class _Handler(BaseHTTPRequestHandler):
    run: RunDir  # set on the subclass made per server
    server_version = "raylign-view"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the page polls every few seconds
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if _host_name(self.headers.get("Host") or "") not in LOCAL_NAMES:  # a page on another site reaching us through DNS rebinding: not served
            return self._error(403, "forbidden: open the page at http://127.0.0.1:PORT/")
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        path = unquote(url.path)
        try:
            if path in ("/", "/index.html"):
                return self._file(STATIC / "index.html")
            if path.startswith("/static/"):
                name = path[len("/static/"):]
                if "/" in name or name.startswith("."):
                    return self._error(404, "not found")
                return self._file(STATIC / name)
            if path == "/api/run":
                return self._json(self.run.run())
            if path == "/api/metrics":
                gen = query.get("generation")
                return self._json(self.run.metrics_since(int(query.get("since", 0)), int(gen) if gen else None))
            if path.startswith("/api/rollouts/"):
                return self._rollouts(path[len("/api/rollouts/"):], query)
            return self._error(404, "not found")
        except (ValueError, KeyError) as exc:
            return self._error(400, f"bad request: {exc}")
        except (BrokenPipeError, ConnectionResetError):
            return None

    def _rollouts(self, rest: str, query: dict[str, str]) -> None:
        parts = rest.split("/")
        stage = parts[0]
        if not stage or stage not in self.run.rollout_stages():
            if len(parts) > 1 and parts[1] == "index":
                return self._json({"stage": stage, "generation": 0, "blocks": []})
            return self._error(404, f"no rollouts for stage {stage!r}")
        if len(parts) == 1:
            return self._json({"records": self.run.rollouts(stage, int(query["step"]), query.get("kind", "train"))})
        if parts[1] == "index":
            return self._json(self.run.rollout_index(stage))
        if parts[1] == "prompt":
            return self._json({"records": self.run.prompt_history(stage, query.get("kind", "eval"),
                                                                  int(query["group"]))})
        return self._error(404, "not found")

    def _send(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, obj: Any) -> None:
        self._send(200, json.dumps(obj, allow_nan=False).encode(), "application/json")

    def _file(self, path: Path) -> None:
        if not path.is_file():
            return self._error(404, "not found")
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        self._send(200, path.read_bytes(), f"{ctype}; charset=utf-8" if ctype.startswith("text/") or
                   ctype.endswith("javascript") else ctype)

    def _error(self, code: int, message: str) -> None:
        self._send(code, json.dumps({"error": message}).encode(), "application/json")


def _host_name(header: str) -> str:
    """A Host header without its port ("[::1]:8765" -> "[::1]", "localhost:8765" -> "localhost")."""
    return header.split("]")[0] + "]" if header.startswith("[") else header.split(":")[0]


def make_server(run_dir: Path, port: int = 0) -> ThreadingHTTPServer:
    """The page's server over ``run_dir`` on 127.0.0.1:``port`` (0 = any free port); not yet serving."""
    handler = type("Handler", (_Handler,), {"run": RunDir(run_dir)})
    server = ThreadingHTTPServer((HOST, port), handler)
    server.daemon_threads = True
    return server


def serve_in_thread(run_dir: Path, port: int = 0) -> tuple[ThreadingHTTPServer, str]:
    """Start the server in a daemon thread; returns it and its URL (``server.shutdown()`` stops it)."""
    server = make_server(run_dir, port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://{HOST}:{server.server_address[1]}/"


def view_command(args) -> int:
    from raylign.engine.errors import ConfigError
    from raylign.engine.view.rundir import find_run_dir

    run_dir = find_run_dir(args.run)
    if not run_dir.is_dir():
        raise ConfigError(f"raylign view: {args.run} is not a run directory (nor is runs/{args.run})")
    try:
        server = make_server(run_dir, args.port)
    except OSError as exc:
        raise ConfigError(f"raylign view: cannot listen on {HOST}:{args.port}: {exc.strerror or exc}") from None
    url = f"http://{HOST}:{server.server_address[1]}/"
    print(f"raylign view: {run_dir} at {url}  (Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("raylign view: stopped", file=sys.stderr)
    finally:
        server.server_close()
    return 0
