"""The node's clocks: the only place the server reads the time of day.

``WallClock`` is the time of day; ``offset_ms`` shifts it (fault injection,
experiments on skew). ``now_monotonic_ms`` is the clock timers and bounds are
measured on (never shifted). ``new_boot_nonce`` tells this boot of a node id
from its earlier ones.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass


@dataclass(slots=True)
class WallClock:
    offset_ms: int = 0

    def now_s(self) -> float:
        return time.time() + self.offset_ms / 1000

    def wall_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset_ms


def now_monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


def new_boot_nonce(wall_ms: int) -> int:
    """Boot time in the high bits, so a later boot of the same id compares greater."""
    return (wall_ms << 16) | int.from_bytes(os.urandom(2), "big")
