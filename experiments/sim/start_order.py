"""Start orders: every order a cluster's nodes can come up in, given one seed list.

An operator gives every node the same ``--seeds`` (the addresses of the
cluster's nodes; a node skips its own) and starts them in whatever order the
machines come up. Whatever that order, the nodes must form one cluster soon
after the last one started: a node that asked a seed before it was up asks it
again within ``seed_retry_max_ms`` (it keeps asking every seed it has not
heard from, whether or not it already has a peer), and one probe round then
spreads what the answers taught. ``bound_ms`` is that sum; ``run_order``
measures one order on the real engine, ``start_orders`` runs them all.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from rumor.experiments.sim.cluster import Cluster, ClusterSettings
from rumor.experiments.sim.execution import QUICK_LATENCY, quick_protocol
from rumor.experiments.sim.latency import LatencyDistribution
from rumor.experiments.sim.process import ProcessSettings
from rumor.node.replication.engine.protocol_config import ProtocolConfig
from rumor.node.replication.replica.replica import Durability

START_GAP_MS = 150  # between two starts: more than a failed Join takes, less than a retry


def bound_ms(protocol: ProtocolConfig) -> int:
    """After the last start, one cluster within a seed retry and one probe round."""
    return protocol.seed_retry_max_ms + protocol.probe_interval_ms


@dataclass(frozen=True, slots=True)
class StartOrderResult:
    order: tuple[int, ...]  # slots, in the order they started
    last_start_ms: int
    one_cluster_ms: float | None  # when every node first saw every other up (None: never)

    @property
    def after_last_start_ms(self) -> float | None:
        if self.one_cluster_ms is None:
            return None
        return self.one_cluster_ms - self.last_start_ms


def run_order(
    order: tuple[int, ...],
    *,
    seed: int = 1,
    gap_ms: int = START_GAP_MS,
    protocol: ProtocolConfig | None = None,
    limit_ms: int | None = None,
) -> StartOrderResult:
    """Start ``order``'s slots ``gap_ms`` apart, every one with every slot as its seeds,
    and run until each node sees every other up (or ``limit_ms`` after the last start)."""
    protocol = protocol or quick_protocol()
    settings = ClusterSettings(
        ProcessSettings(protocol, Durability.FSYNC), LatencyDistribution.parse(QUICK_LATENCY)
    )
    cluster = Cluster(settings, random.Random(seed))
    seeds = tuple(sorted(order))
    for position, slot in enumerate(order):
        cluster.loop.at(position * gap_ms, _starter(cluster, slot, seeds))
    last_start_ms = (len(order) - 1) * gap_ms
    cluster.loop.run_until(last_start_ms)
    limit = last_start_ms + (limit_ms if limit_ms is not None else 10 * bound_ms(protocol))
    formed = cluster.loop.run_until(limit, lambda: _one_cluster(cluster, len(order)))
    return StartOrderResult(order, last_start_ms, cluster.loop.now_ms if formed else None)


def start_orders(
    nodes: int, *, seed: int = 1, protocol: ProtocolConfig | None = None
) -> Iterator[StartOrderResult]:
    """Every start order of ``nodes`` nodes (``nodes``! runs)."""
    for order in itertools.permutations(range(nodes)):
        yield run_order(order, seed=seed, protocol=protocol)


def _starter(cluster: Cluster, slot: int, seeds: tuple[int, ...]) -> Callable[[], None]:
    return lambda: _ignore(cluster.start(slot, seeds))


def _ignore(_: object) -> None:
    pass


def _one_cluster(cluster: Cluster, nodes: int) -> bool:
    running = cluster.running()
    if len(running) < nodes:
        return False
    return all(len(p.engine.membership.up_peers()) == nodes - 1 for p in running)
