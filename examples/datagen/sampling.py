"""Drawing disjoint task sets (SFT, RL, eval) from one random stream."""
from __future__ import annotations

from typing import Callable, Hashable, Iterable, TypeVar

T = TypeVar("T")


def distinct_parts(draw: Callable[[], T], sizes: Iterable[int], key: Callable[[T], Hashable] = lambda x: x,
                   seen: Iterable = ()) -> list[list[T]]:
    """One list per size, filled with draw() in order, skipping any item whose key is in `seen` or was already
    taken: no key twice within or across the lists."""
    taken = {key(x) for x in seen}
    parts = []
    for n in sizes:
        part: list[T] = []
        while len(part) < n:
            item = draw()
            if key(item) not in taken:
                taken.add(key(item))
                part.append(item)
        parts.append(part)
    return parts
