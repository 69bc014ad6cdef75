"""Staging and committing store batches, and settling them once durable.

Theory of operation. Every change to the replica — a client write, a received
record, a repair, a purge — is staged into one store batch and a ``Pending``
that gathers what the batch changes besides the records: counter deltas, audit
bucket XORs, the watermarks of the origins it touches, the new own seq and
clock, the namespace and retirement records it holds. ``commit`` writes the
batch with the marks, counters, watermarks and buckets it changed, and only
then applies the ``Pending`` to the state, notifies the listeners and queues
the batch for durability.

Rules:
- Staging never changes ``ReplicaState``. So a batch given up before
  ``commit`` (a record that cannot be encoded, a malformed message) leaves
  the replica exactly as it was, and the next write gets the next seq.
- ``Pending.staged`` holds what the batch already staged, which the store
  cannot show yet: look a key up with ``held_header`` before staging it.
- A batch's records, log entries and watermarks are written together, so a
  crash never leaves a watermark ahead of the records it covers.
- A replaced record's log entry is dropped in the batch that replaces it when
  every member has already seen its seq (the purge rule's stable vector);
  otherwise the sweeper drops it later, under the same rule. Either way a
  write pays O(1) for the history it leaves: a key overwritten ten million
  times leaves no backlog of log entries for the sweeper to walk.
- Durability. ``Store.write`` leaves the batch in the WAL unsynced; each
  commit returns a ticket. Under ``Durability.FSYNC`` the driver syncs the WAL
  and reports it to the engine, whose ``advance`` calls ``mark_durable(ticket)``
  (nothing else does); under ``Durability.WAL`` a batch is
  durable once written. Only then do its records become ready to push, its
  own seqs count in ``durable_seq`` and its watermarks in
  ``durable_watermarks``, so a power loss cannot make one seq mean two writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rumor.node.core import audit
from rumor.node.core.namespaces import MEMBERS_NAMESPACE, RESERVED_NAMESPACE
from rumor.node.core.record import RecordHeader
from rumor.node.core.watermarks import Watermarks
from rumor.node.replication.replica.delta import WireRecord
from rumor.node.replication.replica.state import Durability, ReplicaState, Settling
from rumor.node.storage import layout
from rumor.node.storage.store import KV, LOG, META, VAL, Batch

MAX_BATCH_RECORDS = 1000
_AUDIT_KEYS = [layout.audit_key(bucket) for bucket in range(audit.BUCKETS)]


@dataclass(slots=True)
class Pending:
    """What one batch changes besides its records, applied to the state by ``commit``."""

    staged: dict[bytes, RecordHeader] = field(default_factory=dict)
    buckets: dict[int, int] = field(default_factory=dict)  # bucket -> XOR to apply
    new_records: list[WireRecord] = field(default_factory=list)
    records_held: int = 0  # change in the counters
    tombstones_held: int = 0
    log_dropped: int = 0  # replaced records' log entries dropped with them
    seq: int = 0  # the own seq after the batch, covered by the own watermark (0: unchanged)
    skip_seq: int = 0  # issue no own seq up to this one, without covering them (a stale copy)
    hlc: int = 0  # the clock after the batch is at least this
    watermarks: Watermarks | None = None  # after the batch, for the origins it touches
    namespaces: dict[bytes, RecordHeader] | None = None  # reserved-namespace records staged
    retired: dict[int, bool] | None = None
    deferred: int = 0  # change in the deferred records held
    deferred_floor: dict[int, int] | None = None  # lowest seq newly deferred, per origin


def held_header(state: ReplicaState, pending: Pending, stored_key: bytes) -> RecordHeader | None:
    """The record held for a key, counting what ``pending`` staged."""
    held = pending.staged.get(stored_key)
    if held is None:
        raw = state.store.get(KV, stored_key)
        held = None if raw is None else RecordHeader.decode(raw)
    return held


def seen(state: ReplicaState, pending: Pending, origin: int, seq: int) -> bool:
    """Whether (origin, seq) is seen, counting what ``pending`` marked."""
    marks = pending.watermarks
    if marks is not None and origin in marks.marks:
        return marks.seen(origin, seq)
    return state.watermarks.seen(origin, seq)


def touch(state: ReplicaState, pending: Pending, origin: int) -> Watermarks:
    """The watermarks the batch will leave, with ``origin``'s copied in to be changed."""
    marks = pending.watermarks
    if marks is None:
        marks = pending.watermarks = Watermarks(max_ranges=state.watermarks.max_ranges)
    if origin not in marks.marks:
        marks.marks[origin] = state.watermarks.get(origin)
        spans = state.watermarks.ranges.get(origin)
        if spans:
            marks.ranges[origin] = list(spans)
    return marks


