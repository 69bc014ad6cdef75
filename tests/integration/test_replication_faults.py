"""Replication under faults: partitions, loss, crashes, clock skew, removal, audit.

The Faults service of nodes started with ``--enable-fault-injection`` blocks
replication messages (both ways or one way), drops a fraction of them, shifts
a node's clock, or plants a record only the audit can find. One shared 3-node
cluster serves the partition, loss and skew tests (checked healthy before each
test, rebuilt if an earlier test broke it); the tests that kill, remove or
need other flags start a cluster of their own. Every wait polls with a
deadline; a check that something *stays* true holds it for a while and looks
again and again.

The cluster helpers are shared with test_replication.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future
from functools import partial
from pathlib import Path

import grpc
import pytest

from rumor.node.core import hlc
from rumor.node.core.record import RecordHeader
from rumor.v1 import admin_pb2, faults_pb2, replication_pb2, replication_pb2_grpc
from rumor.v1 import kv_pb2 as pb
from tests.integration.kv_helpers import failed_call, get, put
from tests.integration.test_replication import (
    SharedCluster,
    absent_everywhere,
    converge,
    describe,
    everyone_alive,
    holds,
    holds_for,
    member_states,
    new_namespace,
    read_text,
    running_cluster,
)
from tests.support.cluster import Cluster, admin, faults, node_id, status
from tests.support.nodes import NodeProcess, poll

ALIVE = replication_pb2.MEMBER_STATE_ALIVE
DEAD = replication_pb2.MEMBER_STATE_DEAD
REMOVED = replication_pb2.MEMBER_STATE_REMOVED
GC_GRACE_S = 0.3  # --gc-grace-ms in FAST_TIMERS


def write_burst(nodes: list[NodeProcess], ns: str, prefix: str, count: int) -> dict[bytes, str]:
    """``count`` puts per node, all in flight at once; returns key -> value."""
    futures: list[Future[pb.PutResponse]] = []
    written: dict[bytes, str] = {}
    for index, node in enumerate(nodes):
        for k in range(count):
            key = f"{prefix}-n{index + 1}-{k:03d}".encode()
            written[key] = f"{prefix} {k} from n{index + 1}"
            futures.append(
                node.kv.Put.future(
                    pb.PutRequest(namespace_id=ns, key=key, value=written[key].encode())
                )
            )
    for future in futures:
        future.result()
    return written


def ping_as(node: NodeProcess, envelope: replication_pb2.Envelope) -> object:
    """A replication Ping to ``node`` carrying ``envelope`` (whoever it claims to be)."""
    stub = replication_pb2_grpc.ReplicationStub(node.channel)
    return stub.Ping(replication_pb2.PingRequest(envelope=envelope), timeout=5)


def fenced_put_error(node: NodeProcess, ns: str) -> grpc.Call:
    return failed_call(lambda: put(node, ns, b"while-fenced"))


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedCluster]:
    cluster = SharedCluster(tmp_path_factory.mktemp("faults"))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster(shared: SharedCluster) -> Cluster:
    """The module's 3-node cluster, healthy (rebuilt if an earlier test broke it)."""
    return shared.healthy()


@pytest.fixture
def ns(cluster: Cluster, request: pytest.FixtureRequest) -> str:
    """A fresh namespace, created on n1 and known to every node."""
    return new_namespace(cluster, request.node.name)


# ---- partitions ---------------------------------------------------------------


def test_a_node_blocked_briefly_misses_writes_and_catches_up(cluster: Cluster, ns: str) -> None:
    """A block shorter than failure detection: only anti-entropy has to repair."""
    n1, n2, n3 = cluster.nodes
    cluster.block(n3)
    try:
        written = write_burst([n1, n2], ns, "missed", 20)
        poll(lambda: holds([n1, n2], ns, written))
        assert set(read_text(n3, ns, sorted(written)).values()) == {None}
    finally:
        cluster.unblock(n3)
    poll(lambda: holds([n3], ns, written), timeout=10)
    converge(cluster)


