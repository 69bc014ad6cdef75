"""When the purge rule is recomputed: once per housekeeping round, and as a lone node writes.

The rule itself is ``core.gc.SafeGc`` (two phases, stable vectors); this
module decides when it is fed. The members' vectors are O(members²) to
combine, so at scale they are combined less often (every housekeeping interval
per hundred members) and a node's cost stays O(members). A node alone may
purge whatever it has made durable at once, but a rule refreshed only once a
housekeeping interval (a second) lags its writes: a key overwritten faster
found the log entry it replaced not yet covered and left it to the sweeper —
10,000,000 overwrites of 1,000 keys by BulkPut left millions of entries the
sweeper then drained for a quarter of an hour. So before a lone node writes,
its rule is brought up to date (at most every ``LONE_REFRESH_MS``), and the
write drops the entry of the record it replaces in its own batch. The refresh
is the housekeeping computation itself, so a member that joined meanwhile is
counted exactly as there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from rumor.node.core.gc import PurgeRule, SafeGc

# How often a node alone brings its purge rule up to date as it writes.
LONE_REFRESH_MS = 10

# The members' watermark vectors and each member's issued seq, or None when this node
# may not collect garbage now (still joining).
Inputs = Callable[[], tuple[dict[int, Mapping[int, int]], dict[int, int]] | None]


class GarbageCollection:
    def __init__(
        self, gc_grace_ms: int, housekeeping_interval_ms: int, node_id: Callable[[], int]
    ) -> None:
        self.safe = SafeGc(gc_grace_ms)
        self._interval_ms = housekeeping_interval_ms
        self._node_id = node_id
        self._next_ms = 0
        self._next_lone_ms = 0

    @property
    def rule(self) -> PurgeRule:
        return self.safe.rule

    def housekeeping(self, now_ms: int, members: int, inputs: Inputs) -> None:
        """The housekeeping round's recomputation, when due at this cluster size."""
        if now_ms < self._next_ms:
            return
        self._next_ms = now_ms + self._interval_ms * max(1, members // 100)
        self.collect(now_ms, inputs)

    def before_write(self, now_ms: int, inputs: Inputs) -> None:
        """A node alone (as the rule in force was decided) refreshes it before it writes."""
        in_force = self.safe.in_force
        alone = len(in_force) == 1 and self._node_id() in in_force
        if not alone or now_ms < self._next_lone_ms:
            return
        self._next_lone_ms = now_ms + LONE_REFRESH_MS
        self.collect(now_ms, inputs)

    def collect(self, now_ms: int, inputs: Inputs) -> None:
        fed = inputs()
        if fed is None:
            self.safe.rule.stable = {}
            return
        vectors, issued = fed
        self.safe.update(vectors, now_ms, issued)
