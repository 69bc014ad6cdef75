"""Write latency at scale: the real engine on virtual time, thousands of nodes.

Contract.

- ``run(config)`` starts ``config.nodes`` processes of the simulator
  (``rumor.experiments.sim``): each a real ``Replica``, ``Membership`` and
  ``Engine`` on its own in-memory disk, durability ``wal`` (a write is
  durable, and so pushable, once written), with ``ProtocolConfig.lan()`` but
  the config's fanout, gossip and anti-entropy intervals and call timeout.
  Node 0 starts a new cluster; every other node joins with node 0 as its seed,
  all within the first 100 ms. Nothing here makes a protocol decision: the
  network delivers what the engines emit, after a latency draw, or loses it.
- Warm-up: the run waits until every node serves and knows every member (at
  most ``warmup_ms``); then ``writes`` puts of distinct keys, one every
  ``write_interval_ms``, each at a random node.
- Measured: the virtual time each node first holds each write (the replica's
  ``listeners`` hook); from it, per write, the time from the put until every
  node holds it; messages (requests and replies) and records pushed.
- The measured phase ends once every write is held everywhere, or
  ``max_virtual_ms`` after the first write (a write not everywhere by then
  counts as never: ``None``, and ``inf`` in the percentiles).

Every random choice (ids, nonces, the engines' rngs, writers, latencies,
losses) comes from one ``random.Random(config.seed)``: the same config gives
the same result, write for write (``wall_s`` aside).
"""

from __future__ import annotations

import dataclasses
import gc
import math
import random
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from rumor.experiments.sim.cluster import Cluster, ClusterSettings
from rumor.experiments.sim.latency import LatencyDistribution, parse_latency
from rumor.experiments.sim.ledger import NAMESPACE
from rumor.experiments.sim.process import ProcessSettings
from rumor.node.replication.engine.protocol_config import ProtocolConfig
from rumor.node.replication.replica.delta import WireRecord
from rumor.node.replication.replica.replica import Durability, Write

__all__ = [
    "LatencyDistribution",
    "SimulationConfig",
    "SimulationResult",
    "format_table",
    "parse_latency",
    "percentile",
    "plot_sweep",
    "run",
    "sweep",
]

WITHIN_MS = 1000.0  # the "everywhere within 1 s" target
FORMED_CHECK_MS = 100  # how often the warm-up looks whether the cluster has formed
_LAN = ProtocolConfig.lan()  # the protocol a run varies a few knobs of

# ---- configuration and result -------------------------------------------------------


@dataclass(frozen=True)
class SimulationConfig:
    """One simulated cluster and workload. Times are virtual milliseconds."""

    nodes: int = 100
    fanout: int = _LAN.fanout
    gossip_interval_ms: int = _LAN.gossip_interval_ms
    anti_entropy_interval_ms: int = _LAN.anti_entropy_interval_ms
    loss: float = 0.0  # probability that any one message is dropped
    latency_ms: str = "uniform:1:5"  # see LatencyDistribution
    writes: int = 100
    # 1,000 writes a second cluster-wide: writes in flight overlap and share Pushes, as
    # under load. 10 ms apart (a near-idle cluster) costs a Push per record per hop.
    write_interval_ms: int = 1
    seed: int = 1
    max_virtual_ms: int = 60_000
    exchange_timeout_ms: int = _LAN.rpc_timeout_ms  # a lost exchange is abandoned after this
    value_bytes: int = 100
    warmup_ms: int = 30_000  # at most this long for every node to serve and know every member

    def __post_init__(self) -> None:
        problems = self.protocol().problems()  # the knobs' own bounds, checked once
        if self.nodes < 1:
            problems.append(f"nodes must be >= 1, got {self.nodes}")
        if self.write_interval_ms <= 0:
            problems.append(f"write_interval_ms must be > 0, got {self.write_interval_ms}")
        if not 0.0 <= self.loss <= 1.0:
            problems.append(f"loss must be within [0, 1], got {self.loss}")
        if self.writes < 0:
            problems.append(f"writes must be >= 0, got {self.writes}")
        if self.max_virtual_ms <= 0:
            problems.append(f"max_virtual_ms must be > 0, got {self.max_virtual_ms}")
        if self.value_bytes < 0:
            problems.append(f"value_bytes must be >= 0, got {self.value_bytes}")
        if problems:
            raise ValueError("invalid simulation config: " + "; ".join(problems))
        LatencyDistribution.parse(self.latency_ms)

    def protocol(self) -> ProtocolConfig:
        """``ProtocolConfig.lan()`` with this run's fanout, intervals and call timeout."""
        return _LAN.replace(
            fanout=self.fanout,
            gossip_interval_ms=self.gossip_interval_ms,
            anti_entropy_interval_ms=self.anti_entropy_interval_ms,
            rpc_timeout_ms=self.exchange_timeout_ms,
        )

    @property
    def latency(self) -> LatencyDistribution:
        return LatencyDistribution.parse(self.latency_ms)


