"""The verifier service's HTTP application: a Ray Serve deployment with a FastAPI ingress, and how to start it.

The routes are documented in :mod:`raylign.engine.rewards.serve` (and served as ``/openapi.json``). Each replica
owns a :class:`VerifierPool` of killable worker processes, so a verifier that hangs or crashes costs one worker
process, never the service.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from ray import serve

from raylign.engine.config import RewardsConfig
from raylign.engine.rewards.pool import VerifierPool, unknown_verifier
from raylign.engine.rewards.serve_guard import Guard
from raylign.engine.rewards.serve_loopback import keep_replica_grpc_on_loopback
from raylign.engine.rewards.serve_openrlhf import OpenRLHFRequest, OpenRLHFResponse, to_items, to_response
from raylign.engine.rewards.serve_schema import (AsciiJSONResponse, HealthResponse, VerdictOut, VerifiersResponse,
                                                 VerifyRequest, VerifyResponse, validation_error)
from raylign.engine.rewards.serve_scorer import CancellableScorer

APP_NAME = "raylign-verifiers"
DEFAULT_MAX_BODY_MB = 8.0  # request body cap
DEFAULT_MAX_ITEMS = 1024  # items per request

api = FastAPI(title="raylign verifiers", version="1", default_response_class=AsciiJSONResponse,
              description="Score completions with raylign's registered verifiers under a hard deadline. "
                          "When the service has a token, every endpoint except `GET /health` needs "
                          "`Authorization: Bearer TOKEN` (or Basic credentials whose password is the token, "
                          "e.g. `http://raylign:TOKEN@host:port/...`, for clients that cannot set headers).")
api.add_middleware(Guard)  # before serve.ingress freezes a copy of the app
api.add_exception_handler(RequestValidationError, validation_error)

_REFUSALS = {401: {"description": "missing or wrong bearer token (when the service has one)"},
             413: {"description": "body over --max-body-mb, or more items than --max-items"},
             422: {"description": "malformed body: where and what, never the input"}}
_VERIFY_REFUSALS = {404: {"description": "unknown verifier; `detail.known` lists the registered ones"}, **_REFUSALS}


MAX_ONGOING_REQUESTS = 256  # requests a replica holds at once (Serve's default, 5, let five stalled uploads stop
# the service, /health included); the scoring work itself is bounded by the pool's workers


@serve.deployment(name="VerifierService", ray_actor_options={"num_cpus": 0.5},
                  max_ongoing_requests=MAX_ONGOING_REQUESTS)
@serve.ingress(api)
class VerifierService:
    def __init__(self, pool_kwargs: Mapping[str, Any], token: str | None = None,
                 max_body_bytes: int = int(DEFAULT_MAX_BODY_MB * (1 << 20)),
                 max_items: int = DEFAULT_MAX_ITEMS) -> None:
        self.token, self.max_body_bytes, self.max_items = token, int(max_body_bytes), int(max_items)
        keep_replica_grpc_on_loopback()
        self.pool = VerifierPool(**pool_kwargs)
        self.names = self.pool.names()  # fail the replica now if a plugin does not load
        self.scorer = CancellableScorer(self.pool, int(pool_kwargs.get("workers", 2)))

    @api.api_route("/health", methods=["GET", "HEAD"], response_model=HealthResponse)
    def health(self) -> HealthResponse:
        return HealthResponse(status="ok", verifiers=len(self.names))

    @api.get("/verifiers", response_model=VerifiersResponse, responses={401: _REFUSALS[401]})
    def verifiers(self) -> VerifiersResponse:
        return VerifiersResponse(verifiers=self.names)

    @api.post("/verify/{name}", response_model=VerifyResponse, responses=_VERIFY_REFUSALS)
    async def verify(self, name: str, body: VerifyRequest, request: Request) -> Any:
        self._check(name, len(body.items))
        verdicts = await self.scorer.score([(name, it.completion, it.task) for it in body.items], request)
        if verdicts is None:  # nobody is listening any more
            return Response(status_code=499)
        return VerifyResponse(verdicts=[VerdictOut(**v.to_dict()) for v in verdicts])

    @api.post("/openrlhf/{name}", response_model=OpenRLHFResponse, responses=_VERIFY_REFUSALS,
              summary="OpenRLHF's remote-reward protocol (--reward.remote_url)")
    async def openrlhf(self, name: str, body: OpenRLHFRequest, request: Request) -> Any:
        """``{"query", "prompts", "labels"}`` in, ``{"rewards", "scores", "extra_logs"}`` out, one per query.

        The response is the part of each query after its prompt; a label that is a JSON object is the task row,
        any other label the reference answer (see ``raylign.engine.rewards.serve_openrlhf``).
        """
        self._check(name, len(body.query))
        verdicts = await self.scorer.score(to_items(name, body), request)
        if verdicts is None:
            return Response(status_code=499)
        return to_response(verdicts)

    def _check(self, name: str, rows: int) -> None:
        """404 for an unknown verifier, 413 for too many rows."""
        if name not in self.names:
            shown = name if len(name) <= 64 else name[:64] + "..."
            raise HTTPException(404, detail={"error": str(unknown_verifier(shown, self.names)), "known": self.names})
        if rows > self.max_items:
            raise HTTPException(413, detail=f"{rows} items in one request; the limit is {self.max_items} "
                                            "(--max-items)")


def build_app(workers: int = 2, timeout_s: float = 10.0, memory_mb: int | None = None,
              verifier_options: Mapping[str, Mapping[str, Any]] | None = None, plugins: Sequence[str] = (),
              entry_points: bool = True, num_replicas: int = 1, token: str | None = None,
              max_body_mb: float = DEFAULT_MAX_BODY_MB, max_items: int = DEFAULT_MAX_ITEMS):
    """The Serve application (pass it to ``serve.run``); pool arguments as in :class:`VerifierPool`.

    :param token: when set, every request except ``GET /health`` needs ``Authorization: Bearer <token>``.
    :param max_body_mb: request bodies over this many MiB are refused (413) before they are read.
    :param max_items: requests with more items are refused (413).
    """
    if token is not None and not token:
        raise ValueError("an empty token would let everyone in; pass None for no token")
    import math
    if not (math.isfinite(max_body_mb) and max_body_mb > 0) or max_items < 1:
        raise ValueError(f"max_body_mb must be a finite number > 0 and max_items >= 1, got {max_body_mb}, {max_items}")
    pool_kwargs = {"workers": workers, "timeout_s": timeout_s,
                   "memory_mb": memory_mb if memory_mb is not None else RewardsConfig().memory_mb,
                   "verifier_options": {k: dict(v) for k, v in (verifier_options or {}).items()},
                   "plugins": [str(p) for p in plugins], "entry_points": entry_points}
    return VerifierService.options(num_replicas=num_replicas).bind(
        pool_kwargs, token=token, max_body_bytes=int(max_body_mb * (1 << 20)), max_items=int(max_items))


def start(app, host: str = "127.0.0.1", port: int = 8000, name: str = APP_NAME, route_prefix: str = "/") -> str:
    """Start Serve's HTTP proxy on ``host:port`` in the connected Ray and deploy ``app``; returns the URL."""
    serve.start(http_options={"host": host, "port": port})
    serve.run(app, name=name, route_prefix=route_prefix)
    return f"http://{host}:{port}{route_prefix.rstrip('/')}"
