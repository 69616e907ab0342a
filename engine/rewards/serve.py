"""``raylign serve verifiers``: every registered verifier over HTTP (Ray Serve with a FastAPI ingress).

    raylign serve verifiers [--host 127.0.0.1] [--port 8000] [--workers 2] [--timeout 10]

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
- An unknown verifier → ``404`` with ``{"detail": {"error": "unknown verifier ...", "known": [...]}}``;
  a malformed body → ``422`` (FastAPI's validation error).

Example::

    curl -s localhost:8000/verify/math -H 'content-type: application/json' \\
         -d '{"items": [{"completion": "The answer is \\\\boxed{42}", "task": {"answer": "42"}}]}'

Each replica owns a pool of killable verifier worker processes (``raylign.engine.rewards.pool``), so a
verifier that hangs or crashes costs one worker process, never the service.
"""
from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from typing import Any, Literal, Mapping, Sequence

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field
from ray import serve

from raylign.engine.config import RayConfig, RewardsConfig
from raylign.engine.rewards.pool import VerifierPool, unknown_verifier

APP_NAME = "raylign-verifiers"
MAX_ITEMS = 10_000  # items per request


class VerifyItem(BaseModel):
    completion: str = Field(description="the model's text to score")
    task: dict[str, Any] = Field(default_factory=dict, description="the dataset row (answer, tests, ...)")


class VerifyRequest(BaseModel):
    items: list[VerifyItem] = Field(max_length=MAX_ITEMS, description="samples to score with one verifier")


class VerdictOut(BaseModel):
    reward: float = Field(description="the score (for status != ok: what the sample scores if kept)")
    status: Literal["ok", "timeout", "error", "invalid"]
    error: str | None = Field(default=None, description="why, when status != ok")
    details: dict[str, Any] = Field(default_factory=dict, description="verifier-specific details")


class VerifyResponse(BaseModel):
    verdicts: list[VerdictOut]


class VerifiersResponse(BaseModel):
    verifiers: list[str]


class HealthResponse(BaseModel):
    status: Literal["ok"]
    verifiers: int = Field(description="number of registered verifiers")


api = FastAPI(title="raylign verifiers", version="1",
              description="Score completions with raylign's registered verifiers under a hard deadline.")


@serve.deployment(name="VerifierService", ray_actor_options={"num_cpus": 0.5})
@serve.ingress(api)
class VerifierService:
    def __init__(self, pool_kwargs: Mapping[str, Any]) -> None:
        self.pool = VerifierPool(**pool_kwargs)
        self.names = self.pool.names()  # fail the replica now if a plugin does not load

    @api.get("/health", response_model=HealthResponse)
    def health(self) -> HealthResponse:
        return HealthResponse(status="ok", verifiers=len(self.names))

    @api.get("/verifiers", response_model=VerifiersResponse)
    def verifiers(self) -> VerifiersResponse:
        return VerifiersResponse(verifiers=self.names)

    @api.post("/verify/{name}", response_model=VerifyResponse,
              responses={404: {"description": "unknown verifier; `detail.known` lists the registered ones"}})
    async def verify(self, name: str, body: VerifyRequest) -> VerifyResponse:
        if name not in self.names:
            raise HTTPException(404, detail={"error": str(unknown_verifier(name, self.names)), "known": self.names})
        items = [(name, it.completion, it.task) for it in body.items]
        verdicts = await asyncio.to_thread(self.pool.verify_many, items)
        return VerifyResponse(verdicts=[VerdictOut(**v.to_dict()) for v in verdicts])


def build_app(workers: int = 2, timeout_s: float = 10.0, memory_mb: int | None = None,
              verifier_options: Mapping[str, Mapping[str, Any]] | None = None, plugins: Sequence[str] = (),
              entry_points: bool = True, num_replicas: int = 1):
    """The Serve application (pass it to ``serve.run``); arguments as in :class:`VerifierPool`."""
    pool_kwargs = {"workers": workers, "timeout_s": timeout_s,
                   "memory_mb": memory_mb if memory_mb is not None else RewardsConfig().memory_mb,
                   "verifier_options": {k: dict(v) for k, v in (verifier_options or {}).items()},
                   "plugins": [str(p) for p in plugins], "entry_points": entry_points}
    return VerifierService.options(num_replicas=num_replicas).bind(pool_kwargs)


def start(app, host: str = "127.0.0.1", port: int = 8000) -> str:
    """Start Serve's HTTP proxy on ``host:port`` in the connected Ray and deploy ``app``; returns the URL."""
    serve.start(http_options={"host": host, "port": port})
    serve.run(app, name=APP_NAME, route_prefix="/")
    return f"http://{host}:{port}"


def _interrupt(signum, frame):  # SIGTERM (systemd, Kubernetes, kill) stops as cleanly as Ctrl-C
    raise KeyboardInterrupt


def serve_command(args) -> int:
    from raylign.engine.cluster import init_ray

    signal.signal(signal.SIGTERM, _interrupt)
    joined = bool(os.environ.get("RAY_ADDRESS"))  # on a shared cluster, remove only our app at exit
    ray = init_ray(RayConfig())
    try:
        t0 = time.monotonic()
        url = start(build_app(workers=args.workers, timeout_s=args.timeout), args.host, args.port)
        print(f"raylign: serving verifiers at {url} (API docs at {url}/docs) after {time.monotonic() - t0:.1f} s; "
              "Ctrl-C stops", file=sys.stderr)
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
