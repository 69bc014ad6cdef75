"""Restoring a backup: the copy becomes the first node of a new cluster.

Theory of operation. A backup is a consistent copy of one node's store taken
at some time T. The cluster it came from went on after T: it wrote, deleted
and, once every member had seen a tombstone, purged it. A copy that rejoined
that cluster would hold values whose tombstones no longer exist anywhere, and
nothing could tell it to drop them (the peers' watermarks say they saw those
writes long ago). So a restored copy never rejoins the cluster it came from:
it starts a new one, and the nodes of the new cluster join it empty (they take
a snapshot of it). To bring data back into a running cluster, restore it
aside and copy it over with ``rumor kv export`` / ``rumor kv import``: new
writes, which win over the deletes honestly.

Rules (``begin_new_cluster``, run once, at the first start of a restored copy):
- A new node id: the node the backup was taken of may still run, and ids are
  never reused; as a new origin its seq starts at 0. The HLC mark stays (the
  clock never goes back).
- No member, no seed it joined through, no incarnation: the old cluster's
  members are not this cluster's, and garbage collection counts only the
  members that join it.
- The data families and the watermarks, seen ranges, audit buckets and
  counters stay as they are: they describe exactly the records the copy holds.
- Each origin's high seq (the ceiling peers clamp watermark claims to) is at
  least what the copy has seen of it, the old node's own writes included: no
  member of the new cluster will ever vouch for the old origins, and a joiner
  that clamped the restored node's claims to zero would never catch up.

``refusal``: a restored copy started with seeds is refused, and nothing is
changed — the seeds are the old cluster's, or the operator means to add it to
a running cluster, which must not take its data.
"""

from __future__ import annotations

from collections.abc import Sequence

from rumor.node.storage import layout
from rumor.node.storage.store import META, Store, prefix_end

# The old cluster's members, the seeds joined through, and the last beat: the first
# node of a new cluster was not away from it (see engine/envelopes.py).
FORGOTTEN_PREFIXES = (layout.META_MEMBER_PREFIX, layout.META_JOINED_PREFIX, layout.META_ALIVE)


def refusal(seeds: Sequence[str]) -> str | None:
    """Why a restored copy may not start with ``seeds``, or None (no seeds: it may)."""
    if not seeds:
        return None
    return (
        "this data directory was restored from a backup, and a restored node starts a new"
        f" cluster: start it without --seeds (it was given {', '.join(seeds)}), then start"
        " the other nodes on empty data directories with --seeds naming it. To add a node to"
        " a running cluster, start it on an empty data directory instead (it takes a"
        " snapshot); a backup's data never rejoins the cluster it was taken of"
    )


def begin_new_cluster(store: Store, new_node_id: int) -> int | None:
    """Make the restored copy in ``store`` the first node of a new cluster (rules above);
    returns the node id the backup was taken of."""
    old = store.get(META, layout.META_NODE_ID)
    old_seq, hlc = layout.unpack_marks(store.get(META, layout.META_MARKS))
    batch = store.batch()
    batch.put(META, layout.META_NODE_ID, layout.pack_u64(new_node_id))
    batch.put(META, layout.META_MARKS, layout.pack_marks(0, hlc))
    batch.delete(META, layout.META_RESERVED)
    batch.delete(META, layout.META_INCARNATION)
    high = layout.unpack_high_seqs(store.get(META, layout.META_HIGH_SEQS))
    seen = {
        layout.suffix_u64(key, layout.META_WATERMARK_PREFIX): layout.unpack_u64(value)
        for key, value in store.scan(
            META, layout.META_WATERMARK_PREFIX, prefix_end(layout.META_WATERMARK_PREFIX)
        )
    }
    if old is not None:
        old_id = layout.unpack_u64(old)
        seen[old_id] = max(seen.get(old_id, 0), old_seq)
    for origin, seq in seen.items():
        high[origin] = max(high.get(origin, 0), seq)
    batch.put(META, layout.META_HIGH_SEQS, layout.pack_high_seqs(high))
    for prefix in FORGOTTEN_PREFIXES:
        for key, _ in list(store.scan(META, prefix, prefix_end(prefix))):
            batch.delete(META, key)
    store.write(batch)
    store.sync_wal()
    return None if old is None else layout.unpack_u64(old)
