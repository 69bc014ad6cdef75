"""Watch: stream every change a node applies to the watchers of a namespace prefix.

The replica calls ``WatchHub.publish`` synchronously with each batch's newly
held records. Each watcher has a bounded queue; when it is full the event is
dropped and counted, and the watcher is sent a "fell behind" notice with the
count before its next event. A slow watcher never slows writes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from rumor.node.replication.delta import WireRecord

DEFAULT_BUFFER = 10_000


@dataclass(frozen=True, slots=True)
class Change:
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
    def __init__(self, wall_ms: Callable[[], int]) -> None:
        self._wall_ms = wall_ms
        self.watchers: list[Watcher] = []

    def publish(self, records: list[WireRecord]) -> None:
        if not self.watchers:
            return
        wall_ms = self._wall_ms()
        monotonic_ns = time.monotonic_ns()
        for record in records:
            for watcher in self.watchers:
                if record.namespace == watcher.namespace and record.key.startswith(watcher.prefix):
                    change = Change(record.key, record.header, wall_ms, monotonic_ns)
                    try:
                        watcher.queue.put_nowait(change)
                    except asyncio.QueueFull:
                        watcher.dropped += 1

    async def watch(
        self, namespace: bytes, prefix: bytes, buffer: int = 0
    ) -> AsyncIterator[tuple[int, Change | None]]:
        """Yield (dropped since the last yield, change); (n, None) is a fell-behind notice."""
        watcher = Watcher(namespace, prefix, asyncio.Queue(maxsize=buffer or DEFAULT_BUFFER))
        self.watchers.append(watcher)
        try:
            while True:
                change = await watcher.queue.get()
                if watcher.dropped:
                    dropped, watcher.dropped = watcher.dropped, 0
                    yield dropped, None
                yield 0, change
        finally:
            self.watchers.remove(watcher)
