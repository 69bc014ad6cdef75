"""Clock fencing: refuse client writes while this node's clock is off from its peers'.

Each Ping measures a peer's offset NTP-style: with t0 our send time, t1 and t2
the peer's receive and reply times and t3 our receive time, the peer's clock
minus ours is ((t1 - t0) + (t2 - t3)) / 2, correct to half the round trip. Our
time is taken as max(wall clock, HLC), since that is what our writes carry.

With at least two live peers measured, the node is fenced while more than half
of them are off by more than ``max_offset_ms``: its clock, not theirs, is the
odd one out. With fewer peers it can only warn. The ``warn`` policy never
fences (for experiments on skew).
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


@dataclass(slots=True)
class ClockFence:
    max_offset_ms: float
    enforce: bool = True
    offsets: dict[int, float] = field(default_factory=dict)  # peer -> peer clock minus ours

    def record(self, peer: int, offset_ms: float) -> None:
        self.offsets[peer] = offset_ms

    def forget(self, peer: int) -> None:
        self.offsets.pop(peer, None)

    def verdict(self, live_peers: Iterable[int]) -> FenceVerdict:
        measured = [self.offsets[p] for p in live_peers if p in self.offsets]
        if not measured:
            return FenceVerdict(False, False, 0.0)
        ours = -statistics.median(measured)
        off = sum(1 for offset in measured if abs(offset) > self.max_offset_ms)
        majority_off = off * 2 > len(measured)
        fenced = self.enforce and len(measured) >= 2 and majority_off
        return FenceVerdict(fenced, majority_off and not fenced, ours)