def test_a_node_blocked_until_declared_dead_converges_after_unblock(
    cluster: Cluster, ns: str
) -> None:
    """A partition that outlasts failure detection must heal too (SWIM: dead is not gone)."""
    n1, n2, n3 = cluster.nodes
    cluster.block(n3)
    try:
        written = write_burst([n1, n2], ns, "partitioned", 20)
        poll(lambda: holds([n1, n2], ns, written))

        def declared_dead() -> bool:
            """Each side has given up on the other: n1 and n2 on n3, n3 on both."""
            seen_from_n3 = member_states(n3)
            return all(
                member_states(node).get(node_id(n3)) == DEAD
                and seen_from_n3.get(node_id(node)) == DEAD
                for node in (n1, n2)
            )

        poll(declared_dead, timeout=10)
        assert set(read_text(n3, ns, sorted(written)).values()) == {None}
    finally:
        cluster.unblock(n3)
    try:
        poll(lambda: holds([n3], ns, written), timeout=10)
        poll(lambda: everyone_alive(cluster.nodes), timeout=10)
    except AssertionError as failure:
        raise AssertionError(f"{failure}\n{describe(cluster.nodes)}") from None
    converge(cluster)


def test_a_one_way_block_heals_and_converges(cluster: Cluster, ns: str) -> None:
    n1, _, n3 = cluster.nodes
    cluster.block(n3, direction=faults_pb2.DIRECTION_OUTBOUND)
    try:
        state = faults(n3).State(faults_pb2.Empty())
        assert state.all_outbound_blocked and not state.all_inbound_blocked
        from_n1 = write_burst([n1], ns, "towards-n3", 10)
        from_n3 = {b"from-n3": "written behind a one-way block"}
        put(n3, ns, b"from-n3", from_n3[b"from-n3"].encode())
        # n3 still hears the others: their writes reach it.
        poll(lambda: holds([n3], ns, from_n1), timeout=10)
    finally:
        cluster.unblock(n3)
    poll(lambda: holds(cluster.nodes, ns, from_n1 | from_n3), timeout=10)
    converge(cluster)
    poll(lambda: everyone_alive(cluster.nodes), timeout=10)


def test_ten_percent_message_loss_still_converges(cluster: Cluster, ns: str) -> None:
    for node in cluster.nodes:
        faults(node).SetLoss(faults_pb2.LossRequest(drop_fraction=0.1))
    try:
        written: dict[bytes, str | None] = dict(write_burst(cluster.nodes, ns, "lossy", 50))
        for k in range(0, 50, 5):
            key = f"lossy-n1-{k:03d}".encode()
            cluster.nodes[2].kv.Delete(pb.DeleteRequest(namespace_id=ns, key=key))
            written[key] = None
        assert all(faults(n).State(faults_pb2.Empty()).drop_fraction == 0.1 for n in cluster.nodes)
        poll(lambda: holds(cluster.nodes, ns, written), timeout=20)
        converge(cluster, timeout=20)
    finally:
        for node in cluster.nodes:
            faults(node).SetLoss(faults_pb2.LossRequest())


# ---- garbage collection: no resurrection -----------------------------------------


def test_a_tombstone_outlives_a_down_member_and_nothing_resurrects(tmp_path: Path) -> None:
    with running_cluster(tmp_path, 3) as three:
        n1, n2, n3 = three.nodes
        poll(lambda: everyone_alive(three.nodes), timeout=10)
        ns = new_namespace(three, "gc")
        put(n1, ns, b"k", b"old value")
        poll(lambda: all(get(node, ns, b"k").found for node in three.nodes))
        converge(three)
        assert all(status(node).tombstones_held == 0 for node in three.nodes)

        n3.kill()
        n1.kv.Delete(pb.DeleteRequest(namespace_id=ns, key=b"k"))
        poll(lambda: all(status(node).tombstones_held >= 1 for node in (n1, n2)))
        poll(lambda: member_states(n1).get(node_id(n3)) != ALIVE, timeout=10)
        # Several gc-grace periods pass; n3 has not seen the delete, so it must stay.
        holds_for(
            lambda: all(status(node).tombstones_held >= 1 for node in (n1, n2)),
            seconds=max(2.0, 6 * GC_GRACE_S),
            what="the tombstone of k on n1 and n2",
        )

        n3.start()  # it still holds the old value of k
        converge(three, timeout=20)
        assert absent_everywhere(three.nodes, ns, b"k")
        # Everyone has seen the delete now: the tombstone goes everywhere ...
        try:
            poll(
                lambda: all(status(node).tombstones_held == 0 for node in three.nodes),
                timeout=15,
            )
        except AssertionError as failure:
            raise AssertionError(f"{failure}\n{describe(three.nodes)}") from None
        # ... and the key stays deleted.
        converge(three)
        assert absent_everywhere(three.nodes, ns, b"k")


