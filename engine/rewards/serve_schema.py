"""The verifier service's request and response bodies, and its 422 that never echoes the input."""
from __future__ import annotations

from typing import Any, Literal

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

MAX_PROBLEMS = 10  # validation problems listed in a 422


class AsciiJSONResponse(JSONResponse):
    """JSON with ASCII escapes: a lone surrogate in a verdict's details (a completion may hold one, JSON allows it)
    is written as its escape instead of failing the whole response."""

    def render(self, content: Any) -> bytes:
        import json
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


class VerifyItem(BaseModel):
    completion: str = Field(description="the model's text to score")
    task: dict[str, Any] = Field(default_factory=dict, description="the dataset row (answer, tests, ...)")


MAX_ITEMS_PARSED = 100_000  # items any request may hold, checked while it is parsed (--max-items is checked after)


class VerifyRequest(BaseModel):
    items: list[VerifyItem] = Field(description="samples to score with one verifier (at most --max-items)",
                                    max_length=MAX_ITEMS_PARSED)


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
    return AsciiJSONResponse({"detail": detail}, status_code=422)
