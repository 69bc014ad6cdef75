"""MemoryStore: the Store protocol on dicts, for the simulator and for tests.

Each column family is a dict plus a sorted list of its keys, so point reads are
O(1) and scans are ordered. Nothing survives the process; ``sync_wal`` is a no-op
that counts its calls.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator, Sequence

from rumor.node.storage.store import COLUMN_FAMILIES, Batch


class MemoryBatch:
    __slots__ = ("operations",)

    def __init__(self) -> None:
        self.operations: list[tuple[str, bytes, bytes | None]] = []

    def put(self, family: str, key: bytes, value: bytes) -> None:
        self.operations.append((family, bytes(key), bytes(value)))

    def delete(self, family: str, key: bytes) -> None:
        self.operations.append((family, bytes(key), None))

    def put_many(self, family: str, keys: Sequence[bytes], values: Sequence[bytes | None]) -> None:
        for key, value in zip(keys, values, strict=True):
            self.operations.append((family, bytes(key), None if value is None else bytes(value)))

    def __len__(self) -> int:
        return len(self.operations)


class MemoryStore:
    def __init__(self) -> None:
        self._data: dict[str, dict[bytes, bytes]] = {family: {} for family in COLUMN_FAMILIES}
        self._order: dict[str, list[bytes]] = {family: [] for family in COLUMN_FAMILIES}
        self.syncs = 0
        self.writes = 0

    def batch(self) -> MemoryBatch:
        return MemoryBatch()

    def write(self, batch: Batch) -> None:
        if not isinstance(batch, MemoryBatch):
            raise TypeError("MemoryStore.write takes a batch made by MemoryStore.batch()")
        self.writes += 1
        for family, key, value in batch.operations:
            table = self._data[family]
            if value is None:
                if table.pop(key, None) is not None:
                    order = self._order[family]
                    del order[bisect_left(order, key)]
            else:
                if key not in table:
                    insort(self._order[family], key)
                table[key] = value

    def sync_wal(self) -> None:
        self.syncs += 1

    def get(self, family: str, key: bytes) -> bytes | None:
        return self._data[family].get(key)

    def get_many(self, family: str, keys: list[bytes]) -> list[bytes | None]:
        table = self._data[family]
        return [table.get(key) for key in keys]

    def scan(
        self, family: str, start: bytes, stop: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        order = self._order[family]
        table = self._data[family]
        index = bisect_left(order, start)
        while index < len(order):
            key = order[index]
            if stop is not None and key >= stop:
                return
            yield key, table[key]
            # A write between two steps may shift the list: find our place again.
            if index + 1 < len(order) and order[index] == key:
                index += 1
            else:
                index = bisect_left(order, key + b"\x00")

    def snapshot_copy(self, directory: str = "") -> MemoryStore:
        """A consistent copy (``directory`` is ignored: nothing here touches a disk)."""
        copy = MemoryStore()
        copy._data = {family: dict(table) for family, table in self._data.items()}
        copy._order = {family: list(order) for family, order in self._order.items()}
        return copy

    def close(self) -> None:
        pass