def test_removing_a_dead_member_lets_its_tombstones_go(tmp_path: Path) -> None:
    """A member that never talks again blocks GC until an operator removes it."""
    with running_cluster(tmp_path, 3) as three:
        n1, n2, n3 = three.nodes
        poll(lambda: everyone_alive(three.nodes), timeout=10)
        ns = new_namespace(three, "gc-after-removal")
        put(n1, ns, b"k", b"v")
        poll(lambda: all(get(node, ns, b"k").found for node in three.nodes))
        n3.kill()
        n2.kv.Delete(pb.DeleteRequest(namespace_id=ns, key=b"k"))
        poll(lambda: all(status(node).tombstones_held >= 1 for node in (n1, n2)))
        holds_for(
            lambda: all(status(node).tombstones_held >= 1 for node in (n1, n2)),
            seconds=4 * GC_GRACE_S,
            what="the tombstone of k while n3 is down",
        )
        admin(n1).RemoveNode(admin_pb2.RemoveNodeRequest(node_id=node_id(n3)))
        try:
            poll(
                lambda: all(status(node).tombstones_held == 0 for node in (n1, n2)),
                timeout=15,
            )
        except AssertionError as failure:
            raise AssertionError(f"{failure}\n{describe([n1, n2])}") from None
        assert absent_everywhere([n1, n2], ns, b"k")


# ---- clock skew -----------------------------------------------------------------


def test_a_node_whose_clock_is_far_ahead_refuses_writes_until_back(
    cluster: Cluster, ns: str
) -> None:
    n1, n2, _ = cluster.nodes
    put(n1, ns, b"existing", b"v")
    poll(lambda: get(n2, ns, b"existing").found)
    skewed = faults(n2)
    skewed.SetClockOffset(faults_pb2.ClockOffsetRequest(offset_ms=5000))
    try:
        poll(lambda: status(n2).fenced, timeout=10)  # probes every 100 ms measure offsets
        error = fenced_put_error(n2, ns)
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        assert (error.details() or "").startswith("clock offset too large: +"), error.details()
        # Every kind of write is refused, and reads too: the node is not ready (clients
        # fail over) and would judge expirations by a clock it knows is wrong.
        refused = failed_call(
            lambda: n2.kv.Delete(pb.DeleteRequest(namespace_id=ns, key=b"existing"))
        )
        assert refused.code() == grpc.StatusCode.UNAVAILABLE
        unread = failed_call(lambda: get(n2, ns, b"existing"))
        assert unread.code() == grpc.StatusCode.UNAVAILABLE
        assert (unread.details() or "").startswith("clock offset too large: +")
        assert not status(n2).ready and status(n2).not_ready.startswith("clock offset")
        # Only the odd one out is fenced: the others keep taking writes.
        assert not status(n1).fenced
        put(n1, ns, b"elsewhere", b"v")
    finally:
        skewed.SetClockOffset(faults_pb2.ClockOffsetRequest(offset_ms=0))
    # Its HLC ran 5 s ahead meanwhile and never goes back: fenced until the wall clock
    # catches up with it (fencing judges a node's time as max(wall clock, HLC)).
    poll(lambda: not status(n2).fenced, timeout=15, interval=0.1)
    put(n2, ns, b"after", b"back in range")
    poll(lambda: all(get(node, ns, b"after").found for node in cluster.nodes))
    assert not any(get(node, ns, b"while-fenced").found for node in cluster.nodes)
    assert all(get(node, ns, b"existing").found for node in cluster.nodes)


