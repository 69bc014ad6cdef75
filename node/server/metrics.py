"""Prometheus metrics for one node, served at ``/metrics``.

Two kinds of series live in the node's own ``CollectorRegistry`` (never the
process-global one, so several nodes in one process — as in tests — stay apart):

- per-request series fed by ``Metrics.observe``, called by the gRPC wrapper
  (``rpc.service_handler(observe=...)``) and the HTTP gateway:
  ``rumor_requests_total{api,method,status}`` and the
  ``rumor_request_seconds{api,method}`` histogram (plain numbers per call, written
  out at scrape time: ``request_series``);
- node state read at scrape time by a custom collector from counters the node
  already keeps (the replica's stored counters, ``ReplicationStats``, the push
  queues, the watermark vectors), so nothing extra is done on the write path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple, Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from rumor.node.replication.engine.components import ReplicationStats
from rumor.node.server.metrics_merge import merged_exposition
from rumor.node.server.request_series import RequestSeries
from rumor.node.server.upload_budget import UploadBudget

Vectors = Callable[[], Mapping[int, Mapping[int, int]]]

LOOP_LAG_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)


def watermark_lag(own: Mapping[int, int], vectors: Iterable[Mapping[int, int]]) -> dict[int, int]:
    """Per origin: the highest watermark any known member advertises, minus ours (>= 0)."""
    best: dict[int, int] = dict(own)
    for vector in vectors:
        for origin, seq in vector.items():
            if seq > best.get(origin, 0):
                best[origin] = seq
    return {origin: max(seq - own.get(origin, 0), 0) for origin, seq in best.items()}


class ReplicaCounters(Protocol):
    """What the collector reads of the replica: its stored counters and its watermarks."""

    @property
    def records_held(self) -> int: ...

    @property
    def tombstones_held(self) -> int: ...

    @property
    def deferred_held(self) -> int: ...

    @property
    def audit_repairs_total(self) -> int: ...

    @property
    def durable_seq(self) -> int: ...

    def own_watermarks(self) -> Mapping[int, int]: ...


class DropCounter(Protocol):
    """What the collector reads of the push queues."""

    @property
    def dropped(self) -> int: ...


class _StateCollector(Collector):
    """Reads the node's counters at scrape time."""

    def __init__(
        self,
        node_id: int,
        replica: ReplicaCounters,
        stats: ReplicationStats,
        queues: DropCounter,
        vectors: Vectors | None,
    ) -> None:
        self.node_id = node_id
        self.replica = replica
        self.stats = stats
        self.queues = queues
        self.vectors = vectors

    def collect(self) -> Iterable[Metric]:
        yield from _held(self.node_id, self.replica)
        yield from _applied(self.replica, self.stats)
        yield from _rounds(self.stats)
        yield from _peer_input(self.stats)
        yield CounterMetricFamily(
            "rumor_push_queue_drops",
            "Records dropped from full push queues (anti-entropy repairs them later).",
            value=self.queues.dropped,
        )
        yield _lag(self.replica, self.vectors)


def _held(node_id: int, replica: ReplicaCounters) -> Iterable[Metric]:
    """Who this node is, and what it holds (stored counters, not scans)."""
    info = GaugeMetricFamily(
        "rumor_node_info", "This node's id (value always 1).", labels=["node_id"]
    )
    info.add_metric([str(node_id)], 1)
    yield info
    yield GaugeMetricFamily(
        "rumor_records_held",
        "Live records stored on this node (stored counter, not a scan).",
        value=max(replica.records_held, 0),
    )
    yield GaugeMetricFamily(
        "rumor_tombstones_held",
        "Tombstones stored on this node, awaiting purge (stored counter).",
        value=max(replica.tombstones_held, 0),
    )
    yield GaugeMetricFamily(
        "rumor_deferred_records",
        "Remote records received but deferred (their HLC is too far ahead).",
        value=replica.deferred_held,
    )
    yield CounterMetricFamily(
        "rumor_audit_repairs",
        "Records repaired by the audit (Merkle bucket) rounds since start.",
        value=replica.audit_repairs_total,
    )


def _applied(replica: ReplicaCounters, stats: ReplicationStats) -> Iterable[Metric]:
    applied = CounterMetricFamily(
        "rumor_records_applied",
        "Records applied: local = this node's own writes (its durable sequence), "
        "remote = newer versions taken from peers since start.",
        labels=["source"],
    )
    applied.add_metric(["local"], replica.durable_seq)
    applied.add_metric(["remote"], stats.records_applied_remote)
    yield applied


