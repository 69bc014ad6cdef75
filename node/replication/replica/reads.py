"""Reads: single keys, several keys, and filled list pages.

Rules:
- Reads never change anything, not even a cache: what they return is what
  the store holds when they run.
- A key reads as present only while its record is live: neither a tombstone
  nor expired (``0 < expiration <= now``).
- Listing reads headers only, never values, and fills its pages: expired and
  deleted keys are skipped, not counted, so a short page means the listing
  is complete. A page may take several slices of at most ``scan_budget``
  headers (``resume_from`` says where the next slice starts), so a page over
  many tombstones never holds the event loop for long; the caller yields
  between slices and still fills the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rumor.node.core.record import RecordHeader
from rumor.node.storage import layout
from rumor.node.storage.store import KV, VAL, Store, prefix_end


@dataclass(frozen=True, slots=True)
class ListPage:
    keys: list[tuple[bytes, RecordHeader]]
    complete: bool
    resume_from: bytes | None = None  # the slice's budget ran out: go on from this stored key


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
) -> ListPage:
    """Up to ``limit`` live keys with ``prefix``, in byte order, after ``start_after``.

    With ``scan_budget``, at most that many headers are read: a slice that ran
    out returns what it found and ``resume_from``; the next slice passes it back
    (with the page's remaining limit)."""
    low = layout.record_key(namespace, prefix)
    if start_after is not None and start_after >= prefix:
        low = max(low, layout.record_key(namespace, start_after) + b"\x00")
    if resume_from is not None:
        low = max(low, resume_from)
    high = prefix_end(layout.record_key(namespace, prefix))
    keys: list[tuple[bytes, RecordHeader]] = []
    scanned = 0
    for stored_key, raw in store.scan(KV, low, high):
        if scan_budget is not None:
            if scanned == scan_budget:
                return ListPage(keys, complete=False, resume_from=stored_key)
            scanned += 1
        decoded = RecordHeader.decode(raw)
        if not decoded.live(now_s):
            continue
        if len(keys) == limit:
            return ListPage(keys, complete=False)
        keys.append((stored_key[layout.NAMESPACE_BYTES :], decoded))
    return ListPage(keys, complete=True)
