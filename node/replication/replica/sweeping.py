"""Garbage collection: purging records that may go, and the log entries nobody needs.

Theory of operation. The sweeper walks the held records in slices
(``sweep``, a budget of headers at a time, returning where to continue). A
tombstone or an expired record is purged once the purge rule
(``core.gc.PurgeRule``, fed with the members' watermark vectors) says it is
stable; every record of a deleted namespace is purged at once. The runs of
tombstones a pass walks are remembered (``tombstone_runs``), so listings
seek past them. ``purge``
removes a record entirely — header, value, log entry — and takes it out of
the counters and audit buckets. ``sweep_log`` drops the log entries of
replaced records once every member has seen them.

A ``PassTally`` adds up what a pass met — entries kept, entries deleted, the
earliest expiration still to come — so the caller can tell when a new pass
could find anything and when the deletions are worth a compaction
(``compact``): a store like RocksDB keeps a deleted entry, and every scan
steps over it, until it compacts.

Rules:
- Nothing is purged while a member that is not removed could still deliver
  an older version of its key: the purge rule decides, never the sweep.
- The reserved namespace is never swept: a namespace tombstone is kept for
  ever, so an id is never reused, and it drops later records for it.
- A log entry goes only when it is stable and the key no longer holds the
  record it names; the entry of a held record goes with the record.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from rumor.node.core import audit
from rumor.node.core.namespaces import RESERVED_NAMESPACE
from rumor.node.core.record import RecordHeader, decode_version, gone, header_ids
from rumor.node.replication.replica import reserved_records, staging
from rumor.node.replication.replica.staging import MAX_BATCH_RECORDS, Pending
from rumor.node.replication.replica.state import ReplicaState
from rumor.node.replication.replica.tombstone_runs import RunLearner
from rumor.node.storage import layout
from rumor.node.storage.store import KV, LOG, VAL, Compacting, prefix_end


@dataclass(slots=True)
class PassTally:
    """What a pass over ``kv`` or ``log`` met so far, slice after slice."""

    kept: int = 0  # entries visited and left in place
    deleted: int = 0  # entries removed
    next_expiry_s: float = math.inf  # the earliest expiration among the records kept


def sweep(
    state: ReplicaState,
    start: bytes,
    now_s: float,
    budget: int,
    stop: bytes | None = None,
    tally: PassTally | None = None,
) -> bytes | None:
    """Purge, among up to ``budget`` headers in [start, stop), what may go.

    Returns where to continue, or None after the last key.
    """
    scanned = 0
    purgeable: list[tuple[bytes, RecordHeader]] = []
    next_start: bytes | None = None
    next_expiry_s = math.inf
    learner = RunLearner(state.tombstone_runs)  # listings after this pass seek past its runs
    for stored_key, raw in state.store.scan(KV, start, stop):
        if scanned == budget:
            next_start = stored_key
            break
        scanned += 1
        if decode_version(raw)[1]:
            learner.tombstone(stored_key)
        else:
            learner.other(stored_key)
        namespace = stored_key[: layout.NAMESPACE_BYTES]
        if namespace == RESERVED_NAMESPACE:
            continue
        namespace_record = reserved_records.namespace_record(state, namespace)
        if namespace_record is not None and namespace_record.tombstone:
            purgeable.append((stored_key, RecordHeader.decode(raw)))
        elif gone(raw, now_s):
            if state.purge_rule.purgeable(*header_ids(raw)[1:]):
                purgeable.append((stored_key, RecordHeader.decode(raw)))
        elif gone(raw, math.inf):  # live, with an expiration still to come
            next_expiry_s = min(next_expiry_s, RecordHeader.decode(raw).expiration)
    learner.end(next_start if next_start is not None else stop)
    purged = purge(state, purgeable)  # deletes only: what was learned stays true
    if tally is not None:
        tally.kept += scanned - purged
        tally.deleted += purged
        tally.next_expiry_s = min(tally.next_expiry_s, next_expiry_s)
    return next_start


def sweep_namespace(state: ReplicaState, namespace: bytes, now_s: float, budget: int) -> bool:
    """Purge up to ``budget`` records of one namespace; True once none are left to scan."""
    start = layout.record_key(namespace, b"")
    return sweep(state, start, now_s, budget, stop=prefix_end(start)) is None


def purge(state: ReplicaState, records: Iterable[tuple[bytes, RecordHeader]]) -> int:
    """Remove held records entirely (record, value, log entry), in batches."""
    batch = state.store.batch()
    pending = Pending()
    count = 0
    for stored_key, header in records:
        batch.delete(KV, stored_key)
        batch.delete(VAL, stored_key)
        batch.delete(LOG, layout.log_key(header.origin, header.seq))
        if header.tombstone:
            pending.tombstones_held -= 1
        else:
            pending.records_held -= 1
            bucket = audit.bucket_of(stored_key)
            pending.buckets[bucket] = pending.buckets.get(bucket, 0) ^ audit.record_hash(
                stored_key, header.hlc, header.origin
            )
        count += 1
        if count % MAX_BATCH_RECORDS == 0:
            staging.commit(state, batch, pending)
            batch = state.store.batch()
            pending = Pending()
    if count % MAX_BATCH_RECORDS:
        staging.commit(state, batch, pending)
    return count


def sweep_log(
    state: ReplicaState, start: bytes, budget: int, tally: PassTally | None = None
) -> bytes | None:
    """Drop log entries of replaced records that every member has seen; returns where
    to continue, or None after the last entry."""
    stable = state.purge_rule.stable
    batch = state.store.batch()
    next_start: bytes | None = None
    candidates: list[tuple[bytes, int, int]] = []
    stored_keys: list[bytes] = []
    scanned = 0
    for log_key, stored_key in state.store.scan(LOG, start):
        if scanned == budget:
            next_start = log_key
            break
        scanned += 1
        origin, seq = layout.split_log_key(log_key)
        if seq <= stable.get(origin, 0):
            candidates.append((log_key, origin, seq))
            stored_keys.append(stored_key)
    for (log_key, origin, seq), raw in zip(
        candidates, state.store.get_many(KV, stored_keys), strict=True
    ):
        if raw is None or header_ids(raw)[1:] != (origin, seq):
            batch.delete(LOG, log_key)
    deleted = len(batch)
    if deleted:
        state.store.write(batch)
    if tally is not None:
        tally.kept += scanned - deleted
        tally.deleted += deleted
    return next_start


def compact(state: ReplicaState, families: Iterable[str]) -> bool:
    """Have the store drop what deletions left in ``families``, in the background, if it
    keeps any (RocksDB); False for a store that leaves nothing behind."""
    store = state.store
    if not isinstance(store, Compacting):
        return False
    for family in families:
        store.compact(family)
    return True
