"""t-visibility (Bailis et al., PBS), measured rather than judged.

Per node, the share of writes visible within t ms of their acknowledgement,
from Watch's monotonic apply times (all nodes share the host's monotonic
clock, even when a node's wall clock is skewed on purpose), and each write's
time to full replication. The checkers judge a history (``checkers``); this
measures it.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

from rumor.experiments.lab.checkers import NS_PER_MS, node_names
from rumor.experiments.lab.history import Ack, Applied, History, Version

#: The t of t-visibility, in milliseconds.
T_VISIBILITY_MS: tuple[int, ...] = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


@dataclass(frozen=True)
class Percentiles:
    """Nearest-rank percentiles in milliseconds over ``count`` values."""

    count: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float


def nearest_rank(sorted_values: Sequence[float], percent: float) -> float:
    """The nearest-rank percentile: the smallest value with ``percent``% of values <= it."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, math.ceil(percent / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def percentiles_ms(values_ns: Iterable[int]) -> Percentiles | None:
    """p50, p90, p99 and max of nanosecond durations, in ms; None when there are none."""
    values = sorted(value / NS_PER_MS for value in values_ns)
    if not values:
        return None
    return Percentiles(
        count=len(values),
        p50_ms=nearest_rank(values, 50),
        p90_ms=nearest_rank(values, 90),
        p99_ms=nearest_rank(values, 99),
        max_ms=values[-1],
    )


@dataclass(frozen=True)
class WriteVisibility:
    """One acknowledged write: when each node first held it (or something newer).

    ``delays_ns[node]`` is the time from the acknowledgement to the node's first
    Watch event for the key with a version >= the write's, 0 if that came
    before the acknowledgement (the accepting node, typically), None if the
    node never applied it. ``full_ns`` is the slowest node's delay, None if
    some node never applied it.
    """

    ack: Ack
    delays_ns: dict[str, int | None]

    @property
    def full_ns(self) -> int | None:
        delays = list(self.delays_ns.values())
        if not delays or any(delay is None for delay in delays):
            return None
        return max(delay for delay in delays if delay is not None)


@dataclass(frozen=True)
class VisibilityStats:
    """t-visibility per node and time to full replication, over every acknowledged write."""

    nodes: tuple[str, ...]
    writes: tuple[WriteVisibility, ...]
    thresholds_ms: tuple[int, ...] = T_VISIBILITY_MS

    @property
    def total(self) -> int:
        return len(self.writes)

    @cached_property
    def _sorted_delays_ns(self) -> dict[str, list[int]]:
        return {
            node: sorted(
                delay for write in self.writes if (delay := write.delays_ns.get(node)) is not None
            )
            for node in self.nodes
        }

    def delays_ms(self, node: str) -> list[float]:
        """Sorted delays at ``node`` in ms, for the writes it applied (for a CDF)."""
        return [delay / NS_PER_MS for delay in self._sorted_delays_ns.get(node, [])]

    def share_visible(self, node: str, t_ms: float) -> float:
        """The share of all acknowledged writes ``node`` had applied within ``t_ms`` of the ack.

        Writes the node never applied count as not visible. 1.0 when there are no writes.
        """
        if not self.writes:
            return 1.0
        delays = self._sorted_delays_ns.get(node, [])
        visible = bisect.bisect_right(delays, t_ms * NS_PER_MS)
        return visible / len(self.writes)

    @property
    def t_visibility(self) -> dict[str, dict[int, float]]:
        """node → t (ms) → share of writes visible within t, for each of ``thresholds_ms``."""
        return {
            node: {t_ms: self.share_visible(node, t_ms) for t_ms in self.thresholds_ms}
            for node in self.nodes
        }

    @property
    def never_seen(self) -> dict[str, int]:
        """node → how many acknowledged writes it never applied (nor anything newer)."""
        return {
            node: sum(1 for write in self.writes if write.delays_ns.get(node) is None)
            for node in self.nodes
        }

    @property
    def never_fully_replicated(self) -> int:
        """How many acknowledged writes some node never applied."""
        return sum(1 for write in self.writes if write.full_ns is None)

    @property
    def full_replication(self) -> Percentiles | None:
        """Percentiles of time to full replication, over the writes every node applied."""
        return percentiles_ms(write.full_ns for write in self.writes if write.full_ns is not None)


class _FirstApplied:
    """For one node and key: the earliest time a version >= v was applied, for any v."""

    def __init__(self, events: Iterable[Applied]) -> None:
        ordered = sorted(events, key=lambda event: event.version)
        self._versions = [event.version for event in ordered]
        # Suffix minimum: earliest apply time among events with this version or higher.
        self._earliest: list[int] = [0] * len(ordered)
        running: int | None = None
        for index in range(len(ordered) - 1, -1, -1):
            at = ordered[index].applied_ns
            running = at if running is None else min(running, at)
            self._earliest[index] = running

    def at_or_above(self, version: Version) -> int | None:
        index = bisect.bisect_left(self._versions, version)
        return self._earliest[index] if index < len(self._earliest) else None


def visibility(history: History) -> VisibilityStats:
    """When each node first applied each acknowledged write (or a newer version of its key)."""
    nodes = tuple(node_names(history))
    grouped: dict[tuple[str, str], list[Applied]] = defaultdict(list)
    for event in history.applied:
        grouped[(event.node, event.key)].append(event)
    lookups = {slot: _FirstApplied(events) for slot, events in grouped.items()}
    writes: list[WriteVisibility] = []
    for ack in history.acks:
        delays: dict[str, int | None] = {}
        for node in nodes:
            lookup = lookups.get((node, ack.key))
            first = lookup.at_or_above(ack.version) if lookup is not None else None
            delays[node] = None if first is None else max(0, first - ack.acked_ns)
        writes.append(WriteVisibility(ack=ack, delays_ns=delays))
    return VisibilityStats(nodes=nodes, writes=tuple(writes))