@dataclass(frozen=True)
class SimulationResult:
    """What one run measured. Times are virtual ms; ``wall_s`` is real seconds."""

    config: SimulationConfig
    # Per write, in issue order: ms from the put until every node held it (None: never).
    write_times_ms: tuple[float | None, ...] = field(repr=False)
    # Per write, per node: ms from the put until that node first held it (inf: never).
    visibility_ms: tuple[tuple[float, ...], ...] = field(repr=False)
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    share_within_1s: float  # of writes held by every node within 1 s of the put
    reached_everywhere: int  # writes held by every node by the end
    messages_sent: int  # every request and reply of the measured phase
    messages_lost: int
    push_messages: int
    exchange_rounds: int
    virtual_ms: float  # virtual time from the first write until the run ended
    wall_s: float  # real time the run took
    records_pushed: int = 0  # records carried by pushes in the measured phase
    warmup_ms: float = 0.0  # virtual time the cluster took to form
    warmup_wall_s: float = 0.0  # real time the cluster took to form (part of ``wall_s``)

    @property
    def records_pushed_per_write(self) -> float:
        return self.records_pushed / len(self.write_times_ms) if self.write_times_ms else 0.0

    @property
    def converged(self) -> bool:
        return self.reached_everywhere == len(self.write_times_ms)


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile of ``values`` (``share`` in (0, 1]); nan when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


# ---- the measured run ------------------------------------------------------------------


def key_of(write_index: int) -> bytes:
    return b"sim-%08d" % write_index


class _Arrivals:
    """Per write, when each node first held it (``inf``: not yet)."""

    def __init__(self, writes: int, nodes: int, loop_now: Callable[[], float]) -> None:
        self.now = loop_now
        self.nodes = nodes
        self.write_of_key = {key_of(w): w for w in range(writes)}
        self.issued_ms = [math.nan] * writes
        self.arrival_ms = [array("d", [math.inf]) * nodes for _ in range(writes)]
        self.holders = [0] * writes
        self.everywhere_ms: list[float | None] = [None] * writes
        self.everywhere = 0

    def listener(self, node: int) -> Callable[[list[WireRecord]], None]:
        def arrived(records: list[WireRecord]) -> None:
            for record in records:
                write = self.write_of_key.get(record.key)
                if write is None or self.arrival_ms[write][node] != math.inf:
                    continue
                now = self.now()
                self.arrival_ms[write][node] = now
                self.holders[write] += 1
                if self.holders[write] == self.nodes:
                    self.everywhere_ms[write] = now - self.issued_ms[write]
                    self.everywhere += 1

        return arrived


def _formed(cluster: Cluster, nodes: int) -> bool:
    return all(
        p.engine.serving and len(p.engine.membership.members) >= nodes
        for p in cluster.processes.values()
    )


