"""Client writes: the records a node creates, and the seqs and HLCs they take.

Theory of operation. ``write_many`` first builds and encodes the header of
every write — the next own seq and one HLC tick each, on a copy of the clock
— and only then stages and commits them, at most ``MAX_BATCH_RECORDS`` per
batch. A write whose header cannot be encoded (an expiration beyond 64 bits)
raises ``InvalidRequest`` before anything is staged, so a rejected call takes
no seq, moves no clock and changes no counter, bucket or watermark.

Rules:
- A seq and its HLC are assigned in the same synchronous step that writes the
  record: no await can separate them, so a seq always names one record.
- Under ``Durability.WAL`` seqs and HLCs are reserved in blocks by a synced
  write before a batch that would pass the reservation is written: a restart
  continues past the block, so nothing issued before a power loss is issued
  again. The gap this leaves (the block past the last own write the disk
  holds) is skipped like the seqs a peer has seen of a stale copy, not
  covered: a later life of the disk (a stale copy restored, a power loss) may
  have issued seqs in it that peers hold. The engine covers it once it has
  taken back what its peers hold (``cover_skipped_seqs``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from rumor.node.core import hlc as hlc_bits
from rumor.node.core.record import RecordHeader, encode_headers
from rumor.node.replication.replica import staging
from rumor.node.replication.replica.delta import WireRecord
from rumor.node.replication.replica.staging import MAX_BATCH_RECORDS, Pending
from rumor.node.replication.replica.state import Durability, ReplicaState
from rumor.node.storage import layout
from rumor.node.storage.store import KV, META

SEQ_BLOCK = 10_000
HLC_BLOCK_MS = 250


class Applied(NamedTuple):
    """A write the replica made: its header and the ticket to wait on for durability."""

    header: RecordHeader
    ticket: int


class Write(NamedTuple):
    """One validated client write: a put, or a delete when ``tombstone``."""

    namespace: bytes
    key: bytes
    value: bytes = b""
    metadata: bytes | None = None
    expiration: int = 0
    tombstone: bool = False


def write_many(state: ReplicaState, writes: Sequence[Write], wall_ms: int) -> list[Applied]:
    """Apply client writes, one seq and one HLC tick each, in batches of at most 1,000."""
    records, headers = _build(state, writes, wall_ms)  # raises before any change
    applied: list[Applied] = []
    for start in range(0, len(records), MAX_BATCH_RECORDS):
        end = start + MAX_BATCH_RECORDS
        ticket = _write_batch(state, records[start:end], headers[start:end], wall_ms)
        applied += [Applied(header, ticket) for header in headers[start:end]]
    return applied


def write_all(state: ReplicaState, writes: Sequence[Write], wall_ms: int) -> int:
    """``write_many`` without an ``Applied`` per write: the ticket of the last batch
    (0 for no writes), for callers that wait only for all of them (bulk writes)."""
    records, headers = _build(state, writes, wall_ms)  # raises before any change
    ticket = 0
    for start in range(0, len(records), MAX_BATCH_RECORDS):
        end = start + MAX_BATCH_RECORDS
        ticket = _write_batch(state, records[start:end], headers[start:end], wall_ms)
    return ticket


def _write_batch(
    state: ReplicaState, records: list[WireRecord], headers: list[RecordHeader], wall_ms: int
) -> int:
    """Stage and commit one batch of built records; returns its ticket."""
    batch = state.store.batch()
    pending = Pending()
    # One read for the whole batch.
    if len(records) > 1:
        stored_keys = [namespace + key for namespace, key, _, _ in records]
        held_raw = state.store.get_many(KV, stored_keys)
        staging.stage_many(state, batch, pending, records, headers, stored_keys, held_raw)
    else:  # a single Put: the point read, and none of the columns' set-up
        stored_key = records[0].stored_key
        held = staging.held_header(state, pending, stored_key)
        staging.stage(state, batch, pending, records[0], headers[0], held, stored_key)
    last = headers[-1]
    pending.seq = last.seq
    pending.hlc = last.hlc
    _reserve(state, len(records), wall_ms)
    return staging.commit(state, batch, pending)


def _build(
    state: ReplicaState, writes: Sequence[Write], wall_ms: int
) -> tuple[list[WireRecord], list[RecordHeader]]:
    """Every write's record, encoded, and its header, with the seqs and HLCs they will take."""
    origin = state.node_id
    seq = state.seq
    headers = []
    stamps = hlc_bits.ticks(state.clock.last, wall_ms, len(writes))
    for (_, _, value, metadata, expiration, tombstone), hlc in zip(writes, stamps, strict=True):
        seq += 1
        # A tombstone carries no value: peers would refuse the record.
        length = 0 if tombstone else len(value)
        headers.append(RecordHeader(hlc, origin, seq, expiration, tombstone, metadata, length))
    records = [
        WireRecord(namespace, key, encoded, b"" if tombstone else value)
        for (namespace, key, value, _, _, tombstone), encoded in zip(
            writes, encode_headers(headers), strict=True
        )
    ]
    return records, headers


def _reserve(state: ReplicaState, count: int, wall_ms: int) -> None:
    """Under durability wal, extend the synced reservation of seqs and HLC if needed."""
    if state.durability is not Durability.WAL:
        return
    needs_seq = state.seq + count > state.reserved_seq
    needs_hlc = hlc_bits.pack(wall_ms, 0) + count > state.reserved_hlc or (
        state.clock.last + count > state.reserved_hlc
    )
    if not (needs_seq or needs_hlc):
        return
    state.reserved_seq = state.seq + count + SEQ_BLOCK
    base_ms = max(wall_ms, hlc_bits.wall_ms_of(state.clock.last + count))
    state.reserved_hlc = hlc_bits.pack(base_ms + HLC_BLOCK_MS, 0)
    batch = state.store.batch()
    batch.put(META, layout.META_RESERVED, layout.pack_marks(state.reserved_seq, state.reserved_hlc))
    state.store.write(batch)
    state.store.sync_wal()


def skip_seqs_past(state: ReplicaState, seq: int) -> None:
    """Issue no own seq <= ``seq`` from now on (a peer has seen that much of this node).

    A stale copy of a node's disk remembers fewer of its own writes than its
    peers have seen; going on from its own mark would give one (origin, seq) to
    two writes. The skipped seqs are *not* covered by the own watermark: this
    node does not hold them, and anti-entropy brings them back from the peers
    (the engine takes no client write until it has).
    """
    if seq <= state.seq:
        return
    staging.commit(state, state.store.batch(), Pending(skip_seq=seq))


def skipped_seqs(state: ReplicaState) -> int:
    """How many own seqs issued or skipped lie above the own watermark (not covered: some
    may be held, taken back out of order)."""
    return max(0, state.seq - state.watermarks.get(state.node_id))


def cover_skipped_seqs(state: ReplicaState) -> int:
    """Cover every own seq up to the last one issued or skipped; returns the ticket (0:
    nothing to cover).

    Called once the engine has taken back from its peers the skipped seqs they hold:
    the rest were never issued (a reserved block's tail), or went with the old disk to
    no peer this node can reach. Own writes must wait for it: a write covers its seq and
    everything below it.
    """
    own = state.node_id
    if state.watermarks.get(own) >= state.seq:
        return 0
    pending = Pending()
    staging.touch(state, pending, own).cover(own, state.seq)
    return staging.commit(state, state.store.batch(), pending)