def stage(
    state: ReplicaState,
    batch: Batch,
    pending: Pending,
    record: WireRecord,
    header: RecordHeader,
    held: RecordHeader | None,
    stored_key: bytes,
) -> None:
    """Stage ``record`` (decoded: ``header``) as the one held for its key, replacing ``held``."""
    namespace, _, encoded, value = record
    pending.staged[stored_key] = header
    bucket = audit.bucket_of(stored_key)
    xor = pending.buckets.get(bucket, 0)
    if held is not None:
        # The replaced record's log entry stays until every member has seen its seq:
        # it points at the key, so an answer covering that seq sends the record that
        # replaced it. Already seen everywhere: dropped now, as the sweeper would.
        _drop_seen_log_entry(state, batch, pending, held)
        if held.tombstone:
            pending.tombstones_held -= 1
        else:
            pending.records_held -= 1
            xor ^= audit.record_hash(stored_key, held.hlc, held.origin)
    batch.put(KV, stored_key, encoded)
    if header.tombstone:
        batch.delete(VAL, stored_key)
        pending.tombstones_held += 1
    else:
        batch.put(VAL, stored_key, value)
        pending.records_held += 1
        xor ^= audit.record_hash(stored_key, header.hlc, header.origin)
    pending.buckets[bucket] = xor
    batch.put(LOG, layout.log_key(header.origin, header.seq), stored_key)
    pending.new_records.append(record)
    if namespace in (RESERVED_NAMESPACE, MEMBERS_NAMESPACE):
        _stage_rare(pending, record, header)


def _drop_seen_log_entry(
    state: ReplicaState, batch: Batch, pending: Pending, held: RecordHeader
) -> None:
    """Drop the log entry of ``held``, a record being replaced, if every member has seen
    its seq (the sweeper's rule, applied by the write that replaces it)."""
    if state.purge_rule.purgeable(held.origin, held.seq):
        batch.delete(LOG, layout.log_key(held.origin, held.seq))
        pending.log_dropped += 1


def stage_many(
    state: ReplicaState,
    batch: Batch,
    pending: Pending,
    records: Sequence[WireRecord],
    headers: Sequence[RecordHeader],
    stored_keys: Sequence[bytes],
    held_raw: Sequence[bytes | None],
) -> None:
    """``stage`` each record in order, replacing what ``held_raw`` (the store's encoded
    headers) or an earlier record of the batch holds for its key: the same batch and
    ``Pending``, with the store's and the audit's work done a family at a time."""
    staged = pending.staged
    values: list[bytes | None] = []
    live: tuple[list[bytes], list[int], list[int]] = ([], [], [])
    replaced: tuple[list[bytes], list[int], list[int]] = ([], [], [])
    tombstones = replaced_tombstones = 0
    rows = zip(records, headers, stored_keys, held_raw, strict=True)
    for record, header, stored_key, raw in rows:
        held = staged.get(stored_key)
        if held is None and raw is not None:
            held = RecordHeader.decode(raw)
        if held is not None:
            _drop_seen_log_entry(state, batch, pending, held)
            if held.tombstone:
                replaced_tombstones += 1
            else:
                replaced[0].append(stored_key)
                replaced[1].append(held.hlc)
                replaced[2].append(held.origin)
        staged[stored_key] = header
        if header.tombstone:
            values.append(None)
            tombstones += 1
        else:
            values.append(record.value)
            live[0].append(stored_key)
            live[1].append(header.hlc)
            live[2].append(header.origin)
    batch.put_many(KV, stored_keys, [record.header for record in records])
    batch.put_many(VAL, stored_keys, values)
    origins = [header.origin for header in headers]
    batch.put_many(LOG, layout.log_keys(origins, [header.seq for header in headers]), stored_keys)
    audit.fold(pending.buckets, *replaced)
    audit.fold(pending.buckets, *live)
    pending.records_held += len(live[0]) - len(replaced[0])
    pending.tombstones_held += tombstones - replaced_tombstones
    pending.new_records.extend(records)
    namespaces = {record.namespace for record in records}
    if RESERVED_NAMESPACE in namespaces or MEMBERS_NAMESPACE in namespaces:
        for record, header in zip(records, headers, strict=True):
            _stage_rare(pending, record, header)