def test_with_a_single_peer_a_skewed_node_only_warns(tmp_path: Path) -> None:
    """Fencing needs at least two live peers to tell whose clock is off."""
    with running_cluster(tmp_path, 2) as two:
        n1, n2 = two.nodes
        poll(lambda: everyone_alive(two.nodes), timeout=10)
        ns = new_namespace(two, "two-nodes")
        faults(n2).SetClockOffset(faults_pb2.ClockOffsetRequest(offset_ms=5000))

        def offset_measured() -> bool:
            return any(
                e.member.id == node_id(n1) and e.clock_offset_ms < -4000 for e in status(n2).members
            )

        poll(offset_measured, timeout=10)
        poll(lambda: "clock.offset_large" in n2.log(), timeout=5)
        put(n2, ns, b"accepted", b"v")
        assert not status(n2).fenced and not status(n1).fenced


@pytest.fixture(scope="module")
def warn_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Three nodes that only warn about clock offsets (experiments on skew)."""
    root = tmp_path_factory.mktemp("warn")
    with running_cluster(root, 3, "--clock-offset-policy", "warn") as three:
        poll(lambda: everyone_alive(three.nodes), timeout=10)
        yield three


def test_warn_policy_keeps_a_skewed_node_writing_and_peers_defer_its_records(
    warn_cluster: Cluster,
) -> None:
    """No fencing under --clock-offset-policy warn. 2 s ahead is over twice
    --max-clock-offset (500 ms), so the peers keep the record aside until their
    clocks get there (deferral)."""
    n1, n2, n3 = warn_cluster.nodes
    ns = new_namespace(warn_cluster, "skew")
    faults(n2).SetClockOffset(faults_pb2.ClockOffsetRequest(offset_ms=2000))
    try:

        def offsets_measured() -> bool:
            peers = [e for e in status(n2).members if e.member.id != node_id(n2)]
            return len(peers) == 2 and all(e.clock_offset_ms < -1500 for e in peers)

        poll(offsets_measured, timeout=10)
        written = put(n2, ns, b"from-the-future", b"v")
        assert not status(n2).fenced
        assert get(n2, ns, b"from-the-future").found
        poll(lambda: "clock.offset_large" in n2.log(), timeout=5)
        # Deferred, not lost: it appears once the peers' clocks reach its time.
        poll(lambda: status(n1).deferred_records + status(n3).deferred_records >= 1, timeout=2)
        poll(
            lambda: all(get(node, ns, b"from-the-future").found for node in warn_cluster.nodes),
            timeout=10,
        )
        for node in warn_cluster.nodes:
            got = get(node, ns, b"from-the-future")
            assert (got.version.hlc, got.version.origin) == (
                written.version.hlc,
                written.version.origin,
            )
        poll(lambda: all(status(node).deferred_records == 0 for node in warn_cluster.nodes))
    finally:
        faults(n2).SetClockOffset(faults_pb2.ClockOffsetRequest(offset_ms=0))


def test_a_write_made_after_seeing_another_wins_even_from_a_slow_clock(
    warn_cluster: Cluster,
) -> None:
    """The HLC rule: a node that has seen a record only creates newer ones afterwards.

    n3's clock is 800 ms slow (not enough to defer n1's record, which is
    applied at once); its overwrite must still outrank the write it overwrites.
    """
    n1, _, n3 = warn_cluster.nodes
    ns = new_namespace(warn_cluster, "slow")
    faults(n3).SetClockOffset(faults_pb2.ClockOffsetRequest(offset_ms=-800))
    try:
        first = put(n1, ns, b"k", b"first, from n1")
        poll(lambda: get(n3, ns, b"k").found)
        second = put(n3, ns, b"k", b"second, from n3 after reading the first")
        # n1's write is still ahead of n3's own (slow) clock: the order comes from the HLC.
        assert hlc.wall_ms_of(first.version.hlc) > time.time() * 1000 - 800
        assert (second.version.hlc, second.version.origin) > (
            first.version.hlc,
            first.version.origin,
        )
        poll(
            lambda: all(
                get(node, ns, b"k").value == b"second, from n3 after reading the first"
                for node in warn_cluster.nodes
            )
        )
    finally:
        faults(n3).SetClockOffset(faults_pb2.ClockOffsetRequest(offset_ms=0))


# ---- removal --------------------------------------------------------------------


def test_a_removed_node_is_refused_and_cannot_rejoin(tmp_path: Path) -> None:
    with running_cluster(tmp_path, 3) as three:
        n1, n2, n3 = three.nodes
        poll(lambda: everyone_alive(three.nodes), timeout=10)
        retired = node_id(n3)
        assert n3.stop() == 0
        admin(n1).RemoveNode(admin_pb2.RemoveNodeRequest(node_id=retired))
        poll(lambda: all(member_states(node).get(retired) == REMOVED for node in (n1, n2)))

        # Any replication call from the retired id is refused, telling what to do.
        impostor = replication_pb2.Envelope(sender=retired, boot_nonce=1, address="127.0.0.1:9")
        for node in (n1, n2):
            error = failed_call(partial(ping_as, node, impostor))
            assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "wipe" in (error.details() or ""), error.details()

        # Started again on its old data directory, it learns it was removed and exits.
        n3.start()
        poll(lambda: not n3.alive(), timeout=15)
        assert n3.process is not None and n3.process.returncode not in (0, None)
        assert "wipe" in n3.log()
        for node in (n1, n2):
            assert member_states(node).get(retired) == REMOVED
            assert {e.member.id for e in status(node).members} >= {node_id(n1), node_id(n2)}


def test_a_node_cannot_remove_itself(tmp_path: Path) -> None:
    with running_cluster(tmp_path, 1) as one:
        node = one.nodes[0]
        error = failed_call(
            lambda: admin(node).RemoveNode(admin_pb2.RemoveNodeRequest(node_id=node_id(node)))
        )
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert member_states(node) == {node_id(node): ALIVE}


# ---- audit --------------------------------------------------------------------------


def test_the_audit_finds_and_repairs_a_planted_divergence(tmp_path: Path) -> None:
    with running_cluster(tmp_path, 3, "--audit-interval-ms", "200") as three:
        n1, n2, n3 = three.nodes
        poll(lambda: everyone_alive(three.nodes), timeout=10)
        ns = new_namespace(three, "audit")
        # A seq of n1's that every node has seen and no node holds any more (overwritten),
        # so a planted record with it is dropped unread by push and anti-entropy.
        superseded = put(n1, ns, b"overwritten", b"1")
        put(n1, ns, b"overwritten", b"2")
        converge(three)
        assert all(status(node).watermarks[node_id(n1)] >= superseded.seq for node in three.nodes)
        assert all(status(node).audit_repairs_total == 0 for node in three.nodes)

        value = b"only n1 holds this"
        header = RecordHeader(
            hlc=max(status(node).hlc for node in three.nodes) + 1,
            origin=node_id(n1),
            seq=superseded.seq,
            value_length=len(value),
        )
        planted = replication_pb2.Record(
            namespace=bytes.fromhex(ns), key=b"planted", header=header.encode(), value=value
        )
        faults(n1).Plant(faults_pb2.PlantRequest(record=planted))
        assert get(n1, ns, b"planted").value == value
        assert not get(n2, ns, b"planted").found

        def repaired() -> bool:
            return all(
                get(node, ns, b"planted").value == value and status(node).audit_repairs_total > 0
                for node in (n2, n3)
            )

        try:
            poll(repaired, timeout=15)
        except AssertionError as failure:
            raise AssertionError(f"{failure}\n{describe(three.nodes)}") from None
        converge(three)
        assert status(n1).audit_repairs_total == 0
