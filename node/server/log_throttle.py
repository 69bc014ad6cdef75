"""Rate-limited logging: one line per cause per interval, with how many were held back.

A peer that is down, a client that floods bad requests, a machine out of file
descriptors: each can produce the same log line thousands of times a second
and drown everything else. ``LogThrottle`` lets the first line of a cause
through at once, then at most one per ``interval_s``, and that one says how
many were suppressed since the last (``suppressed=N``). A cause is whatever
identifies "the same problem": (event, peer, status) for a failing call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import structlog

DEFAULT_INTERVAL_S = 10.0
MAX_CAUSES = 10_000  # beyond this the oldest causes are forgotten (and may log again)


@dataclass(slots=True)
class _Cause:
    next_s: float
    suppressed: int = 0


class LogThrottle:
    def __init__(
        self,
        logger: structlog.typing.FilteringBoundLogger | None = None,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger or structlog.get_logger(__name__)
        self.interval_s = interval_s
        self.clock = clock
        self._causes: dict[Hashable, _Cause] = {}

    def allow(self, cause: Hashable) -> int | None:
        """None to hold this line back; else how many of its cause were held back before."""
        now = self.clock()
        entry = self._causes.get(cause)
        if entry is None:
            if len(self._causes) >= MAX_CAUSES:
                del self._causes[next(iter(self._causes))]
            self._causes[cause] = _Cause(now + self.interval_s)
            return 0
        if now < entry.next_s:
            entry.suppressed += 1
            return None
        suppressed, entry.suppressed, entry.next_s = entry.suppressed, 0, now + self.interval_s
        return suppressed

    def warning(self, event: str, key: Hashable, **fields: object) -> None:
        self._emit("warning", event, key, fields)

    def error(self, event: str, key: Hashable, **fields: object) -> None:
        self._emit("error", event, key, fields)

    def info(self, event: str, key: Hashable, **fields: object) -> None:
        self._emit("info", event, key, fields)

    def _emit(self, level: str, event: str, cause: Hashable, fields: dict[str, object]) -> None:
        suppressed = self.allow((event, cause))
        if suppressed is None:
            return
        if suppressed:
            fields["suppressed"] = suppressed
        getattr(self.logger, level)(event, **fields)
