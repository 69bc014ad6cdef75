"""The node's wall clock: the only place the server reads the time of day.

``offset_ms`` shifts it (fault injection, experiments on skew).
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(slots=True)
class WallClock:
    offset_ms: int = 0

    def now_s(self) -> float:
        return time.time() + self.offset_ms / 1000

    def wall_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset_ms
