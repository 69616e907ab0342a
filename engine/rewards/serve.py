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
- An unknown verifier → ``404`` with ``{"detail": {"error": "unknown verifier ...", "known": [...]}}``;
  a malformed body → ``422`` whose ``detail`` lists each problem as ``{"loc", "msg", "type"}`` (where and what,
  never the offending input, at most :data:`MAX_PROBLEMS` of them).

Example::

    curl -s localhost:8000/verify/math -H 'content-type: application/json' \\
         -d '{"items": [{"completion": "The answer is \\\\boxed{42}", "task": {"answer": "42"}}]}'

Hardening (issue 12):

- The HTTP port binds to loopback unless ``--host`` says otherwise, and a local Ray started by the command keeps
  its own ports (GCS, raylet, workers, agents) on loopback too (:func:`init_loopback_ray`). Joining a cluster
  (``RAY_ADDRESS``) leaves Ray's ports as that cluster has them.
- ``--token`` (or ``RAYLIGN_SERVE_TOKEN``): every request except ``GET /health`` needs
  ``Authorization: Bearer TOKEN``, else ``401`` (compared in constant time).
- A body over ``--max-body-mb`` is refused with ``413`` before it is read: from its ``Content-Length``, or by
  counting bytes as they stream in when there is none. More than ``--max-items`` items → ``413``.
- A request whose client goes away stops its work (:meth:`VerifierPool.cancel` on the request's
  :class:`~raylign.engine.rewards.pool.Batch`): rows not started are dropped, and the worker processes running
  its rows are killed the way the pool kills a worker at the deadline (and replaced from the zygote).

Each replica owns a pool of killable verifier worker processes (``raylign.engine.rewards.pool``), so a
verifier that hangs or crashes costs one worker process, never the service.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import os
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, Mapping, Sequence

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from ray import serve
from starlette.datastructures import Headers

from raylign.engine.config import RayConfig, RewardsConfig
from raylign.engine.rewards.pool import Batch, Item, VerifierPool, unknown_verifier
from raylign.engine.types import Verdict

APP_NAME = "raylign-verifiers"
TOKEN_ENV = "RAYLIGN_SERVE_TOKEN"
DEFAULT_MAX_BODY_MB = 8.0  # request body cap
DEFAULT_MAX_ITEMS = 1024  # items per request
MAX_PROBLEMS = 10  # validation problems listed in a 422
DISCONNECT_POLL_S = 0.25  # how often a running request checks that its client is still there

logger = logging.getLogger("ray.serve")


class VerifyItem(BaseModel):
    completion: str = Field(description="the model's text to score")
    task: dict[str, Any] = Field(default_factory=dict, description="the dataset row (answer, tests, ...)")


class VerifyRequest(BaseModel):
    items: list[VerifyItem] = Field(description="samples to score with one verifier (at most --max-items)")


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


# ------------------------------------------------------------------ the guard: token and body cap, before FastAPI