def _stage_rare(pending: Pending, record: WireRecord, header: RecordHeader) -> None:
    """Note a reserved-namespace or member record the batch stages."""
    if record.namespace == RESERVED_NAMESPACE:
        if pending.namespaces is None:
            pending.namespaces = {}
        pending.namespaces[record.key] = header
    elif record.namespace == MEMBERS_NAMESPACE:
        if pending.retired is None:
            pending.retired = {}
        pending.retired[int(record.key.decode(), 16)] = not header.tombstone


def commit(state: ReplicaState, batch: Batch, pending: Pending) -> int:
    """Write ``batch`` with everything ``pending`` changed, then apply it; returns the ticket."""
    seq = max(state.seq, pending.seq, pending.skip_seq)
    hlc = max(state.clock.last, pending.hlc)
    records_held = state.records_held + pending.records_held
    tombstones_held = state.tombstones_held + pending.tombstones_held
    batch.put(META, layout.META_MARKS, layout.pack_marks(seq, hlc))
    batch.put(META, layout.META_COUNTERS, layout.pack_counters(records_held, tombstones_held))
    own_mark, marks = _put_watermarks(state, batch, pending)
    audit_buckets = state.audit_buckets
    buckets = [(bucket, audit_buckets[bucket] ^ xor) for bucket, xor in pending.buckets.items()]
    bucket_values = layout.pack_u64s(value for _, value in buckets)
    batch.put_many(META, [_AUDIT_KEYS[bucket] for bucket, _ in buckets], bucket_values)
    if pending.deferred:
        count = layout.pack_u64(state.deferred_held + pending.deferred)
        batch.put(META, layout.META_DEFERRED_COUNT, count)
    state.store.write(batch)
    # Written: from here on the state follows the batch.
    if state.tombstone_runs:  # a record that is not a tombstone ends the runs it lands in
        state.tombstone_runs.written(k for k, h in pending.staged.items() if not h.tombstone)
    state.seq = seq
    state.clock.last = hlc
    state.records_held = records_held
    state.tombstones_held = tombstones_held
    for bucket, value in buckets:
        audit_buckets[bucket] = value
    changed = {} if marks is None else _install_watermarks(state.watermarks, marks)
    if own_mark:
        state.watermarks.marks[state.node_id] = changed[state.node_id] = own_mark
    if pending.namespaces or pending.retired or pending.deferred:
        _install_rare(state, pending)
    state.written += 1
    state.log_entries_dropped += pending.log_dropped
    new_records = pending.new_records
    if state.listeners and new_records:
        for listener in state.listeners:
            listener(new_records)
    settling = Settling(state.written, seq, changed, new_records, list(pending.staged))
    if state.durability is Durability.WAL:
        state.durable = state.written
        settle(state, settling)
    else:
        unsynced = state.unsynced
        if unsynced.keys().isdisjoint(settling.keys):  # a bulk write's new keys: no counting
            unsynced.update(dict.fromkeys(settling.keys, 1))
        else:
            for key in settling.keys:
                unsynced[key] = unsynced.get(key, 0) + 1
        state.settling.append(settling)
    return state.written


