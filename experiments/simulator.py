"""The replica on virtual time: thousands of nodes, lossy links, latency distributions.

Contract.

- ``run(config)`` builds ``config.nodes`` real ``Replica`` objects (DESIGN §1: the
  replica is sans-I/O), each on its own ``MemoryStore`` with durability ``wal``
  (a record is durable, and so pushable, the moment it is written), and drives
  them with a discrete-event loop on virtual time: a heap of (time, seq, event).
  There is no asyncio, no grpc, no wall clock and no global random state: every
  random choice — node ids, timer phases, writers, peers, latencies, losses —
  comes from one ``random.Random(config.seed)``, so the same config gives the
  same result, write for write (``wall_s`` aside).
- The driver mirrors ``rumor.node.server.replicator``: every
  ``gossip_interval_ms`` a node takes what its replica has ready to push, queues
  it, per origin, for ``fanout`` random other nodes but the origin (``PushQueues``,
  ``plan_pushes``'s rule, ``choose_peers``) and sends
  each waiting queue as one Push; a receiver merges the sender's HLC and applies
  the records, and forwards what won on its next tick. Every
  ``anti_entropy_interval_ms`` (a random phase per node) a node that is not
  already synchronising starts an Exchange with a random peer: the request
  carries ``sync_digest()``, the responder answers with ``delta_for`` and its
  watermarks, the asker applies the answer with ``session=True`` and pushes back
  ``push_back_for`` the responder's watermarks (a small backlog, with coverage);
  a cut-short answer is
  followed by another round at once. A synchronisation whose request or answer
  was lost is abandoned after ``exchange_timeout_ms`` (the real RPC timeout).
- The network delivers every message (Push, Exchange request, Exchange answer)
  after one draw from the latency distribution, or drops it with probability
  ``loss``. Membership is static and complete: every node knows every node.
- Writes: ``writes`` puts of distinct keys in one namespace, one every
  ``write_interval_ms`` from time 0, each at a random node.
- Measured: the virtual time each node first holds each write (the replica's
  ``listeners`` hook, called with every batch of newly held records); from it,
  per write, the time from the put until every node holds it.
- The run ends once every write is held everywhere, or at ``max_virtual_ms``
  (a write not everywhere by then counts as never: ``None``, and ``inf`` in the
  percentiles).

Simplifications, on purpose: pushes are one-way (the real reply carries only
the receiver's HLC and watermarks, which min_replicas and GC use, not
convergence), so there is no one-push-in-flight-per-peer limit; clocks share
one virtual wall clock (no skew, so nothing is deferred); no SWIM, audit or GC.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import random
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from rumor.node.replication.delta import Coverage, Delta, WireRecord
from rumor.node.replication.push_queues import PushQueues, by_origin, choose_peers
from rumor.node.replication.replica import Durability, Replica, Write
from rumor.node.storage.memory import MemoryStore

BASE_WALL_MS = 1_700_000_000_000  # virtual time 0 on every node's wall clock
NAMESPACE = bytes.fromhex("51a1a7ed51a1a7ed51a1a7ed51a1a7ed")
MAX_FOLLOW_UP_ROUNDS = 1000  # as the real driver: rounds of one synchronisation
WITHIN_MS = 1000.0  # the "everywhere within 1 s" target of DESIGN §11

# ---- latency distributions ------------------------------------------------------------

_LATENCY_FORMS = "fixed:N, uniform:A:B, exp:MEAN or normal:MEAN:SD (milliseconds)"
_LATENCY_ARITY = {"fixed": 1, "uniform": 2, "exp": 1, "normal": 2}


@dataclass(frozen=True, slots=True)
class LatencyDistribution:
    """One-way message latency in ms, parsed from a spec such as ``uniform:1:5``.

    ``fixed:N`` always N; ``uniform:A:B`` uniform in [A, B]; ``exp:MEAN``
    exponential with that mean; ``normal:MEAN:SD`` normal, clipped at 0.
    """

    kind: str
    parameters: tuple[float, ...]

    @classmethod
    def parse(cls, spec: str) -> LatencyDistribution:
        """Parse ``spec``; raises ValueError saying what is wrong and what is expected."""

        def refuse(problem: str) -> ValueError:
            return ValueError(f"latency spec {spec!r}: {problem}; expected {_LATENCY_FORMS}")

        if not isinstance(spec, str) or not spec.strip():
            raise refuse("it is empty")
        kind, *raw = (part.strip() for part in spec.strip().split(":"))
        kind = kind.lower()
        arity = _LATENCY_ARITY.get(kind)
        if arity is None:
            raise refuse(f"unknown distribution {kind!r}")
        if len(raw) != arity:
            raise refuse(f"{kind} takes {arity} number(s), got {len(raw)}")
        try:
            parameters = tuple(float(part) for part in raw)
        except ValueError:
            raise refuse(f"{':'.join(raw)!r} are not all numbers") from None
        if not all(math.isfinite(p) and p >= 0 for p in parameters):
            raise refuse("every number must be finite and >= 0")
        if kind == "uniform" and parameters[0] > parameters[1]:
            raise refuse("uniform:A:B needs A <= B")
        if kind == "exp" and parameters[0] == 0:
            raise refuse("exp:MEAN needs MEAN > 0 (or use fixed:0)")
        return cls(kind, parameters)

    def sampler(self, rng: random.Random) -> Callable[[], float]:
        """A function drawing one latency (ms, >= 0) from ``rng`` per call."""
        if self.kind == "fixed":
            value = self.parameters[0]
            return lambda: value
        if self.kind == "uniform":
            low, high = self.parameters
            return lambda: rng.uniform(low, high)
        if self.kind == "exp":
            rate = 1.0 / self.parameters[0]
            return lambda: rng.expovariate(rate)
        mean, deviation = self.parameters
        return lambda: max(0.0, rng.gauss(mean, deviation))

    def __str__(self) -> str:
        return ":".join([self.kind, *(f"{p:g}" for p in self.parameters)])


def parse_latency(spec: str) -> LatencyDistribution:
    """``LatencyDistribution.parse``: raises ValueError on anything but a valid spec."""
    return LatencyDistribution.parse(spec)


# ---- configuration and result -------------------------------------------------------


@dataclass(frozen=True)
class SimulationConfig:
    """One simulated cluster and workload. Times are virtual milliseconds."""

    nodes: int = 100
    fanout: int = 4
    gossip_interval_ms: int = 10
    anti_entropy_interval_ms: int = 1000
    loss: float = 0.0  # probability that any one message is dropped
    latency_ms: str = "uniform:1:5"  # see LatencyDistribution
    writes: int = 100
    write_interval_ms: int = 10
    seed: int = 1
    max_virtual_ms: int = 60_000
    exchange_timeout_ms: int = 10_000  # a lost exchange is abandoned after this
    value_bytes: int = 100

    def __post_init__(self) -> None:
        problems = []
        if self.nodes < 1:
            problems.append(f"nodes must be >= 1, got {self.nodes}")
        if self.fanout < 1:
            problems.append(f"fanout must be >= 1, got {self.fanout}")
        for name in (
            "gossip_interval_ms",
            "anti_entropy_interval_ms",
            "write_interval_ms",
            "exchange_timeout_ms",
        ):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be > 0, got {getattr(self, name)}")
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
    messages_sent: int  # pushes, exchange requests and answers, push-backs
    messages_lost: int
    push_messages: int
    exchange_rounds: int
    virtual_ms: float  # virtual time when the run ended
    wall_s: float  # real time the run took

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


# ---- the simulation ---------------------------------------------------------------------


class _Event(Protocol):
    def happen(self, simulation: _Simulation) -> None: ...


@dataclass(slots=True)
class _Sync:
    """A node's synchronisation in progress: the peer, and when to give up on it."""

    peer: int
    sync_id: int
    rounds: int
    deadline_ms: float


