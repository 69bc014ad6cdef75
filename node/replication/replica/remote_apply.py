"""Received records: checking them, applying them, their claims, and deferral.

Theory of operation. ``apply_remote`` takes the records and coverage claims of
one message from a peer. It checks every record and claim against the
structural rules first (``record_shape``) and rejects the whole message with
``MalformedPeerMessage`` if one breaks a rule: nothing is marked seen,
nothing written, no watermark moves. Then, per record: one already seen is
dropped unread; one from more than twice the maximum clock offset in the
future is set aside in the ``deferred`` column family until the local clock
gets there; otherwise the LWW rule decides, and a record of a deleted
namespace is dropped. Every record handled is marked seen, in the batch that
holds it.

Claims. A complete answer's claims raise the watermarks. A cut-short
answer's claims are only provisional: within a synchronisation (``session``,
see ``begin_sync``) they shape the next digest, and they become watermarks
together with the claims of the round that completes it, when every record
they vouch for has arrived. Outside a session they are dropped.

Rules:
- A deferred record counts as seen but its HLC is not merged, so this node
  may still create versions older than it: the watermarks it advertises
  (``own_watermarks``) stop short of its lowest deferred seq per origin.
- Message HLCs beyond the deferral horizon are not merged either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rumor.node.core import hlc as hlc_bits
from rumor.node.core import record_shape
from rumor.node.core.errors import MalformedPeerMessage
from rumor.node.core.namespaces import RESERVED_NAMESPACE, is_reserved
from rumor.node.core.record import RecordHeader
from rumor.node.core.version import supersedes
from rumor.node.replication.replica import reserved_records, staging
from rumor.node.replication.replica.delta import Coverage, WireRecord
from rumor.node.replication.replica.staging import MAX_BATCH_RECORDS, Pending
from rumor.node.replication.replica.state import ReplicaState
from rumor.node.storage import layout
from rumor.node.storage.store import DEFERRED, Batch


@dataclass(frozen=True, slots=True)
class RemoteOutcome:
    """What applying a batch of received records did."""

    ticket: int
    new: int  # won locally: held now (and queued to be forwarded)
    seen: int  # dropped unread: already seen
    deferred: int  # from too far in the future: kept aside until the clock gets there
    stale: int  # lost to what is held, or for a deleted namespace


def check_message(
    records: Sequence[WireRecord], coverage: Sequence[Coverage] = ()
) -> list[RecordHeader]:
    """The decoded headers of a peer's records; MalformedPeerMessage if anything is malformed."""
    headers = []
    for position, record in enumerate(records):
        try:
            headers.append(record_shape.check(*record))
        except record_shape.MalformedRecord as error:
            raise MalformedPeerMessage(
                f"record {position} of {len(records)} is malformed: {error}"
            ) from None
    for position, claim in enumerate(coverage):
        fault = record_shape.coverage_fault(claim.origin, claim.base, claim.last)
        if fault is not None:
            raise MalformedPeerMessage(f"coverage claim {position} is malformed: {fault}")
    return headers


def apply_remote(
    state: ReplicaState,
    records: Sequence[WireRecord],
    wall_ms: int,
    coverage: Sequence[Coverage] = (),
    *,
    session: bool = False,
) -> RemoteOutcome:
    """Apply records received from a peer, then its coverage claims, in batches."""
    headers = check_message(records, coverage)
    new = seen = deferred = stale = 0
    horizon_ms = wall_ms + state.defer_after_ms
    complete = all(claim.complete for claim in coverage)
    ticket = state.written
    starts = range(0, len(records), MAX_BATCH_RECORDS) or range(1)
    for start in starts:
        batch = state.store.batch()
        pending = Pending()
        for index in range(start, min(start + MAX_BATCH_RECORDS, len(records))):
            record, header = records[index], headers[index]
            origin, seq = header.origin, header.seq
            if staging.seen(state, pending, origin, seq):
                seen += 1
                continue
            staging.touch(state, pending, origin).mark(origin, seq)
            if hlc_bits.wall_ms_of(header.hlc) > horizon_ms:
                _defer(batch, pending, record, header)
                deferred += 1
                continue
            pending.hlc = max(pending.hlc, header.hlc)
            if place(state, batch, pending, record, header):
                new += 1
            else:
                stale += 1
        if start == starts[-1] and complete:
            _cover(state, pending, coverage, session)
        if pending.staged or pending.watermarks is not None or len(batch):
            ticket = staging.commit(state, batch, pending)
    if session and complete:
        state.provisional.clear()
    elif session:
        for claim in coverage:
            if claim.last > state.provisional.get(claim.origin, 0):
                state.provisional[claim.origin] = claim.last
    return RemoteOutcome(ticket, new, seen, deferred, stale)


def _cover(
    state: ReplicaState, pending: Pending, coverage: Sequence[Coverage], session: bool
) -> None:
    """Stage the watermarks a complete answer raises, with the provisional claims it completes."""
    claims = [(claim.origin, claim.last) for claim in coverage]
    if session:
        claims += state.provisional.items()
    for origin, last in claims:
        staging.touch(state, pending, origin).cover(origin, last)


