"""The housekeeping round: the engine's O(members) work, once per housekeeping interval.

Suspicion timeouts and retransmits grow with log(cluster size); the high seqs
peers reported are kept and this node's time recorded (``Envelopes``); the
purge rule is fed (``GarbageCollection``); the clock fence judges the offsets
of the peers that are up (``Readiness``). ``gc_inputs`` is what the purge rule
is fed with, here and before every client write: the watermark vectors of the
members GC counts, and the highest seq each issued.
"""

from __future__ import annotations

from collections.abc import Mapping

from rumor.node.replication.engine.canaries import Canary
from rumor.node.replication.engine.envelopes import Envelopes
from rumor.node.replication.engine.garbage_collection import GarbageCollection
from rumor.node.replication.engine.joining import Joining
from rumor.node.replication.engine.membership import Membership
from rumor.node.replication.engine.messages import Now
from rumor.node.replication.engine.outbox import Outbox
from rumor.node.replication.engine.protocol_config import ProtocolConfig
from rumor.node.replication.engine.readiness import Readiness
from rumor.node.replication.engine.snapshot_join import SnapshotJoin
from rumor.node.replication.replica.replica import Replica

GcInputs = tuple[dict[int, Mapping[int, int]], dict[int, int]]


class Housekeeping:
    def __init__(
        self,
        config: ProtocolConfig,
        replica: Replica,
        membership: Membership,
        envelopes: Envelopes,
        gc: GarbageCollection,
        readiness: Readiness,
        outbox: Outbox,
        *,
        joining: Joining,
        snapshots: SnapshotJoin,
        canaries: frozenset[Canary],
    ) -> None:
        self._config = config
        self._replica = replica
        self._membership = membership
        self._envelopes = envelopes
        self._gc = gc
        self._readiness = readiness
        self._outbox = outbox
        self._joining = joining
        self._snapshots = snapshots
        self._gc_alone = Canary.GC_ALONE in canaries
        self._next_ms = 0

    def tick(self, now: Now) -> None:
        """The round, when its interval has passed."""
        if now.mono_ms < self._next_ms:
            return
        self._next_ms = now.mono_ms + self._config.housekeeping_interval_ms
        membership = self._membership
        members = len(membership.members)
        membership.suspicion_timeout_ms = self._config.suspicion_ms(members)
        membership.retransmits = self._config.retransmits(members)
        if not self._readiness.disk_full:
            self._envelopes.persist_high_seqs()
            self._envelopes.beat(now)
        self._gc.housekeeping(now.mono_ms, members, self.gc_inputs)
        up = [peer.id for peer in membership.up_peers()]
        self._readiness.judge_clock(up, self._outbox.notice)

    def gc_inputs(self) -> GcInputs | None:
        """The vectors of the members GC counts and what each issued (None: not now)."""
        if not self._joining.may_collect_garbage() and not self._gc_alone:
            return None
        membership, envelopes, replica = self._membership, self._envelopes, self._replica
        vectors: dict[int, Mapping[int, int]] = {
            member_id: envelopes.clamped(membership.vectors.get(member_id, {}))
            for member_id in self._snapshots.counted_by_gc(membership.counted())
        }
        vectors[replica.node_id] = replica.own_watermarks()
        return vectors, {**envelopes.issued, replica.node_id: replica.seq}