def _rounds(stats: ReplicationStats) -> Iterable[Metric]:
    """Push, anti-entropy and audit rounds, and the bytes they moved."""
    push_rounds = CounterMetricFamily(
        "rumor_push_rounds",
        "Push rounds (one Push call per batch) by direction and result.",
        labels=["direction", "result"],
    )
    push_rounds.add_metric(["sent", "ok"], stats.pushes_sent)
    push_rounds.add_metric(["sent", "failed"], stats.pushes_failed)
    yield push_rounds
    push_bytes = CounterMetricFamily(
        "rumor_push_bytes",
        "Bytes of Push requests (serialized size) by direction.",
        labels=["direction"],
    )
    push_bytes.add_metric(["sent"], stats.push_bytes)
    push_bytes.add_metric(["received"], stats.push_bytes_received)
    yield push_bytes
    yield CounterMetricFamily(
        "rumor_anti_entropy_rounds",
        "Anti-entropy (push-pull Exchange) rounds this node started and completed.",
        value=stats.exchanges,
    )
    ae_bytes = CounterMetricFamily(
        "rumor_anti_entropy_bytes",
        "Bytes of Exchange responses received in anti-entropy rounds this node started.",
        labels=["direction"],
    )
    ae_bytes.add_metric(["received"], stats.exchange_bytes)
    yield ae_bytes
    yield CounterMetricFamily(
        "rumor_audit_rounds",
        "Audit rounds (Merkle bucket comparison) this node ran.",
        value=stats.audit_rounds,
    )


def _peer_input(stats: ReplicationStats) -> Iterable[Metric]:
    """Untrusted peer input: what was refused or cut down, and calls that failed."""
    yield CounterMetricFamily(
        "rumor_watermark_claims_clamped",
        "Watermark claims above their origin's known high seq, clamped to it.",
        value=stats.claims_clamped,
    )
    yield CounterMetricFamily(
        "rumor_probe_mismatches",
        "Probes answered by another node id than the probed member's (not a sign of its"
        " life: a new process at its old address).",
        value=stats.probe_mismatches,
    )
    yield CounterMetricFamily(
        "rumor_peer_messages_misaddressed",
        "Peer requests naming another node as their recipient (the sender's member table"
        " has an old id at this address).",
        value=stats.misaddressed,
    )
    yield CounterMetricFamily(
        "rumor_peer_messages_malformed",
        "Peer messages rejected whole because a record or claim was malformed.",
        value=stats.malformed_messages,
    )
    yield CounterMetricFamily(
        "rumor_peer_messages_incompatible",
        "Peer messages refused, and answers rejected, for sharing no protocol version.",
        value=stats.incompatible_messages,
    )
    yield CounterMetricFamily(
        "rumor_peer_calls_failed",
        "Calls to peers that failed (each is logged, rate-limited per peer and cause).",
        value=stats.calls_failed,
    )


def _lag(replica: ReplicaCounters, vectors: Vectors | None) -> Metric:
    lag = GaugeMetricFamily(
        "rumor_watermark_lag",
        "Per origin: highest watermark any known member advertises minus ours "
        "(sequence numbers this node has yet to see).",
        labels=["origin"],
    )
    if vectors is not None:
        own = replica.own_watermarks()
        for origin, behind in sorted(watermark_lag(own, vectors().values()).items()):
            lag.add_metric([str(origin)], behind)
    return lag


class _UploadCollector(Collector):
    """Reads an upload budget at scrape time (``upload_budget``)."""

    def __init__(self, budget: UploadBudget) -> None:
        self.budget = budget

    def collect(self) -> Iterable[Metric]:
        budget = self.budget
        yield GaugeMetricFamily(
            "rumor_upload_bytes_in_flight",
            "Bytes of request bodies and PutStreams being received (the upload budget's use).",
            value=budget.in_flight,
        )
        yield CounterMetricFamily(
            "rumor_upload_refusals",
            "Uploads refused for want of room in the upload budget (RESOURCE_EXHAUSTED, 503).",
            value=budget.refused,
        )
        yield CounterMetricFamily(
            "rumor_upload_timeouts",
            "Uploads cut for sending nothing too long or taking too long (DEADLINE_EXCEEDED, 408).",
            value=budget.timed_out,
        )


class ViewCounts(Protocol):
    """A worker's view of the owner's database (``workers.secondary_reads``)."""

    @property
    def reads_answered(self) -> int: ...

    @property
    def reads_to_owner(self) -> int: ...

    @property
    def catch_ups(self) -> int: ...

    @property
    def catch_up_seconds(self) -> float: ...


