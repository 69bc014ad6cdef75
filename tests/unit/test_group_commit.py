"""Group commit against a MemoryStore that counts (and may hold up) its WAL syncs.

Checks that a write is acknowledged only after a sync that started after it,
that one sync serves writers that wait together, that a lone writer syncs at
once, that while busy the next sync waits (within a window) for as many
writers as the previous one saw, and that a failed sync is fatal. A finished
sync is reported through the ``synced`` hook (here the test stands in for the
driver and marks the replica durable itself); writers go only after it
returned, and in a node the hook is the driver's, which tells the engine.
"""

from __future__ import annotations

import asyncio
import random
import threading

import pytest

from rumor.node.core.membership import Member, State
from rumor.node.replication import Durability, Replica
from rumor.node.replication.engine.engine import Engine
from rumor.node.replication.engine.membership import Membership
from rumor.node.replication.engine.messages import Done, Failed, Now, Outbound, Response
from rumor.node.replication.engine.protocol_config import ProtocolConfig
from rumor.node.replication.replica.replica import Write
from rumor.node.server.driver.clock import WallClock
from rumor.node.server.driver.engine_driver import EngineDriver
from rumor.node.server.driver.faults import FaultRules
from rumor.node.server.driver.group_commit import GroupCommit, SyncFailed
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
    commit = GroupCommit(replica, synced=replica.mark_durable, on_failure=failures.append)
    return store, replica, commit, failures


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


async def test_busy_sync_waits_for_as_many_writers_as_the_last_one_saw() -> None:
    store, replica, commit, _ = make()
    store.hold = threading.Event()
    first = asyncio.ensure_future(commit.durable(write(replica, 0)))
    await asyncio.to_thread(store.started.wait, 5)
    # Two writers arrive while the first sync runs: three writers are about.
    second = write(replica, 1)
    third = write(replica, 2)
    waiting = [asyncio.ensure_future(commit.durable(t)) for t in (second, third)]
    store.hold.set()
    await first
    assert not replica.is_durable(second)

    async def comes_back_later() -> int:
        for _ in range(3):
            await asyncio.sleep(0)
        ticket = write(replica, 3)
        await commit.durable(ticket)
        return ticket

    before = store.syncs
    late = asyncio.ensure_future(comes_back_later())
    await asyncio.gather(*waiting)
    # One sync: it waited for the third writer instead of syncing the two at once.
    assert store.syncs - before == 1
    assert replica.is_durable(await late) and replica.is_durable(third)


async def test_a_busy_sync_waits_no_longer_than_the_window() -> None:
    store, replica, commit, _ = make()
    store.hold = threading.Event()
    first = asyncio.ensure_future(commit.durable(write(replica, 0)))
    await asyncio.to_thread(store.started.wait, 5)
    second = write(replica, 1)
    waiting = [asyncio.ensure_future(commit.durable(second)) for _ in range(3)]
    store.hold.set()
    await first
    # Four writers were about; only three come back. The sync still happens.
    started = asyncio.get_running_loop().time()
    await asyncio.wait_for(asyncio.gather(*waiting), timeout=5)
    assert replica.is_durable(second)
    assert asyncio.get_running_loop().time() - started < 1


async def test_a_closed_loop_of_writers_converges_on_one_sync_per_round() -> None:
    """Eight writers, each writing again as soon as it is answered: once the group
    commit has seen them all, each sync waits for all eight instead of syncing
    whichever one or two came back first."""
    store, replica, commit, _ = make()
    rounds, writers = 20, 8
    counter = iter(range(1_000_000))

    async def writer() -> None:
        for _ in range(rounds):
            ticket = write(replica, next(counter))
            await commit.durable(ticket)
            assert replica.is_durable(ticket)
            await asyncio.sleep(0)  # the answer travels back before the next write

    before = store.syncs
    await asyncio.gather(*(writer() for _ in range(writers)))
    assert store.syncs - before <= rounds * 2


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


async def test_writers_are_released_only_after_the_sync_is_reported() -> None:
    replica = Replica(CountingStore(), new_node_id=7, wall_ms=1_000_000)
    released: list[int] = []
    reports: list[tuple[int, list[int]]] = []

    def synced(ticket: int) -> None:
        reports.append((ticket, list(released)))  # who had been released by then
        replica.mark_durable(ticket)

    commit = GroupCommit(replica, synced=synced, on_failure=lambda error: None)
    tickets = [write(replica, i) for i in range(3)]

    async def writer(ticket: int) -> None:
        await commit.durable(ticket)
        released.append(ticket)

    await asyncio.gather(*(writer(ticket) for ticket in tickets))
    assert reports == [(tickets[-1], [])]
    assert sorted(released) == tickets


async def test_the_driver_reports_a_finished_sync_to_the_engine() -> None:
    """A client write's sync reaches the engine as ``advance(synced)``, the one place
    the replica is marked durable, before the writer is released."""
    store = MemoryStore()
    replica = Replica(store, new_node_id=7, wall_ms=1_000_000, durability=Durability.FSYNC)
    membership = Membership(store, Member(7, "a", 0, State.ALIVE, 1, ""))
    now = Now(0, 1_000_000)
    engine = Engine(replica, membership, ProtocolConfig.local(), rng=random.Random(1), now=now)
    advanced: list[tuple[int, bool]] = []
    advance = engine.advance

    def recorded(done: Done, now: Now) -> None:
        before = replica.is_durable(done.synced_ticket) if done.synced_ticket else True
        advance(done, now)
        if done.synced_ticket:
            advanced.append((done.synced_ticket, before))

    engine.advance = recorded  # type: ignore[method-assign]
    driver = EngineDriver(
        engine,
        _NoPeers(),
        lambda synced: GroupCommit(replica, synced=synced, on_failure=lambda error: None),
        WallClock(),
        faults=FaultRules(),
        on_stop=lambda message, kind: None,
        now=lambda: now,
    )
    applied = driver.propose([Write(NAMESPACE, b"k", b"v")])
    assert not replica.is_durable(applied[0].ticket)
    await driver.commit.durable(applied[0].ticket)
    assert advanced == [(applied[0].ticket, False)]
    assert replica.is_durable(applied[0].ticket)
    await driver.stop()


class _NoPeers:
    async def call(self, outbound: Outbound) -> Response | Failed:
        raise AssertionError(f"a lone node sent {outbound.body!r}")

    async def close(self) -> None:
        pass
