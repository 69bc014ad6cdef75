"""Catch-ups of a worker's secondary instance, one at a time, shared by the reads waiting.

A catch-up (``try_catch_up_with_primary``) costs a few hundred µs to a few ms
whatever it finds, so reads never run one each. A read asks ``reach(seq)``:
the view must hold every write up to ``seq`` (what the owner published when
the read started). A catch-up that started after the published seq was at
least ``seq`` covers it — the writes were in the WAL before it began — so the
read waits for the one under way if that one covers it, and otherwise for the
next, which starts once the one under way is over, covering whatever is
published by then: every read waiting meanwhile shares it. A read whose seq is
already reached waits for nothing; a read-only load never catches up.

``CatchUps`` is pure coordination: the catch-up itself (a thread, in the
worker) and the published seq are given to it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


class CatchUps:
    def __init__(
        self, catch_up: Callable[[], Awaitable[None]], published: Callable[[], int], reached: int
    ) -> None:
        """``catch_up`` brings the view up to what the primary wrote before it started;
        ``published`` is the seq the owner publishes now; ``reached``: the view's already."""
        self._catch_up = catch_up
        self._published = published
        self.reached = reached  # the view holds every write up to this seq
        self._running: asyncio.Future[None] | None = None
        self._covers = 0  # what the catch-up under way will have reached
        self.count = 0  # catch-ups run

    async def reach(self, seq: int) -> None:
        """Return once the view holds every write up to ``seq``; a failed catch-up's
        error is raised to every read that waited for it."""
        while self.reached < seq:
            if self._running is None:
                # Read before the catch-up starts: it will hold all that was written by now.
                self._covers = max(seq, self._published())
                self._running = asyncio.ensure_future(self._run(self._covers))
            await asyncio.shield(self._running)

    async def _run(self, covers: int) -> None:
        try:
            await self._catch_up()
            self.count += 1
            self.reached = max(self.reached, covers)
        finally:
            self._running = None
