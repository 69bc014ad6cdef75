"""Clock fencing: while this node's clock is off from its peers', it takes no client
writes and is not ready for reads.

Each Ping measures a peer's offset NTP-style: with t0 our send time, t1 and t2
the peer's receive and reply times and t3 our receive time, the peer's clock
minus ours is ((t1 - t0) + (t2 - t3)) / 2, correct to half the round trip.
Two offsets are measured from the same ping: with our time taken as
max(wall clock, HLC), since that is what our writes carry, and with our wall
clock alone, since that is what expirations are judged by (a TTL becomes an
expiration, and a read or a sweep compares it with the wall clock).

A measurement whose round trip exceeds ``max_offset_ms`` (its error could be
half of that) is not taken: a loaded host is not a wrong clock.

With at least two live peers measured, the node is fenced while more than
half of them are off by more than ``max_offset_ms`` on either measure: its
clock, not theirs, is the odd one out, and it takes no writes. While its wall
clock itself is off (``wall_fenced``) it is not ready either: it would judge
expirations wrong, so it serves no reads. (A wall clock set right again after
running ahead leaves the HLC ahead: writes stay fenced until the wall clock
catches up with it, reads are served at once.) With fewer peers it can only
warn. The ``warn`` policy never fences (for experiments on skew).

A node whose wall clock is fenced knows by how much it is off
(``wall_offset_ms``, ours minus the peers' median), so what it must still
decide by time — deferring a record from the future, purging an expired
record — it decides by the peers' time, ``corrected_wall_ms``.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field


def ntp_offset(t0: float, t1: float, t2: float, t3: float) -> float:
    """The peer's clock minus ours, from one ping's four timestamps."""
    return ((t1 - t0) + (t2 - t3)) / 2


def round_trip(t0: float, t1: float, t2: float, t3: float) -> float:
    """The ping's time on the wire, the peer's handling left out: twice its error bound."""
    return (t3 - t0) - (t2 - t1)


@dataclass(frozen=True, slots=True)
class FenceVerdict:
    fenced: bool
    warn: bool
    offset_ms: float  # our clock minus the peers' median: positive = we are ahead
    wall_offset_ms: float = 0.0  # the same for our wall clock alone
    wall_fenced: bool = False  # the wall clock itself is off: not ready for reads either

    def corrected_wall_ms(self, wall_ms: int) -> int:
        """The peers' wall time while the wall clock is fenced (our own otherwise)."""
        return wall_ms - round(self.wall_offset_ms) if self.wall_fenced else wall_ms

    def reason(self) -> str:
        """Why writes are refused ("" when not fenced)."""
        if not self.fenced:
            return ""
        offset = self.wall_offset_ms if self.wall_fenced else self.offset_ms
        return f"clock offset too large: {offset:+.0f} ms"

    def read_reason(self) -> str:
        """Why reads are refused ("" when the wall clock is in range)."""
        return self.reason() if self.wall_fenced else ""


@dataclass(slots=True)
class ClockFence:
    max_offset_ms: float
    enforce: bool = True
    offsets: dict[int, float] = field(default_factory=dict)  # peer -> peer clock minus ours
    wall_offsets: dict[int, float] = field(default_factory=dict)  # ... minus our wall clock

    def record(
        self,
        peer: int,
        offset_ms: float,
        wall_offset_ms: float | None = None,
        round_trip_ms: float = 0.0,
    ) -> None:
        """Keep a measurement, unless its round trip leaves an error over half the
        tolerance (a loaded host or network): the previous one stands then."""
        if round_trip_ms > self.max_offset_ms:
            return
        self.offsets[peer] = offset_ms
        self.wall_offsets[peer] = offset_ms if wall_offset_ms is None else wall_offset_ms

    def forget(self, peer: int) -> None:
        self.offsets.pop(peer, None)
        self.wall_offsets.pop(peer, None)

    def verdict(self, live_peers: Iterable[int]) -> FenceVerdict:
        measured = [p for p in live_peers if p in self.offsets]
        if not measured:
            return FenceVerdict(False, False, 0.0)
        offsets = [self.offsets[p] for p in measured]
        wall_offsets = [self.wall_offsets[p] for p in measured]
        wall_off = self._majority_off(wall_offsets)
        majority_off = wall_off or self._majority_off(offsets)
        may_fence = self.enforce and len(measured) >= 2
        return FenceVerdict(
            may_fence and majority_off,
            majority_off and not may_fence,
            -statistics.median(offsets),
            -statistics.median(wall_offsets),
            may_fence and wall_off,
        )

    def _majority_off(self, offsets: list[float]) -> bool:
        off = sum(1 for offset in offsets if abs(offset) > self.max_offset_ms)
        return off * 2 > len(offsets)