def _simulate(
    config: SimulationConfig,
) -> tuple[_Arrivals, Cluster, float, float, dict[str, int], float]:
    started = time.perf_counter()
    rng = random.Random(config.seed)
    settings = ClusterSettings(
        ProcessSettings(config.protocol(), Durability.WAL),
        config.latency,
        config.loss,
        track_sync=False,
    )
    cluster = Cluster(settings, rng)
    loop = cluster.loop
    arrivals = _Arrivals(config.writes, config.nodes, lambda: loop.now_ms)
    for slot in range(config.nodes):
        seeds = () if slot == 0 else (0,)
        loop.at(0 if slot == 0 else rng.uniform(0, 100), _starter(cluster, arrivals, slot, seeds))
    warmed = 0.0
    while warmed < config.warmup_ms:
        warmed += FORMED_CHECK_MS
        loop.run_until(warmed)
        if len(cluster.processes) == config.nodes and _formed(cluster, config.nodes):
            break
    stats = cluster.network.stats
    before = (
        stats.messages,
        stats.lost,
        stats.by_kind.get("Push", 0),
        stats.by_kind.get("Exchange", 0),
        stats.records_pushed,
    )
    first = loop.now_ms
    warmup_wall_s = time.perf_counter() - started
    value_of = [(b"%d;" % w).ljust(config.value_bytes, b".") for w in range(config.writes)]

    def write(index: int) -> None:
        process = cluster.processes[rng.randrange(config.nodes)]
        arrivals.issued_ms[index] = loop.now_ms
        if process.running:
            process.propose([Write(NAMESPACE, key_of(index), value_of[index])], [None])

    for index in range(config.writes):
        loop.at(first + index * config.write_interval_ms, partial(write, index))
    total = config.writes
    loop.run_until(first + config.max_virtual_ms, lambda: arrivals.everywhere == total)
    counts = {
        "messages": stats.messages - before[0],
        "lost": stats.lost - before[1],
        "pushes": stats.by_kind.get("Push", 0) - before[2],
        "exchanges": stats.by_kind.get("Exchange", 0) - before[3],
        "records_pushed": stats.records_pushed - before[4],
    }
    return arrivals, cluster, first, loop.now_ms - first, counts, warmup_wall_s


def _starter(
    cluster: Cluster, arrivals: _Arrivals, slot: int, seeds: tuple[int, ...]
) -> Callable[[], None]:
    def start() -> None:
        process = cluster.start(slot, seeds)
        process.replica.listeners.append(arrivals.listener(slot))

    return start


# ---- the API ------------------------------------------------------------------------------


def run(config: SimulationConfig) -> SimulationResult:
    """Simulate ``config`` on virtual time; deterministic for a config (``wall_s`` aside)."""
    started = time.perf_counter()
    collecting = gc.isenabled()
    gc.disable()  # many short-lived closures, no long-lived cycles: see sim.execution
    try:
        arrivals, _cluster, warmup_ms, virtual_ms, counts, warmup_wall_s = _simulate(config)
    finally:
        if collecting:
            gc.enable()
    times = tuple(arrivals.everywhere_ms)
    ranked = [math.inf if t is None else t for t in times]
    within = sum(1 for t in ranked if t <= WITHIN_MS)
    visibility = tuple(
        tuple(at - issued for at in per_node)
        for per_node, issued in zip(arrivals.arrival_ms, arrivals.issued_ms, strict=True)
    )
    return SimulationResult(
        config=config,
        write_times_ms=times,
        visibility_ms=visibility,
        p50_ms=percentile(ranked, 0.50),
        p90_ms=percentile(ranked, 0.90),
        p99_ms=percentile(ranked, 0.99),
        max_ms=max(ranked, default=math.nan),
        share_within_1s=within / len(ranked) if ranked else 1.0,
        reached_everywhere=arrivals.everywhere,
        messages_sent=counts["messages"],
        messages_lost=counts["lost"],
        push_messages=counts["pushes"],
        exchange_rounds=counts["exchanges"],
        virtual_ms=virtual_ms,
        wall_s=time.perf_counter() - started,
        records_pushed=counts["records_pushed"],
        warmup_ms=warmup_ms,
        warmup_wall_s=warmup_wall_s,
    )


def sweep(base: SimulationConfig, field: str, values: Sequence[Any]) -> list[SimulationResult]:
    """One run per value of ``field`` (a SimulationConfig field), everything else as ``base``.

    Every config is built (and validated) before the first run, so a bad value
    fails at once rather than after minutes of runs.
    """
    names = [f.name for f in dataclasses.fields(SimulationConfig)]
    if field not in names:
        raise ValueError(f"cannot sweep {field!r}: the config fields are {', '.join(names)}")
    configs = []
    for value in values:
        changes: dict[str, Any] = {field: value}
        configs.append(dataclasses.replace(base, **changes))
    return [run(config) for config in configs]


