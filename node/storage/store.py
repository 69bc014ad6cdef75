"""The Store protocol: ordered byte maps in named column families, atomic batches.

Column families:
- ``kv``:       namespace (16 bytes) + key -> encoded record header
- ``val``:      namespace + key -> value bytes (absent for tombstones)
- ``log``:      origin (8 bytes) + seq (8 bytes) -> namespace + key, for records held
                and, until GC finds them stable, for the records they replaced
- ``deferred``: records from the future, applied once the local clock reaches them
- ``meta``:     node id, clock and sequence marks, counters, watermarks, members

Writes go through ``Batch`` objects: every logical change is one batch, applied
atomically by ``write``. ``write`` puts the batch in the write-ahead log without
syncing it; ``sync_wal`` makes everything written before it durable. Readers
never see half a batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

KV = "kv"
VAL = "val"
LOG = "log"
DEFERRED = "deferred"
META = "meta"
COLUMN_FAMILIES = (KV, VAL, LOG, DEFERRED, META)


class Batch(Protocol):
    """Changes to apply atomically."""

    def put(self, family: str, key: bytes, value: bytes) -> None: ...

    def delete(self, family: str, key: bytes) -> None: ...

    def put_many(self, family: str, keys: Sequence[bytes], values: Sequence[bytes | None]) -> None:
        """``put`` each key with its value, in order; a None value deletes the key."""
        ...

    def __len__(self) -> int: ...


class Store(Protocol):
    """What the replica needs from storage."""

    def batch(self) -> Batch:
        """A new empty batch for this store."""
        ...

    def write(self, batch: Batch) -> None:
        """Apply ``batch`` atomically; it is in the WAL but not yet synced."""
        ...

    def sync_wal(self) -> None:
        """Make every write that finished before this call durable (fsync)."""
        ...

    def get(self, family: str, key: bytes) -> bytes | None: ...

    def get_many(self, family: str, keys: list[bytes]) -> list[bytes | None]: ...

    def scan(
        self, family: str, start: bytes, stop: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """Entries with ``start <= key < stop`` in byte order (``stop`` None: to the end).

        Close the iterator (or exhaust it) before closing the store.
        """
        ...

    def close(self) -> None: ...


@runtime_checkable
class Compacting(Protocol):
    """A store whose deletions leave entries behind until it compacts (RocksDB).

    Every scan steps over a deleted entry until a compaction drops it, so a pass
    that deletes many entries asks for one; a store without leftovers
    (``MemoryStore``) does not implement this.
    """

    def compact(self, family: str) -> None:
        """Drop what deletions left in ``family``, in the background: returns at once."""
        ...


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with ``prefix`` (None: no bound)."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])