def token_matches(authorization: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer <token>`` (scheme case-insensitive).

    Both sides are hashed first, so the comparison takes the same time whatever the length or content.
    """
    scheme, _, given = (authorization or "").partition(" ")
    digest = hmac.compare_digest(hashlib.sha256(given.strip().encode("latin-1", "replace")).digest(),
                                 hashlib.sha256(token.encode()).digest())
    return digest and scheme.lower() == "bearer"


def _too_large(limit: int) -> str:
    return f"request body over the limit of {limit} bytes (--max-body-mb)"


async def _reply(scope, receive, send, status: int, detail: str, headers: Mapping[str, str] | None = None) -> None:
    await JSONResponse({"detail": detail}, status_code=status, headers=dict(headers or {}))(scope, receive, send)


def _route_path(scope) -> str:
    """The request path inside the application (without the Serve route prefix, if the scope carries it)."""
    path, root = scope.get("path", "/"), scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):] or "/"
    return path


class Guard:
    """ASGI middleware in front of the API: the bearer token, then the body-size cap, before anything is parsed.

    A body whose ``Content-Length`` is over the cap is refused at once (``413``, connection closed); one without
    a length (chunked) is counted as it streams in and refused as soon as the count passes the cap.

    :param settings: ``(token or None, max_body_bytes)``; None reads them from the Serve replica this runs in
        (the :class:`VerifierService` instance), which is how one module-level app serves every configuration.
    """

    def __init__(self, app, settings: tuple[str | None, int] | None = None) -> None:
        self.app = app
        self._settings = settings

    def settings(self) -> tuple[str | None, int]:
        if self._settings is None:
            service = serve.get_replica_context().servable_object
            self._settings = (service.token, service.max_body_bytes)
        return self._settings

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token, limit = self.settings()
        headers = Headers(scope=scope)
        open_route = scope.get("method") in ("GET", "HEAD") and _route_path(scope) == "/health"
        if token is not None and not open_route and not token_matches(headers.get("authorization"), token):
            await _reply(scope, receive, send, 401, "missing or wrong bearer token "
                         "(send 'Authorization: Bearer TOKEN')", {"www-authenticate": "Bearer"})
            return
        length = headers.get("content-length")
        if length is not None:
            if not length.strip().isdigit():
                await _reply(scope, receive, send, 400, "bad Content-Length", {"connection": "close"})
                return
            if int(length) > limit:
                await _reply(scope, receive, send, 413, _too_large(limit), {"connection": "close"})
                return
        seen = 0

        async def capped_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:  # FastAPI re-raises an HTTPException met while it reads the body
                    raise HTTPException(413, detail=_too_large(limit), headers={"connection": "close"})
            return message

        await self.app(scope, capped_receive, send)


def _loc_part(part: Any) -> Any:
    return part if isinstance(part, int) else str(part)[:64]


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 that names each problem's place and kind, never the input (FastAPI's default echoes it back)."""
    errors = exc.errors()
    detail: list[Any] = [{"loc": [_loc_part(p) for p in err.get("loc", ())][:16],
                          "msg": str(err.get("msg", "invalid"))[:200], "type": str(err.get("type", ""))[:64]}
                         for err in errors[:MAX_PROBLEMS]]
    if len(errors) > MAX_PROBLEMS:
        detail.append({"loc": [], "msg": f"... and {len(errors) - MAX_PROBLEMS} more problems", "type": "more"})
    return JSONResponse({"detail": detail}, status_code=422)


# ------------------------------------------------------------------ rows a request can abandon

class CancellableScorer:
    """Scores a request's rows on a :class:`VerifierPool` so that an abandoned request stops costing anything.

    Rows are separate tasks on a thread per pool worker, all in one :class:`Batch`. :meth:`score` returns the
    verdicts in order, or None when the client went away (polled) or the handler is cancelled (Serve cancels it
    when the client disconnects); then the batch is cancelled through :meth:`VerifierPool.cancel`: the rows not
    started are dropped and the workers running this request's rows are killed (and replaced from the zygote).
    """

    def __init__(self, pool: VerifierPool, threads: int) -> None:
        self.pool = pool
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="serve-verifier")

    async def score(self, items: Sequence[Item], request: Request | None = None) -> list[Verdict] | None:
        job = Batch()
        loop = asyncio.get_running_loop()
        futures = [loop.run_in_executor(self._executor, self.pool.verify, *item, job) for item in items]
        batch = asyncio.gather(*futures)
        watch = asyncio.ensure_future(_client_gone(request))
        try:
            await asyncio.wait({batch, watch}, return_when=asyncio.FIRST_COMPLETED)
            if batch.done():
                return batch.result()
            return None
        finally:
            why = "its client disconnected" if watch.done() else "it was cancelled"
            watch.cancel()
            if not batch.done():
                self.pool.cancel(job)
                for future in futures:
                    future.cancel()  # rows still queued are never started
                batch.cancel()
                batch.add_done_callback(lambda f: f.cancelled() or f.exception())
                logger.info("raylign: a request was abandoned (%s): %d of its %d rows never started, %d running "
                            "rows were killed", why, len(items) - job.started, len(items), job.killed)


async def _client_gone(request: Request | None) -> None:
    """Returns once the HTTP client has disconnected (never, without a request)."""
    while True:
        if request is not None and await request.is_disconnected():
            return
        await asyncio.sleep(DISCONNECT_POLL_S)


# ------------------------------------------------------------------ loopback

def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def keep_replica_grpc_on_loopback() -> bool:
    """On a loopback-only node, bind this Serve replica's inter-deployment gRPC server to loopback too.

    Ray Serve 2.60 binds it to ``[::]:0`` (every interface) whatever the node address, though it advertises the
    node address to its callers; call this in the replica before Serve finishes initialising it. Changes nothing
    on a node with a routable address (a cluster) or where Ray's code differs; returns whether it applied.
    """
    import ray

    try:
        from ray.serve._private import replica as replica_module
    except ImportError:
        return False
    original = getattr(replica_module, "add_port_to_grpc_server", None)
    node_ip = ray.util.get_node_ip_address()
    if original is None or getattr(original, "raylign_loopback", False) or not is_loopback(node_ip):
        return False
    host = f"[{node_ip}]" if ":" in node_ip else node_ip

    def add_port_to_grpc_server(server, address: str):
        if address.startswith("[::]:") or address.startswith("0.0.0.0:"):
            address = f"{host}:{address.rsplit(':', 1)[1]}"
        return original(server, address)

    add_port_to_grpc_server.raylign_loopback = True
    replica_module.add_port_to_grpc_server = add_port_to_grpc_server
    return True


