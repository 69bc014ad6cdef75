"""Group commit: one WAL sync serves every write that finished before it started.

A writer takes the replica's ticket right after its synchronous write and
awaits ``durable(ticket)``. If no sync is running, one starts and covers
every ticket issued so far; writers that arrive during it wait for the next
one, which then covers all of them together. The sync runs on a worker thread
(rocksdict's ``flush_wal(True)`` releases the GIL), so the event loop keeps
accepting writes while the disk works. A failed sync is fatal: the node must
stop rather than acknowledge writes it cannot make durable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from rumor.node.replication import Durability, Replica

log = structlog.get_logger(__name__)


class SyncFailed(RuntimeError):
    """The WAL could not be synced; the node is stopping."""


class GroupCommit:
    def __init__(
        self,
        replica: Replica,
        *,
        on_failure: Callable[[BaseException], None],
        in_thread: bool = True,
    ) -> None:
        self._replica = replica
        self._on_failure = on_failure
        self._in_thread = in_thread
        self._running: asyncio.Future[None] | None = None
        self._failure: BaseException | None = None
        self.syncs = 0

    async def durable(self, ticket: int) -> None:
        """Return once the write with ``ticket`` (and all before it) is durable."""
        replica = self._replica
        if replica.durability is Durability.WAL:
            return
        while not replica.is_durable(ticket):
            if self._failure is not None:
                raise SyncFailed("the write-ahead log could not be synced") from self._failure
            if self._running is None:
                self._running = asyncio.ensure_future(self._sync())
            await asyncio.shield(self._running)

    async def _sync(self) -> None:
        target = self._replica.written_ticket
        try:
            if self._in_thread:
                await asyncio.to_thread(self._replica.store.sync_wal)
            else:
                self._replica.store.sync_wal()
        except Exception as exc:  # an fsync error: never acknowledge again
            self._failure = exc
            log.critical("wal.sync_failed", error=str(exc))
            self._on_failure(exc)
            return
        finally:
            self._running = None
        self.syncs += 1
        self._replica.mark_durable(target)

    async def flush(self) -> None:
        """Make every write so far durable (used at shutdown)."""
        await self.durable(self._replica.written_ticket)