def _varying_fields(results: Sequence[SimulationResult]) -> list[str]:
    """The config fields, besides ``nodes``, whose value differs between results."""
    names = [f.name for f in dataclasses.fields(SimulationConfig) if f.name != "nodes"]
    return [
        name
        for name in names
        if len({repr(getattr(result.config, name)) for result in results}) > 1
    ]


def _ms(value: float) -> str:
    if math.isnan(value):
        return "-"
    if math.isinf(value):
        return "never"
    return f"{value:.1f}"


def format_table(results: Sequence[SimulationResult]) -> str:
    """A plain-text table, one row per result: nodes (and any other config field that
    varies), p50, p99 and max time to every node, share within 1 s, messages, records
    pushed per write, wall s."""
    varying = _varying_fields(results)
    header = [
        "nodes",
        *varying,
        "p50 ms",
        "p99 ms",
        "max ms",
        "within 1 s",
        "messages",
        "pushed/write",
        "wall s (warm-up)",
    ]
    rows = [header]
    for result in results:
        lost = f" ({result.messages_lost:,} lost)" if result.messages_lost else ""
        rows.append(
            [
                str(result.config.nodes),
                *(str(getattr(result.config, name)) for name in varying),
                _ms(result.p50_ms),
                _ms(result.p99_ms),
                _ms(result.max_ms),
                f"{100 * result.share_within_1s:.1f}%",
                f"{result.messages_sent:,}{lost}",
                f"{result.records_pushed_per_write:.1f}",
                f"{result.wall_s:.1f} ({result.warmup_wall_s:.1f})",
            ]
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(width) if column == 0 else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def plot_sweep(results: Sequence[SimulationResult], path: str | Path) -> Path:
    """Write a PNG of the convergence percentiles (p50, p90, p99, max) against cluster size.

    When the cluster size does not vary, the first config field that does is the
    x axis. Writes that never reached every node are left off the lines.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    if not results:
        raise ValueError("plot_sweep needs at least one result")
    varying = _varying_fields(results)
    x_name = "nodes" if len({r.config.nodes for r in results}) > 1 or not varying else varying[0]
    xs = [getattr(result.config, x_name) for result in results]
    numeric = all(isinstance(x, int | float) for x in xs)
    positions = xs if numeric else list(range(len(xs)))

    figure = Figure(figsize=(7, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for label, values in (
        ("p50", [r.p50_ms for r in results]),
        ("p90", [r.p90_ms for r in results]),
        ("p99", [r.p99_ms for r in results]),
        ("max", [r.max_ms for r in results]),
    ):
        finite = [v if math.isfinite(v) else math.nan for v in values]
        axes.plot(positions, finite, marker="o", label=label)
    axes.axhline(WITHIN_MS, color="grey", linestyle="--", linewidth=1, label="1 s")
    if x_name == "nodes" and len(set(xs)) > 1 and min(xs) > 0:
        axes.set_xscale("log")
    if not numeric:
        axes.set_xticks(positions, [str(x) for x in xs])
    axes.set_xlabel("cluster size (nodes)" if x_name == "nodes" else x_name)
    axes.set_ylabel("time until every node holds a write (virtual ms)")
    base = results[0].config
    settings = [
        ("fanout", f"fanout {base.fanout}"),
        ("gossip_interval_ms", f"gossip {base.gossip_interval_ms} ms"),
        ("anti_entropy_interval_ms", f"anti-entropy {base.anti_entropy_interval_ms} ms"),
        ("latency_ms", f"latency {base.latency}"),
        ("loss", f"loss {base.loss:g}"),
    ]
    constant = ", ".join(text for name, text in settings if name not in varying)
    axes.set_title(f"rumor simulate: {constant}", fontsize="medium")
    axes.grid(True, alpha=0.3)
    axes.legend()
    target = Path(path)
    figure.savefig(target, dpi=120)
    return target
