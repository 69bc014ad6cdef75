"""Own writes this node does not hold: taken back from its peers before it writes again.

Like any other, the own watermark promises that every own seq up to it is
held here (or superseded). Two restarts leave a node with own seqs issued
that its disk does not hold:

- a stale copy of its disk (restored from a volume snapshot, same id): its
  peers have seen more of its writes than it holds (``wm[self]`` in their
  envelopes above its own watermark);
- under durability ``wal``, the tail of the seq block a synced write
  reserved: a restart continues past the block, so no seq is issued twice,
  but a later life of the disk (a stale copy, a power loss) may have issued
  seqs in it that reached peers.

The replica skips such seqs (never issues them again) without covering them
(``local_writes``). Covering them before taking them back would be a lie that
spreads: peers pull from this node with their own watermark for it and cover
what its answer vouches for, so a record of the lost life held by one peer
would never reach the others, nor this node (a stale copy's older put of the
key then outlives the peers' purge of the newer record).

Rules:

- A peer that has seen own seqs beyond the own watermark: skip past them and
  pull from that peer (a catch-up) at once.
- Until the own watermark covers every own seq issued or skipped, no client
  write: a write covers its seq and everything below it.
- Once this node serves (its first complete exchange, or alone) and every
  peer that said it had seen more has been caught up with, it covers the rest
  itself: those seqs were never issued (a reserved block's tail), or went
  with the old disk to no peer it can reach.
"""

from __future__ import annotations

from collections.abc import Callable

from rumor.node.core.errors import Unavailable
from rumor.node.replication.engine.components import Services
from rumor.node.replication.engine.messages import Now

BEHIND = (
    "this node's data directory is older than what its peers have seen of it: it is"
    " taking its own writes back from them first"
)


class OwnWrites:
    def __init__(self, services: Services, catch_up: Callable[[int, Now], None]) -> None:
        self.services = services
        self._catch_up = catch_up
        self.missing_until = 0  # own seqs peers said they saw, to take back from them

    def behind(self, seen: int, peer: int, now: Now) -> None:
        """``peer`` has seen own seqs up to ``seen``, beyond the own watermark."""
        self.services.replica.skip_seqs_past(seen)
        self.missing_until = max(self.missing_until, seen)
        self._catch_up(peer, now)

    def caught_up(self) -> bool:
        """Every own seq issued or skipped is covered; if only the unclaimed rest is left
        and this node serves, it covers that (made durable like a write)."""
        replica = self.services.replica
        if not replica.skipped_seqs:
            self.missing_until = 0
            return True
        if replica.watermarks.get(replica.node_id) < self.missing_until:
            return False
        if not self.services.serving():
            return False
        self.services.want_durable(replica.cover_skipped_seqs())
        self.missing_until = 0
        return True

    def check_writable(self) -> None:
        if not self.caught_up():
            raise Unavailable(BEHIND)
