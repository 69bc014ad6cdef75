"""Bounded work: every many-record step stops at its budget and resumes, without losing
anything — anti-entropy answers (entry budget), audit slices, list slices, the loop-lag
monitor. On MemoryStore (sans-I/O); the timings are in ``rumor bench loop-steps``."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from rumor.node.core import audit
from rumor.node.replication.replica.delta import AuditEntry
from rumor.node.replication.replica.replica import Durability, Replica, Write
from rumor.node.server.loop_lag import LoopLag
from rumor.node.storage import MemoryStore
from rumor.node.storage.store import KV

A_ID = 0x0A0A
B_ID = 0x0B0B
WALL_MS = 1_700_000_000_000
NS = bytes(range(16))


def replica(node_id: int) -> Replica:
    return Replica(MemoryStore(), new_node_id=node_id, wall_ms=WALL_MS, durability=Durability.WAL)


def durable(node: Replica) -> None:
    node.store.sync_wal()
    node.mark_durable(node.written_ticket)


def holder(keys: int, overwrites: int = 0, deletes: int = 0) -> Replica:
    node = replica(A_ID)
    node.write_many([Write(NS, b"k%05d" % i, b"v") for i in range(keys)], WALL_MS)
    node.write_many([Write(NS, b"k%05d" % i, b"w") for i in range(overwrites)], WALL_MS)
    node.write_many([Write(NS, b"k%05d" % i, tombstone=True) for i in range(deletes)], WALL_MS)
    durable(node)
    return node


def catch_up(asker: Replica, responder: Replica, entry_budget: int) -> int:
    """Rounds of one synchronisation at ``entry_budget`` until an answer is complete."""
    asker.begin_sync()
    for rounds in range(1, 10_000):
        delta = responder.delta_for(asker.sync_digest(), budget_entries=entry_budget)
        assert len(delta.records) <= entry_budget
        asker.apply_remote(delta.records, WALL_MS, delta.coverage, session=True)
        durable(asker)
        if delta.complete:
            return rounds
    raise AssertionError("the synchronisation never completed")


@settings(max_examples=25, deadline=None)
@given(
    keys=st.integers(1, 120),
    overwrites=st.integers(0, 60),
    deletes=st.integers(0, 60),
    entry_budget=st.integers(1, 50),
)
def test_an_entry_budgeted_catch_up_ends_with_everything_and_the_same_watermarks(
    keys: int, overwrites: int, deletes: int, entry_budget: int
) -> None:
    source = holder(keys, min(overwrites, keys), min(deletes, keys))
    joiner = replica(B_ID)
    rounds = catch_up(joiner, source, entry_budget)
    assert dict(joiner.store.scan(KV, b"")) == dict(source.store.scan(KV, b""))
    assert joiner.audit_buckets == source.audit_buckets
    assert joiner.own_watermarks()[A_ID] == source.own_watermarks()[A_ID]
    log_entries = keys + min(overwrites, keys) + min(deletes, keys)
    assert rounds >= -(-log_entries // (entry_budget + 1))  # each answer stopped at its budget


def test_an_answer_stops_at_its_entry_budget_and_still_makes_progress() -> None:
    source = holder(50, overwrites=50)  # seqs 1-50 were replaced by 51-100
    first = source.delta_for({}, budget_entries=10)
    assert [r.ids()[2] for r in first.records] == list(range(51, 61))  # the replacements
    assert not first.complete
    assert first.coverage[0].last == 10
    # The peer has seen seqs up to 60: the replaced entries 11-50 now send nothing,
    # yet each answer still advances its claim.
    second = source.delta_for({A_ID: 60}, budget_entries=10)
    assert second.records == [r for r in second.records if r.ids()[2] > 60]
    assert second.coverage[0].last > 60


def test_audit_slices_together_hold_every_entry_of_the_differing_buckets() -> None:
    source = holder(500)
    every_bucket = list(range(audit.BUCKETS))
    whole, end = source.audit_entries(every_bucket)
    assert end == b""
    sliced: list[AuditEntry] = []
    start, slices = b"", 0
    while True:
        entries, start = source.audit_entries(every_bucket, start, budget=64)
        sliced += entries
        slices += 1
        if not start:
            break
    assert sliced == whole
    assert slices == -(-500 // 64)


def test_a_list_over_many_tombstones_fills_its_page_across_slices() -> None:
    node = holder(1000, deletes=990)  # k00990..k00999 stay live
    resume: bytes | None = None
    keys: list[bytes] = []
    slices = 0
    while True:
        page = node.list_page(NS, b"", None, 3 - len(keys), 0, scan_budget=100, resume_from=resume)
        keys += [name for name, _ in page.keys]
        slices += 1
        if page.resume_from is None:
            break
        resume = page.resume_from
    assert keys == [b"k00990", b"k00991", b"k00992"]
    assert not page.complete
    assert slices == 10  # 990 tombstones read 100 at a time, then the live keys


def test_the_loop_lag_monitor_sees_a_blocked_loop() -> None:
    seen: list[float] = []
    monitor = LoopLag(seen.append, interval_s=0.005)

    async def block_then_stop() -> None:
        task = asyncio.create_task(monitor.run())
        while monitor.samples < 2:
            await asyncio.sleep(0.005)
        blocked_until = asyncio.get_running_loop().time() + 0.1
        while asyncio.get_running_loop().time() < blocked_until:
            pass  # a synchronous stall of 100 ms
        while monitor.samples < 4:
            await asyncio.sleep(0.005)
        task.cancel()

    asyncio.run(block_then_stop())
    assert monitor.max_seconds >= 0.09
    assert max(seen) == monitor.max_seconds
