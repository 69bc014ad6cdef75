"""Reads: single keys, several keys, and filled list pages.

Rules:
- Reads never change the store: what they return is what it holds when they
  run. The one thing a read leaves behind is knowledge: a listing remembers
  the tombstone runs it walked (``tombstone_runs``), which only a write can
  undo.
- A key reads as present only while its record is live: neither a tombstone
  nor expired (``0 < expiration <= now``).
- Listing reads headers only, never values, and fills its pages: expired and
  deleted keys are skipped, not counted, so a short page means the listing
  is complete. A page may take several slices of at most ``scan_budget``
  headers (``resume_from`` says where the next slice starts), so a page over
  many tombstones never holds the event loop for long; the caller yields
  between slices and still fills the page. Known tombstone runs are sought
  past, so a listing costs the keys it returns plus one seek per run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass

from rumor.node.core.record import RecordHeader
from rumor.node.replication.replica.tombstone_runs import RunLearner, TombstoneRuns
from rumor.node.storage import layout
from rumor.node.storage.store import KV, VAL, Store, prefix_end


@dataclass(frozen=True, slots=True)
class ListPage:
    keys: list[tuple[bytes, RecordHeader]]
    complete: bool
    resume_from: bytes | None = None  # the slice's budget ran out: go on from this stored key
    stepped: int = 0  # headers read and runs sought past: the slice's cost


def header(store: Store, namespace: bytes, key: bytes) -> RecordHeader | None:
    raw = store.get(KV, layout.record_key(namespace, key))
    return None if raw is None else RecordHeader.decode(raw)


def value(store: Store, namespace: bytes, key: bytes) -> bytes | None:
    return store.get(VAL, layout.record_key(namespace, key))


def read(
    store: Store, namespace: bytes, key: bytes, now_s: float
) -> tuple[RecordHeader, bytes] | None:
    """The live record for a key and its value, or None if missing, deleted or expired."""
    found = header(store, namespace, key)
    if found is None or not found.live(now_s):
        return None
    held = value(store, namespace, key)
    return found, b"" if held is None else held


def read_many(
    store: Store, namespace: bytes, keys: Sequence[bytes], now_s: float
) -> list[tuple[RecordHeader, bytes] | None]:
    """``read`` for several keys, with one multi-get per column family."""
    stored = [layout.record_key(namespace, key) for key in keys]
    live: dict[int, RecordHeader] = {}
    for index, raw in enumerate(store.get_many(KV, stored)):
        if raw is not None:
            decoded = RecordHeader.decode(raw)
            if decoded.live(now_s):
                live[index] = decoded
    values = store.get_many(VAL, [stored[index] for index in live])
    value_of = dict(zip(live, values, strict=True))
    return [
        (live[index], value_of[index] or b"") if index in live else None
        for index in range(len(keys))
    ]


def list_page(
    store: Store,
    namespace: bytes,
    prefix: bytes,
    start_after: bytes | None,
    limit: int,
    now_s: float,
    *,
    scan_budget: int | None = None,
    resume_from: bytes | None = None,
    runs: TombstoneRuns | None = None,
) -> ListPage:
    """Up to ``limit`` live keys with ``prefix``, in byte order, after ``start_after``.

    With ``scan_budget``, at most that many headers are read (a seek past a
    run counts as one): a slice that ran out returns what it found and
    ``resume_from``; the next slice passes it back (with the page's remaining
    limit). With ``runs``, known tombstone runs are sought past and the runs
    walked are learned (``tombstone_runs``)."""
    low = layout.record_key(namespace, prefix)
    if start_after is not None and start_after >= prefix:
        low = max(low, layout.record_key(namespace, start_after) + b"\x00")
    if resume_from is not None:
        low = max(low, resume_from)
    high = prefix_end(layout.record_key(namespace, prefix))
    walk = _Walk(store, high, runs)
    keys: list[tuple[bytes, RecordHeader]] = []
    with contextlib.closing(walk.entries(low)) as entries:
        for stored_key, raw in entries:
            if scan_budget is not None and walk.stepped > scan_budget:
                walk.stop_at(stored_key)
                stepped = walk.stepped - 1
                return ListPage(keys, complete=False, resume_from=stored_key, stepped=stepped)
            decoded = RecordHeader.decode(raw)
            if decoded.tombstone:
                walk.tombstone(stored_key)
                continue
            walk.other(stored_key)
            if not decoded.live(now_s):
                continue
            if len(keys) == limit:
                walk.stop_at(stored_key)
                return ListPage(keys, complete=False, stepped=walk.stepped)
            keys.append((stored_key[layout.NAMESPACE_BYTES :], decoded))
    walk.stop_at(high)
    return ListPage(keys, complete=True, stepped=walk.stepped)


def _close(scan: Iterator[tuple[bytes, bytes]]) -> None:
    """End a store scan left early (RocksDB: release its iterator now, not at collection)."""
    close = getattr(scan, "close", None)
    if close is not None:
        close()


class _Walk:
    """The scan of one list slice: entries in order, known tombstone runs sought past,
    the runs walked learned, and the entries stepped over (and seeks) counted."""

    __slots__ = ("_high", "_learner", "_runs", "_store", "stepped")

    def __init__(self, store: Store, high: bytes | None, runs: TombstoneRuns | None) -> None:
        self._store = store
        self._high = high
        self._runs = runs
        self._learner = RunLearner(runs) if runs is not None else None
        self.stepped = 0

    def entries(self, low: bytes) -> Generator[tuple[bytes, bytes]]:
        runs, learner, high = self._runs, self._learner, self._high
        position = low
        while high is None or position < high:
            if runs is not None and learner is not None:
                end = runs.covering(position)
                if end is not None:
                    learner.jumped(position)
                    self.stepped += 1
                    position = end
                    continue
            next_run = None if runs is None else runs.next_start(position)
            restart = None
            scan = self._store.scan(KV, position, high)
            try:
                for stored_key, raw in scan:
                    if next_run is not None and stored_key >= next_run:
                        restart = stored_key  # at a run's start: seek past it
                        break
                    self.stepped += 1
                    yield stored_key, raw
            finally:
                _close(scan)
            if restart is None:
                return
            position = restart

    def tombstone(self, key: bytes) -> None:
        if self._learner is not None:
            self._learner.tombstone(key)

    def other(self, key: bytes) -> None:
        if self._learner is not None:
            self._learner.other(key)

    def stop_at(self, bound: bytes | None) -> None:
        if self._learner is not None:
            self._learner.end(bound)
