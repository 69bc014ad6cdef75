"""Readiness without I/O: the disk-space rule, the clock fence's two measures, and what
the engine decides while its disk is full or its clock fenced (in the simulator)."""

from __future__ import annotations

import random
from functools import partial

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rumor.experiments.sim.cluster import Cluster, ClusterSettings
from rumor.experiments.sim.latency import LatencyDistribution
from rumor.experiments.sim.ledger import NAMESPACE
from rumor.experiments.sim.process import ProcessSettings
from rumor.node.core.clock_fence import ClockFence, FenceVerdict
from rumor.node.core.disk_space import MIB, MIN_RESUME_BYTES, DiskSpaceRule
from rumor.node.core.errors import InsufficientStorage, Unavailable
from rumor.node.replication.engine.messages import Done, Now
from rumor.node.replication.engine.protocol_config import ProtocolConfig
from rumor.node.replication.engine.readiness import DISK_FULL_REASON
from rumor.node.replication.replica.replica import Durability
from rumor.node.server.errors import error_from_status, status_of

# ---- the disk-space rule --------------------------------------------------------------

sizes = st.integers(min_value=0, max_value=1 << 40)


@given(reserve=sizes, free=sizes, held=st.booleans())
def test_a_full_node_takes_writes_only_with_room_for_the_reserve_and_as_much_again(
    reserve: int, free: int, held: bool
) -> None:
    rule = DiskSpaceRule(reserve)
    free_besides_reserve = free + (reserve if held else 0)
    assert rule.writable(free, reserve_held=held) == (free_besides_reserve >= rule.resume_bytes)
    assert rule.resume_bytes >= max(2 * reserve, MIN_RESUME_BYTES)


@given(reserve=sizes, free=sizes)
def test_the_reserve_goes_before_an_open_only_when_the_store_could_not_open_beside_it(
    reserve: int, free: int
) -> None:
    rule = DiskSpaceRule(reserve)
    assert not rule.release_before_open(free, reserve_held=False)
    assert rule.release_before_open(free, reserve_held=True) == (free < rule.open_bytes)
    # Whatever it decides, a node with room to take writes never gives its reserve away.
    if rule.writable(free, reserve_held=True):
        assert not rule.release_before_open(free, reserve_held=True)


def test_a_negative_reserve_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot be negative"):
        DiskSpaceRule(-1)
    assert DiskSpaceRule(8 * MIB).resume_bytes == 16 * MIB


def test_a_full_disk_is_resource_exhausted_and_507_and_names_no_path() -> None:
    error = InsufficientStorage()
    status = status_of(error)
    assert (status.grpc_code, status.http_status) == (grpc.StatusCode.RESOURCE_EXHAUSTED, 507)
    assert "no space left" in str(error) and "/" not in str(error)
    back = error_from_status(status.grpc_code, status.http_status, str(error))
    assert isinstance(back, InsufficientStorage) and str(back) == str(error)


# ---- the clock fence ------------------------------------------------------------------

offsets = st.floats(min_value=-1e7, max_value=1e7, allow_nan=False)


@given(
    measured=st.lists(st.tuples(offsets, offsets), min_size=2, max_size=7),
    enforce=st.booleans(),
)
def test_fenced_when_a_majority_is_off_on_either_measure(
    measured: list[tuple[float, float]], enforce: bool
) -> None:
    fence = ClockFence(500, enforce=enforce)
    for peer, (offset, wall_offset) in enumerate(measured, start=1):
        fence.record(peer, offset, wall_offset)
    verdict = fence.verdict(range(1, len(measured) + 1))

    def majority(values: list[float]) -> bool:
        return sum(abs(v) > 500 for v in values) * 2 > len(values)

    wall_off = majority([w for _, w in measured])
    off = wall_off or majority([o for o, _ in measured])
    assert verdict.fenced == (enforce and off)
    assert verdict.wall_fenced == (enforce and wall_off)
    assert verdict.warn == (off and not enforce)
    assert bool(verdict.reason()) == verdict.fenced
    assert bool(verdict.read_reason()) == verdict.wall_fenced
    # Its wall clock fenced, the node reads its peers' time: its wall clock minus its offset.
    if verdict.wall_fenced:
        assert verdict.corrected_wall_ms(1_000_000) == 1_000_000 - round(verdict.wall_offset_ms)
        assert verdict.read_reason().startswith("clock offset too large: ")
    else:
        assert verdict.corrected_wall_ms(1_000_000) == 1_000_000


def test_a_wall_clock_behind_is_fenced_even_when_the_hlc_hides_it() -> None:
    """Ten minutes behind, with an HLC from before the skew: max(wall, HLC) is close to
    the peers' time, the wall clock (which judges expirations) is not."""
    fence = ClockFence(500)
    for peer in (1, 2):
        fence.record(peer, offset_ms=120.0, wall_offset_ms=600_000.0)
    verdict = fence.verdict([1, 2])
    assert verdict.fenced and verdict.wall_fenced
    assert verdict.wall_offset_ms == -600_000.0
    assert verdict.reason() == "clock offset too large: -600000 ms"
    assert verdict.corrected_wall_ms(1_000) == 601_000
    assert not FenceVerdict(False, False, 0.0).reason()


