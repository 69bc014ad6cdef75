"""Watermarks: which (origin, seq) pairs this node has seen.

Per origin o, ``wm[o]`` promises that every seq <= wm[o] has been seen here:
the record is held, or superseded by something held, or deferred. Above it, a
bounded list of disjoint seen ranges remembers records that arrived out of
order (by push). A record whose (origin, seq) is seen is dropped without
reading the store.

Rules:
- ``mark(o, s)``: s becomes seen; if s == wm[o] + 1 the watermark advances and
  swallows every range that now touches it.
- ``cover(o, s)``: everything up to s is seen (a complete anti-entropy answer
  or its cut-short prefix vouches for it): wm[o] = max(wm[o], s).
- The ranges are only an optimisation (duplicates they would have filtered are
  read and dropped by the LWW rule instead), so when there are more than
  ``max_ranges`` for an origin the highest ones are forgotten. The watermark
  itself is never lowered.
"""

from __future__ import annotations

import struct
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

DEFAULT_MAX_RANGES = 256
_RANGE = struct.Struct(">QQ")


@dataclass(slots=True)
class Watermarks:
    marks: dict[int, int] = field(default_factory=dict)
    ranges: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    max_ranges: int = DEFAULT_MAX_RANGES

    def get(self, origin: int) -> int:
        return self.marks.get(origin, 0)

    def vector(self) -> dict[int, int]:
        return dict(self.marks)

    def seen(self, origin: int, seq: int) -> bool:
        if seq <= self.marks.get(origin, 0):
            return True
        spans = self.ranges.get(origin)
        if not spans:
            return False
        index = bisect_right(spans, (seq, 1 << 64)) - 1
        return index >= 0 and spans[index][0] <= seq <= spans[index][1]

    def mark(self, origin: int, seq: int) -> None:
        """Record that (origin, seq) has been seen."""
        mark = self.marks.get(origin, 0)
        if seq <= mark:
            return
        if seq == mark + 1:
            self._set(origin, seq)
            return
        spans = self.ranges.setdefault(origin, [])
        index = bisect_right(spans, (seq, 1 << 64))
        # Merge with the span before (if it touches) and the one after.
        start, end = seq, seq
        if index > 0 and spans[index - 1][1] >= seq - 1:
            index -= 1
            start = spans[index][0]
            end = max(end, spans[index][1])
            del spans[index]
        while index < len(spans) and spans[index][0] <= end + 1:
            end = max(end, spans[index][1])
            del spans[index]
        spans.insert(index, (start, end))
        if len(spans) > self.max_ranges:
            del spans[self.max_ranges :]

    def cover(self, origin: int, seq: int) -> None:
        """Everything of ``origin`` up to ``seq`` has been seen."""
        if seq > self.marks.get(origin, 0):
            self._set(origin, seq)

    def _set(self, origin: int, seq: int) -> None:
        spans = self.ranges.get(origin)
        while spans and spans[0][0] <= seq + 1:
            seq = max(seq, spans[0][1])
            spans.pop(0)
        if spans is not None and not spans:
            del self.ranges[origin]
        self.marks[origin] = seq

    def dominates(self, other: Mapping[int, int]) -> bool:
        """True when every origin's watermark here is at least ``other``'s."""
        return all(self.marks.get(origin, 0) >= seq for origin, seq in other.items())

    def pack_ranges(self, origin: int) -> bytes:
        return b"".join(_RANGE.pack(start, end) for start, end in self.ranges.get(origin, []))

    def load_ranges(self, origin: int, packed: bytes) -> None:
        spans = [
            (int(start), int(end))
            for start, end in (
                _RANGE.unpack_from(packed, offset) for offset in range(0, len(packed), _RANGE.size)
            )
        ]
        if spans:
            self.ranges[origin] = spans


def dominates(vector: Mapping[int, int], other: Mapping[int, int]) -> bool:
    """True when ``vector`` is at least ``other`` for every origin of ``other``."""
    return all(vector.get(origin, 0) >= seq for origin, seq in other.items())


def origins(vectors: Iterable[Mapping[int, int]]) -> set[int]:
    result: set[int] = set()
    for vector in vectors:
        result.update(vector)
    return result
