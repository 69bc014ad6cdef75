"""RequestSeries exposes what prometheus_client's Counter and Histogram would, sample for sample."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from rumor.node.server.metrics import LATENCY_BUCKETS
from rumor.node.server.request_series import RequestSeries

COUNTER = ("rumor_requests", "Requests handled.")
HISTOGRAM = ("rumor_request_seconds", "Time to handle a request.")
# gRPC status names and HTTP statuses, an HTTP status as a number and as text (one series).
STATUSES: list[str | int] = ["OK", "NOT_FOUND", 200, "200", 404]


def _without_created(text: str) -> list[str]:
    return [line for line in text.splitlines() if "_created{" not in line]


def _created_series(text: str) -> list[str]:
    return [line.rsplit(" ", 1)[0] for line in text.splitlines() if "_created{" in line]


def test_the_exposition_is_the_counter_and_histogram_one() -> None:
    native = CollectorRegistry(auto_describe=False)
    counter = Counter(*COUNTER, ["api", "method", "status"], registry=native)
    histogram = Histogram(*HISTOGRAM, ["api", "method"], buckets=LATENCY_BUCKETS, registry=native)
    ours = CollectorRegistry(auto_describe=False)
    series = RequestSeries(COUNTER, HISTOGRAM, LATENCY_BUCKETS)
    ours.register(series)
    draw = random.Random(7)
    for _ in range(3000):
        api = draw.choice(["grpc", "http"])
        method = draw.choice(["Get", "Put", "values.get"])
        status = draw.choice(STATUSES)
        seconds = draw.choice([draw.random() / 100, draw.random() * 40, -0.001, 0.0005, 0.001])
        counter.labels(api, method, str(status)).inc()
        histogram.labels(api, method).observe(max(seconds, 0.0))
        series.observe(api, method, status, seconds)
    expected, got = generate_latest(native).decode(), generate_latest(ours).decode()
    assert _without_created(got) == _without_created(expected)
    assert _created_series(got) == _created_series(expected)


def test_nothing_observed_still_names_both_series() -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RequestSeries(COUNTER, HISTOGRAM, LATENCY_BUCKETS))
    text = generate_latest(registry).decode()
    assert "# TYPE rumor_requests_total counter" in text
    assert "# TYPE rumor_request_seconds histogram" in text
