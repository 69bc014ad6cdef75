"""Merging the owner's and its workers' expositions: one series each, values added."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from rumor.node.server.metrics_merge import merged_exposition


def _exposition(gets: int, seconds: list[float]) -> str:
    registry = CollectorRegistry()
    requests = Counter("rumor_requests", "Requests.", ["method"], registry=registry)
    latency = Histogram("rumor_request_seconds", "Time.", buckets=(0.1, 1.0), registry=registry)
    requests.labels('Get "quoted"\nline').inc(gets)
    for value in seconds:
        latency.observe(value)
    return generate_latest(registry).decode()


def test_counters_and_histograms_add_up_series_by_series() -> None:
    merged = merged_exposition([_exposition(3, [0.05]), _exposition(4, [0.5, 2.0])]).decode()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(merged)
        for sample in family.samples
    }
    assert samples[("rumor_requests_total", (("method", 'Get "quoted"\nline'),))] == 7
    assert samples[("rumor_request_seconds_count", ())] == 3
    assert samples[("rumor_request_seconds_bucket", (("le", "0.1"),))] == 1
    assert samples[("rumor_request_seconds_bucket", (("le", "1.0"),))] == 2
    assert samples[("rumor_request_seconds_bucket", (("le", "+Inf"),))] == 3
    assert merged.count("# TYPE rumor_requests counter") == 1
