"""Bootstrap by snapshot, sans-I/O: who may take one, admission, and the install rules,
then a join by snapshot while deletes and purges go on (MemoryStore and a real RocksDB)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rumor.node.core.record import RecordHeader
from rumor.node.replication.replica.replica import Durability, Replica, Write
from rumor.node.replication.replica.snapshot_install import (
    SnapshotAdmission,
    install_into,
    may_bootstrap_by_snapshot,
)
from rumor.node.storage import MemoryStore, RocksStore, Store, layout
from rumor.node.storage.store import KV, META

P_ID = 0x0A0A
J_ID = 0x0B0B
WALL_MS = 1_700_000_000_000
NS = bytes(range(16))


def open_replica(store: Store, node_id: int) -> Replica:
    return Replica(store, new_node_id=node_id, wall_ms=WALL_MS, durability=Durability.WAL)


def durable(node: Replica) -> None:
    node.store.sync_wal()
    node.mark_durable(node.written_ticket)


def write(node: Replica, keys: range, *, tombstone: bool = False, value: bytes = b"v") -> None:
    node.write_many(
        [Write(NS, b"k%05d" % i, b"" if tombstone else value, tombstone=tombstone) for i in keys],
        WALL_MS,
    )
    durable(node)


def purge_tombstones(node: Replica, keys: range) -> int:
    """What the sweeper does once GC finds these tombstones stable everywhere."""
    doomed = []
    for i in keys:
        stored = layout.record_key(NS, b"k%05d" % i)
        raw = node.store.get(KV, stored)
        if raw is not None and RecordHeader.decode(raw).tombstone:
            doomed.append((stored, RecordHeader.decode(raw)))
    return node.purge(doomed)


def live(node: Replica) -> dict[bytes, bytes]:
    return {k: v for k, v in node.store.scan(KV, b"") if not RecordHeader.decode(v).tombstone}


def test_only_a_node_with_nothing_of_its_own_may_bootstrap_by_snapshot() -> None:
    fresh = open_replica(MemoryStore(), J_ID)
    assert may_bootstrap_by_snapshot(fresh.state)
    write(fresh, range(1))
    assert not may_bootstrap_by_snapshot(fresh.state)


def test_admission_needs_a_counted_member_resets_its_vector_and_serves_two_at_once() -> None:
    admission = SnapshotAdmission()
    vectors = {J_ID: {P_ID: 40}, 3: {}, 4: {}}
    assert not admission.admit(J_ID, vectors, members={3, 4})  # not a member yet
    assert admission.admit(J_ID, vectors, members={J_ID, 3, 4})
    assert vectors[J_ID] == {}  # GC now waits for the joiner
    assert admission.admit(3, vectors, members={J_ID, 3, 4})
    assert not admission.admit(4, vectors, members={J_ID, 3, 4})  # two already served
    admission.finished(J_ID)
    assert admission.admit(4, vectors, members={J_ID, 3, 4})
    assert admission.may_serve(4) and not admission.may_serve(J_ID)


def test_install_keeps_the_joiners_id_and_moves_its_marks_past_what_the_copy_saw_of_it() -> None:
    peer_store = MemoryStore()
    peer = open_replica(peer_store, P_ID)
    write(peer, range(10))
    copy = peer_store.snapshot_copy("")
    batch = copy.batch()
    batch.put(META, layout.watermark_key(J_ID), layout.pack_u64(7))  # the peer saw J's seq 7
    batch.put(META, layout.member_key(P_ID), b"stale member entry")
    copy.write(batch)
    joiner = open_replica(MemoryStore(), J_ID)
    install_into(joiner.state, copy)
    installed = open_replica(copy, 0x0C0C)
    assert installed.node_id == J_ID
    assert not list(copy.scan(META, layout.META_MEMBER_PREFIX, b"member0"))
    assert installed.own_watermarks()[J_ID] == 7
    assert installed.clock.last >= peer.clock.last
    assert installed.audit_buckets == peer.audit_buckets
    applied = installed.write(Write(NS, b"mine", b"x"), WALL_MS)
    assert applied.header.seq == 8  # never a seq the cluster has seen of it
    assert installed.records_held == peer.records_held + 1


@pytest.mark.parametrize("kind", ["memory", "rocksdb"])
def test_a_join_by_snapshot_while_deletes_and_purges_go_on_resurrects_nothing(
    kind: str, tmp_path: Path
) -> None:
    peer_store: MemoryStore | RocksStore = (
        MemoryStore() if kind == "memory" else RocksStore(tmp_path / "peer")
    )
    joiner_store: Store = MemoryStore() if kind == "memory" else RocksStore(tmp_path / "joiner")
    peer = open_replica(peer_store, P_ID)
    write(peer, range(1000))
    write(peer, range(0, 300), tombstone=True)
    assert purge_tombstones(peer, range(0, 100)) == 100
    joiner = open_replica(joiner_store, J_ID)
    assert may_bootstrap_by_snapshot(joiner.state)
    admission = SnapshotAdmission()
    assert admission.admit(J_ID, {}, members={J_ID, P_ID})
    copy = peer_store.snapshot_copy(str(tmp_path / "copy"))
    # While the copy travels: more deletes, overwrites, and purges of tombstones it holds.
    write(peer, range(300, 450), tombstone=True)
    write(peer, range(800, 850), value=b"newer")
    assert purge_tombstones(peer, range(100, 300)) == 200
    admission.finished(J_ID)
    install_into(joiner.state, copy)
    joiner_store.close()
    node = open_replica(copy, J_ID)
    node.begin_sync()
    for _ in range(1000):  # the tail, through watermarks, in budgeted answers
        delta = peer.delta_for(node.sync_digest(), budget_entries=200)
        node.apply_remote(delta.records, WALL_MS, delta.coverage, session=True)
        durable(node)
        if delta.complete:
            break
    assert node.node_id == J_ID
    assert live(node) == live(peer)
    assert not any(b"k%05d" % i in {k[16:] for k in live(node)} for i in range(450))
    assert node.audit_buckets == peer.audit_buckets
    assert node.own_watermarks()[P_ID] == peer.own_watermarks()[P_ID]
    node.store.close()
    peer_store.close()
