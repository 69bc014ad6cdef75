"""A node restarted on a stale copy of its own disk (same id) takes its own writes back.

The rule (docs/ALGORITHM.md, Membership; ``engine/own_writes.py``): a node's
own watermark covers only own writes it holds. Own seqs it skipped — those a
peer says it saw, and under durability ``wal`` the tail of the seq block it
had reserved — stay uncovered until it has pulled them from its peers; it
takes no client write meanwhile. Before, a copy taken before the node's first
write advertised its skipped seqs as held (a missing own watermark read as its
seq), and a ``wal`` copy claimed its whole reserved block: either way its
peers never sent it its own later writes, and the audit digests stayed apart
(the fuzz's seed 20 schedule 48, seed 23 schedules 74, 127, 179 under wal).

On the simulator's cluster (the real engine, virtual time): three nodes, a
copy of node 1's disk, a write through node 1 that spreads, then node 1
restarted on the copy.
"""

from __future__ import annotations

import random

import pytest

from rumor.experiments.sim.cluster import Cluster, ClusterSettings
from rumor.experiments.sim.execution import QUICK_LATENCY, quick_protocol
from rumor.experiments.sim.latency import LatencyDistribution
from rumor.experiments.sim.ledger import NAMESPACE
from rumor.experiments.sim.process import ProcessSettings
from rumor.node.core.errors import Unavailable
from rumor.node.replication.engine.messages import NoticeKind, Push
from rumor.node.replication.replica.replica import Durability

DURABILITIES = [Durability.FSYNC, Durability.WAL]


def cluster_of(nodes: int, durability: Durability) -> Cluster:
    settings = ClusterSettings(
        ProcessSettings(quick_protocol(), durability), LatencyDistribution.parse(QUICK_LATENCY)
    )
    cluster = Cluster(settings, random.Random(48))
    for slot in range(nodes):
        cluster.start(slot, (0,) if slot else ())
    cluster.loop.run_until(1500)
    return cluster


def restored_after_a_write(
    durability: Durability, *, wrote_before_copy: bool
) -> tuple[Cluster, int]:
    """Node 1 restarted on a copy of its disk taken before its write of ``later``
    (which every node holds by then); the seq that write took."""
    cluster = cluster_of(3, durability)
    if wrote_before_copy:
        assert cluster.write(1, b"earlier", b"in the copy") is not None
        cluster.loop.run_until(cluster.loop.now_ms + 500)
    copy = cluster.disks[1].copy()
    written = cluster.write(1, b"later", b"not in the copy")
    assert written is not None
    holders = cluster.processes.values()
    assert cluster.run_until_done(
        lambda: all(p.replica.header(NAMESPACE, b"later") for p in holders), 2000
    )
    seq = cluster.processes[1].replica.header(NAMESPACE, b"later")
    assert seq is not None
    cluster.restore(1, copy)
    return cluster, seq.seq


@pytest.mark.parametrize("wrote_before_copy", [False, True])
@pytest.mark.parametrize("durability", DURABILITIES)
def test_a_stale_copy_takes_its_own_later_writes_back(
    durability: Durability, wrote_before_copy: bool
) -> None:
    cluster, seq = restored_after_a_write(durability, wrote_before_copy=wrote_before_copy)
    restored = cluster.processes[1]
    assert restored.replica.header(NAMESPACE, b"later") is None
    assert cluster.run_until_done(
        lambda: restored.replica.header(NAMESPACE, b"later") is not None, 5000
    )
    assert restored.replica.own_watermark(restored.node_id) >= seq
    # Taken back by anti-entropy, not by the audit (the backstop: its repairs must be 0).
    notices = [notice for p in cluster.processes.values() for _, notice in p.notices]
    assert not [notice for notice in notices if notice.kind is NoticeKind.AUDIT_REPAIRED]
    buckets = [p.replica.audit_buckets for p in cluster.processes.values()]
    assert buckets[0] == buckets[1] == buckets[2]
    # And it writes again, past every seq its earlier life issued.
    assert cluster.run_until_done(lambda: cluster.write(1, b"after", b"new") is not None, 5000)
    after = restored.replica.header(NAMESPACE, b"after")
    assert after is not None and after.seq > seq


@pytest.mark.parametrize("wrote_before_copy", [False, True])
@pytest.mark.parametrize("durability", DURABILITIES)
def test_until_then_it_claims_none_of_them(durability: Durability, wrote_before_copy: bool) -> None:
    """What it advertises, in every envelope (a Push's too), covers only what it holds:
    not its reserved block (wal), nor the seqs a peer made it skip."""
    cluster, seq = restored_after_a_write(durability, wrote_before_copy=wrote_before_copy)
    restored = cluster.processes[1]
    me, engine = restored.node_id, restored.engine

    def claimed() -> int:
        claims = [engine.replica.own_watermarks()[me]]
        for full in (False, True):
            envelope = engine.envelopes.make(Push((), ()), all_members=full, to=0)
            claims.append(envelope.watermarks[me])
        return max(claims)

    assert claimed() < seq
    held = lambda: restored.replica.header(NAMESPACE, b"later") is not None  # noqa: E731
    while not held():  # peers make it skip their seqs, then send them back
        assert claimed() < seq
        assert cluster.loop.now_ms < 20_000
        cluster.loop.run_until(cluster.loop.now_ms + 1)
    assert restored.replica.state.seq >= seq


def test_under_wal_a_restart_takes_no_write_until_it_has_caught_up() -> None:
    """A reserved block's tail may hold writes a later life issued: no write covers it
    before the node has synchronised with a peer."""
    cluster, _ = restored_after_a_write(Durability.WAL, wrote_before_copy=True)
    restored = cluster.processes[1]
    assert restored.replica.skipped_seqs > 0
    with pytest.raises(Unavailable, match="taking its own writes back"):
        restored.engine.check_writable()
    assert cluster.run_until_done(lambda: restored.engine.serving, 5000)
    assert cluster.run_until_done(lambda: not restored.replica.skipped_seqs, 5000)
    restored.engine.check_writable()
