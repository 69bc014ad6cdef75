"""The replica's state: what every part of the replica reads, in one object.

Theory of operation. ``ReplicaState`` holds the store and everything kept in
memory beside it: the node id, the sequence and clock marks, the held-record
counters, the watermarks, the audit buckets, the durability tickets and the
caches of namespace and retirement records. It holds no rules. The modules
beside it (``local_writes``, ``staging``, ``remote_apply``, ``answers``,
``auditing``, ``reads``, ``sweeping``, ``reserved_records``) each own one concept
and work on this object; ``Replica`` ties them together for the node.

Rules:
- Only ``staging.commit`` changes the state that is persisted with records
  (seq, clock, counters, watermarks, buckets, caches), and only after the
  store batch that persists it is written. The other parts stage changes
  in a ``staging.Pending`` and leave the state alone.
- ``open_state`` reads only the store's marks, never its keys, so opening a
  large store is quick.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from rumor.node.core import audit
from rumor.node.core.gc import PurgeRule
from rumor.node.core.hlc import HybridClock
from rumor.node.core.record import RecordHeader
from rumor.node.core.watermarks import Watermarks
from rumor.node.replication.replica.delta import WireRecord
from rumor.node.replication.replica.namespace_titles import NamespaceTitles
from rumor.node.replication.replica.tombstone_runs import TombstoneRuns
from rumor.node.storage import layout
from rumor.node.storage.store import META, Store, prefix_end


class Durability(enum.Enum):
    FSYNC = "fsync"  # acknowledged after the WAL is synced (group commit)
    WAL = "wal"  # acknowledged after the WAL write: survives a crash, not a power loss


@dataclass(slots=True)
class Settling:
    """What becomes visible once the batch with ``ticket`` is durable."""

    ticket: int
    seq: int
    watermarks: dict[int, int]
    new_records: list[WireRecord]
    keys: list[bytes]


@dataclass(slots=True, eq=False)
class ReplicaState:
    store: Store
    node_id: int
    durability: Durability
    defer_after_ms: int  # records further ahead of the wall clock are deferred
    seq: int  # the last own seq written
    clock: HybridClock
    reserved_seq: int  # under durability wal: seqs up to it are reserved by a synced write
    reserved_hlc: int
    records_held: int  # live or expired records held
    tombstones_held: int
    deferred_held: int
    watermarks: Watermarks
    durable_watermarks: dict[int, int]
    audit_buckets: list[int]
    durable_seq: int  # own watermark: every own seq <= it is durable
    deferred_floor: dict[int, int] = field(default_factory=dict)  # per origin, lowest deferred
    written: int = 0  # tickets issued
    log_entries_dropped: int = 0  # replaced records' log entries a write dropped (since open)
    durable: int = 0  # tickets known durable
    settling: deque[Settling] = field(default_factory=deque)
    unsynced: dict[bytes, int] = field(default_factory=dict)  # keys of batches not yet durable
    namespaces: dict[bytes, RecordHeader | None] = field(default_factory=dict)  # cache
    retired: dict[int, bool] = field(default_factory=dict)  # cache
    namespaces_to_sweep: set[bytes] = field(default_factory=set)
    ready_to_push: list[WireRecord] = field(default_factory=list)
    purge_rule: PurgeRule = field(default_factory=PurgeRule)
    audit_repairs_total: int = 0
    invalid_records_skipped: int = 0  # held records left out of answers: they break a rule
    provisional: dict[int, int] = field(default_factory=dict)  # claims of cut-short answers
    # Called with the records each batch newly held, right after the batch is written.
    listeners: list[Callable[[list[WireRecord]], None]] = field(default_factory=list)
    titles: NamespaceTitles | None = None  # live namespaces by title, built on first use
    # Key intervals known to hold only tombstones: listings seek past them.
    tombstone_runs: TombstoneRuns = field(default_factory=TombstoneRuns)


def open_state(
    store: Store,
    *,
    new_node_id: int,
    wall_ms: int,
    durability: Durability,
    max_clock_offset_ms: int,
) -> ReplicaState:
    """The state kept in ``store``; ``new_node_id`` is used only when it has no id yet."""
    stored_id = store.get(META, layout.META_NODE_ID)
    if stored_id is None:
        node_id = new_node_id
        batch = store.batch()
        batch.put(META, layout.META_NODE_ID, layout.pack_u64(new_node_id))
        store.write(batch)
    else:
        node_id = layout.unpack_u64(stored_id)
    # What the WAL recovered after a crash becomes durable here, before anyone hears of it.
    store.sync_wal()

    seq, hlc = layout.unpack_marks(store.get(META, layout.META_MARKS))
    reserved_seq, reserved_hlc = layout.unpack_marks(store.get(META, layout.META_RESERVED))
    seq = max(seq, reserved_seq)
    clock = HybridClock(max(hlc, reserved_hlc))
    clock.tick(wall_ms)
    records, tombstones = layout.unpack_counters(store.get(META, layout.META_COUNTERS))
    deferred = store.get(META, layout.META_DEFERRED_COUNT)
    # The own watermark is what the disk holds of its own writes: the seqs a stale copy
    # skipped, and the tail of a reserved block, stay uncovered (see local_writes).
    watermarks = _stored_watermarks(store)
    return ReplicaState(
        store=store,
        node_id=node_id,
        durability=durability,
        defer_after_ms=2 * max_clock_offset_ms,
        seq=seq,
        clock=clock,
        reserved_seq=seq,
        reserved_hlc=clock.last,
        records_held=records,
        tombstones_held=tombstones,
        deferred_held=0 if deferred is None else layout.unpack_u64(deferred),
        watermarks=watermarks,
        durable_watermarks=watermarks.vector(),
        audit_buckets=_stored_buckets(store),
        durable_seq=seq,
    )


def _stored_watermarks(store: Store) -> Watermarks:
    watermarks = Watermarks()
    for stored_key, raw in store.scan(
        META, layout.META_WATERMARK_PREFIX, prefix_end(layout.META_WATERMARK_PREFIX)
    ):
        origin = layout.suffix_u64(stored_key, layout.META_WATERMARK_PREFIX)
        watermarks.marks[origin] = layout.unpack_u64(raw)
    for stored_key, raw in store.scan(
        META, layout.META_RANGES_PREFIX, prefix_end(layout.META_RANGES_PREFIX)
    ):
        watermarks.load_ranges(layout.suffix_u64(stored_key, layout.META_RANGES_PREFIX), raw)
    return watermarks


def _stored_buckets(store: Store) -> list[int]:
    buckets = [0] * audit.BUCKETS
    for stored_key, raw in store.scan(
        META, layout.META_AUDIT_PREFIX, prefix_end(layout.META_AUDIT_PREFIX)
    ):
        buckets[layout.suffix_u16(stored_key, layout.META_AUDIT_PREFIX)] = layout.unpack_u64(raw)
    return buckets
