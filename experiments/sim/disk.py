"""A node's disk: a store that knows which of its writes are synced.

The store a replica sees is a synced base plus the batches written since the
last sync, in order. ``sync_wal`` (and a group commit's ``sync_through``) moves
batches into the base. A *process crash* loses nothing: the operating system
keeps what was written (RocksDB's WAL is in the page cache), under either
durability mode. A *power loss* keeps the base only. A disk can also be
copied, as a backup or a cloned data directory is, to restart a node on it.

With ``track_sync`` off (the large performance runs) there is no base: one
store, nothing to lose, no second copy of every write.
"""

from __future__ import annotations

from collections.abc import Iterator

from rumor.node.storage.memory import MemoryBatch, MemoryStore
from rumor.node.storage.store import COLUMN_FAMILIES, Batch


def copy_store(source: MemoryStore) -> MemoryStore:
    """A new store holding exactly what ``source`` holds."""
    batch = MemoryBatch()
    for family in COLUMN_FAMILIES:
        for key, value in source.scan(family, b""):
            batch.put(family, key, value)
    copy = MemoryStore()
    copy.write(batch)
    return copy


class SimulatedDisk:
    """The ``Store`` protocol over a synced base and an unsynced log of batches."""

    def __init__(self, *, track_sync: bool = True, base: MemoryStore | None = None) -> None:
        self.track_sync = track_sync
        self._live = base if base is not None else MemoryStore()
        self._base = copy_store(self._live) if track_sync else self._live
        self._unsynced: list[MemoryBatch] = []
        self._synced_position = 0  # batches ever synced
        self.syncs = 0
        self.writes = 0

    # ---- the Store protocol -------------------------------------------------

    def batch(self) -> MemoryBatch:
        return MemoryBatch()

    def write(self, batch: Batch) -> None:
        self.writes += 1
        self._live.write(batch)
        if self.track_sync:
            assert isinstance(batch, MemoryBatch)
            self._unsynced.append(batch)

    def sync_wal(self) -> None:
        self.syncs += 1
        self.sync_through(self.position)

    def get(self, family: str, key: bytes) -> bytes | None:
        return self._live.get(family, key)

    def get_many(self, family: str, keys: list[bytes]) -> list[bytes | None]:
        return self._live.get_many(family, keys)

    def scan(
        self, family: str, start: bytes, stop: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        return self._live.scan(family, start, stop)

    def close(self) -> None:
        pass

    # ---- durability -----------------------------------------------------------

    @property
    def position(self) -> int:
        """How many batches were ever written: a sync started now covers this many."""
        return self._synced_position + len(self._unsynced)

    @property
    def unsynced_batches(self) -> int:
        return len(self._unsynced)

    def sync_through(self, position: int) -> None:
        """Make the first ``position`` batches ever written durable (a group commit)."""
        count = position - self._synced_position
        if count <= 0 or not self.track_sync:
            return
        for batch in self._unsynced[:count]:
            self._base.write(batch)
        del self._unsynced[:count]
        self._synced_position = position

    def lose_power(self) -> int:
        """Drop every write not yet synced; returns how many batches were lost."""
        lost = len(self._unsynced)
        if self.track_sync and lost:
            self._live = copy_store(self._base)
            self._synced_position += lost  # positions stay monotonic across the loss
            self._unsynced.clear()
        return lost

    def size_bytes(self) -> int:
        """What the disk holds, keys and values, in bytes (what a copy of it carries)."""
        return sum(
            len(key) + len(value)
            for family in COLUMN_FAMILIES
            for key, value in self._live.scan(family, b"")
        )

    def copy(self) -> SimulatedDisk:
        """A copy of what the disk holds now (a backup, or a cloned data directory)."""
        return SimulatedDisk(track_sync=self.track_sync, base=copy_store(self._live))