def test_an_hlc_ahead_of_a_wall_clock_set_right_fences_writes_not_reads() -> None:
    """The wall clock ran ahead and was set right: the HLC it left is still ahead, so
    writes (which carry it) wait; expirations go by the wall clock, so reads are served."""
    fence = ClockFence(500)
    for peer in (1, 2):
        fence.record(peer, offset_ms=-30_000.0, wall_offset_ms=3.0)
    verdict = fence.verdict([1, 2])
    assert verdict.fenced and not verdict.wall_fenced
    assert verdict.reason() == "clock offset too large: +30000 ms"
    assert verdict.read_reason() == ""
    assert verdict.corrected_wall_ms(1_000) == 1_000


def test_a_measurement_with_a_long_round_trip_is_not_taken() -> None:
    fence = ClockFence(500)
    fence.record(1, 10.0, 10.0, round_trip_ms=20)
    fence.record(1, 700.0, 700.0, round_trip_ms=1400)  # a loaded host: error up to 700 ms
    assert fence.offsets[1] == 10.0 and fence.wall_offsets[1] == 10.0


# ---- the engine, in the simulator -----------------------------------------------------


def start(cluster: Cluster, slot: int, seeds: tuple[int, ...]) -> None:
    cluster.start(slot, seeds)


def three_nodes(offset_ms: int = 0) -> Cluster:
    """Three simulated nodes, the third with its clock ``offset_ms`` off; all joined."""
    settings = ClusterSettings(
        ProcessSettings(ProtocolConfig.local(), Durability.FSYNC),
        LatencyDistribution.parse("uniform:1:3"),
    )
    cluster = Cluster(settings, random.Random(11))
    cluster.offsets_ms[2] = offset_ms
    for at_ms, slot, seeds in ((0, 0, ()), (5, 1, (0,)), (9, 2, (0, 1))):
        cluster.loop.at(at_ms, partial(start, cluster, slot, seeds))
    cluster.loop.run_until(3000)
    return cluster


@pytest.mark.parametrize("offset_ms", [-600_000, 600_000])
def test_a_fenced_node_is_not_ready_and_judges_records_by_its_peers_time(
    offset_ms: int,
) -> None:
    cluster = three_nodes(offset_ms)
    skewed = cluster.processes[2].engine
    assert skewed.verdict.wall_fenced and not skewed.ready_for_clients
    assert f"{-offset_ms:+d}"[0] != f"{skewed.verdict.offset_ms:+.0f}"[0]  # the sign: ours
    with pytest.raises(Unavailable, match="clock offset too large"):
        skewed.check_readable()
    with pytest.raises(Unavailable, match="clock offset too large"):
        skewed.check_writable()
    # A write elsewhere, with a TTL, reaches the fenced node: not deferred (10 minutes
    # behind) and not purged as expired (10 minutes ahead).
    assert cluster.write(0, b"ttl", b"v", ttl_s=60) is not None
    cluster.loop.run_until(6000)
    assert skewed.replica.deferred_held == 0
    assert skewed.replica.header(NAMESPACE, b"ttl") is not None
    # Its peers are told why it takes no writes, and are neither fenced nor refusing.
    for slot in (0, 1):
        peer = cluster.processes[slot].engine
        assert peer.envelopes.refusing[skewed.node_id].startswith("clock offset too large")
        assert peer.ready_for_clients and not peer.readiness.refuses_writes


def test_a_node_with_a_full_disk_refuses_writes_and_records_and_says_so() -> None:
    cluster = three_nodes()
    engine = cluster.processes[2].engine
    assert engine.ready_for_clients
    now = cluster.now_of(2)
    engine.advance(Done(disk_full=True), now)
    with pytest.raises(InsufficientStorage):
        engine.check_writable()
    engine.check_readable()  # reads are served
    assert engine.ready_for_clients
    held_before = engine.replica.records_held
    assert cluster.write(0, b"while-full", b"v") is not None
    cluster.loop.run_until(4000)
    assert engine.replica.header(NAMESPACE, b"while-full") is None  # pushes were refused
    assert engine.replica.records_held == held_before
    for slot in (0, 1):
        peer = cluster.processes[slot].engine
        assert peer.envelopes.refusing[engine.node_id] == DISK_FULL_REASON
        assert not peer.gossip.queues.queues.get(engine.node_id)  # nothing pushed to it
    # Room again: the record arrives (push queues, anti-entropy) and peers hear of it.
    engine.advance(Done(disk_full=False), cluster.now_of(2))
    engine.check_writable()
    cluster.loop.run_until(9000)
    assert engine.replica.header(NAMESPACE, b"while-full") is not None
    assert all(
        engine.node_id not in cluster.processes[slot].engine.envelopes.refusing for slot in (0, 1)
    )
    assert cluster.write(2, b"after", b"v") is not None


def test_a_full_disk_does_not_make_a_node_not_ready() -> None:
    cluster = three_nodes()
    engine = cluster.processes[1].engine
    engine.advance(Done(disk_full=True), Now(0, 0))
    assert engine.readiness.refuses_writes == DISK_FULL_REASON
    assert engine.readiness.not_ready() == ""
