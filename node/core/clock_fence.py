"""Clock fencing: while this node's clock is off from its peers', it takes no client
writes and is not ready for reads.

Each Ping measures a peer's offset NTP-style: with t0 our send time, t1 and t2
the peer's receive and reply times and t3 our receive time, the peer's clock
minus ours is ((t1 - t0) + (t2 - t3)) / 2, correct to half the round trip.
Two offsets are measured from the same ping: with our time taken as
max(wall clock, HLC), since that is what our writes carry, and with our wall
clock alone, since that is what expirations are judged by (a TTL becomes an
expiration, and a read or a sweep compares it with the wall clock).

With at least two live peers measured, the node is fenced while more than
half of them are off by more than ``max_offset_ms`` on either measure: its
clock, not theirs, is the odd one out. With fewer peers it can only warn. The
``warn`` policy never fences (for experiments on skew).

A fenced node knows by how much its wall clock is off (``wall_offset_ms``,
ours minus the peers' median), so what it must still decide by time —
deferring a record from the future, merging a peer's HLC, purging an expired
record — it decides by the peers' time, ``corrected_wall_ms``.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field


def ntp_offset(t0: float, t1: float, t2: float, t3: float) -> float:
    """The peer's clock minus ours, from one ping's four timestamps."""
    return ((t1 - t0) + (t2 - t3)) / 2


@dataclass(frozen=True, slots=True)
class FenceVerdict:
    fenced: bool
    warn: bool
    offset_ms: float  # our clock minus the peers' median: positive = we are ahead
    wall_offset_ms: float = 0.0  # the same for our wall clock alone

    def corrected_wall_ms(self, wall_ms: int) -> int:
        """The peers' wall time while fenced (our own clock's otherwise)."""
        return wall_ms - round(self.wall_offset_ms) if self.fenced else wall_ms

    def reason(self) -> str:
        """What the node says while fenced ("" when not)."""
        if not self.fenced:
            return ""
        offset = (
            self.offset_ms
            if abs(self.offset_ms) >= abs(self.wall_offset_ms)
            else (self.wall_offset_ms)
        )
        return f"clock offset too large: {offset:+.0f} ms"


@dataclass(slots=True)
class ClockFence:
    max_offset_ms: float
    enforce: bool = True
    offsets: dict[int, float] = field(default_factory=dict)  # peer -> peer clock minus ours
    wall_offsets: dict[int, float] = field(default_factory=dict)  # ... minus our wall clock

    def record(self, peer: int, offset_ms: float, wall_offset_ms: float | None = None) -> None:
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
        majority_off = self._majority_off(offsets) or self._majority_off(wall_offsets)
        fenced = self.enforce and len(measured) >= 2 and majority_off
        return FenceVerdict(
            fenced,
            majority_off and not fenced,
            -statistics.median(offsets),
            -statistics.median(wall_offsets),
        )

    def _majority_off(self, offsets: list[float]) -> bool:
        off = sum(1 for offset in offsets if abs(offset) > self.max_offset_ms)
        return off * 2 > len(offsets)
