"""The replication loop: when the driver ticks the engine, and how it stops.

The engine says when its next timer is due (``tick_once`` returns it); the
loop sleeps until then — never longer than ``tick_interval_ms``, the regular
check — or until something wakes it early (``wake``: records just became
durable and peers should get them, a client waits for its write to spread or
for a session's writes to arrive). A tick that fails is logged and its next
timer taken as half a second away (so the next tick comes then, or at the
regular check if that is sooner); one that could not write (the disk is full)
likewise, logged as a warning only, since the disk guard reports that state.

Two things keep it from spinning: a timer still due at the very time the
tick ran was not moved by it, so waiting 1 ms for it would tick again for
nothing — the loop waits for the next regular check instead; and a next due
time of ``0`` (work in hand: an answer applied in slices) yields to the event
loop once, then ticks again.

Stopping cancels the task and waits for it, boundedly: a cancellation the
loop swallowed (it is always awaiting a timer) is repeated, up to three
times, and each miss is logged with where the task was waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog

from rumor.node.core.errors import InsufficientStorage
from rumor.node.server.driver.clock import now_monotonic_ms

log = structlog.get_logger(__name__)


class TickLoop:
    def __init__(
        self, tick_once: Callable[[], int], tick_interval_ms: int, mono_ms: Callable[[], int]
    ) -> None:
        self._tick_once = tick_once  # ticks the engine, pumps; returns its next due time
        self._tick_s = tick_interval_ms / 1000
        self._mono_ms = mono_ms  # the driver's monotonic clock (a test's, or the real one)
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="replication")

    def wake(self) -> None:
        """Tick now rather than when the next timer is due."""
        self._wake.set()

    async def _run(self) -> None:
        tick_s = self._tick_s
        while True:
            ticked_at_ms = self._mono_ms()
            try:
                next_ms = self._tick_once()
            except InsufficientStorage:
                log.warning("replication.tick_unwritten", reason="disk full")
                next_ms = now_monotonic_ms() + 500
            except Exception:
                log.exception("replication.tick_failed")
                next_ms = now_monotonic_ms() + 500
            # A timer still due at the very time the tick ran was not moved by it: waiting
            # 1 ms for it would spin, so it waits for the next regular check.
            floor_s = tick_s if next_ms <= ticked_at_ms else 0.001
            # next_ms == 0: work in hand (an answer applied in slices): yield, then go on.
            wait_s = (
                0.0
                if next_ms == 0
                else min(tick_s, max(floor_s, (next_ms - now_monotonic_ms()) / 1000))
            )
            self._wake.clear()
            if wait_s > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait_s)
            else:
                await asyncio.sleep(0)

    async def stop(self) -> None:
        """Cancel the replication loop and wait for it, boundedly: a cancellation it
        swallowed (it is always awaiting a timer) is repeated, and said."""
        task, self._task = self._task, None
        if task is None:
            return
        for attempt in range(1, 4):
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=1)
            if done:
                return
            frames = task.get_stack()
            log.warning(
                "replication.loop_not_stopping",
                attempt=attempt,
                at=f"{frames[-1].f_code.co_qualname} line {frames[-1].f_lineno}" if frames else "",
            )