# ------------------------------------------------------------------ the API
# (everything the service's methods use is defined above: serve.ingress pickles a copy of them, with the
# module globals they name, when the class is defined)

api = FastAPI(title="raylign verifiers", version="1",
              description="Score completions with raylign's registered verifiers under a hard deadline. "
                          "When the service has a token, every endpoint except `GET /health` needs "
                          "`Authorization: Bearer TOKEN`.")
api.add_middleware(Guard)  # before serve.ingress freezes a copy of the app
api.add_exception_handler(RequestValidationError, validation_error)

_REFUSALS = {401: {"description": "missing or wrong bearer token (when the service has one)"},
             413: {"description": "body over --max-body-mb, or more items than --max-items"},
             422: {"description": "malformed body: where and what, never the input"}}


@serve.deployment(name="VerifierService", ray_actor_options={"num_cpus": 0.5})
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

    @api.get("/health", response_model=HealthResponse)
    def health(self) -> HealthResponse:
        return HealthResponse(status="ok", verifiers=len(self.names))

    @api.get("/verifiers", response_model=VerifiersResponse, responses={401: _REFUSALS[401]})
    def verifiers(self) -> VerifiersResponse:
        return VerifiersResponse(verifiers=self.names)

    @api.post("/verify/{name}", response_model=VerifyResponse,
              responses={404: {"description": "unknown verifier; `detail.known` lists the registered ones"},
                         **_REFUSALS})
    async def verify(self, name: str, body: VerifyRequest, request: Request) -> Any:
        if name not in self.names:
            shown = name if len(name) <= 64 else name[:64] + "..."
            raise HTTPException(404, detail={"error": str(unknown_verifier(shown, self.names)), "known": self.names})
        if len(body.items) > self.max_items:
            raise HTTPException(413, detail=f"{len(body.items)} items in one request; the limit is "
                                            f"{self.max_items} (--max-items)")
        verdicts = await self.scorer.score([(name, it.completion, it.task) for it in body.items], request)
        if verdicts is None:  # nobody is listening any more
            return Response(status_code=499)
        return VerifyResponse(verdicts=[VerdictOut(**v.to_dict()) for v in verdicts])


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
    if max_body_mb <= 0 or max_items < 1:
        raise ValueError(f"max_body_mb must be > 0 and max_items >= 1, got {max_body_mb}, {max_items}")
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


# ------------------------------------------------------------------ the command

def init_loopback_ray(cfg: RayConfig):
    """Start a local Ray whose own ports (GCS, raylet, object manager, workers, agents) listen on loopback only.

    Ray derives every bind address from the node IP; on Linux it rewrites ``_node_ip_address="127.0.0.1"`` to
    the routable address unless its single-machine mode is on (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, read
    when Ray is imported, hence the module constant too). Returns the ``ray`` module; says so on stderr when
    Ray still ended up on another address.
    """
    from raylign.engine.cluster import init_ray

    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    try:
        from ray._private import ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = False
    except (ImportError, AttributeError):  # another Ray version: checked below
        pass
    ray = init_ray(cfg)
    node_ip = ray.util.get_node_ip_address()
    if not is_loopback(node_ip):
        print(f"raylign: warning: Ray's own ports listen on {node_ip}, not only on loopback "
              "(this Ray version does not allow a loopback node)", file=sys.stderr)
    return ray


def _interrupt(signum, frame):  # SIGTERM (systemd, Kubernetes, kill) stops as cleanly as Ctrl-C
    raise KeyboardInterrupt


def serve_command(args) -> int:
    from raylign.engine.cluster import init_ray

    token = getattr(args, "token", None) or os.environ.get(TOKEN_ENV) or None
    max_body_mb = getattr(args, "max_body_mb", DEFAULT_MAX_BODY_MB)
    max_items = getattr(args, "max_items", DEFAULT_MAX_ITEMS)
    if max_body_mb <= 0 or max_items < 1:
        print("raylign: error: --max-body-mb must be > 0 and --max-items >= 1", file=sys.stderr)
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
