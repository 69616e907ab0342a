"""The reward side of the engine: verifiers run as a service, never inside the training loop's process.

    fleet.py       RewardFleet: the driver's handle on CPU Ray actors, each owning a VerifierPool
    pool.py        VerifierPool: killable worker processes, a hard deadline per verification (no Ray)
    worker.py      the pool's child processes: the zygote that loads plugins once and the workers it forks
    verify_cmd.py  ``raylign verify NAME --input IN.jsonl``: a file scored through a VerifierPool (no Ray)
    serve.py       ``raylign serve verifiers``: every verifier over HTTP (Ray Serve), a VerifierPool per replica
    serve_*.py     the service's parts: app (routes), schema, guard (token, body cap), scorer (cancellation),
                   openrlhf (OpenRLHF's remote-reward protocol), loopback (Ray's ports)

``RewardFleet`` is imported lazily, so ``raylign verify`` (which reaches this package through
``verify_cmd``) starts without importing Ray.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from raylign.engine.rewards.fleet import RewardFleet

__all__ = ["RewardFleet"]


def __getattr__(name: str) -> Any:
    if name == "RewardFleet":
        from raylign.engine.rewards.fleet import RewardFleet
        return RewardFleet
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
