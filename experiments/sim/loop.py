"""Virtual time: a heap of (time, sequence, action), run in order.

Actions scheduled for the same instant run in the order they were scheduled
(the sequence number breaks ties), so a run depends on nothing but its inputs.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

Action = Callable[[], None]


class EventLoop:
    __slots__ = ("_heap", "_sequence", "now_ms")

    def __init__(self) -> None:
        self.now_ms = 0.0
        self._heap: list[tuple[float, int, Action]] = []
        self._sequence = 0

    def at(self, at_ms: float, action: Action) -> None:
        """Run ``action`` at virtual time ``at_ms`` (never earlier than now)."""
        self._sequence += 1
        heapq.heappush(self._heap, (max(at_ms, self.now_ms), self._sequence, action))

    def after(self, delay_ms: float, action: Action) -> None:
        self.at(self.now_ms + delay_ms, action)

    def run_until(self, limit_ms: float, done: Callable[[], bool] | None = None) -> bool:
        """Run actions up to ``limit_ms``; True if ``done`` became true first.

        ``done`` is asked after every action, so it must be cheap.
        """
        heap = self._heap
        pop = heapq.heappop
        while heap and heap[0][0] <= limit_ms:
            at_ms, _, action = pop(heap)
            self.now_ms = at_ms
            action()
            if done is not None and done():
                return True
        self.now_ms = max(self.now_ms, limit_ms)
        return done is not None and done()

    @property
    def pending(self) -> int:
        return len(self._heap)
