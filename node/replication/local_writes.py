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
  again. The gaps this leaves are covered by the origin's own watermark.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from rumor.node.core import hlc as hlc_bits
from rumor.node.core.record import RecordHeader
from rumor.node.replication import staging
from rumor.node.replication.delta import WireRecord
from rumor.node.replication.staging import MAX_BATCH_RECORDS, Pending
from rumor.node.replication.state import Durability, ReplicaState
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
    built = _build(state, writes, wall_ms)  # raises before any change
    if len(built) <= MAX_BATCH_RECORDS:
        return _write_batch(state, built, wall_ms) if built else []
    applied: list[Applied] = []
    for start in range(0, len(built), MAX_BATCH_RECORDS):
        applied += _write_batch(state, built[start : start + MAX_BATCH_RECORDS], wall_ms)
    return applied


def _write_batch(
    state: ReplicaState, built: list[tuple[WireRecord, RecordHeader]], wall_ms: int
) -> list[Applied]:
    batch = state.store.batch()
    pending = Pending()
    staged = pending.staged
    # One read for the whole batch; a single Put takes the cheaper point read.
    stored_keys = [namespace + key for (namespace, key, _, _), _ in built]
    if len(built) > 1:
        held_now = state.store.get_many(KV, stored_keys)
    else:
        held_now = [state.store.get(KV, stored_keys[0])]
    for (record, header), stored_key, held_raw in zip(built, stored_keys, held_now, strict=True):
        held = staged.get(stored_key)
        if held is None and held_raw is not None:
            held = RecordHeader.decode(held_raw)
        staging.stage(state, batch, pending, record, header, held, stored_key)
    last = built[-1][1]
    pending.seq = last.seq
    pending.hlc = last.hlc
    _reserve(state, len(built), wall_ms)
    ticket = staging.commit(state, batch, pending)
    return [Applied(header, ticket) for _, header in built]


def _build(
    state: ReplicaState, writes: Sequence[Write], wall_ms: int
) -> list[tuple[WireRecord, RecordHeader]]:
    """Every write's record, encoded, with the seqs and HLCs they will take."""
    origin = state.node_id
    seq = state.seq
    built = []
    stamps = hlc_bits.ticks(state.clock.last, wall_ms, len(writes))
    for write, hlc in zip(writes, stamps, strict=True):
        namespace, key, value, metadata, expiration, tombstone = write
        seq += 1
        if tombstone:
            value = b""  # a tombstone carries no value: peers would refuse the record
        length = len(value)
        header = RecordHeader(hlc, origin, seq, expiration, tombstone, metadata, length)
        built.append((WireRecord(namespace, key, header.encode(), value), header))
    return built


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
