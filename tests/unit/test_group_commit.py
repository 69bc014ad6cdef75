"""Group commit against a MemoryStore that counts (and may hold up) its WAL syncs.

Checks that a write is acknowledged only after a sync that started after it,
that one sync serves writers that wait together, that a lone writer syncs at
once, that while busy the next sync also takes the writes the loop makes in
the iterations that follow, and that a failed sync is fatal.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from rumor.node.replication import Replica
from rumor.node.replication.replica import Write
from rumor.node.server.group_commit import GroupCommit, SyncFailed
from rumor.node.storage import MemoryStore

NAMESPACE = bytes(range(1, 17))


class CountingStore(MemoryStore):
    """Counts syncs; a sync may be held until the test releases it."""

    def __init__(self) -> None:
        super().__init__()
        self.syncs = 0
        self.hold: threading.Event | None = None
        self.started = threading.Event()
        self.fail = False

    def sync_wal(self) -> None:
        self.started.set()
        if self.hold is not None:
            self.hold.wait(5)
        if self.fail:
            raise OSError("disk gone")
        self.syncs += 1


def make() -> tuple[CountingStore, Replica, GroupCommit, list[BaseException]]:
    store = CountingStore()
    replica = Replica(store, new_node_id=7, wall_ms=1_000_000)
    failures: list[BaseException] = []
    return store, replica, GroupCommit(replica, on_failure=failures.append), failures


def write(replica: Replica, index: int) -> int:
    return replica.write(Write(NAMESPACE, b"k%d" % index, b"v"), 1_000_000 + index).ticket


async def test_concurrent_writers_share_one_sync() -> None:
    store, replica, commit, _ = make()
    before = store.syncs
    tickets = [write(replica, i) for i in range(10)]
    await asyncio.gather(*(commit.durable(ticket) for ticket in tickets))
    assert all(replica.is_durable(ticket) for ticket in tickets)
    assert store.syncs - before == 1


async def test_a_lone_writer_syncs_for_each_write() -> None:
    store, replica, commit, _ = make()
    before = store.syncs
    for i in range(5):
        ticket = write(replica, i)
        await commit.durable(ticket)
        assert replica.is_durable(ticket)
    assert store.syncs - before == 5


async def test_busy_sync_waits_for_the_writes_of_the_next_iterations() -> None:
    store, replica, commit, _ = make()
    store.hold = threading.Event()
    first = write(replica, 0)
    waiter = asyncio.ensure_future(commit.durable(first))
    await asyncio.to_thread(store.started.wait, 5)
    # Written while the first sync runs: it cannot cover this one, so the node is busy.
    second = write(replica, 1)
    store.hold.set()
    await waiter
    assert not replica.is_durable(second)

    async def one_write_per_iteration(start: int) -> list[int]:
        tickets = []
        for i in range(start, start + 3):
            tickets.append(write(replica, i))
            await asyncio.sleep(0)
        return tickets

    before = store.syncs
    late = asyncio.ensure_future(one_write_per_iteration(2))
    await commit.durable(second)
    tickets = await late
    # The sync that covered ``second`` waited for the loop to stop bringing writes.
    assert store.syncs - before == 1
    assert all(replica.is_durable(ticket) for ticket in tickets)


async def test_a_failed_sync_is_fatal() -> None:
    store, replica, commit, failures = make()
    store.fail = True
    ticket = write(replica, 0)
    with pytest.raises(SyncFailed):
        await commit.durable(ticket)
    assert len(failures) == 1
    assert not replica.is_durable(ticket)
    with pytest.raises(SyncFailed):
        await commit.durable(write(replica, 1))
