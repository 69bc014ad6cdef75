"""Remembered runs of tombstones, so a listing steps over each run once, not every time.

Theory of operation. A deleted key keeps its tombstone until garbage
collection finds it stable, so a namespace where 200,000 keys were just
deleted holds 200,000 headers a listing would decode to find one live key
after them. ``TombstoneRuns`` remembers, in memory, intervals of stored keys
``[low, high)`` in which every key held is a tombstone; a listing that meets
one seeks straight to ``high``. The first listing over a run learns it
(``RunLearner``), the sweeper's passes learn the runs they walk, and every
later listing costs the live keys it returns plus one seek per run.

Rules:
- A claim is made only from what one synchronous scan saw: consecutive keys
  of the store's order, all tombstones, up to the first key that is not one
  (or the end of the scanned range). Nothing can be written while the scan
  runs, so the claim is true when it is made.
- A claim stays true until a key inside it receives a record that is not a
  tombstone: ``written`` (called by ``staging.commit``, the one door for
  every change) cuts the run around that key. A tombstone replacing a
  tombstone, a purge and a new tombstone keep every claim true.
- Expired records break a run: an expiration is read against a clock that
  may be set back, a tombstone is a tombstone whatever the clock.
- Two claims that overlap or touch make one (the union of true claims is
  true). At most ``MAX_RUNS`` are kept; beyond that new runs are not
  learned, which costs only time.
- Memory only: a restart or a snapshot install starts with none.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable

MAX_RUNS = 4096
MIN_RUN = 32  # fewer consecutive tombstones are cheaper to step over than to remember


def successor(key: bytes) -> bytes:
    """The first key after ``key`` in byte order."""
    return key + b"\x00"


class TombstoneRuns:
    """Disjoint intervals ``[low, high)`` of stored keys that hold only tombstones."""

    __slots__ = ("_highs", "_lows")

    def __init__(self) -> None:
        self._lows: list[bytes] = []
        self._highs: list[bytes] = []

    def __len__(self) -> int:
        return len(self._lows)

    def runs(self) -> list[tuple[bytes, bytes]]:
        return list(zip(self._lows, self._highs, strict=True))

    def clear(self) -> None:
        self._lows.clear()
        self._highs.clear()

    def covering(self, key: bytes) -> bytes | None:
        """The end of the run holding ``key``, or None when no run holds it."""
        index = bisect_right(self._lows, key) - 1
        if index >= 0 and key < self._highs[index]:
            return self._highs[index]
        return None

    def next_start(self, key: bytes) -> bytes | None:
        """The start of the first run that begins after ``key``, or None."""
        index = bisect_right(self._lows, key)
        return self._lows[index] if index < len(self._lows) else None

    def learn(self, low: bytes, high: bytes) -> None:
        """Every key in ``[low, high)`` holds a tombstone (see the rules)."""
        if high <= low:
            return
        lows, highs = self._lows, self._highs
        first = bisect_right(lows, low) - 1
        if first < 0 or highs[first] < low:
            first += 1  # the run before ends before ``low`` (touching counts as joined)
        last = bisect_right(lows, high)  # runs from here on start after ``high``
        if first < last:
            low = min(low, lows[first])
            high = max(high, highs[last - 1])
        elif len(lows) >= MAX_RUNS:
            return
        lows[first:last] = [low]
        highs[first:last] = [high]

    def written(self, keys: Iterable[bytes]) -> None:
        """``keys`` now hold records that are not tombstones: no run may cover them.

        A run hit is cut around the keys that landed in it, all at once (a bulk
        write costs a lookup per key and one rebuild); if the pieces would pass
        ``MAX_RUNS``, the runs hit are forgotten instead (later scans learn them
        again)."""
        lows, highs = self._lows, self._highs
        hits: dict[int, list[bytes]] = {}
        written = list(keys)
        if len(written) <= len(lows):  # a few keys: look each up among the runs
            for key in written:
                index = bisect_right(lows, key) - 1
                if index >= 0 and key < highs[index]:
                    hits.setdefault(index, []).append(key)
        else:  # a bulk write over a few runs: look each run up among the sorted keys
            written.sort()
            for index, (low, high) in enumerate(zip(lows, highs, strict=True)):
                first = bisect_left(written, low)
                if first < len(written) and written[first] < high:
                    hits[index] = written[first : bisect_left(written, high, first)]
        if not hits:
            return
        pieces: list[tuple[bytes, bytes]] = []
        for index, cut in hits.items():
            low = lows[index]
            for key in sorted(cut):
                if low < key:
                    pieces.append((low, key))
                low = max(low, successor(key))
            if low < highs[index]:
                pieces.append((low, highs[index]))
        if len(hits) == 1:  # one run hit (a write or two): spliced in place, no rebuild
            (index,) = hits
            if len(lows) - 1 + len(pieces) > MAX_RUNS:
                pieces = []  # no room for its pieces: forgotten
            lows[index : index + 1] = [low for low, _ in pieces]
            highs[index : index + 1] = [high for _, high in pieces]
            return
        kept = [run for index, run in enumerate(zip(lows, highs, strict=True)) if index not in hits]
        if len(kept) + len(pieces) <= MAX_RUNS:
            kept = sorted(kept + pieces)
        self._lows = [low for low, _ in kept]
        self._highs = [high for _, high in kept]


class RunLearner:
    """Follows one synchronous scan and learns the tombstone runs it walks.

    Call ``tombstone(key)`` for each tombstone met, ``jumped(high)`` after
    seeking past a known run, ``other(key)`` for any other record, and
    ``end(bound)`` when the scan stops: at ``bound``, the next key it did not
    read or the end of the scanned range (None: unbounded, learns nothing).
    """

    __slots__ = ("_count", "_low", "_runs")

    def __init__(self, runs: TombstoneRuns) -> None:
        self._runs = runs
        self._low: bytes | None = None
        self._count = 0

    def tombstone(self, key: bytes) -> None:
        if self._low is None:
            self._low = key
        self._count += 1

    def jumped(self, low: bytes) -> None:
        """A known run was skipped; the streak (if any) joins it: ``low`` is the key met."""
        if self._low is None:
            self._low = low
        self._count += MIN_RUN

    def other(self, key: bytes) -> None:
        self._close(key)

    def end(self, bound: bytes | None) -> None:
        if bound is None:
            self._low, self._count = None, 0
        else:
            self._close(bound)

    def _close(self, high: bytes) -> None:
        if self._low is not None and self._count >= MIN_RUN:
            self._runs.learn(self._low, high)
        self._low, self._count = None, 0
