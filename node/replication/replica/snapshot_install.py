"""Bootstrap by snapshot: who may take one, and how a peer's copy becomes this node's store.

Theory of operation. A node that has never written and holds nothing (no
records, no tombstones, no claim about any other origin) has nothing to lose,
so instead of pulling every record through anti-entropy it may take a
consistent copy of a peer's store (a RocksDB checkpoint; ``Store``s that can
make one implement ``SnapshotSource``) and install it: the data column
families together with the peer's watermarks, seen ranges, audit buckets and
counters, all from the same copy, so they describe exactly the records it
holds. Then it takes the tail through watermarks as usual.

Rules (``install_into``):
- The copy comes from a peer that admitted this node as a member first
  (``SnapshotAdmission``), so no tombstone this node has not seen is purged
  while the copy travels.
- This node keeps its own id; the peer's own marks, reservation, members and
  incarnation are not copied (member and GC state start afresh).
- Its own seq mark and own watermark become max(own, the copy's watermark
  for this id): a seq the cluster has seen of it is never issued again.
- The HLC mark is the max of both: the clock never goes back.

This is the one place where watermarks move without records passing through
``remote_apply``: the records they vouch for arrive in the same copy (see
docs/ALGORITHM.md, "Bootstrap by snapshot").
"""

from __future__ import annotations

from typing import Protocol

from rumor.node.replication.replica.state import ReplicaState
from rumor.node.storage import layout
from rumor.node.storage.store import META, Store, prefix_end

MAX_SERVED_AT_ONCE = 2  # checkpoints served at once: each pins files on disk


class SnapshotSource(Protocol):
    """A store that can make a consistent copy of itself (RocksDB: a checkpoint)."""

    def snapshot_copy(self, directory: str) -> Store:
        """A consistent copy, opened as a store (hard links where the store allows)."""
        ...


def may_bootstrap_by_snapshot(state: ReplicaState) -> bool:
    """True for a node that has nothing of its own to lose: never written, nothing held,
    no claim about any origin (a far-behind node with records catches up instead)."""
    if state.seq or state.records_held or state.tombstones_held or state.deferred_held:
        return False
    return not any(mark for origin, mark in state.durable_watermarks.items())


def install_into(own: ReplicaState, snapshot: Store) -> None:
    """Make ``snapshot`` (a peer's consistent copy) this node's store, by the rules above.

    Only the meta column family changes; the data families are the peer's, whole.
    """
    node_id = own.node_id
    _, snapshot_hlc = layout.unpack_marks(snapshot.get(META, layout.META_MARKS))
    seen_of_me = snapshot.get(META, layout.watermark_key(node_id))
    seq = max(own.seq, 0 if seen_of_me is None else layout.unpack_u64(seen_of_me))
    hlc = max(own.clock.last, snapshot_hlc)
    batch = snapshot.batch()
    batch.put(META, layout.META_NODE_ID, layout.pack_u64(node_id))
    batch.put(META, layout.META_MARKS, layout.pack_marks(seq, hlc))
    batch.delete(META, layout.META_RESERVED)
    batch.put(META, layout.watermark_key(node_id), layout.pack_u64(seq))
    incarnation = own.store.get(META, layout.META_INCARNATION)
    if incarnation is None:
        batch.delete(META, layout.META_INCARNATION)
    else:
        batch.put(META, layout.META_INCARNATION, incarnation)
    members = layout.META_MEMBER_PREFIX
    for member_key, _ in list(snapshot.scan(META, members, prefix_end(members))):
        batch.delete(META, member_key)
    snapshot.write(batch)
    snapshot.sync_wal()


class SnapshotAdmission:
    """The serving side's decision: which joiners may fetch a copy now.

    A joiner is admitted only as a member the GC counts (``admit`` is called once
    the membership holds it, with a zero vector: unknown), and at most
    ``MAX_SERVED_AT_ONCE`` copies are served at once.
    """

    def __init__(self, limit: int = MAX_SERVED_AT_ONCE) -> None:
        self.limit = limit
        self.serving: set[int] = set()
        self.admitted: set[int] = set()

    def admit(self, joiner: int, vectors: dict[int, dict[int, int]], members: set[int]) -> bool:
        """Admit ``joiner`` if it is a counted member and a slot is free; resets its
        vector to zero so GC waits for it."""
        if joiner not in members or (
            joiner not in self.serving and len(self.serving) >= self.limit
        ):
            return False
        vectors[joiner] = {}
        self.admitted.add(joiner)
        self.serving.add(joiner)
        return True

    def may_serve(self, joiner: int) -> bool:
        return joiner in self.serving

    def finished(self, joiner: int) -> None:
        self.serving.discard(joiner)
