"""Model directories through Ray's object store, so that no actor reads the driver's (or learner's) filesystem.

    files = put_model_dir(model_dir)        # driver: every file read once, one ObjectRef per file
    local = materialise(files)              # inside an actor, on any node: a fresh local temp dir
    llm = vllm.LLM(model=str(local), ...)
    drop_weight_files(local)                # the engine holds the weights; later ones come by weight sync

A multi-node cluster need not share a disk: the driver reads the model directory where it was written and the
actors get its bytes from the object store, fetched to their own node. Each file is its own object, so the driver
holds one file's bytes at a time while putting them, and an actor fetches the files it writes one by one.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")  # weight files, dropped once an engine has loaded them


def put_model_dir(model_dir: str | Path) -> dict[str, Any]:
    """The files of ``model_dir`` as ``{name: ObjectRef of its bytes}`` (Ray must be running). Top level only: an
    HF model directory keeps everything an engine loads there, and subfolders (e.g. a repository's ``original/``
    weights) would only be shipped for nothing."""
    import ray

    return {p.name: ray.put(p.read_bytes()) for p in sorted(Path(model_dir).iterdir()) if p.is_file()}


def materialise(files: Mapping[str, Any], prefix: str = "raylign-model-") -> Path:
    """Write :func:`put_model_dir`'s files (ObjectRefs, or bytes) into a new directory under the node's temp dir."""
    import ray

    local = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        for rel, data in files.items():
            target = local / rel
            if local.resolve() not in target.resolve().parents:
                raise ValueError(f"model file {rel!r} lies outside the model directory")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(ray.get(data) if isinstance(data, ray.ObjectRef) else data)
    except BaseException:
        shutil.rmtree(local, ignore_errors=True)
        raise
    return local


def ship_model_option(options: Mapping[str, Any], key: str = "model") -> dict[str, Any]:
    """``options`` with ``options[key]``, when it names a directory here, replaced by :func:`put_model_dir`'s files
    (what an actor passes to :func:`materialise`); any other value (a hub id, files already put) is kept."""
    out = dict(options)
    if isinstance(out.get(key), (str, Path)) and Path(out[key]).is_dir():
        out[key] = put_model_dir(out[key])
    return out


def drop_weight_files(local: str | Path) -> None:
    """Delete the weight files of a materialised directory, keeping config and tokenizer files (small, and read
    again by some libraries). A SIGKILLed actor cannot clean up after itself, so the large files go early."""
    for p in Path(local).rglob("*"):
        if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES):
            p.unlink(missing_ok=True)
