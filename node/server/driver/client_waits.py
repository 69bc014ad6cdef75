"""What a client request waits for from replication, while the engine goes on.

Two waits, both answered by the engine's counts and the replica's vectors,
re-read each time ``pump`` has run (``progressed``) and at least every 50 or
100 ms:

- a write with ``min_replicas`` (``replicas``): until that many nodes, this one
  included, hold it — refused at once when the cluster has fewer members,
  ``ReplicationTimeout`` after ``min_replicas_timeout_ms`` otherwise. The
  write is applied here either way; the wait only says how far it spread. It
  wakes the replication loop each round, so the push goes out now rather than
  at the next timer.
- a session read (``coverage``): until this node can read every write the
  session's token names (origin -> seq). What it lacks is asked of peers at
  once (``engine.catch_up_with``), and again every ``CATCH_UP_REPEAT_S`` while
  a pull finds nothing; ``Unavailable`` naming the lag, origin by origin, if
  not within the read's bound (``behind_message``).

Nothing here decides what is sent: the engine does, as for any pull or push.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping

from rumor.node.core.errors import ReplicationTimeout, Unavailable
from rumor.node.replication.engine.engine import Engine
from rumor.node.replication.engine.messages import Now

# How often a session read still waiting asks again for what it lacks.
CATCH_UP_REPEAT_S = 0.1


class ClientWaits:
    def __init__(
        self,
        engine: Engine,
        now: Callable[[], Now],
        pump: Callable[[], int],
        wake: Callable[[], None],
    ) -> None:
        self.engine = engine
        self._now = now
        self._pump = pump  # do what the engine has ready
        self._wake = wake  # tick the replication loop now
        self._progress = asyncio.Event()

    def progressed(self) -> None:
        """The engine was pumped: counts and vectors may have moved."""
        self._progress.set()

    async def replicas(self, seq: int, wanted: int) -> None:
        """Wait until ``wanted`` nodes (this one included) hold own write ``seq``."""
        members = len(self.engine.membership.counted())
        if members < wanted:
            raise ReplicationTimeout(
                f"the write is applied locally, but the cluster has {members} member(s),"
                f" fewer than min_replicas={wanted}"
            )
        timeout_ms = self.engine.config.min_replicas_timeout_ms
        deadline = time.monotonic() + timeout_ms / 1000
        while (held := self.engine.membership.replicas_holding(seq)) < wanted:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ReplicationTimeout(
                    f"the write is applied locally and still spreading: {held} of {wanted}"
                    f" replicas confirmed it within {timeout_ms} ms"
                )
            self._progress.clear()
            self._wake()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), min(remaining, 0.05))

    async def coverage(self, wanted: Mapping[int, int], timeout_s: float) -> None:
        """Return once this node can read every write ``wanted`` names (origin -> seq),
        having asked the engine to pull them at once; Unavailable naming the lag if not
        within ``timeout_s``."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        asked_at = -1.0
        while lacking := self.engine.replica.lacking(wanted):
            moment = time.monotonic()
            if moment >= deadline:
                raise Unavailable(behind_message(wanted, lacking, timeout_s))
            if moment - asked_at >= CATCH_UP_REPEAT_S:  # a pull that found nothing: again
                asked_at = moment
                self.engine.catch_up_with({o: wanted[o] for o in lacking}, self._now())
                self._pump()
                self._wake()
            self._progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._progress.wait(), min(deadline - moment, CATCH_UP_REPEAT_S)
                )


def behind_message(wanted: Mapping[int, int], lacking: Mapping[int, int], waited_s: float) -> str:
    """How far behind the session this node is, origin by origin."""
    parts = ", ".join(
        f"origin {origin:016x} at seq {have} of {wanted[origin]} ({wanted[origin] - have} behind)"
        for origin, have in sorted(lacking.items())
    )
    return (
        f"this node has not yet seen the session's writes after {round(waited_s * 1000)} ms:"
        f" {parts}; retry, or read from another node"
    )
