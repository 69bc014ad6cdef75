"""Members that leave and come back, on the real engine (simulated cluster, virtual time).

A probe answered under another id is no sign of the probed member's life; a
member gone for good (replaced at its address, a made-up id, down past the
member timeout) is retired and stops holding GC back; one that comes back
with its old data is refused and, with --rejoin-as-new, joins as a new node
that brings nothing back. The timeout rules themselves are tested on the
member table alone, with hypothesis for the majority rule.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rumor.experiments.sim.cluster import Cluster, ClusterSettings, address_of
from rumor.experiments.sim.execution import QUICK_LATENCY, quick_protocol
from rumor.experiments.sim.latency import LatencyDistribution
from rumor.experiments.sim.ledger import NAMESPACE
from rumor.experiments.sim.process import ProcessSettings
from rumor.node.core.membership import Member, State
from rumor.node.replication.engine.canaries import Canary
from rumor.node.replication.engine.envelopes import Envelopes
from rumor.node.replication.engine.membership import Membership
from rumor.node.replication.engine.messages import Envelope, NoticeKind, Outbound, Ping
from rumor.node.replication.engine.protocol_config import ProtocolConfig
from rumor.node.replication.replica.replica import Durability
from rumor.node.storage import MemoryStore

TIMEOUT_MS = 3000
MADE_UP = 0x1234_5678_9ABC_DEF0


def cluster_of(
    nodes: int, *, canaries: frozenset[Canary] = frozenset(), timeout_ms: int = TIMEOUT_MS
) -> Cluster:
    protocol = quick_protocol().replace(member_timeout_ms=timeout_ms)
    settings = ClusterSettings(
        ProcessSettings(protocol, Durability.FSYNC, canaries=canaries),
        LatencyDistribution.parse(QUICK_LATENCY),
    )
    cluster = Cluster(settings, random.Random(21))
    for slot in range(nodes):
        cluster.start(slot, (0,) if slot else ())
    cluster.loop.run_until(1500)
    return cluster


def state_everywhere(cluster: Cluster, member: int, slots: range) -> set[State | None]:
    return {cluster.processes[s].engine.membership.state_of(member) for s in slots}


def test_a_new_process_at_an_old_address_does_not_keep_the_old_id_alive() -> None:
    cluster = cluster_of(3)
    old = cluster.processes[2].node_id
    cluster.restart(2, keep_data=False)  # a pod replaced with a fresh volume
    new = cluster.processes[2].node_id
    assert new != old
    assert cluster.run_until_done(
        lambda: state_everywhere(cluster, old, range(2)) <= {State.DEAD}, 5000
    )
    assert cluster.processes[0].engine.stats.probe_mismatches > 0
    assert cluster.processes[2].engine.stats.misaddressed > 0
    # The new process is a member in its own right, and the old id is retired after the
    # member timeout: it no longer holds GC back anywhere.
    assert cluster.run_until_done(
        lambda: state_everywhere(cluster, old, range(3)) == {State.REMOVED}, 15_000
    )
    for slot in range(3):
        assert old not in cluster.processes[slot].engine.membership.counted()
        assert cluster.processes[slot].running


def test_with_the_bug_back_the_old_id_stays_alive() -> None:
    """The canary: counting any answer as life keeps the replaced id alive for ever."""
    cluster = cluster_of(3, canaries=frozenset({Canary.ANY_ANSWER_ALIVE}))
    old = cluster.processes[2].node_id
    cluster.restart(2, keep_data=False)
    cluster.loop.run_until(cluster.loop.now_ms + 10_000)
    assert cluster.processes[0].engine.membership.state_of(old) is State.ALIVE


def test_a_tombstone_is_purged_once_a_replaced_member_is_retired() -> None:
    cluster = cluster_of(3)
    cluster.write(0, b"doomed", b"v")
    cluster.loop.run_until(cluster.loop.now_ms + 500)
    cluster.restart(2, keep_data=False)
    cluster.write(1, b"doomed", b"", tombstone=True)

    def purged() -> bool:
        return all(
            cluster.processes[s].replica.header(NAMESPACE, b"doomed") is None for s in (0, 1)
        )

    assert cluster.run_until_done(purged, 20_000)


def test_a_forged_ping_from_a_made_up_id_does_not_hold_gc_back() -> None:
    cluster = cluster_of(3, timeout_ms=3_600_000)  # the member timeout plays no part
    victim = cluster.processes[0]
    envelope = Envelope(
        sender=MADE_UP,
        boot_nonce=1,
        hlc=victim.replica.clock.last,
        address="forger:1",
        name="forger",
        watermarks={MADE_UP: 0},
        recipient=victim.node_id,
    )
    cluster.network.call(
        None, Outbound(0, victim.node_id, address_of(0), envelope, Ping(), 1000), source="forger:1"
    )
    assert cluster.run_until_done(lambda: MADE_UP in victim.engine.membership.counted(), 1000)
    # Never confirmed by a probe, and it wrote nothing: retired after the shorter bound,
    # well before the member timeout, on every node.
    unconfirmed = quick_protocol().unconfirmed_member_timeout_ms
    assert cluster.run_until_done(
        lambda: state_everywhere(cluster, MADE_UP, range(3)) <= {State.REMOVED, None},
        unconfirmed + 2500,
    )
    assert all(MADE_UP not in cluster.processes[s].engine.membership.counted() for s in range(3))


def test_a_member_back_after_the_timeout_rejoins_as_new_and_brings_nothing_back() -> None:
    cluster = cluster_of(3)
    cluster.write(2, b"old", b"held by the member that goes away")
    cluster.loop.run_until(cluster.loop.now_ms + 500)
    old = cluster.processes[2].node_id
    cluster.crash(2)
    cluster.write(0, b"old", b"", tombstone=True)  # deleted while it is away
    assert cluster.run_until_done(
        lambda: state_everywhere(cluster, old, range(2)) == {State.REMOVED}, 15_000
    )
    assert cluster.run_until_done(
        lambda: all(cluster.processes[s].replica.header(NAMESPACE, b"old") is None for s in (0, 1)),
        10_000,
    )
    cluster.rejoining.add(2)
    cluster.restart(2, keep_data=True)  # its old disk still holds the put
    assert cluster.run_until_done(lambda: cluster.processes[2].node_id != old, 5000)
    assert cluster.rejoined_ms[2]
    assert cluster.run_until_done(lambda: cluster.processes[2].engine.serving, 5000)
    cluster.loop.run_until(cluster.loop.now_ms + 2000)
    for slot in range(3):
        header = cluster.processes[slot].replica.header(NAMESPACE, b"old")
        assert header is None or header.tombstone, f"node-{slot} brought the put back"
        assert cluster.processes[slot].running


def test_a_node_fetching_a_snapshot_times_nobody_out() -> None:
    """It knows the dead member only by gossip and holds none of its writes, but it
    is still joining: a retirement it wrote would be dropped by the copy it installs
    while its peers keep it (the fuzz found the audit digests apart for ever)."""
    settings = ClusterSettings(
        ProcessSettings(quick_protocol(), Durability.FSYNC),
        LatencyDistribution.parse(QUICK_LATENCY),
        snapshot_bytes_per_ms=1.0,  # a copy that travels for seconds
    )
    cluster = Cluster(settings, random.Random(7))
    for slot in range(3):
        cluster.start(slot, (0,) if slot else ())
    cluster.loop.run_until(1500)
    for key in range(40):
        cluster.write(key % 2, b"key-%02d" % key, b"v" * 20)
    cluster.loop.run_until(2500)
    dead = cluster.processes[2].node_id
    cluster.crash(2)
    joiner = cluster.start(3, (0,))
    assert cluster.run_until_done(lambda: bool(joiner.engine.snapshots.fetching), 2000)
    assert cluster.run_until_done(lambda: not joiner.running, 15_000)  # it installs the copy
    timed_out = [n for _, n in joiner.notices if n.kind is NoticeKind.MEMBER_TIMED_OUT]
    assert not timed_out
    # Meanwhile the dead member was retired (by the others): the joiner did not have to.
    assert cluster.processes[0].engine.membership.state_of(dead) is State.REMOVED
    new = cluster.processes[3]
    assert cluster.run_until_done(
        lambda: (
            cluster.processes[0].replica.audit_buckets == new.replica.audit_buckets
            and new.engine.serving
        ),
        10_000,
    )


def test_a_joiner_that_serves_before_its_copy_arrives_does_not_install_it() -> None:
    """A synchronisation already under way can complete while the copy travels (the
    fuzz's schedule 23-29 in WAL mode: a fresh process at an old address): the node
    then serves and takes writes, which installing the copy would drop."""
    settings = ClusterSettings(
        ProcessSettings(quick_protocol(), Durability.FSYNC),
        LatencyDistribution.parse(QUICK_LATENCY),
        snapshot_bytes_per_ms=1.0,
    )
    cluster = Cluster(settings, random.Random(7))
    for slot in range(3):
        cluster.start(slot, (0,) if slot else ())
    cluster.loop.run_until(1500)
    for key in range(40):
        cluster.write(key % 2, b"key-%02d" % key, b"v" * 20)
    cluster.loop.run_until(2500)
    joiner = cluster.start(3, (0,))
    assert cluster.run_until_done(lambda: bool(joiner.engine.snapshots.fetching), 2000)
    joiner.engine.become_serving("a synchronisation completed meanwhile")
    assert cluster.write(3, b"key-00", b"", tombstone=True) is not None
    assert cluster.run_until_done(lambda: not joiner.engine.snapshots.fetching, 15_000)
    assert joiner.running and cluster.processes[3] is joiner  # no restart on the copy
    assert not [n for _, n in joiner.notices if n.kind is NoticeKind.INSTALL_SNAPSHOT]
    header = joiner.replica.header(NAMESPACE, b"key-00")
    assert header is not None and header.tombstone


# ---- the timeout rules on the member table alone ---------------------------------------

ME = 1


def table(*, timeout_ms: int = 1000, unconfirmed_ms: int = 0) -> Membership:
    return Membership(
        MemoryStore(),
        Member(ME, "me:1", 0, State.ALIVE, 1),
        suspicion_timeout_ms=10,
        member_timeout_ms=timeout_ms,
        unconfirmed_timeout_ms=unconfirmed_ms,
    )


def down(members: Membership, member_id: int, state: State, now_ms: int) -> None:
    members.merge(Member(member_id, f"m{member_id}:1", 5, state, 1), now_ms)


def test_a_member_that_left_is_retired_after_the_timeout_even_without_a_majority() -> None:
    members = table()
    for peer in (2, 3):
        members.heard_from(peer, f"m{peer}:1", 1, 0)
        members.confirm(peer)
    down(members, 2, State.LEFT, 0)
    down(members, 3, State.DEAD, 0)  # 1 of 3 confirmed members up: no majority
    assert members.tick(500) == []
    assert members.tick(1000) == [2]  # left: it said so itself; dead: not without a majority


def test_confirmations_survive_a_restart_and_loaded_down_members_start_their_clock() -> None:
    store = MemoryStore()
    members = Membership(store, Member(ME, "me:1", 0, State.ALIVE, 1), member_timeout_ms=1000)
    for peer in (2, 3):
        members.heard_from(peer, f"m{peer}:1", 1, 0)
        members.confirm(peer)
    down(members, 2, State.DEAD, 0)  # 2 of 3 up: a majority
    again = Membership(store, Member(ME, "me:1", 0, State.ALIVE, 2), member_timeout_ms=1000)
    assert 2 in again.confirmed
    assert again.tick(50_000) == []  # its dead time starts when this process loaded it
    assert again.tick(51_000) == [2]


def test_an_unconfirmed_member_that_wrote_is_left_to_the_member_timeout() -> None:
    members = table(timeout_ms=10_000, unconfirmed_ms=100)
    down(members, 7, State.DEAD, 0)
    assert members.tick(200, wrote=lambda member: member == 7) == []
    assert members.tick(200, wrote=lambda member: False) == [7]


@given(
    side=st.lists(st.booleans(), min_size=1, max_size=9),
)
def test_in_a_partition_at_most_one_side_can_time_out_the_other(side: list[bool]) -> None:
    """Every member confirmed by every other; each side sees itself up and the other dead:
    the two sides never both see a majority, so they cannot retire each other."""
    ids = list(range(1, len(side) + 2))  # member 1 is on side True
    sides = [True, *side]
    majorities = []
    for me, mine in zip(ids, sides, strict=True):
        members = Membership(
            MemoryStore(), Member(me, f"m{me}:1", 0, State.ALIVE, 1), member_timeout_ms=1
        )
        for other, theirs in zip(ids, sides, strict=True):
            if other == me:
                continue
            members.heard_from(other, f"m{other}:1", 1, 0)
            members.confirm(other)
            if theirs != mine:
                down(members, other, State.DEAD, 0)
        majorities.append((mine, members.sees_majority()))
    assert {s for s, seen in majorities if seen} != {True, False}


def test_the_default_member_timeout_is_hours_not_never() -> None:
    config = ProtocolConfig.lan()
    assert config.member_timeout_ms >= 3600 * 1000
    assert 0 < config.unconfirmed_member_timeout_ms < config.member_timeout_ms


def test_a_members_vector_starts_afresh_with_each_of_its_processes() -> None:
    """A process restarted on a stale copy of its disk (or after a power loss) has seen
    and issued less than its previous life said: a mark kept from that life (a vector
    merged by max, an issued seq) would hold GC's second phase for ever, waiting for
    seqs that went with the old disk (the fuzz's schedules 1-179 and 22-141)."""
    cluster = cluster_of(3)
    node, peer = cluster.processes[0], cluster.processes[1]
    envelopes, vectors = node.engine.envelopes, node.engine.membership.vectors
    now = cluster.now_of(0)
    boot, address = peer.boot_nonce, peer.address
    later = Envelope(
        peer.node_id, boot, 0, address, watermarks={peer.node_id: 10_000}, issued_seq=10_017
    )
    envelopes.absorb(later, now)
    assert vectors[peer.node_id][peer.node_id] == 10_000
    assert envelopes.issued[peer.node_id] == 10_017
    stale = Envelope(peer.node_id, boot + 1, 0, address, watermarks={peer.node_id: 9})
    envelopes.absorb(stale, now)
    assert vectors[peer.node_id] == {peer.node_id: 9}
    assert envelopes.issued[peer.node_id] == 0  # what it issued after 9 went with its disk
    same_boot = Envelope(peer.node_id, boot + 1, 0, address, watermarks={7: 3})
    envelopes.absorb(same_boot, now)
    assert vectors[peer.node_id] == {peer.node_id: 9, 7: 3}  # merged within one process


def test_the_majority_counts_real_members_only() -> None:
    members = table()
    for peer in (2, 3):
        members.heard_from(peer, f"m{peer}:1", 1, 0)
    down(members, 2, State.DEAD, 0)
    for made_up in (10, 11, 12):
        down(members, made_up, State.DEAD, 0)
    # Nobody confirmed yet (just upgraded): 3 wrote, so it counts; 2 is down and wrote:
    # me and 3 of me, 2, 3 are up, a majority; the made-up ids count for nothing.
    wrote = {2, 3}.__contains__
    assert members.sees_majority(wrote)
    # In a partition that left this node alone with made-up ids, no majority.
    down(members, 3, State.DEAD, 0)
    assert not members.sees_majority(wrote)


def _orphaned_member_comes_back(cluster: Cluster) -> tuple[int, int]:
    """A group {5, 6} forms apart from the cluster {0, 1, 2}; 6 writes a put and goes
    down; 5 is replaced at its address by a new empty process that joins the cluster,
    which never heard of 6 and deletes the key, then purges the tombstone; 6 comes back
    on its old disk, past the member timeout (--rejoin-as-new). Its old id and the
    new slot-6 id."""
    cluster.start(5)
    cluster.start(6, (5,))
    assert cluster.run_until_done(lambda: cluster.processes[6].engine.serving, 5000)
    cluster.write(6, b"k", b"put apart")
    cluster.loop.run_until(cluster.loop.now_ms + 100)
    old = cluster.processes[6].node_id
    cluster.crash(6)
    down_at = cluster.loop.now_ms
    cluster.write(0, b"k", b"", tombstone=True)  # newer than 6's put
    cluster.seeds[5] = (0,)
    cluster.restart(5, keep_data=False)  # a new process at 5's address joins the cluster
    assert cluster.run_until_done(
        lambda: all(cluster.processes[s].replica.header(NAMESPACE, b"k") is None for s in (0, 5)),
        15_000,
    )
    assert all(cluster.processes[s].engine.membership.state_of(old) is None for s in (0, 1, 2))
    cluster.loop.run_until(max(cluster.loop.now_ms, down_at + TIMEOUT_MS + 500))
    cluster.rejoining.add(6)
    cluster.restart(6, keep_data=True)
    return old, cluster.processes[6].node_id


def test_a_member_back_past_the_timeout_that_the_cluster_never_knew_rejoins_as_new() -> None:
    cluster = cluster_of(3)
    old, _ = _orphaned_member_comes_back(cluster)
    assert cluster.processes[6].engine.envelopes.away
    assert cluster.run_until_done(lambda: cluster.processes[6].node_id != old, 5000)
    assert cluster.rejoined_ms[6]
    cluster.loop.run_until(cluster.loop.now_ms + 3000)
    for slot in (0, 1, 2, 5, 6):
        header = cluster.processes[slot].replica.header(NAMESPACE, b"k")
        assert header is None or header.tombstone, f"node-{slot} brought the put back"


def test_without_the_rule_its_older_put_comes_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Envelopes, "_was_away", lambda self, now: False)
    cluster = cluster_of(3)
    _orphaned_member_comes_back(cluster)
    cluster.loop.run_until(cluster.loop.now_ms + 5000)
    assert not cluster.rejoined_ms.get(6)
    assert any(
        (header := cluster.processes[slot].replica.header(NAMESPACE, b"k")) is not None
        and not header.tombstone
        for slot in (0, 1, 2)
    )


def test_a_node_says_it_was_away_only_past_the_timeout_until_a_member_lists_it() -> None:
    cluster = cluster_of(2)  # two members: neither is a majority that times the other out
    cluster.crash(1)
    cluster.loop.run_until(cluster.loop.now_ms + TIMEOUT_MS // 2)
    assert not cluster.restart(1, keep_data=True).engine.envelopes.away  # not long enough
    cluster.loop.run_until(cluster.loop.now_ms + 1500)
    cluster.crash(1)
    cluster.loop.run_until(cluster.loop.now_ms + 2 * TIMEOUT_MS)
    back = cluster.restart(1, keep_data=True)
    assert back.engine.envelopes.away
    # Node 0 knows it (down, not retired): it takes it in, and once it lists it as a
    # member, the node stops saying it was away.
    assert cluster.run_until_done(lambda: not back.engine.envelopes.away, 5000)
    assert back.running and not cluster.rejoined_ms.get(1)


def test_a_seed_that_is_also_a_members_address_and_just_failed_leaves_a_contact() -> None:
    # Node 1's only seed is node 0, also a member's address: with node 0 down, its
    # failed Join made the retry drop that address twice and choose from nobody.
    cluster = cluster_of(2)
    cluster.crash(1)
    cluster.loop.run_until(cluster.loop.now_ms + TIMEOUT_MS // 2)
    cluster.restart(1, keep_data=True)
    cluster.crash(0)
    cluster.loop.run_until(cluster.loop.now_ms + 2 * TIMEOUT_MS)
    assert cluster.processes[1].running
