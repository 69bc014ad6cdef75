"""What client operations need from replication, and that contract for a node alone.

``Operations`` calls replication only through ``ReplicationHooks``: the node's
engine driver implements it, a worker's view of the store does (no writes), and
``Standalone`` — no peers, so nothing fenced and nothing to wait for — serves
operations without an engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from rumor.node.core.errors import ReplicationTimeout, Unavailable
from rumor.node.replication import Applied, Replica
from rumor.node.replication.replica.replica import Write
from rumor.node.server.driver.clock import WallClock


class ReplicationHooks(Protocol):
    """What client writes need from replication."""

    def check_clock(self) -> None:
        """Raise while client writes are refused: the clock fenced (Unavailable), the
        disk full (InsufficientStorage)."""
        ...

    def check_readable(self) -> None:
        """Raise Unavailable while reads are refused (the clock is fenced)."""
        ...

    async def wait_for_replicas(self, seq: int, wanted: int) -> None:
        """Return once ``wanted`` nodes hold own write ``seq``; ReplicationTimeout if not."""
        ...

    def propose(self, writes: Sequence[Write]) -> list[Applied]:
        """Apply client writes through the protocol engine (seq, HLC, the write itself)."""
        ...

    def propose_all(self, writes: Sequence[Write]) -> int:
        """``propose``, returning only the durability ticket of the last write (0: none)."""
        ...

    async def wait_for_coverage(self, wanted: Mapping[int, int], timeout_s: float) -> None:
        """Return once every write ``wanted`` names (origin -> seq) is readable here,
        pulling it from peers at once; Unavailable naming the lag if not in time."""
        ...

    def lag_bound_ms(self) -> int | None:
        """The most this node may lag any alive member (None: it cannot say)."""
        ...


class Standalone:
    """No peers: the clock is never fenced and only this node can hold a write."""

    def __init__(self, replica: Replica, clock: WallClock) -> None:
        self.replica = replica
        self.clock = clock

    def propose(self, writes: Sequence[Write]) -> list[Applied]:
        return self.replica.write_many(writes, self.clock.wall_ms())

    def propose_all(self, writes: Sequence[Write]) -> int:
        return self.replica.write_all(writes, self.clock.wall_ms())

    def check_clock(self) -> None:
        return None

    def check_readable(self) -> None:
        return None

    def lag_bound_ms(self) -> int | None:
        return 0  # no other member to lag

    async def wait_for_coverage(self, wanted: Mapping[int, int], timeout_s: float) -> None:
        raise Unavailable(
            "this node has not seen the session's writes and has no peers to take them from"
        )

    async def wait_for_replicas(self, seq: int, wanted: int) -> None:
        if wanted > 1:
            raise ReplicationTimeout(
                f"the write is applied locally, but this node has no peers to reach"
                f" min_replicas={wanted}"
            )
