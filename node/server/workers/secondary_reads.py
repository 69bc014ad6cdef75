"""A worker's plain reads, served from its own RocksDB secondary instance.

Sending every read to the owner made the owner's one core the node's read
ceiling: with one worker it already spent ~0.37 core on forwarded reads, so a
second worker added little (docs/ALGORITHM.md, "Serving clients"). A worker
therefore opens the owner's database as a secondary instance (in its own
directory under the owner's private socket directory, emptied first) and
answers Get, BulkGet — unary, inside a client's Batch frames, and the REST
API's and the Workers binding's value reads — with the owner's own code: an
``Operations`` over a ``Replica`` on the secondary store, so every answer,
error and message is the one the owner would give (namespace checks, key
validation, expirations judged by the wall clock).

Before a read, ``fresh`` compares what the owner published
(``owner_state``) with what the view holds; when the owner acknowledged a
write the view may not hold, one catch-up runs on a thread, shared by every
read waiting for it (``catch_up``). After it the namespace cache is dropped,
so namespaces created or deleted elsewhere read as the owner reads them. A
read the worker must not answer itself goes to the owner: while the owner
refuses reads (its clock is fenced: the refusal is its own), when a catch-up
fails, and — decided by the callers — a read waiting for a session token or
bounding its staleness (only the owner's replica can wait or tell). Writes
always go to the owner; the view never writes (the store refuses it).

The lag bound a local read reports is the owner's bound at the newest
published moment the view holds, aged to now (``OwnerState.lag_bound_at``):
a true bound for what this view may lack.

The owner restarts its store only by ending ``_serve`` (a snapshot install,
a rejoin as new), which stops its workers first: a secondary never outlives
the database it follows.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import structlog

from rumor.node.core.errors import ReplicationTimeout
from rumor.node.replication import Applied, Replica
from rumor.node.replication.replica.replica import Write
from rumor.node.server.driver.clock import WallClock
from rumor.node.server.driver.group_commit import GroupCommit
from rumor.node.server.operations import Operations
from rumor.node.server.workers.catch_up import CatchUps
from rumor.node.server.workers.owner_state import OwnerState, OwnerStateView, monotonic_ms
from rumor.node.storage import RocksStore

log = structlog.get_logger(__name__)

# A view that no read brought up to date catches up this often, if the owner wrote
# meanwhile: it keeps the primary's deleted table files open (compactions) until then.
FOLLOW_INTERVAL_S = 10.0


def secondary_dir(socket_dir: str, index: int) -> Path:
    return Path(socket_dir) / f"secondary-{index}"


class _WritesGoToTheOwner(RuntimeError):
    """A worker's view was asked to write: its writes go to the owner."""


class _OwnerFacts:
    """``ReplicationHooks`` for the view: what the owner published; no writes."""

    def __init__(self, covered: OwnerState) -> None:
        self.covered = covered  # the newest published state whose seq the view holds

    def lag_bound_ms(self) -> int | None:
        return self.covered.lag_bound_at(monotonic_ms())

    def check_readable(self) -> None:
        return None  # while the owner refuses reads, ``fresh`` sends them to it

    def check_clock(self) -> None:
        raise _WritesGoToTheOwner()

    def propose(self, writes: Sequence[Write]) -> list[Applied]:
        raise _WritesGoToTheOwner()

    def propose_all(self, writes: Sequence[Write]) -> int:
        raise _WritesGoToTheOwner()

    async def wait_for_replicas(self, seq: int, wanted: int) -> None:
        raise ReplicationTimeout("a worker's view holds no writes of its own")

    async def wait_for_coverage(self, wanted: Mapping[int, int], timeout_s: float) -> None:
        raise _WritesGoToTheOwner()  # session reads go to the owner


def _never(_: object) -> None:
    raise _WritesGoToTheOwner()


class SecondaryReads:
    """A worker's view of the owner's database, and the ``Operations`` that read it."""

    def __init__(self, data_dir: str, directory: Path, owner: OwnerStateView) -> None:
        shutil.rmtree(directory, ignore_errors=True)  # an earlier worker's (a restart)
        self._owner = owner
        opened_after = owner.snapshot()  # opening reads what was written before it
        self.store = RocksStore(data_dir, secondary_dir=directory)
        clock = WallClock()
        replica = Replica(self.store, new_node_id=0, wall_ms=clock.wall_ms())
        self._replica = replica
        self._facts = _OwnerFacts(opened_after)
        # The group commit is never reached: the view proposes nothing.
        commit = GroupCommit(replica, synced=_never, on_failure=_never)
        self.operations = Operations(replica, commit, clock, replication=self._facts)
        self._catch_ups = CatchUps(
            self._catch_up, lambda: owner.snapshot().acknowledged_seq, opened_after.acknowledged_seq
        )
        self.reads_answered = 0  # fresh: answered here
        self.reads_to_owner = 0
        self.catch_up_seconds = 0.0  # from the hand-off to the thread to the namespace reset

    @property
    def catch_ups(self) -> int:
        return self._catch_ups.count

    @property
    def seq(self) -> int:
        """The view holds every write up to this RocksDB sequence number."""
        return self._catch_ups.reached

    async def _catch_up(self) -> None:
        started = time.perf_counter()
        await asyncio.get_running_loop().run_in_executor(None, self.store.catch_up_with_primary)
        state = self._replica.state
        state.namespaces.clear()  # namespaces created or deleted meanwhile read anew
        state.titles = None
        state.retired.clear()
        self.catch_up_seconds += time.perf_counter() - started

    async def fresh(self) -> bool:
        """Make the view hold every write acknowledged so far; False: the owner must
        answer this read (it refuses reads now, or the catch-up failed)."""
        published = self._owner.snapshot()
        if published.reads_refused:
            self.reads_to_owner += 1
            return False
        try:
            await self._catch_ups.reach(published.acknowledged_seq)
        except Exception as error:
            log.warning("worker.catch_up_failed", error=repr(error))
            self.reads_to_owner += 1
            return False
        if published.lag_at_ms >= self._facts.covered.lag_at_ms:
            self._facts.covered = published
        self.reads_answered += 1
        return True

    async def follow(self) -> None:
        """Catch up now and then while reads do not (until cancelled): a view left behind
        holds the files the primary's compactions deleted, and their disk space."""
        while True:
            await asyncio.sleep(FOLLOW_INTERVAL_S)
            try:
                await self._catch_ups.reach(self._owner.snapshot().acknowledged_seq)
            except Exception as error:
                log.warning("worker.catch_up_failed", error=repr(error))

    def lag_bound(self) -> str:
        """The lag bound a read answered here reports (``Sessions.lag_bound``)."""
        return self.operations.lag_bound() or "unknown"

    def close(self) -> None:
        self.store.close()