class _ViewCollector(Collector):
    """Reads a worker's view counts at scrape time."""

    def __init__(self, view: ViewCounts) -> None:
        self.view = view

    def collect(self) -> Iterable[Metric]:
        view = self.view
        yield CounterMetricFamily(
            "rumor_worker_view_reads",
            "Plain reads a worker answered from its own view of the owner's database.",
            value=view.reads_answered,
        )
        yield CounterMetricFamily(
            "rumor_worker_view_passed_reads",
            "Plain reads a worker passed to the owner (reads refused, or a failed catch-up).",
            value=view.reads_to_owner,
        )
        yield CounterMetricFamily(
            "rumor_worker_view_catch_ups",
            "Catch-ups of a worker's view with the owner's writes (each shared by the reads"
            " waiting for it).",
            value=view.catch_ups,
        )
        yield CounterMetricFamily(
            "rumor_worker_view_catch_up_seconds",
            "Time reads waited for catch-ups, each counted once (the hand-off to a thread"
            " included).",
            value=view.catch_up_seconds,
        )


class RequestMetrics:
    """The per-request series alone: what a worker process counts."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        # rumor_requests_total and rumor_request_seconds, as a Counter and a Histogram
        # would expose them, without their locks on every call.
        self._requests = RequestSeries(
            (
                "rumor_requests",
                "Requests handled, by API (grpc or http), method and status "
                "(gRPC status code name or HTTP status).",
            ),
            (
                "rumor_request_seconds",
                "Time to handle a request (for a stream: until it ends), by API and method.",
            ),
            LATENCY_BUCKETS,
        )
        self.registry.register(self._requests)
        self.http_client_disconnects = Counter(
            "rumor_http_client_disconnects",
            "HTTP requests whose client went away before the answer was written (no error).",
            registry=self.registry,
        )
        self._loop_lag = Histogram(
            "rumor_event_loop_lag_seconds",
            "How late a timer set every 10 ms fired: the event loop's stalls.",
            buckets=LOOP_LAG_BUCKETS,
            registry=self.registry,
        )

    def observe(self, api: str, method: str, status: str | int, seconds: float) -> None:
        """One request's outcome (a gRPC status name, an HTTP status) and duration."""
        self._requests.observe(api, method, status, seconds)

    def count_view(self, view: ViewCounts) -> None:
        """Report a worker view's reads and catch-ups at each scrape."""
        self.registry.register(_ViewCollector(view))

    def count_uploads(self, budget: UploadBudget) -> None:
        """Report ``budget``'s bytes in flight, refusals and timeouts at each scrape."""
        self.registry.register(_UploadCollector(budget))

    def observe_loop_lag(self, seconds: float) -> None:
        self._loop_lag.observe(seconds)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type, for the ``/metrics`` handler."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class Conditions(NamedTuple):
    """What keeps a node from serving: each a gauge of 0 or 1 at scrape time."""

    ready: bool  # joined, and the clock not fenced
    clock_fenced: bool  # no writes, no reads: the clock is off from the peers'
    disk_full: bool  # no writes: no space left on the data directory's disk


class _ConditionCollector(Collector):
    def __init__(self, conditions: Callable[[], Conditions]) -> None:
        self.conditions = conditions

    def collect(self) -> Iterable[Metric]:
        now = self.conditions()
        yield GaugeMetricFamily(
            "rumor_ready", "1 while the node serves clients (joined, clock not fenced).", now.ready
        )
        yield GaugeMetricFamily(
            "rumor_clock_fenced",
            "1 while the node's clock is off from its peers': it takes no writes, serves no reads.",
            now.clock_fenced,
        )
        yield GaugeMetricFamily(
            "rumor_disk_full",
            "1 while the node's disk is full: it refuses writes and serves reads.",
            now.disk_full,
        )


class Metrics(RequestMetrics):
    """A node's metrics: request series plus a scrape-time collector of its state.

    ``vectors`` returns the watermark vectors known for the other members
    (``membership.vectors``); without it no ``rumor_watermark_lag`` samples are
    reported.
    """

    def __init__(
        self,
        *,
        node_id: int,
        replica: ReplicaCounters,
        stats: ReplicationStats,
        queues: DropCounter,
        vectors: Vectors | None = None,
        conditions: Callable[[], Conditions] | None = None,
    ) -> None:
        super().__init__()
        self.registry.register(_StateCollector(node_id, replica, stats, queues, vectors))
        if conditions is not None:
            self.registry.register(_ConditionCollector(conditions))
        # A node with workers: their expositions, added to this one's (see metrics_merge).
        self.worker_expositions: Callable[[], list[str]] | None = None

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type, for the ``/metrics`` handler."""
        own = generate_latest(self.registry)
        if self.worker_expositions is None:
            return own, CONTENT_TYPE_LATEST
        texts = [own.decode(), *self.worker_expositions()]
        return merged_exposition(texts), CONTENT_TYPE_LATEST
