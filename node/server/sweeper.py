"""The sweeper: purges tombstones, expired records and deleted namespaces' keys.

Every interval it scans a few slices of the key space, yielding to the loop
between slices (a slice of ``SLICE`` headers costs a few milliseconds, so a
pass over a large store never stalls the loop), asking the replica's purge
rule (core/gc.py) whether each candidate is safe to purge. Keys of deleted
namespaces are swept first, a slice per tick, until none are left.
"""

from __future__ import annotations

import asyncio

import structlog

from rumor.node.replication import Replica
from rumor.node.server.clock import WallClock
from rumor.node.server.operations import Operations

log = structlog.get_logger(__name__)
SLICE = 2000  # headers (and log entries) per slice: a few ms on the loop
SLICES_PER_INTERVAL = 5


class Sweeper:
    def __init__(
        self, replica: Replica, operations: Operations, clock: WallClock, interval_ms: int
    ) -> None:
        self.replica = replica
        self.operations = operations
        self.clock = clock
        self.interval_s = interval_ms / 1000
        self._next_start: bytes = b""
        self._next_log: bytes = b""
        self.passes = 0

    def sweep_once(self) -> None:
        """One tick: a slice of deleted namespaces' keys, then a slice of the key space."""
        if self.operations.sweep_deleted_namespaces():
            return
        replica = self.replica
        before = replica.records_held + replica.tombstones_held
        next_start = replica.sweep(self._next_start, self.clock.now_s(), SLICE)
        purged = before - (replica.records_held + replica.tombstones_held)
        if purged:
            log.debug("sweep.purged", records=purged)
        self._next_log = replica.sweep_log(self._next_log, SLICE) or b""
        if next_start is None:
            self.passes += 1
            self._next_start = b""
        else:
            self._next_start = next_start

    async def run(self) -> None:
        while True:
            for _ in range(SLICES_PER_INTERVAL):
                try:
                    self.sweep_once()
                except Exception:
                    log.exception("sweep.failed")
                await asyncio.sleep(0)
            await asyncio.sleep(self.interval_s)
