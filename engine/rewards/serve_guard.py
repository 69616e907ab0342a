"""The verifier service's guard: bearer token and body-size cap, checked before FastAPI parses anything.

An ASGI middleware (:class:`Guard`) in front of the service's API; :func:`token_matches` compares a request's
``Authorization`` header with the service's token in constant time.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
from typing import Mapping

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers


def token_matches(authorization: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries the token: ``Bearer <token>``, or ``Basic`` credentials whose
    password is the token (any user name) for clients that cannot set headers but take ``http://user:TOKEN@...``
    URLs, such as OpenRLHF's reward client. Schemes are case-insensitive.

    Both sides are hashed first, so the comparison takes the same time whatever the length or content.
    """
    scheme, _, given = (authorization or "").partition(" ")
    scheme, secret = scheme.lower(), given.strip().encode("latin-1", "replace")  # the header's own bytes
    if scheme == "basic":
        try:
            secret = base64.b64decode(secret, validate=True).partition(b":")[2]  # user:password
        except binascii.Error:
            return False
    digest = hmac.compare_digest(hashlib.sha256(secret).digest(), hashlib.sha256(token.encode()).digest())
    return digest and scheme in ("bearer", "basic")


BODY_READ_S = 30.0  # the longest wait for the next piece of a request body (408 after it)


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


def _replica_settings() -> tuple[str | None, int]:
    """``(token, max_body_bytes)`` of the Serve replica this runs in (a :class:`VerifierService`)."""
    from ray import serve

    service = serve.get_replica_context().servable_object
    return service.token, service.max_body_bytes


class Guard:
    """ASGI middleware in front of the API: the bearer token, then the body-size cap, before anything is parsed.

    A body whose ``Content-Length`` is over the cap is refused at once (``413``, connection closed); one without
    a length (chunked) is counted as it streams in and refused as soon as the count passes the cap; a body whose
    next piece takes longer than ``BODY_READ_S`` is refused (``408``). WebSocket connections are refused (no route
    takes one).

    :param settings: ``(token or None, max_body_bytes)``; None reads them from the Serve replica this runs in
        (the :class:`VerifierService` instance), which is how one module-level app serves every configuration.
    """

    def __init__(self, app, settings: tuple[str | None, int] | None = None) -> None:
        self.app = app
        self._settings = settings

    def settings(self) -> tuple[str | None, int]:
        if self._settings is None:
            self._settings = _replica_settings()
        return self._settings

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "websocket":  # no route takes one: refused before any app code could see it
            await receive()
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token, limit = self.settings()
        headers = Headers(scope=scope)
        open_route = scope.get("method") in ("GET", "HEAD") and _route_path(scope) == "/health"
        if token is not None and not open_route and not token_matches(headers.get("authorization"), token):
            await _reply(scope, receive, send, 401, "missing or wrong bearer token "
                         "(send 'Authorization: Bearer TOKEN')", {"www-authenticate": "Bearer", "connection": "close"})
            return
        length = headers.get("content-length")
        if length is not None:
            if not length.strip().isdigit():
                await _reply(scope, receive, send, 400, "bad Content-Length", {"connection": "close"})
                return
            if int(length) > limit:
                await _reply(scope, receive, send, 413, _too_large(limit), {"connection": "close"})
                return
        seen, body_done = 0, False

        async def capped_receive():
            nonlocal seen, body_done
            if body_done:  # (after the body: a wait for the client's disconnect, which may last)
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), BODY_READ_S)
            except asyncio.TimeoutError:  # a stalled upload holds no slot for long
                raise HTTPException(408, detail=f"request body not sent within {BODY_READ_S:g} s",
                                    headers={"connection": "close"}) from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if seen > limit:  # FastAPI re-raises an HTTPException met while it reads the body
                    raise HTTPException(413, detail=_too_large(limit), headers={"connection": "close"})
            return message

        await self.app(scope, capped_receive, send)
