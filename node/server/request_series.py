"""The per-request series, counted as plain numbers and written out at scrape time.

``rumor_requests_total{api,method,status}`` and the ``rumor_request_seconds{api,method}``
histogram are what prometheus_client's ``Counter`` and ``Histogram`` would expose,
sample for sample (``_created`` included: the time a label set was first seen), but
a call costs a few additions: their ``inc`` and ``observe`` take a lock each, and
the histogram one more per bucket, on every call of the node.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Iterable, Sequence

from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString


class _Latencies:
    """One ``(api, method)``'s histogram: a count per bucket (not cumulative) and the sum."""

    __slots__ = ("buckets", "created", "labels", "total")

    def __init__(self, labels: dict[str, str], bucket_count: int) -> None:
        self.labels = labels
        self.buckets = [0] * bucket_count
        self.total = 0.0
        self.created = time.time()


class _Calls:
    """One ``(api, method, status)``: its call count and its method's latencies."""

    __slots__ = ("count", "created", "labels", "latencies")

    def __init__(self, labels: dict[str, str], latencies: _Latencies) -> None:
        self.labels = labels
        self.latencies = latencies
        self.count = 0
        self.created = time.time()


class RequestSeries(Collector):
    """Counts every call by API, method and status, and its duration by API and method."""

    def __init__(
        self,
        counter: tuple[str, str],
        histogram: tuple[str, str],
        buckets: Sequence[float],
    ) -> None:
        self._counter_name, self._counter_help = counter
        self._histogram_name, self._histogram_help = histogram
        self._bounds = [float(bound) for bound in buckets]
        if self._bounds[-1] != math.inf:
            self._bounds.append(math.inf)
        self._le: list[str] = [
            floatToGoString(bound)  # type: ignore[no-untyped-call]
            for bound in self._bounds
        ]
        self._calls: dict[tuple[str, str, str | int], _Calls] = {}
        self._by_status: dict[tuple[str, str, str], _Calls] = {}
        self._latencies: dict[tuple[str, str], _Latencies] = {}

    def observe(self, api: str, method: str, status: str | int, seconds: float) -> None:
        calls = self._calls.get((api, method, status))
        if calls is None:
            calls = self._first(api, method, status)
        calls.count += 1
        latencies = calls.latencies
        amount = max(seconds, 0.0)
        latencies.total += amount
        latencies.buckets[bisect.bisect_left(self._bounds, amount)] += 1

    def _first(self, api: str, method: str, status: str | int) -> _Calls:
        """The series of a label set seen for the first time (status 200 and "200" are one)."""
        latencies = self._latencies.get((api, method))
        if latencies is None:
            latencies = _Latencies({"api": api, "method": method}, len(self._bounds))
            self._latencies[(api, method)] = latencies
        text = str(status)
        calls = self._by_status.get((api, method, text))
        if calls is None:
            calls = _Calls({"api": api, "method": method, "status": text}, latencies)
            self._by_status[(api, method, text)] = calls
        self._calls[(api, method, status)] = calls
        return calls

    def collect(self) -> Iterable[Metric]:
        requests = Metric(self._counter_name, self._counter_help, "counter")
        for calls in list(self._by_status.values()):
            requests.add_sample(f"{self._counter_name}_total", calls.labels, float(calls.count))
            requests.add_sample(f"{self._counter_name}_created", calls.labels, calls.created)
        yield requests
        name = self._histogram_name
        seconds = Metric(name, self._histogram_help, "histogram")
        for latencies in list(self._latencies.values()):
            labels = latencies.labels
            cumulative = 0
            for le, count in zip(self._le, list(latencies.buckets), strict=True):
                cumulative += count
                seconds.add_sample(f"{name}_bucket", {**labels, "le": le}, float(cumulative))
            seconds.add_sample(f"{name}_count", labels, float(cumulative))
            seconds.add_sample(f"{name}_sum", labels, latencies.total)
            seconds.add_sample(f"{name}_created", labels, latencies.created)
        yield seconds
