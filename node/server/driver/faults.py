"""Fault-injection rules applied to replication traffic (never to client calls).

Set through the Faults service (only with --enable-fault-injection): block
messages to or from chosen peers (or all), drop or delay a fraction of them.
The clock offset lives in WallClock. ``random`` is seeded by the caller so an
experiment can be repeated.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class FaultRules:
    rng: random.Random = field(default_factory=random.Random)
    blocked_outbound: set[int] = field(default_factory=set)
    blocked_inbound: set[int] = field(default_factory=set)
    all_outbound: bool = False
    all_inbound: bool = False
    drop_fraction: float = 0.0
    delay_fraction: float = 0.0
    delay_ms: int = 0

    def blocks_outbound(self, peer: int) -> bool:
        return self.all_outbound or peer in self.blocked_outbound

    def blocks_inbound(self, peer: int) -> bool:
        return self.all_inbound or peer in self.blocked_inbound

    def drops(self) -> bool:
        return self.drop_fraction > 0 and self.rng.random() < self.drop_fraction

    def delay_s(self) -> float:
        if self.delay_fraction > 0 and self.rng.random() < self.delay_fraction:
            return self.delay_ms / 1000
        return 0.0

    def clear(self) -> None:
        self.blocked_outbound.clear()
        self.blocked_inbound.clear()
        self.all_outbound = self.all_inbound = False
        self.drop_fraction = self.delay_fraction = 0.0
        self.delay_ms = 0
