"""Forged peer claims on the real engine (simulated cluster, virtual time).

A message from a made-up or lying peer can claim that an origin issued seqs up
to 2^62 (``high_seqs``) and cover them (a Push's coverage). Neither may lift
the victim's watermark for an origin it hears from directly, nor, through the
victim's later envelopes, push that origin's own seq forward.
"""

from __future__ import annotations

import random

from rumor.experiments.sim.cluster import Cluster, ClusterSettings, address_of
from rumor.experiments.sim.execution import QUICK_LATENCY, quick_protocol
from rumor.experiments.sim.latency import LatencyDistribution
from rumor.experiments.sim.process import ProcessSettings
from rumor.node.replication.engine.messages import Envelope, Outbound, Push
from rumor.node.replication.replica.delta import Coverage
from rumor.node.replication.replica.replica import Durability

FORGED = 2**62


def three_nodes() -> Cluster:
    settings = ClusterSettings(
        ProcessSettings(quick_protocol(), Durability.FSYNC),
        LatencyDistribution.parse(QUICK_LATENCY),
    )
    cluster = Cluster(settings, random.Random(5))
    for slot in range(3):
        cluster.start(slot, (0,) if slot else ())
    cluster.loop.run_until(1500)
    for slot in range(3):
        cluster.write(slot, b"key-%d" % slot, b"v")
    cluster.loop.run_until(2500)
    return cluster


def forge(cluster: Cluster, victim: int, envelope: Envelope, push: Push) -> None:
    target = cluster.processes[victim]
    outbound = Outbound(0, target.node_id, address_of(victim), envelope, push, 1000)
    cluster.network.call(None, outbound, source="forger:1")


def test_a_forged_high_seq_from_a_made_up_member_lifts_no_watermark_nor_seq() -> None:
    cluster = three_nodes()
    victim, origin = cluster.processes[0], cluster.processes[2]
    real = origin.replica.seq
    assert real > 0
    envelope = Envelope(
        sender=0x1234_5678_9ABC_DEF0,
        boot_nonce=1,
        hlc=victim.replica.clock.last,
        address="forger:1",
        name="forger",
        watermarks={0x1234_5678_9ABC_DEF0: 1},
        high_seqs={origin.node_id: FORGED},
    )
    claim = Coverage(origin.node_id, 0, FORGED, True)
    forge(cluster, 0, envelope, Push(coverage=(claim,)))
    cluster.loop.run_until(cluster.loop.now_ms + 2000)
    assert victim.engine.envelopes.high_seqs[origin.node_id] < FORGED
    assert victim.replica.watermarks.get(origin.node_id) <= origin.replica.seq
    assert origin.replica.seq < FORGED  # the origin's own seq was not pushed forward
    assert cluster.write(2, b"after", b"v") is not None  # and it still takes writes
    assert victim.engine.stats.claims_clamped > 0


def test_a_made_up_member_claiming_to_have_seen_a_nodes_seqs_does_not_move_them() -> None:
    cluster = three_nodes()
    origin = cluster.processes[2]
    before = origin.replica.seq
    envelope = Envelope(
        sender=0x0FED_CBA9_8765_4321,
        boot_nonce=1,
        hlc=origin.replica.clock.last,
        address="forger:1",
        name="forger",
        watermarks={0x0FED_CBA9_8765_4321: 1, origin.node_id: FORGED},
    )
    forge(cluster, 2, envelope, Push())
    cluster.loop.run_until(cluster.loop.now_ms + 1000)
    assert origin.replica.seq == before
    assert cluster.write(2, b"after", b"v") is not None
    assert origin.engine.stats.claims_clamped > 0
