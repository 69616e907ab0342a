"""``raylign serve verifiers``: every registered verifier over HTTP (Ray Serve with a FastAPI ingress).

    raylign serve verifiers [--host 127.0.0.1] [--port 8000] [--workers 2] [--timeout 10]
                            [--token TOKEN] [--max-body-mb 8] [--max-items 1024]

Endpoints (JSON; the OpenAPI schema is at ``/openapi.json``, interactive docs at ``/docs``):

- ``GET /health`` → ``{"status": "ok", "verifiers": 5}``
- ``GET /verifiers`` → ``{"verifiers": ["code", "format", "math", ...]}``
- ``POST /verify/{name}`` with ``{"items": [{"completion": "... 42", "task": {"answer": "42"}}, ...]}``
  → ``{"verdicts": [{"reward": 1.0, "status": "ok", "error": null, "details": {...}}, ...]}``, in item order.
  ``task`` is the dataset row the verifier needs (``answer`` for math; ``tests`` / HumanEval fields /
  ``inputs``+``outputs`` for code). ``status`` is ``ok``, ``timeout`` (the hard deadline passed and the worker
  process was killed), ``error`` (the verifier raised or its process crashed; ``error`` says why) or
  ``invalid`` (the completion or task could not be judged). A timeout or error is reported, never turned into
  a silent zero.
- ``POST /openrlhf/{name}``: OpenRLHF's remote-reward protocol, for ``--reward.remote_url
  http://127.0.0.1:8000/openrlhf/math``: ``{"query": [...], "prompts": [...], "labels": [...]}`` →
  ``{"rewards": [...], "scores": [...], "extra_logs": {...}, "verdicts": [...]}``; each response is the query
  after its prompt, each label the reference answer or (a JSON object) the task row
  (:mod:`raylign.engine.rewards.serve_openrlhf`).
- An unknown verifier → ``404`` with ``{"detail": {"error": "unknown verifier ...", "known": [...]}}``;
  a malformed body → ``422`` whose ``detail`` lists each problem as ``{"loc", "msg", "type"}`` (where and what,
  never the offending input, at most ``serve_schema.MAX_PROBLEMS`` of them).

Example::

    curl -s localhost:8000/verify/math -H 'content-type: application/json' \\
         -d '{"items": [{"completion": "The answer is \\\\boxed{42}", "task": {"answer": "42"}}]}'

Hardening (issue 12):

- The HTTP port binds to loopback unless ``--host`` says otherwise, and a local Ray started by the command keeps
  its own ports (GCS, raylet, workers, agents) on loopback too (``serve_loopback.init_loopback_ray``). Joining
  a cluster (``RAY_ADDRESS``) leaves Ray's ports as that cluster has them.
- ``--token`` (or ``RAYLIGN_SERVE_TOKEN``): every request except ``GET /health`` needs
  ``Authorization: Bearer TOKEN``, else ``401`` (compared in constant time). Clients that cannot set headers
  (OpenRLHF's) put the token in the URL as Basic credentials: ``http://raylign:TOKEN@host:port/...``.
- A body over ``--max-body-mb`` is refused with ``413`` before it is read: from its ``Content-Length``, or by
  counting bytes as they stream in when there is none. More than ``--max-items`` items → ``413``.
- A body must arrive within ``BODY_READ_S`` of each of its pieces (else ``408``), and a replica holds up to
  ``MAX_ONGOING_REQUESTS`` requests: stalled uploads cannot take the service (and ``/health``) down. Ray Serve's
  proxy still reads a body before the replica's guard sees it: the cap bounds what the service parses and scores,
  not what the proxy buffers (a front that refuses early would have to replace Serve's proxy).
- A row that cannot be sent to a worker fails alone; a request whose rows failed or whose client went away stops
  its work (:meth:`VerifierPool.cancel` on the request's
  :class:`~raylign.engine.rewards.pool.Batch`): rows not started are dropped, and the worker processes running
  its rows are killed the way the pool kills a worker at the deadline (and replaced from the zygote).

Each replica owns a pool of killable verifier worker processes (``raylign.engine.rewards.pool``), so a
verifier that hangs or crashes costs one worker process, never the service.

This module is the command; the service is split by job:

    serve_app.py       the FastAPI routes on a Ray Serve deployment, build_app() and start()
    serve_schema.py    request/response bodies and the 422 that never echoes the input
    serve_guard.py     the ASGI guard: bearer token and body cap before anything is parsed
    serve_scorer.py    a request's rows on the replica's VerifierPool, cancelled when its client goes away
    serve_openrlhf.py  OpenRLHF's remote-reward protocol: its request to rows, verdicts to its reply
    serve_loopback.py  a local Ray, and each replica's gRPC port, on loopback
"""
from __future__ import annotations

import math
import os
import signal
import sys
import time

from ray import serve

from raylign.engine.config import RayConfig
from raylign.engine.rewards.serve_app import APP_NAME, DEFAULT_MAX_BODY_MB, DEFAULT_MAX_ITEMS, build_app, start
from raylign.engine.rewards.serve_loopback import init_loopback_ray, is_loopback

__all__ = ["build_app", "serve_command", "start"]

TOKEN_ENV = "RAYLIGN_SERVE_TOKEN"


def _interrupt(signum, frame):  # SIGTERM (systemd, Kubernetes, kill) stops as cleanly as Ctrl-C
    raise KeyboardInterrupt


def serve_command(args) -> int:
    from raylign.engine.cluster import init_ray

    token = getattr(args, "token", None) or os.environ.get(TOKEN_ENV) or None
    max_body_mb = getattr(args, "max_body_mb", DEFAULT_MAX_BODY_MB)
    max_items = getattr(args, "max_items", DEFAULT_MAX_ITEMS)
    if not (math.isfinite(max_body_mb) and max_body_mb > 0) or max_items < 1:
        print("raylign: error: --max-body-mb must be a finite number > 0 and --max-items >= 1", file=sys.stderr)
        return 2
    if token is None and not is_loopback(args.host):
        print(f"raylign: warning: serving on {args.host} without a token: anyone who reaches the port can use "
              f"it (set {TOKEN_ENV} or --token)", file=sys.stderr)
    joined = bool(os.environ.get("RAY_ADDRESS"))  # on a shared cluster, remove only our app at exit
    ray = init_ray(RayConfig()) if joined else init_loopback_ray(RayConfig())
    signal.signal(signal.SIGTERM, _interrupt)  # after Ray's start-up, which installs a handler that aborts
    try:
        t0 = time.monotonic()
        url = start(build_app(workers=args.workers, timeout_s=args.timeout, token=token, max_body_mb=max_body_mb,
                              max_items=max_items), args.host, args.port)
        auth = "bearer token required" if token else "no token"
        print(f"raylign: serving verifiers at {url} (API docs at {url}/docs; {auth}) after "
              f"{time.monotonic() - t0:.1f} s; Ctrl-C stops", file=sys.stderr)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        if joined:
            serve.delete(APP_NAME)
        else:
            serve.shutdown()
        ray.shutdown()
