"""Watch: stream every change a node applies to the watchers of a namespace prefix.

The replica calls ``WatchHub.publish`` synchronously with each batch's newly
held records, on the write path: it only stamps the batch and queues it, so
a write pays O(1) however many watchers there are. One fan-out task takes
the queued batches in order, in slices of ``SLICE_RECORDS`` records (giving
the event loop back between slices), finds the watchers of each record
through an index by namespace and prefix (one look-up per distinct prefix
length, not one test per watcher), and hands each group of watchers of the
same prefix the slice's matching changes at once. Each watcher has a bounded
queue; what does not fit is dropped and counted, and the watcher is sent a
"fell behind" notice with the count before its next event. A slow watcher
never slows writes, and a watcher that reads nothing costs a counter
increment per slice.

Everything a client can hold here is bounded by the server: the number of
watchers node-wide (``max_watchers``) and per client connection
(``max_watchers_per_connection``), both refused ``Overloaded``
(RESOURCE_EXHAUSTED) beyond, and each watcher's queue (``max_buffer``; a
client may ask for fewer, never more). The memory watchers hold is therefore
at most ``max_watchers * max_buffer`` queued changes, plus the batches the
fan-out has not reached (at most ``MAX_PENDING_RECORDS`` records; beyond, the
oldest batch is counted as dropped by the watchers it would have reached).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from rumor.node.core.errors import Overloaded
from rumor.node.replication.replica.delta import WireRecord

DEFAULT_MAX_WATCHERS = 512
DEFAULT_MAX_WATCHERS_PER_CONNECTION = 64
DEFAULT_MAX_BUFFER = 1024
ANY_NAMESPACE = b""  # a watcher of every namespace (the web console); never a namespace id
SLICE_RECORDS = 512  # records fanned out between two yields to the event loop
MAX_PENDING_RECORDS = 100_000  # published, not yet fanned out


@dataclass(frozen=True, slots=True)
class Change:
    namespace: bytes
    key: bytes
    header: bytes  # encoded RecordHeader
    applied_wall_ms: int
    applied_monotonic_ns: int


class ChangeQueue:
    """A watcher's bounded queue: the fan-out adds a slice's changes at once (``offer``),
    the watcher's stream reads them one by one (asyncio.Queue's reading side)."""

    __slots__ = ("_items", "_readable", "maxsize")

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._items: deque[Change] = deque()
        self._readable = asyncio.Event()

    def offer(self, changes: Sequence[Change]) -> int:
        """Queue what fits of ``changes``, in order; returns how many did not fit."""
        space = self.maxsize - len(self._items)
        if space <= 0:
            return len(changes)
        taken = changes if len(changes) <= space else changes[:space]
        self._items.extend(taken)
        self._readable.set()
        return len(changes) - len(taken)

    def put_nowait(self, change: Change) -> None:
        if self.offer((change,)):
            raise asyncio.QueueFull

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return len(self._items) >= self.maxsize

    def get_nowait(self) -> Change:
        if not self._items:
            raise asyncio.QueueEmpty
        return self._items.popleft()

    async def get(self) -> Change:
        while not self._items:
            self._readable.clear()
            await self._readable.wait()
        return self._items.popleft()


@dataclass(slots=True)
class Watcher:
    namespace: bytes
    prefix: bytes
    queue: ChangeQueue = field(default_factory=lambda: ChangeQueue(DEFAULT_MAX_BUFFER))
    dropped: int = 0
    since: int = 0  # the last batch published before it opened: it gets later ones only


@dataclass(frozen=True, slots=True)
class _Batch:
    number: int
    records: list[WireRecord]
    wall_ms: int
    monotonic_ns: int


class WatchHub:
    def __init__(
        self,
        wall_ms: Callable[[], int],
        *,
        max_watchers: int = DEFAULT_MAX_WATCHERS,
        max_per_connection: int = DEFAULT_MAX_WATCHERS_PER_CONNECTION,
        max_buffer: int = DEFAULT_MAX_BUFFER,
    ) -> None:
        self._wall_ms = wall_ms
        self.max_watchers = max_watchers
        self.max_per_connection = max_per_connection
        self.max_buffer = max_buffer
        self.watchers: list[Watcher] = []
        self._per_connection: Counter[str] = Counter()
        self.refused = 0
        # namespace -> prefix -> its watchers; namespace -> how many prefixes of each length
        self._index: dict[bytes, dict[bytes, list[Watcher]]] = {}
        self._lengths: dict[bytes, Counter[int]] = {}
        self._pending: deque[_Batch] = deque()
        self._pending_records = 0
        self._published = 0
        self._fanning_out: asyncio.Task[None] | None = None

    # ---- the write path: O(1) ------------------------------------------------------

    def publish(self, records: list[WireRecord]) -> None:
        if not self.watchers or not records:
            return
        self._published += 1
        batch = _Batch(self._published, records, self._wall_ms(), time.monotonic_ns())
        self._pending.append(batch)
        self._pending_records += len(records)
        while self._pending_records > MAX_PENDING_RECORDS and len(self._pending) > 1:
            # The oldest batch the fan-out is not already in the middle of.
            victim = self._pending[1 if self._fanning_out is not None else 0]
            self._pending.remove(victim)
            self._drop(victim)
        if self._fanning_out is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no event loop (a synchronous caller): fan out now
                self._fan_out_now()
                return
            self._fanning_out = loop.create_task(self._fan_out(), name="watch fan-out")

    # ---- the fan-out task ------------------------------------------------------------

    async def _fan_out(self) -> None:
        try:
            while self._pending:
                batch = self._pending[0]
                for start in range(0, len(batch.records), SLICE_RECORDS):
                    self._deliver(batch, batch.records[start : start + SLICE_RECORDS])
                    await asyncio.sleep(0)
                self._pending.popleft()
                self._pending_records -= len(batch.records)
        finally:
            self._fanning_out = None

    def _fan_out_now(self) -> None:
        while self._pending:
            batch = self._pending.popleft()
            self._pending_records -= len(batch.records)
            self._deliver(batch, batch.records)

    def _matches(
        self, records: Sequence[WireRecord]
    ) -> dict[int, tuple[list[Watcher], list[WireRecord]]]:
        """Per group of watchers (one namespace and prefix), the records it watches."""
        groups: dict[int, tuple[list[Watcher], list[WireRecord]]] = {}
        index, lengths = self._index, self._lengths
        for record in records:
            key = record.key
            for namespace in (record.namespace, ANY_NAMESPACE):
                prefixes = index.get(namespace)
                if prefixes is None:
                    continue
                for length in lengths[namespace]:
                    if length > len(key):
                        continue
                    watchers = prefixes.get(key[:length])
                    if watchers is None:
                        continue
                    group = groups.get(id(watchers))
                    if group is None:
                        groups[id(watchers)] = (watchers, [record])
                    else:
                        group[1].append(record)
        return groups

    def _deliver(self, batch: _Batch, records: Sequence[WireRecord]) -> None:
        wall_ms, monotonic_ns = batch.wall_ms, batch.monotonic_ns
        changes: dict[int, Change] = {}  # one Change per record, shared by its watchers
        for watchers, matched in self._matches(records).values():
            slice_changes = []
            for record in matched:
                change = changes.get(id(record))
                if change is None:
                    change = changes[id(record)] = Change(
                        record.namespace, record.key, record.header, wall_ms, monotonic_ns
                    )
                slice_changes.append(change)
            for watcher in watchers:
                if watcher.since < batch.number:
                    watcher.dropped += watcher.queue.offer(slice_changes)

    def _drop(self, batch: _Batch) -> None:
        """The backlog is full: ``batch`` reaches no one, counted as dropped by each watcher
        it would have reached."""
        self._pending_records -= len(batch.records)
        for watchers, matched in self._matches(batch.records).values():
            for watcher in watchers:
                if watcher.since < batch.number:
                    watcher.dropped += len(matched)

    # ---- watchers ----------------------------------------------------------------------

    def _admit(self, connection: str) -> None:
        if len(self.watchers) >= self.max_watchers:
            self.refused += 1
            raise Overloaded(
                f"this node serves its maximum of {self.max_watchers} watchers; try again later"
            )
        if self._per_connection[connection] >= self.max_per_connection:
            self.refused += 1
            raise Overloaded(
                f"this connection holds its maximum of {self.max_per_connection} watchers;"
                " close one first"
            )

    def buffer_for(self, asked: int) -> int:
        """The queue size a watcher gets: what it asked, at most the server's cap."""
        return min(asked, self.max_buffer) if asked > 0 else self.max_buffer

    def open(
        self, namespace: bytes, prefix: bytes, buffer: int = 0, connection: str = ""
    ) -> Watcher:
        """Register a watcher (Overloaded when over a limit); ``close`` it when done."""
        self._admit(connection)
        watcher = Watcher(
            namespace, prefix, ChangeQueue(self.buffer_for(buffer)), since=self._published
        )
        self.watchers.append(watcher)
        self._per_connection[connection] += 1
        group = self._index.setdefault(namespace, {}).setdefault(prefix, [])
        if not group:
            self._lengths.setdefault(namespace, Counter())[len(prefix)] += 1
        group.append(watcher)
        return watcher

    def close(self, watcher: Watcher, connection: str = "") -> None:
        self.watchers.remove(watcher)
        self._per_connection[connection] -= 1
        if self._per_connection[connection] <= 0:
            del self._per_connection[connection]
        prefixes = self._index[watcher.namespace]
        group = prefixes[watcher.prefix]
        group.remove(watcher)
        if not group:
            del prefixes[watcher.prefix]
            lengths = self._lengths[watcher.namespace]
            lengths[len(watcher.prefix)] -= 1
            if lengths[len(watcher.prefix)] <= 0:
                del lengths[len(watcher.prefix)]
            if not prefixes:
                del self._index[watcher.namespace], self._lengths[watcher.namespace]

    async def follow(self, watcher: Watcher) -> AsyncGenerator[tuple[int, Change | None]]:
        """Yield (dropped since the last yield, change) of an open watcher; (n, None) is a
        fell-behind notice. The caller ``close``s the watcher."""
        while True:
            change = await watcher.queue.get()
            if watcher.dropped:
                dropped, watcher.dropped = watcher.dropped, 0
                yield dropped, None
            yield 0, change

    async def watch(
        self, namespace: bytes, prefix: bytes, buffer: int = 0, connection: str = ""
    ) -> AsyncIterator[tuple[int, Change | None]]:
        """``open`` then ``follow`` a watcher, closed when the iteration ends.

        The limits are checked when iteration starts (Overloaded from the first step).
        """
        watcher = self.open(namespace, prefix, buffer, connection)
        try:
            async for item in self.follow(watcher):
                yield item
        finally:
            self.close(watcher, connection)