@dataclass(slots=True)
class _Node:
    index: int
    replica: Replica
    queues: PushQueues
    gossip_phase_ms: float
    waiting_peers: dict[int, None] = field(default_factory=dict)  # queues not yet sent
    tick_scheduled: bool = False
    sync: _Sync | None = None


@dataclass(slots=True)
class _IssueWrite:
    write_index: int

    def happen(self, simulation: _Simulation) -> None:
        simulation.issue_write(self.write_index)


@dataclass(slots=True)
class _GossipTick:
    node: int

    def happen(self, simulation: _Simulation) -> None:
        simulation.gossip_tick(simulation.nodes[self.node])


@dataclass(slots=True)
class _AntiEntropyTimer:
    node: int

    def happen(self, simulation: _Simulation) -> None:
        simulation.anti_entropy_timer(simulation.nodes[self.node])


@dataclass(slots=True)
class _Push:
    target: int
    records: list[WireRecord]
    coverage: list[Coverage]
    sender_hlc: int

    def happen(self, simulation: _Simulation) -> None:
        simulation.receive_push(self)


@dataclass(slots=True)
class _ExchangeRequest:
    asker: int
    responder: int
    sync_id: int
    digest: dict[int, int]
    asker_hlc: int

    def happen(self, simulation: _Simulation) -> None:
        simulation.answer_exchange(self)