def _put_watermarks(
    state: ReplicaState, batch: Batch, pending: Pending
) -> tuple[int, Watermarks | None]:
    """Stage the watermarks the batch leaves: (the own mark, if simply raised; the others).

    A batch of own writes covers its seqs in the own watermark.
    """
    own_mark = 0
    marks = pending.watermarks
    if pending.seq:
        own = state.node_id
        if marks is None and not state.watermarks.ranges.get(own):
            # A client write, the hot path: no ranges to merge, none stored.
            own_mark = max(state.watermarks.get(own), pending.seq)
            batch.put(META, layout.watermark_key(own), layout.pack_u64(own_mark))
        else:
            marks = touch(state, pending, own)
            marks.cover(own, pending.seq)
    if marks is None:
        return own_mark, None
    for origin, mark in marks.marks.items():
        batch.put(META, layout.watermark_key(origin), layout.pack_u64(mark))
        ranges = marks.pack_ranges(origin)
        if ranges:
            batch.put(META, layout.ranges_key(origin), ranges)
        else:
            batch.delete(META, layout.ranges_key(origin))
    return own_mark, marks


def _install_watermarks(watermarks: Watermarks, marks: Watermarks) -> dict[int, int]:
    """Apply the watermarks of the origins a batch touched; returns them."""
    for origin, mark in marks.marks.items():
        if mark or origin in watermarks.marks:
            watermarks.marks[origin] = mark
        spans = marks.ranges.get(origin)
        if spans:
            watermarks.ranges[origin] = spans
        else:
            watermarks.ranges.pop(origin, None)
    return dict(marks.marks)


def _install_rare(state: ReplicaState, pending: Pending) -> None:
    """Apply the parts of a batch that only namespace, member and deferred records change."""
    for key, header in (pending.namespaces or {}).items():
        state.namespaces[key] = header
        if header.tombstone:
            state.namespaces_to_sweep.add(bytes.fromhex(key.decode()))
        if state.titles is not None:  # the batch is written: the title is in the store
            stored_key = layout.record_key(RESERVED_NAMESPACE, key)
            title = None if header.tombstone else state.store.get(VAL, stored_key)
            state.titles.changed(key, title)
    state.retired.update(pending.retired or {})
    state.deferred_held += pending.deferred
    for origin, lowest in (pending.deferred_floor or {}).items():
        state.deferred_floor[origin] = min(lowest, state.deferred_floor.get(origin, lowest))


def settle(state: ReplicaState, settled: Settling) -> None:
    """Make a durable batch visible: its seqs, its watermarks, its records to push."""
    if state.durability is not Durability.WAL:
        unsynced = state.unsynced
        for key in settled.keys:
            left = unsynced[key] - 1
            if left:
                unsynced[key] = left
            else:
                del unsynced[key]
    state.durable_seq = max(state.durable_seq, settled.seq)
    durable = state.durable_watermarks
    for origin, mark in settled.watermarks.items():
        if mark > durable.get(origin, 0):
            durable[origin] = mark
    state.ready_to_push.extend(settled.new_records)


def issue_ticket(state: ReplicaState) -> int:
    """A ticket for a write made outside ``commit`` (already in the store's WAL)."""
    state.written += 1
    if state.durability is Durability.WAL:
        state.durable = state.written
    return state.written


def mark_durable(state: ReplicaState, ticket: int) -> None:
    """Every write with a ticket <= ``ticket`` is synced to disk."""
    if ticket <= state.durable:
        return
    state.durable = ticket
    while state.settling and state.settling[0].ticket <= ticket:
        settle(state, state.settling.popleft())


def take_ready_to_push(state: ReplicaState) -> list[WireRecord]:
    """Durable records newly held here, to push to peers (each handed out once)."""
    ready, state.ready_to_push = state.ready_to_push, []
    return ready


def plant(state: ReplicaState, record: WireRecord) -> None:
    """Hold ``record`` without marking it seen or pushing it anywhere (a test hook).

    It is not checked against the structural rules, so tests can plant what a
    peer must never be sent; its header must decode.
    """
    batch = state.store.batch()
    pending = Pending()
    stored_key = record.stored_key
    held = held_header(state, pending, stored_key)
    stage(state, batch, pending, record, record.decoded(), held, stored_key)
    pending.new_records.clear()
    commit(state, batch, pending)
