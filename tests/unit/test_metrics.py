"""Prometheus metrics (rumor.node.server.metrics).

- ``render`` names every metric, with help texts, in the Prometheus text format;
- ``observe`` feeds ``rumor_requests_total{api,method,status}`` and the
  ``rumor_request_seconds`` histogram;
- the state series are read at scrape time from the replica, the replication
  stats, the push queues and the member vectors (fakes here), so a later scrape
  sees later values;
- each ``Metrics`` has its own registry: two nodes in one process do not clash;
- ``watermark_lag``: per origin, the best advertised watermark minus ours, never negative.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from rumor.node.replication.engine.components import ReplicationStats
from rumor.node.server.metrics import Metrics, watermark_lag


@dataclass
class FakeReplica:
    node_id: int = 1
    records_held: int = 10
    tombstones_held: int = 4
    deferred_held: int = 2
    audit_repairs_total: int = 5
    durable_seq: int = 42
    watermarks: dict[int, int] = field(default_factory=lambda: {1: 42, 2: 7})

    def own_watermarks(self) -> dict[int, int]:
        return dict(self.watermarks)


@dataclass
class FakeQueues:
    dropped: int = 0


NAMES = [
    "rumor_requests_total",
    "rumor_request_seconds",
    "rumor_node_info",
    "rumor_records_held",
    "rumor_tombstones_held",
    "rumor_deferred_records",
    "rumor_audit_repairs_total",
    "rumor_records_applied_total",
    "rumor_push_rounds_total",
    "rumor_push_bytes_total",
    "rumor_anti_entropy_rounds_total",
    "rumor_anti_entropy_bytes_total",
    "rumor_audit_rounds_total",
    "rumor_push_queue_drops_total",
    "rumor_watermark_lag",
]


def _samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
    }


def _make() -> tuple[Metrics, FakeReplica, ReplicationStats, FakeQueues, dict[int, dict[int, int]]]:
    replica = FakeReplica()
    stats = ReplicationStats(
        pushes_sent=3,
        pushes_failed=1,
        push_bytes=300,
        push_bytes_received=200,
        records_applied_remote=17,
        exchanges=6,
        exchange_bytes=600,
        audit_rounds=2,
        claims_clamped=4,
        malformed_messages=7,
        calls_failed=11,
        incompatible_messages=3,
    )
    queues = FakeQueues(dropped=9)
    vectors: dict[int, dict[int, int]] = {2: {1: 40, 2: 12, 3: 5}, 3: {2: 9, 3: 8}}
    metrics = Metrics(
        node_id=1, replica=replica, stats=stats, queues=queues, vectors=lambda: vectors
    )
    return metrics, replica, stats, queues, vectors


def test_render_names_every_metric_with_help() -> None:
    metrics, *_ = _make()
    metrics.observe("grpc", "Put", "OK", 0.01)
    text = metrics.render()[0].decode()
    for name in NAMES:
        assert name in text, name
    base_names = {name.removesuffix("_total") for name in NAMES}
    for base in base_names:
        assert f"# HELP {base}" in text, base


def test_state_values_from_fakes() -> None:
    metrics, replica, stats, queues, vectors = _make()
    samples = _samples(metrics)
    assert samples[("rumor_node_info", (("node_id", "1"),))] == 1
    assert samples[("rumor_records_held", ())] == 10
    assert samples[("rumor_tombstones_held", ())] == 4
    assert samples[("rumor_deferred_records", ())] == 2
    assert samples[("rumor_audit_repairs_total", ())] == 5
    assert samples[("rumor_records_applied_total", (("source", "local"),))] == 42
    assert samples[("rumor_records_applied_total", (("source", "remote"),))] == 17
    sent_ok = ("rumor_push_rounds_total", (("direction", "sent"), ("result", "ok")))
    sent_failed = ("rumor_push_rounds_total", (("direction", "sent"), ("result", "failed")))
    assert samples[sent_ok] == 3
    assert samples[sent_failed] == 1
    assert samples[("rumor_push_bytes_total", (("direction", "sent"),))] == 300
    assert samples[("rumor_push_bytes_total", (("direction", "received"),))] == 200
    assert samples[("rumor_anti_entropy_rounds_total", ())] == 6
    assert samples[("rumor_anti_entropy_bytes_total", (("direction", "received"),))] == 600
    assert samples[("rumor_audit_rounds_total", ())] == 2
    assert samples[("rumor_watermark_claims_clamped_total", ())] == 4
    assert samples[("rumor_peer_messages_malformed_total", ())] == 7
    assert samples[("rumor_peer_calls_failed_total", ())] == 11
    assert samples[("rumor_peer_messages_incompatible_total", ())] == 3
    assert samples[("rumor_push_queue_drops_total", ())] == 9
    # ours {1: 42, 2: 7}; best advertised {1: 40, 2: 12, 3: 8}
    assert samples[("rumor_watermark_lag", (("origin", "1"),))] == 0
    assert samples[("rumor_watermark_lag", (("origin", "2"),))] == 5
    assert samples[("rumor_watermark_lag", (("origin", "3"),))] == 8

    # read at scrape time: later values show up in the next scrape
    replica.records_held = 11
    replica.tombstones_held = -1  # a transiently negative stored counter reads as 0
    replica.watermarks[3] = 8
    stats.records_applied_remote = 18
    queues.dropped = 10
    vectors[2][2] = 20
    samples = _samples(metrics)
    assert samples[("rumor_records_held", ())] == 11
    assert samples[("rumor_tombstones_held", ())] == 0
    assert samples[("rumor_records_applied_total", (("source", "remote"),))] == 18
    assert samples[("rumor_push_queue_drops_total", ())] == 10
    assert samples[("rumor_watermark_lag", (("origin", "2"),))] == 13
    assert samples[("rumor_watermark_lag", (("origin", "3"),))] == 0


def test_observe_counts_requests_and_latency() -> None:
    metrics, *_ = _make()
    metrics.observe("grpc", "Put", "OK", 0.002)
    metrics.observe("grpc", "Put", "OK", 0.2)
    metrics.observe("grpc", "Get", "NOT_FOUND", 0.001)
    metrics.observe("http", "values.get", 404, 0.003)
    samples = _samples(metrics)
    put_ok = (("api", "grpc"), ("method", "Put"), ("status", "OK"))
    assert samples[("rumor_requests_total", put_ok)] == 2
    get_nf = (("api", "grpc"), ("method", "Get"), ("status", "NOT_FOUND"))
    assert samples[("rumor_requests_total", get_nf)] == 1
    http = (("api", "http"), ("method", "values.get"), ("status", "404"))
    assert samples[("rumor_requests_total", http)] == 1
    put = (("api", "grpc"), ("method", "Put"))
    assert samples[("rumor_request_seconds_count", put)] == 2
    assert abs(samples[("rumor_request_seconds_sum", put)] - 0.202) < 1e-9
    bucket = "rumor_request_seconds_bucket"
    assert samples[(bucket, tuple(sorted((*put, ("le", "0.0025")))))] == 1
    assert samples[(bucket, tuple(sorted((*put, ("le", "+Inf")))))] == 2


def test_registries_are_separate() -> None:
    first, *_ = _make()
    second, *_ = _make()  # registering the same names again must not raise
    first.observe("grpc", "Put", "OK", 0.01)
    key = ("rumor_requests_total", (("api", "grpc"), ("method", "Put"), ("status", "OK")))
    assert _samples(first)[key] == 1
    assert key not in _samples(second)


def test_without_vectors_no_lag_samples() -> None:
    metrics = Metrics(
        node_id=1, replica=FakeReplica(), stats=ReplicationStats(), queues=FakeQueues()
    )
    samples = _samples(metrics)
    assert not any(name == "rumor_watermark_lag" for name, _ in samples)
    assert samples[("rumor_push_queue_drops_total", ())] == 0


def test_watermark_lag() -> None:
    assert watermark_lag({}, []) == {}
    assert watermark_lag({1: 5}, []) == {1: 0}
    assert watermark_lag({1: 5}, [{1: 3}, {1: 9, 2: 4}]) == {1: 4, 2: 4}