@dataclass(slots=True)
class _ExchangeAnswer:
    asker: int
    responder: int
    sync_id: int
    delta: Delta
    responder_watermarks: dict[int, int]
    responder_hlc: int

    def happen(self, simulation: _Simulation) -> None:
        simulation.receive_answer(self)


class _Simulation:
    def __init__(self, config: SimulationConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.draw_latency = config.latency.sampler(self.rng)
        self.now_ms = 0.0
        self._events: list[tuple[float, int, _Event]] = []
        self._sequence = 0
        self._sync_ids = 0
        self.messages_sent = 0
        self.messages_lost = 0
        self.push_messages = 0
        self.exchange_rounds = 0

        count = config.nodes
        self.all_nodes = list(range(count))
        node_ids: set[int] = set()
        self.nodes: list[_Node] = []
        for index in range(count):
            node_id = 0
            while node_id == 0 or node_id in node_ids:
                node_id = self.rng.getrandbits(64)
            node_ids.add(node_id)
            replica = Replica(
                MemoryStore(),
                new_node_id=node_id,
                wall_ms=BASE_WALL_MS,
                durability=Durability.WAL,
            )
            replica.listeners.append(self._arrival_listener(index))
            phase = self.rng.uniform(0, config.gossip_interval_ms)
            self.nodes.append(_Node(index, replica, PushQueues(), phase))
        self.index_of = {node.replica.node_id: node.index for node in self.nodes}

        # Per write: key, time issued, time each node first held it, nodes holding it.
        self.write_of_key = {self.key_of(w): w for w in range(config.writes)}
        self.issued_ms = [math.nan] * config.writes
        self.arrival_ms = [array("d", [math.inf]) * count for _ in range(config.writes)]
        self.holders = [0] * config.writes
        self.everywhere_ms: list[float | None] = [None] * config.writes
        self.writes_everywhere = 0

        if count > 1:
            for node in self.nodes:
                phase = self.rng.uniform(0, config.anti_entropy_interval_ms)
                self.schedule(phase, _AntiEntropyTimer(node.index))
        for write_index in range(config.writes):
            self.schedule(write_index * config.write_interval_ms, _IssueWrite(write_index))

    @staticmethod
    def key_of(write_index: int) -> bytes:
        return b"sim-%08d" % write_index

    # ---- the loop ----------------------------------------------------------------

    def schedule(self, at_ms: float, event: _Event) -> None:
        self._sequence += 1
        heapq.heappush(self._events, (at_ms, self._sequence, event))

    def run(self) -> None:
        events = self._events
        limit = float(self.config.max_virtual_ms)
        total = self.config.writes
        while events and self.writes_everywhere < total:
            at_ms, _, event = events[0]
            if at_ms > limit:
                self.now_ms = limit
                return
            heapq.heappop(events)
            self.now_ms = at_ms
            event.happen(self)

    @property
    def wall_ms(self) -> int:
        return BASE_WALL_MS + int(self.now_ms)

    def send(self, event: _Event) -> None:
        """Put a message on the network: lost, or delivered after one latency draw."""
        self.messages_sent += 1
        if self.config.loss and self.rng.random() < self.config.loss:
            self.messages_lost += 1
            return
        self.schedule(self.now_ms + self.draw_latency(), event)

    # ---- measurements ------------------------------------------------------------

    def _arrival_listener(self, node_index: int) -> Callable[[list[WireRecord]], None]:
        def record_arrivals(records: list[WireRecord]) -> None:
            for record in records:
                write_index = self.write_of_key.get(record.key)
                if write_index is None:
                    continue
                arrivals = self.arrival_ms[write_index]
                if arrivals[node_index] != math.inf:
                    continue
                arrivals[node_index] = self.now_ms
                self.holders[write_index] += 1
                if self.holders[write_index] == self.config.nodes:
                    self.everywhere_ms[write_index] = self.now_ms - self.issued_ms[write_index]
                    self.writes_everywhere += 1

        return record_arrivals

    # ---- writes and push ---------------------------------------------------------

    def issue_write(self, write_index: int) -> None:
        node = self.nodes[self.rng.randrange(self.config.nodes)]
        self.issued_ms[write_index] = self.now_ms
        value = (b"%d;" % write_index).ljust(self.config.value_bytes, b".")
        node.replica.write(Write(NAMESPACE, self.key_of(write_index), value), self.wall_ms)
        self.wake(node)

    def wake(self, node: _Node) -> None:
        """Make sure a node with something to push has its next gossip tick scheduled.

        Ticks stay on the node's grid (phase + k * interval); a tick with nothing
        to do is simply not scheduled, which is the same as a tick doing nothing.
        """
        if node.tick_scheduled or not (node.replica.ready_to_push or node.waiting_peers):
            return
        interval = self.config.gossip_interval_ms
        ticks = math.floor((self.now_ms - node.gossip_phase_ms) / interval) + 1
        node.tick_scheduled = True
        self.schedule(node.gossip_phase_ms + ticks * interval, _GossipTick(node.index))

    def gossip_peers(self, node: _Node, origin: int) -> list[int]:
        """``fanout`` distinct random nodes other than this one and ``origin`` (an index),
        through ``choose_peers``.

        Two more than wanted are drawn from every node, the two excluded ones are
        dropped, and the first ``fanout`` others are kept: a uniform choice among
        the others, without building a list of them for every node.
        """
        fanout = self.config.fanout
        excluded = (node.index, origin)
        chosen = choose_peers(self.all_nodes, fanout + 2, self.rng)
        return [p for p in chosen if p not in excluded][:fanout]

    def gossip_tick(self, node: _Node) -> None:
        """As ``Replicator.flush_pushes``: queue what is ready (per origin, never back to
        the origin, as ``plan_pushes``), send every waiting queue."""
        node.tick_scheduled = False
        records = node.replica.take_ready_to_push()
        if records and self.config.nodes > 1:
            for origin, group in by_origin(records).items():
                targets = self.gossip_peers(node, self.index_of.get(origin, -1))
                node.queues.offer(group, targets)
                for target in targets:
                    node.waiting_peers[target] = None
        waiting, node.waiting_peers = node.waiting_peers, {}
        for peer in waiting:
            batch = node.queues.take(peer)
            if batch:
                self.push_messages += 1
                self.send(_Push(peer, batch, [], node.replica.clock.last))
            if node.queues.pending(peer):
                node.waiting_peers[peer] = None
        self.wake(node)

    def receive_push(self, push: _Push) -> None:
        """As ``Replicator.handle_push``: merge the sender's HLC, apply, forward what won."""
        node = self.nodes[push.target]
        replica = node.replica
        wall_ms = self.wall_ms
        replica.observe_clock(push.sender_hlc, wall_ms)
        replica.apply_remote(push.records, wall_ms, push.coverage)
        self.wake(node)

    # ---- anti-entropy ------------------------------------------------------------

    def anti_entropy_timer(self, node: _Node) -> None:
        self.schedule(
            self.now_ms + self.config.anti_entropy_interval_ms, _AntiEntropyTimer(node.index)
        )
        if node.sync is not None and self.now_ms < node.sync.deadline_ms:
            return  # one synchronisation at a time
        peer = self.rng.randrange(self.config.nodes - 1)
        if peer >= node.index:
            peer += 1
        self._sync_ids += 1
        node.sync = _Sync(peer, self._sync_ids, 0, 0.0)
        node.replica.begin_sync()
        self.request_round(node)

    def request_round(self, node: _Node) -> None:
        sync = node.sync
        assert sync is not None
        sync.rounds += 1
        sync.deadline_ms = self.now_ms + self.config.exchange_timeout_ms
        self.exchange_rounds += 1
        replica = node.replica
        self.send(
            _ExchangeRequest(
                node.index, sync.peer, sync.sync_id, replica.sync_digest(), replica.clock.last
            )
        )

    def answer_exchange(self, request: _ExchangeRequest) -> None:
        """As ``Replicator.handle_exchange``: one consistent view, from one synchronous step."""
        replica = self.nodes[request.responder].replica
        replica.observe_clock(request.asker_hlc, self.wall_ms)
        delta = replica.delta_for(request.digest)
        self.send(
            _ExchangeAnswer(
                request.asker,
                request.responder,
                request.sync_id,
                delta,
                replica.own_watermarks(),
                replica.clock.last,
            )
        )

    def receive_answer(self, answer: _ExchangeAnswer) -> None:
        """As ``Replicator.exchange``: apply the answer in the session, push back, follow up."""
        node = self.nodes[answer.asker]
        sync = node.sync
        if sync is None or sync.sync_id != answer.sync_id:
            return  # the synchronisation timed out and was abandoned
        replica = node.replica
        wall_ms = self.wall_ms
        replica.observe_clock(answer.responder_hlc, wall_ms)
        delta = answer.delta
        replica.apply_remote(delta.records, wall_ms, delta.coverage, session=True)
        self.wake(node)
        back = replica.push_back_for(answer.responder_watermarks)
        if back is not None:
            self.push_messages += 1
            self.send(_Push(answer.responder, back.records, back.coverage, replica.clock.last))
        if delta.complete or sync.rounds >= MAX_FOLLOW_UP_ROUNDS:
            node.sync = None
        else:
            self.request_round(node)

    # ---- the result --------------------------------------------------------------

    def result(self, wall_s: float) -> SimulationResult:
        times = tuple(self.everywhere_ms)
        ranked = [math.inf if t is None else t for t in times]
        within = sum(1 for t in ranked if t <= WITHIN_MS)
        visibility = tuple(
            tuple(at - issued for at in arrivals)
            for arrivals, issued in zip(self.arrival_ms, self.issued_ms, strict=True)
        )
        return SimulationResult(
            config=self.config,
            write_times_ms=times,
            visibility_ms=visibility,
            p50_ms=percentile(ranked, 0.50),
            p90_ms=percentile(ranked, 0.90),
            p99_ms=percentile(ranked, 0.99),
            max_ms=max(ranked, default=math.nan),
            share_within_1s=within / len(ranked) if ranked else 1.0,
            reached_everywhere=self.writes_everywhere,
            messages_sent=self.messages_sent,
            messages_lost=self.messages_lost,
            push_messages=self.push_messages,
            exchange_rounds=self.exchange_rounds,
            virtual_ms=self.now_ms,
            wall_s=wall_s,
        )


# ---- the API ------------------------------------------------------------------------------


def run(config: SimulationConfig) -> SimulationResult:
    """Simulate ``config`` on virtual time; deterministic for a config (``wall_s`` aside)."""
    started = time.perf_counter()
    simulation = _Simulation(config)
    simulation.run()
    return simulation.result(time.perf_counter() - started)


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
    varies), p50, p99 and max time to every node, share within 1 s, messages, wall s."""
    varying = _varying_fields(results)
    header = ["nodes", *varying, "p50 ms", "p99 ms", "max ms", "within 1 s", "messages", "wall s"]
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
                f"{result.wall_s:.2f}",
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
