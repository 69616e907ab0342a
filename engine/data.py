"""Reading datasets: plain text, JSONL, Parquet and saved HF dataset directories.

Errors name the file and line (JSONL) or the file and row (Parquet) and the field that is missing.
"""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Iterator, Sequence

from raylign.engine.errors import DataError

TEXT_SUFFIXES = (".txt", ".md")


def resolve_paths(paths: Sequence[str], base: Path | None = None) -> list[Path]:
    """Each entry is a file, a directory (its files, sorted) or a glob; relative to ``base`` if given."""
    out: list[Path] = []
    for entry in paths:
        p = Path(entry)
        if base is not None and not p.is_absolute():
            p = base / p
        if any(c in str(entry) for c in "*?["):
            matches = sorted(p.parent.glob(p.name))
            if not matches:
                raise DataError(f"data path {entry!r} matches no file")
            out.extend(matches)
        elif p.is_dir() and not _is_hf_dataset_dir(p):
            out.extend(sorted(f for f in p.iterdir() if f.is_file()))
        elif p.exists():
            out.append(p)
        else:
            raise DataError(f"data file {p} does not exist")
    return out


def _is_hf_dataset_dir(p: Path) -> bool:
    return p.is_dir() and ((p / "dataset_info.json").exists() or (p / "dataset_dict.json").exists())


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line; a malformed line fails with file:line."""
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
            yield lineno, obj


def _read_parquet(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from None
    for i, row in enumerate(table.to_pylist(), 1):
        yield i, row


def _read_hf_dir(path: Path, split: str = "") -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        import datasets
    except ImportError:
        raise DataError(f"{path} is a saved HF dataset; install the 'datasets' package to read it") from None
    ds = datasets.load_from_disk(str(path))
    if isinstance(ds, datasets.DatasetDict):
        if split and split not in ds:
            raise DataError(f"{path}: no split {split!r} (splits: {', '.join(ds)})")
        ds = ds[split or "train"] if (split or "train") in ds else next(iter(ds.values()))
    elif split:
        raise DataError(f"{path}: split {split!r} asked of a dataset that has no splits")
    for i, row in enumerate(ds, 1):
        yield i, dict(row)


def iter_records(path: Path, split: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (location, row) from a JSONL, Parquet or HF dataset source; location is 'file:line'. ``split``
    picks a saved DatasetDict's split (default: train, else the first); other sources have none."""
    if split and not _is_hf_dataset_dir(path):
        raise DataError(f"{path}: split {split!r} is only for saved HF datasets")
    if _is_hf_dataset_dir(path):
        for i, row in _read_hf_dir(path, split):
            yield f"{path}[row {i}]", row
    elif path.suffix == ".parquet":
        for i, row in _read_parquet(path):
            yield f"{path}[row {i}]", row
    elif path.suffix in (".jsonl", ".json"):
        for lineno, row in read_jsonl(path):
            yield f"{path}:{lineno}", row
    else:
        raise DataError(f"{path}: unsupported data format {path.suffix!r} (use .jsonl, .parquet or a saved HF dataset)")


def require(row: dict[str, Any], field: str, where: str, kind: type | tuple[type, ...] = str) -> Any:
    """``row[field]``, or a DataError naming the location and the missing or mistyped field."""
    if field not in row or row[field] is None:
        raise DataError(f"{where}: missing field {field!r} (fields present: {', '.join(row) or 'none'})")
    value = row[field]
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise DataError(f"{where}: field {field!r} must be {names}, got {type(value).__name__}")
    return value


def read_texts(paths: Sequence[str], base: Path | None = None, field: str = "text") -> list[str]:
    """Documents for pretraining: a text file is one document; JSONL/Parquet/HF rows give ``row[field]``."""
    docs: list[str] = []
    for path in resolve_paths(paths, base):
        if path.suffix in TEXT_SUFFIXES:
            docs.append(path.read_text(encoding="utf-8"))
            continue
        for where, row in iter_records(path):
            docs.append(require(row, field, where))
    if not docs:
        raise DataError(f"no documents found in {list(paths)}")
    return docs


def read_rows(paths: Sequence[str], base: Path | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(location, row) pairs from every source, in order."""
    rows = [(where, row) for path in resolve_paths(paths, base) for where, row in iter_records(path)]
    if not rows:
        raise DataError(f"no rows found in {list(paths)}")
    return rows


def split_holdout(items: list, fraction: float, seed: int) -> tuple[list, list]:
    """A deterministic (train, held-out) split; held-out gets at least one item when fraction > 0."""
    import random

    idx = list(range(len(items)))
    random.Random(seed).shuffle(idx)
    n_eval = max(1, int(round(len(items) * fraction))) if fraction > 0 and len(items) > 1 else 0
    held = sorted(idx[:n_eval])
    train = sorted(idx[n_eval:])
    return [items[i] for i in train], [items[i] for i in held]


# ---------------------------------------------------------------------------------------------- example order
# A stage's example stream is a pure function of the seed and the position, so a resumed run sees exactly the
# examples an uninterrupted one would: no step lost or repeated.


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The seeded permutation of ``range(n)`` for ``epoch``."""
    idx = list(range(n))
    random.Random(seed * 1_000_003 + epoch).shuffle(idx)
    return idx


def indices_at(n: int, pos: int, count: int, seed: int) -> list[int]:
    """``count`` example indices from position ``pos`` of the endless stream of per-epoch permutations."""
    out: list[int] = []
    while len(out) < count:
        epoch, offset = divmod(pos, n)
        order = epoch_order(n, seed, epoch)
        take = min(count - len(out), n - offset)
        out.extend(order[offset : offset + take])
        pos += take
    return out


def batch_indices(n: int, batch_size: int, step: int, seed: int) -> list[int]:
    """Indices of the examples of 0-based ``step``: consecutive slices of per-epoch permutations."""
    return indices_at(n, step * batch_size, batch_size, seed)
