"""Watch: stream every change a node applies to the watchers of a namespace prefix.

The replica calls ``WatchHub.publish`` synchronously with each batch's newly
held records. Each watcher has a bounded queue; when it is full the event is
dropped and counted, and the watcher is sent a "fell behind" notice with the
count before its next event. A slow watcher never slows writes.

Everything a client can hold here is bounded by the server: the number of
watchers node-wide (``max_watchers``) and per client connection
(``max_watchers_per_connection``), both refused ``Overloaded``
(RESOURCE_EXHAUSTED) beyond, and each watcher's queue (``max_buffer``; a
client may ask for fewer, never more). The memory watchers hold is therefore
at most ``max_watchers * max_buffer`` queued changes.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from rumor.node.core.errors import Overloaded
from rumor.node.replication.replica.delta import WireRecord

DEFAULT_MAX_WATCHERS = 512
DEFAULT_MAX_WATCHERS_PER_CONNECTION = 64
DEFAULT_MAX_BUFFER = 1024
ANY_NAMESPACE = b""  # a watcher of every namespace (the web console); never a namespace id


@dataclass(frozen=True, slots=True)
class Change:
    namespace: bytes
    key: bytes
    header: bytes  # encoded RecordHeader
    applied_wall_ms: int
    applied_monotonic_ns: int


@dataclass(slots=True)
class Watcher:
    namespace: bytes
    prefix: bytes
    queue: asyncio.Queue[Change] = field(default_factory=asyncio.Queue)
    dropped: int = 0


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

    def publish(self, records: list[WireRecord]) -> None:
        if not self.watchers:
            return
        wall_ms = self._wall_ms()
        monotonic_ns = time.monotonic_ns()
        for record in records:
            for watcher in self.watchers:
                namespace = watcher.namespace
                if namespace in (record.namespace, ANY_NAMESPACE) and record.key.startswith(
                    watcher.prefix
                ):
                    change = Change(
                        record.namespace, record.key, record.header, wall_ms, monotonic_ns
                    )
                    try:
                        watcher.queue.put_nowait(change)
                    except asyncio.QueueFull:
                        watcher.dropped += 1

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
        watcher = Watcher(namespace, prefix, asyncio.Queue(maxsize=self.buffer_for(buffer)))
        self.watchers.append(watcher)
        self._per_connection[connection] += 1
        return watcher

    def close(self, watcher: Watcher, connection: str = "") -> None:
        self.watchers.remove(watcher)
        self._per_connection[connection] -= 1
        if self._per_connection[connection] <= 0:
            del self._per_connection[connection]

    async def follow(self, watcher: Watcher) -> AsyncIterator[tuple[int, Change | None]]:
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
