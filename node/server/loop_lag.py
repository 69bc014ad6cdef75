"""The event loop's lag: how late a timer set for every 10 ms actually fires.

Every stall of the loop — a long synchronous step, an fsync, a big scan — delays
every RPC and every SWIM probe by as much, so it is measured directly: a task
sleeps ``interval_s`` and records how much later than that it woke. Samples go
to an observer (the ``rumor_event_loop_lag_seconds`` histogram) and the
largest one seen is kept (``rumor admin status`` reports it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

SAMPLE_INTERVAL_S = 0.010


class LoopLag:
    def __init__(
        self,
        observe: Callable[[float], None] | None = None,
        interval_s: float = SAMPLE_INTERVAL_S,
    ) -> None:
        self.observe = observe
        self.interval_s = interval_s
        self.max_seconds = 0.0
        self.last_seconds = 0.0  # the latest sample (the web console shows it live)
        self.samples = 0

    def record(self, lag_s: float) -> None:
        lag_s = max(lag_s, 0.0)
        self.samples += 1
        self.last_seconds = lag_s
        self.max_seconds = max(self.max_seconds, lag_s)
        if self.observe is not None:
            self.observe(lag_s)

    async def run(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(self.interval_s)
            self.record(time.perf_counter() - started - self.interval_s)
