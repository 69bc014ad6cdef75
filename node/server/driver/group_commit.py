"""Group commit: one WAL sync serves every write that finished before it started.

A writer takes the replica's ticket right after its synchronous write and
awaits ``durable(ticket)``. If no sync is running, one starts and covers
every ticket issued so far; writers that arrive during it wait for the next
one, which then covers all of them together. The sync runs on a worker thread
(rocksdict's ``flush_wal(True)`` releases the GIL), so the event loop keeps
accepting writes while the disk works. A failed sync is fatal: the node must
stop rather than acknowledge writes it cannot make durable. A sync that failed
for lack of space is not: its writers get ``InsufficientStorage`` (their
writes are not acknowledged), and a later sync, once the disk has room,
makes them durable.

A finished sync is reported through the ``synced`` hook given at
construction — the driver's, which tells the engine (``advance``), the one
place the replica is marked durable — and its writers are released only
once the hook has returned, so a write is never acknowledged before the
engine knows it is durable. The ``acknowledging`` hook, if given, runs right
before writers are released — after each sync, and under ``durability wal``
(no sync) before ``durable`` returns: a node's workers learn there which
writes their reads must see (``workers.owner_state``).

Under load a sync costs far more than its fsync: the hand-off to the worker
thread, the wake-up back on the loop, and answering its writers in small
groups (more, smaller socket writes). When the disk is fast, syncs started
back to back each cover a write or two, and that overhead, not the disk, caps
Puts per second. So the group commit learns how many writers are about: the
writers a sync released plus those that arrived while it ran. If writes
arrived while the previous sync ran (the node is busy), the next sync waits
until that many writers wait for it — the ones just answered come back with
their next write — or until ``busy_window_s`` has passed, whichever comes
first (as MySQL's binlog group commit does with a count and a delay). A lone
writer, or a write after a quiet moment, syncs at once; when writers go away
one sync waits the window and the count adapts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from rumor.node.core.errors import InsufficientStorage
from rumor.node.replication import Durability, Replica

log = structlog.get_logger(__name__)

BUSY_WINDOW_S = 0.004
UNSYNCED = (
    "no space left on this node's disk: the write is not acknowledged (it may still"
    " take effect once space returns); write to another node"
)


class SyncFailed(RuntimeError):
    """The WAL could not be synced; the node is stopping."""


class GroupCommit:
    def __init__(
        self,
        replica: Replica,
        *,
        synced: Callable[[int], None],
        on_failure: Callable[[BaseException], None],
        in_thread: bool = True,
        busy_window_s: float = BUSY_WINDOW_S,
        acknowledging: Callable[[], None] | None = None,
    ) -> None:
        self._replica = replica
        self._acknowledging = acknowledging
        # Every write up to this ticket is on disk: the hook has the replica marked durable.
        self._synced = synced
        self._on_failure = on_failure
        self._in_thread = in_thread
        self._busy_window_s = busy_window_s
        self._running: asyncio.Future[None] | None = None
        self._failure: BaseException | None = None
        self._busy = False  # writes arrived while the latest sync ran
        self._waiting = 0  # writers in durable() now
        self._expected = 0  # writers about: released by the latest sync + arrived during it
        self._enough: asyncio.Event | None = None  # set once _expected writers wait
        self.syncs = 0

    async def durable(self, ticket: int) -> None:
        """Return once the write with ``ticket`` (and all before it) is durable."""
        replica = self._replica
        if replica.durability is Durability.WAL:
            if self._acknowledging is not None:
                self._acknowledging()
            return
        if replica.is_durable(ticket):
            return
        self._waiting += 1
        if self._enough is not None and self._waiting >= self._expected:
            self._enough.set()
        try:
            while not replica.is_durable(ticket):
                if self._failure is not None:
                    raise SyncFailed("the write-ahead log could not be synced") from self._failure
                if self._running is None:
                    self._running = asyncio.ensure_future(self._sync())
                await asyncio.shield(self._running)
        finally:
            self._waiting -= 1

    async def _sync(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            if self._busy and self._waiting < self._expected:
                await self._gather_writers()
            target = self._replica.written_ticket
            if self._in_thread:
                # run_in_executor, not to_thread: the sync needs no copy of the context.
                await loop.run_in_executor(None, self._replica.store.sync_wal)
            else:
                self._replica.store.sync_wal()
        except InsufficientStorage:
            # To this sync's writers: not acknowledged, and not fatal.
            raise InsufficientStorage(UNSYNCED) from None
        except Exception as exc:  # an fsync error: never acknowledge again
            self._failure = exc
            log.critical("wal.sync_failed", error=str(exc))
            self._on_failure(exc)
            return
        finally:
            self._running = None
        self.syncs += 1
        self._busy = self._replica.written_ticket > target
        # The writers this sync answers and those that came during it: all wait still.
        self._expected = self._waiting
        self._synced(target)
        if self._acknowledging is not None:
            self._acknowledging()

    async def _gather_writers(self) -> None:
        """Wait until as many writers wait as the latest sync saw, or the busy window ends."""
        self._enough = asyncio.Event()
        try:
            await asyncio.wait_for(self._enough.wait(), self._busy_window_s)
        except TimeoutError:
            pass
        finally:
            self._enough = None

    async def flush(self) -> None:
        """Make every write so far durable (used at shutdown)."""
        await self.durable(self._replica.written_ticket)