def _defer(batch: Batch, pending: Pending, record: WireRecord, header: RecordHeader) -> None:
    origin, seq = header.origin, header.seq
    batch.put(DEFERRED, layout.deferred_key(header.hlc, origin, seq), record.encode())
    if pending.deferred_floor is None:
        pending.deferred_floor = {}
    pending.deferred_floor[origin] = min(seq, pending.deferred_floor.get(origin, seq))
    pending.deferred += 1


def place(
    state: ReplicaState, batch: Batch, pending: Pending, record: WireRecord, header: RecordHeader
) -> bool:
    """Stage a received record if it wins under LWW; False if it loses or is dropped."""
    namespace = record.namespace
    if not is_reserved(namespace):
        staged = pending.namespaces or {}
        key = namespace.hex().encode()
        namespace_record = (
            staged[key] if key in staged else reserved_records.namespace_record(state, namespace)
        )
        if namespace_record is not None and namespace_record.tombstone:
            return False
    stored_key = record.stored_key
    held = staging.held_header(state, pending, stored_key)
    if held is not None and not supersedes(
        header.version,
        header.tombstone,
        held.version,
        held.tombstone,
        namespace_record=namespace == RESERVED_NAMESPACE,
    ):
        return False
    staging.stage(state, batch, pending, record, header, held, stored_key)
    return True


def observe_clock(
    state: ReplicaState, remote_hlc: int, wall_ms: int, trusted_wall_ms: int | None = None
) -> None:
    """Merge a peer's HLC, unless it is too far ahead to trust (see deferral).

    ``trusted_wall_ms``: the time this node judges by when it knows its wall clock
    is wrong (fenced: its peers' time). The horizon is judged by it, and the merge
    takes the earlier of the two, so neither a wall clock ahead nor a correction
    that outlives the error (the clock set right meanwhile) carries the HLC ahead."""
    if trusted_wall_ms is None:
        trusted_wall_ms = wall_ms
    if hlc_bits.wall_ms_of(remote_hlc) <= trusted_wall_ms + state.defer_after_ms:
        state.clock.merge(remote_hlc, min(wall_ms, trusted_wall_ms))


def begin_sync(state: ReplicaState) -> None:
    """Start a synchronisation with one peer: forget provisional claims of an older one."""
    state.provisional.clear()


def own_watermarks(state: ReplicaState) -> dict[int, int]:
    """This node's durable watermark vector, as digests advertise it (short of deferrals)."""
    vector = {**state.durable_watermarks, state.node_id: _own_mark(state)}
    for origin, lowest in state.deferred_floor.items():
        if vector.get(origin, 0) >= lowest:
            vector[origin] = lowest - 1
    return vector


def _own_mark(state: ReplicaState) -> int:
    """The own watermark: durable own seqs, short of any own writes not held (a stale
    copy of this node's disk still catching up on them)."""
    return min(state.durable_seq, state.durable_watermarks.get(state.node_id, 0))


def own_watermark(state: ReplicaState, origin: int) -> int:
    """One entry of ``own_watermarks``, without building the vector."""
    if origin == state.node_id:
        return _own_mark(state)
    mark = state.durable_watermarks.get(origin, 0)
    lowest = state.deferred_floor.get(origin)
    return lowest - 1 if lowest is not None and mark >= lowest else mark


def sync_digest(state: ReplicaState) -> dict[int, int]:
    """The digest to send within a synchronisation: durable marks and provisional claims."""
    digest = own_watermarks(state)
    for origin, last in state.provisional.items():
        if last > digest.get(origin, 0):
            digest[origin] = last
    return digest


def apply_deferred(state: ReplicaState, wall_ms: int) -> int:
    """Apply the deferred records whose time has come; returns how many were handled."""
    if not state.deferred_held:
        return 0
    due: list[tuple[bytes, WireRecord]] = []
    for stored_key, raw in state.store.scan(
        DEFERRED, b"", layout.deferred_key(hlc_bits.pack(wall_ms + 1, 0), 0, 0)
    ):
        due.append((stored_key, WireRecord.decode(raw)))
        if len(due) == MAX_BATCH_RECORDS:
            break
    if not due:
        return 0
    batch = state.store.batch()
    pending = Pending(deferred=-len(due))
    for stored_key, record in due:
        batch.delete(DEFERRED, stored_key)
        header = record.decoded()
        pending.hlc = max(pending.hlc, header.hlc)
        place(state, batch, pending, record, header)
    staging.commit(state, batch, pending)
    refresh_deferred_floor(state)
    return len(due)


def refresh_deferred_floor(state: ReplicaState) -> None:
    """Recompute, per origin, the lowest seq still deferred (a scan; deferral is rare)."""
    state.deferred_floor = {}
    if state.deferred_held:
        for origin, records in deferred_by_origin(state).items():
            state.deferred_floor[origin] = min(seq for seq, _ in records)


def deferred_by_origin(state: ReplicaState) -> dict[int, list[tuple[int, WireRecord]]]:
    grouped: dict[int, list[tuple[int, WireRecord]]] = {}
    for _, raw in state.store.scan(DEFERRED, b""):
        record = WireRecord.decode(raw)
        _, origin, seq = record.ids()
        grouped.setdefault(origin, []).append((seq, record))
    return grouped
