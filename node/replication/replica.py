"""The replica: turns inputs into store writes, sans-I/O.

Theory of operation. Every write — a client put or delete, a bulk write, a
namespace change, and (with peers) a replicated record — becomes a record
staged by ``_stage`` into one store batch together with everything that must
change with it: the log index entry of the record and the removal of the one
it replaces, the held-record counters, the sequence and clock marks. The batch
is written synchronously, in the same step that assigned the record's HLC and
seq, so no await can ever separate a seq from its write.

Time is passed in (``wall_ms``, ``now_s``); the replica never reads a clock,
never awaits, never opens a socket. The node drives it with grpc.aio and
RocksStore; the simulator drives the same code with virtual time and
MemoryStore.

Durability. ``Store.write`` leaves the batch in the WAL unsynced. Each write
gets a ticket; under ``Durability.FSYNC`` the driver syncs the WAL (group
commit) and then calls ``mark_durable(ticket)``. Only durable records count
in the node's own watermark, so a power loss cannot make one seq mean two
writes. Under ``Durability.WAL`` a write is durable once written, and seq
and HLC are reserved in blocks by a synced write: a restart continues past
the block, so nothing issued before a power loss is issued again.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from rumor.node.core import audit
from rumor.node.core import hlc as hlc_bits
from rumor.node.core.gc import PurgeRule
from rumor.node.core.hlc import HybridClock
from rumor.node.core.namespaces import MEMBERS_NAMESPACE, RESERVED_NAMESPACE, is_reserved
from rumor.node.core.record import RecordHeader, decode_version, gone, header_ids
from rumor.node.core.version import Version, supersedes
from rumor.node.core.watermarks import Watermarks
from rumor.node.replication.delta import AuditEntry, Coverage, Delta, WireRecord
from rumor.node.storage import layout
from rumor.node.storage.store import DEFERRED, KV, LOG, META, VAL, Batch, Store, prefix_end

MAX_BATCH_RECORDS = 1000
DELTA_BUDGET = 4 * 1024 * 1024
PUSH_BACK_BUDGET = 256 * 1024  # a larger backlog is left for the peer to pull
SEQ_BLOCK = 10_000
HLC_BLOCK_MS = 250


class Durability(enum.Enum):
    FSYNC = "fsync"  # acknowledged after the WAL is synced (group commit)
    WAL = "wal"  # acknowledged after the WAL write: survives a crash, not a power loss


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


@dataclass(frozen=True, slots=True)
class ListPage:
    keys: list[tuple[bytes, RecordHeader]]
    complete: bool


@dataclass(slots=True)
class _Pending:
    """What one batch changes, gathered while staging and settled by ``_commit``."""

    staged: dict[bytes, RecordHeader] = field(default_factory=dict)
    dirty_origins: set[int] = field(default_factory=set)
    dirty_buckets: set[int] = field(default_factory=set)
    new_records: list[WireRecord] = field(default_factory=list)


@dataclass(slots=True)
class _Durability:
    """Settled once the batch with ``ticket`` is durable."""

    ticket: int
    seq: int
    watermarks: dict[int, int]
    new_records: list[WireRecord]
    keys: list[bytes]


@dataclass(frozen=True, slots=True)
class RemoteOutcome:
    """What applying a batch of received records did."""

    ticket: int
    new: int  # won locally: held now (and queued to be forwarded)
    seen: int  # dropped unread: already seen
    deferred: int  # from too far in the future: kept aside until the clock gets there
    stale: int  # lost to what is held, or for a deleted namespace


class Replica:
    """One node's copy of the data, and the rules for changing it."""

    def __init__(
        self,
        store: Store,
        *,
        new_node_id: int,
        wall_ms: int,
        durability: Durability = Durability.FSYNC,
        max_clock_offset_ms: int = 500,
    ) -> None:
        """Open the replica on ``store``, reading only its marks (never its keys).

        ``new_node_id`` is used only when the store has no id yet (a first start).
        """
        self.store = store
        self.durability = durability
        self.defer_after_ms = 2 * max_clock_offset_ms
        stored_id = store.get(META, layout.META_NODE_ID)
        if stored_id is None:
            self.node_id = new_node_id
            batch = store.batch()
            batch.put(META, layout.META_NODE_ID, layout.pack_u64(new_node_id))
            store.write(batch)
        else:
            self.node_id = layout.unpack_u64(stored_id)
        # What the WAL recovered after a crash becomes durable here, before anyone hears of it.
        store.sync_wal()

        seq, hlc = layout.unpack_marks(store.get(META, layout.META_MARKS))
        reserved_seq, reserved_hlc = layout.unpack_marks(store.get(META, layout.META_RESERVED))
        self._seq = max(seq, reserved_seq)
        self.clock = HybridClock(max(hlc, reserved_hlc))
        self.clock.tick(wall_ms)
        self._reserved_seq = self._seq
        self._reserved_hlc = self.clock.last
        self.records_held, self.tombstones_held = layout.unpack_counters(
            store.get(META, layout.META_COUNTERS)
        )
        deferred = store.get(META, layout.META_DEFERRED_COUNT)
        self.deferred_held = 0 if deferred is None else layout.unpack_u64(deferred)
        self._deferred_floor: dict[int, int] = {}  # per origin, the lowest deferred seq

        self.watermarks = Watermarks()
        for stored_key, raw in store.scan(
            META, layout.META_WATERMARK_PREFIX, prefix_end(layout.META_WATERMARK_PREFIX)
        ):
            origin = layout.suffix_u64(stored_key, layout.META_WATERMARK_PREFIX)
            self.watermarks.marks[origin] = layout.unpack_u64(raw)
        for stored_key, raw in store.scan(
            META, layout.META_RANGES_PREFIX, prefix_end(layout.META_RANGES_PREFIX)
        ):
            self.watermarks.load_ranges(
                layout.suffix_u64(stored_key, layout.META_RANGES_PREFIX), raw
            )
        self.watermarks.cover(self.node_id, self._seq)
        self.durable_watermarks: dict[int, int] = self.watermarks.vector()

        self.audit_buckets = [0] * audit.BUCKETS
        for stored_key, raw in store.scan(
            META, layout.META_AUDIT_PREFIX, prefix_end(layout.META_AUDIT_PREFIX)
        ):
            self.audit_buckets[layout.suffix_u16(stored_key, layout.META_AUDIT_PREFIX)] = (
                layout.unpack_u64(raw)
            )

        self._written = 0  # tickets issued
        self._durable = 0  # tickets known durable
        self._settling: deque[_Durability] = deque()
        self._unsynced: dict[bytes, int] = {}  # keys changed by batches not yet durable
        self.durable_seq = self._seq  # own watermark: every own seq <= it is durable
        self._namespaces: dict[bytes, RecordHeader | None] = {}
        self._retired: dict[int, bool] = {}
        self.namespaces_to_sweep: set[bytes] = set()
        self.ready_to_push: list[WireRecord] = []
        self.purge_rule = PurgeRule()
        self.audit_repairs_total = 0
        self.provisional: dict[int, int] = {}  # claims of cut-short answers, see apply_remote
        # Called with the records each batch newly held, right after the batch is written.
        self.listeners: list[Callable[[list[WireRecord]], None]] = []
        self._refresh_deferred_floor()

    # ---- client writes --------------------------------------------------

    def write(self, write: Write, wall_ms: int) -> Applied:
        """Apply one client write; returns its header and durability ticket."""
        return self.write_many([write], wall_ms)[0]

    def write_many(self, writes: Sequence[Write], wall_ms: int) -> list[Applied]:
        """Apply client writes, one HLC tick each, in batches of at most 1,000 records."""
        applied: list[Applied] = []
        for start in range(0, len(writes), MAX_BATCH_RECORDS):
            chunk = writes[start : start + MAX_BATCH_RECORDS]
            self._reserve(len(chunk), wall_ms)
            batch = self.store.batch()
            pending = _Pending()
            headers = []
            stored_keys = [layout.record_key(write.namespace, write.key) for write in chunk]
            # One read for the whole chunk; a single Put takes the cheaper point read.
            held_now = (
                self.store.get_many(KV, stored_keys)
                if len(stored_keys) > 1
                else [self.store.get(KV, key) for key in stored_keys]
            )
            for write, stored_key, held_raw in zip(chunk, stored_keys, held_now, strict=True):
                held = pending.staged.get(stored_key)
                if held is None and held_raw is not None:
                    held = RecordHeader.decode(held_raw)
                self._seq += 1
                header = RecordHeader(
                    hlc=self.clock.tick(wall_ms),
                    origin=self.node_id,
                    seq=self._seq,
                    expiration=write.expiration,
                    tombstone=write.tombstone,
                    metadata=write.metadata,
                    value_length=0 if write.tombstone else len(write.value),
                )
                encoded = header.encode()
                self._stage(
                    batch,
                    write.namespace,
                    write.key,
                    header,
                    encoded,
                    write.value,
                    pending,
                    held=held,
                    looked_up=True,
                )
                headers.append(header)
            self.watermarks.cover(self.node_id, self._seq)
            pending.dirty_origins.add(self.node_id)
            ticket = self._commit(batch, pending)
            applied.extend(Applied(header, ticket) for header in headers)
        return applied

    def skip_seqs_past(self, seq: int) -> None:
        """Issue no seq <= ``seq`` from now on (a peer has seen that much of this node).

        A stale copy of a node's disk remembers fewer of its own writes than its peers
        have seen; continuing from its own mark would give one (origin, seq) to two
        writes. The skipped seqs are covered by this node's own watermark.
        """
        if seq <= self._seq:
            return
        self._seq = seq
        self.watermarks.cover(self.node_id, seq)
        batch = self.store.batch()
        pending = _Pending()
        pending.dirty_origins.add(self.node_id)
        self._commit(batch, pending)

    def _reserve(self, count: int, wall_ms: int) -> None:
        """Under durability wal, extend the synced reservation of seqs and HLC if needed."""
        if self.durability is not Durability.WAL:
            return
        needs_seq = self._seq + count > self._reserved_seq
        needs_hlc = hlc_bits.pack(wall_ms, 0) + count > self._reserved_hlc or (
            self.clock.last + count > self._reserved_hlc
        )
        if not (needs_seq or needs_hlc):
            return
        self._reserved_seq = self._seq + count + SEQ_BLOCK
        base_ms = max(wall_ms, hlc_bits.wall_ms_of(self.clock.last + count))
        self._reserved_hlc = hlc_bits.pack(base_ms + HLC_BLOCK_MS, 0)
        batch = self.store.batch()
        batch.put(
            META,
            layout.META_RESERVED,
            layout.pack_marks(self._reserved_seq, self._reserved_hlc),
        )
        self.store.write(batch)
        self.store.sync_wal()

    def _commit(self, batch: Batch, pending: _Pending | None = None) -> int:
        """Write ``batch`` with the marks, counters, watermarks and buckets it changed."""
        batch.put(META, layout.META_MARKS, layout.pack_marks(self._seq, self.clock.last))
        batch.put(
            META,
            layout.META_COUNTERS,
            layout.pack_counters(self.records_held, self.tombstones_held),
        )
        changed: dict[int, int] = {}
        new_records: list[WireRecord] = []
        if pending is not None:
            for origin in pending.dirty_origins:
                mark = self.watermarks.get(origin)
                changed[origin] = mark
                batch.put(META, layout.watermark_key(origin), layout.pack_u64(mark))
                ranges = self.watermarks.pack_ranges(origin)
                if ranges:
                    batch.put(META, layout.ranges_key(origin), ranges)
                else:
                    batch.delete(META, layout.ranges_key(origin))
            for bucket in pending.dirty_buckets:
                batch.put(
                    META, layout.audit_key(bucket), layout.pack_u64(self.audit_buckets[bucket])
                )
            new_records = pending.new_records
        self.store.write(batch)
        self._written += 1
        if self.listeners and new_records:
            for listener in self.listeners:
                listener(new_records)
        keys = list(pending.staged) if pending is not None else []
        settle = _Durability(self._written, self._seq, changed, new_records, keys)
        if self.durability is Durability.WAL:
            self._durable = self._written
            self._settle(settle)
        else:
            for key in keys:
                self._unsynced[key] = self._unsynced.get(key, 0) + 1
            self._settling.append(settle)
        return self._written

    def _settle(self, settled: _Durability) -> None:
        if self.durability is not Durability.WAL:
            for key in settled.keys:
                left = self._unsynced[key] - 1
                if left:
                    self._unsynced[key] = left
                else:
                    del self._unsynced[key]
        self.durable_seq = max(self.durable_seq, settled.seq)
        for origin, mark in settled.watermarks.items():
            if mark > self.durable_watermarks.get(origin, 0):
                self.durable_watermarks[origin] = mark
        self.ready_to_push.extend(settled.new_records)

    def _stage(
        self,
        batch: Batch,
        namespace: bytes,
        key: bytes,
        header: RecordHeader,
        encoded: bytes,
        value: bytes,
        pending: _Pending,
        *,
        held: RecordHeader | None = None,
        looked_up: bool = False,
    ) -> None:
        """Stage ``header`` (and ``value``) as the record held for the key, replacing any.

        ``pending.staged`` holds what this batch already staged, which the store
        cannot show yet; a caller that already read what is held passes it as
        ``held`` (None: nothing) with ``looked_up``.
        """
        stored_key = layout.record_key(namespace, key)
        if not looked_up:
            held = pending.staged.get(stored_key)
            if held is None:
                held_raw = self.store.get(KV, stored_key)
                held = None if held_raw is None else RecordHeader.decode(held_raw)
        pending.staged[stored_key] = header
        bucket = audit.bucket_of(stored_key)
        if held is not None:
            # The replaced record's log entry stays (until GC): it points at the key,
            # so an answer covering its seq sends the record that replaced it.
            if held.tombstone:
                self.tombstones_held -= 1
            else:
                self.records_held -= 1
                self.audit_buckets[bucket] ^= audit.record_hash(stored_key, held.hlc, held.origin)
        batch.put(KV, stored_key, encoded)
        if header.tombstone:
            batch.delete(VAL, stored_key)
            self.tombstones_held += 1
        else:
            batch.put(VAL, stored_key, value)
            self.records_held += 1
            self.audit_buckets[bucket] ^= audit.record_hash(stored_key, header.hlc, header.origin)
        pending.dirty_buckets.add(bucket)
        batch.put(LOG, layout.log_key(header.origin, header.seq), stored_key)
        pending.new_records.append(WireRecord(namespace, key, encoded, value))
        if namespace == RESERVED_NAMESPACE:
            self._namespaces[key] = header
            if header.tombstone:
                self.namespaces_to_sweep.add(bytes.fromhex(key.decode()))
        elif namespace == MEMBERS_NAMESPACE:
            self._retired[int(key.decode(), 16)] = not header.tombstone

    # ---- durability -----------------------------------------------------

    @property
    def written_ticket(self) -> int:
        """The ticket of the latest write: a WAL sync started now covers it."""
        return self._written

    def is_durable(self, ticket: int) -> bool:
        return ticket <= self._durable

    def mark_durable(self, ticket: int) -> None:
        """Every write with a ticket <= ``ticket`` is synced to disk."""
        if ticket <= self._durable:
            return
        self._durable = ticket
        while self._settling and self._settling[0].ticket <= ticket:
            self._settle(self._settling.popleft())

    def take_ready_to_push(self) -> list[WireRecord]:
        """Durable records newly held here, to push to peers (each handed out once)."""
        ready, self.ready_to_push = self.ready_to_push, []
        return ready

    # ---- replicated records ---------------------------------------------

    def observe_clock(self, remote_hlc: int, wall_ms: int) -> None:
        """Merge a peer's HLC, unless it is too far ahead to trust (see deferral)."""
        if hlc_bits.wall_ms_of(remote_hlc) <= wall_ms + self.defer_after_ms:
            self.clock.merge(remote_hlc, wall_ms)

    def apply_remote(
        self,
        records: Sequence[WireRecord],
        wall_ms: int,
        coverage: Sequence[Coverage] = (),
        *,
        session: bool = False,
    ) -> RemoteOutcome:
        """Apply records received from a peer, then its coverage claims, in batches.

        Claims of a complete answer raise the watermarks. A cut-short answer's
        claims are only provisional: within a synchronisation (``session``, see
        ``begin_sync``) they shape the next digest, and they become watermarks
        together with the claims of the round that completes it, when every
        record they vouch for has arrived. Outside a session they are dropped.

        A record already seen is dropped unread. One from more than twice the
        maximum clock offset in the future is set aside in ``deferred``. Otherwise
        the LWW rule decides; a record of a deleted namespace is dropped. Every
        record handled is marked seen; each coverage claim raises a watermark.
        """
        new = seen = deferred = stale = 0
        horizon_ms = wall_ms + self.defer_after_ms
        chunks = [
            records[start : start + MAX_BATCH_RECORDS]
            for start in range(0, len(records), MAX_BATCH_RECORDS)
        ] or [[]]
        ticket = self._written
        for index, chunk in enumerate(chunks):
            batch = self.store.batch()
            pending = _Pending()
            for record in chunk:
                hlc, origin, seq = record.ids()
                if self.watermarks.seen(origin, seq):
                    seen += 1
                    continue
                self.watermarks.mark(origin, seq)
                pending.dirty_origins.add(origin)
                if hlc_bits.wall_ms_of(hlc) > horizon_ms:
                    batch.put(DEFERRED, layout.deferred_key(hlc, origin, seq), record.encode())
                    self._deferred_floor[origin] = min(seq, self._deferred_floor.get(origin, seq))
                    self.deferred_held += 1
                    deferred += 1
                    continue
                self.clock.observe(hlc)
                if self._place(batch, record, pending):
                    new += 1
                else:
                    stale += 1
            if index == len(chunks) - 1:
                self._claim(coverage, session, pending)
            if deferred:
                batch.put(META, layout.META_DEFERRED_COUNT, layout.pack_u64(self.deferred_held))
            if len(pending.staged) or pending.dirty_origins or len(batch):
                ticket = self._commit(batch, pending)
        return RemoteOutcome(ticket, new, seen, deferred, stale)

    def _claim(self, coverage: Sequence[Coverage], session: bool, pending: _Pending) -> None:
        if not all(claim.complete for claim in coverage):
            if session:
                for claim in coverage:
                    if claim.last > self.provisional.get(claim.origin, 0):
                        self.provisional[claim.origin] = claim.last
            return
        if session:
            for origin, last in self.provisional.items():
                self.watermarks.cover(origin, last)
                pending.dirty_origins.add(origin)
            self.provisional.clear()
        for claim in coverage:
            self.watermarks.cover(claim.origin, claim.last)
            pending.dirty_origins.add(claim.origin)

    def begin_sync(self) -> None:
        """Start a synchronisation with one peer: forget provisional claims of an older one."""
        self.provisional.clear()

    def sync_digest(self) -> dict[int, int]:
        """The digest to send within a synchronisation: durable marks and provisional claims."""
        digest = self.own_watermarks()
        for origin, last in self.provisional.items():
            if last > digest.get(origin, 0):
                digest[origin] = last
        return digest

    def _place(self, batch: Batch, record: WireRecord, pending: _Pending) -> bool:
        """Stage a received record if it wins under LWW; False if it loses or is dropped."""
        namespace = record.namespace
        if not is_reserved(namespace):
            namespace_record = self.namespace_record(namespace)
            if namespace_record is not None and namespace_record.tombstone:
                return False
        header = record.decoded()
        stored_key = record.stored_key
        held = pending.staged.get(stored_key)
        if held is None:
            held_raw = self.store.get(KV, stored_key)
            held = None if held_raw is None else RecordHeader.decode(held_raw)
        if held is not None and not supersedes(
            header.version,
            header.tombstone,
            held.version,
            held.tombstone,
            namespace_record=namespace == RESERVED_NAMESPACE,
        ):
            return False
        self._stage(
            batch,
            namespace,
            record.key,
            header,
            record.header,
            record.value,
            pending,
            held=held,
            looked_up=True,
        )
        return True

    def apply_deferred(self, wall_ms: int) -> int:
        """Apply the deferred records whose time has come; returns how many were handled."""
        if not self.deferred_held:
            return 0
        due: list[tuple[bytes, WireRecord]] = []
        for stored_key, raw in self.store.scan(
            DEFERRED, b"", layout.deferred_key(hlc_bits.pack(wall_ms + 1, 0), 0, 0)
        ):
            due.append((stored_key, WireRecord.decode(raw)))
            if len(due) == MAX_BATCH_RECORDS:
                break
        if not due:
            return 0
        batch = self.store.batch()
        pending = _Pending()
        for stored_key, record in due:
            batch.delete(DEFERRED, stored_key)
            self.clock.observe(record.ids()[0])
            self._place(batch, record, pending)
        self.deferred_held -= len(due)
        self._refresh_deferred_floor()
        batch.put(META, layout.META_DEFERRED_COUNT, layout.pack_u64(self.deferred_held))
        self._commit(batch, pending)
        return len(due)

    def push_back_for(self, watermarks: Mapping[int, int]) -> Delta | None:
        """What to push back to a peer with ``watermarks`` after pulling from it, if anything.

        Only a small backlog, whole: a peer that lacks more pulls it itself, one
        synchronisation at a time, whereas every node that finds it lagging would
        push it the whole backlog at once.
        """
        delta = self.delta_for(watermarks, budget_bytes=PUSH_BACK_BUDGET)
        if not delta.records or not all(claim.complete for claim in delta.coverage):
            return None
        return delta

    def delta_for(self, digest: Mapping[int, int], budget_bytes: int = DELTA_BUDGET) -> Delta:
        """The records a peer with watermarks ``digest`` lacks, from one consistent view.

        Per origin o, in seq order, every seq in (digest[o], durable wm[o]] is
        accounted for: the record itself if it is still held; else the record
        that replaced it (the log keeps replaced entries until GC) unless the
        peer has seen that one; else the record deferred here. Held records above
        the watermark (arrived out of order) are sent too, so whatever this node
        holds reaches the peer. A complete answer's claims therefore never vouch
        for a seq whose record, or something newer, was not sent. The answer is
        cut short (``complete=False``) at the budget (at least one record) or at a
        key whose latest change is not durable yet.
        """
        records: list[WireRecord] = []
        coverage: list[Coverage] = []
        sent_keys: set[bytes] = set()
        used = 0
        deferred = self._deferred_by_origin() if self.deferred_held else {}
        for origin in self._log_origins(self.durable_watermarks):
            mark = self.durable_watermarks.get(origin, 0)
            base = digest.get(origin, 0)
            last = base
            entries: list[tuple[int, bytes | WireRecord]] = [
                (layout.split_log_key(log_key)[1], stored_key)
                for log_key, stored_key in self.store.scan(
                    LOG,
                    layout.log_key(origin, base + 1),
                    layout.log_key(origin + 1, 0) if origin < (1 << 64) - 1 else None,
                )
            ]
            entries += [(seq, rec) for seq, rec in deferred.get(origin, []) if base < seq <= mark]
            entries.sort(key=lambda entry: entry[0])
            for seq, entry in entries:
                claimed = seq <= mark
                if isinstance(entry, WireRecord):  # deferred here: send it as it came
                    record: WireRecord | None = entry
                elif entry in self._unsynced:
                    if not claimed:
                        continue
                    coverage.append(Coverage(origin, base, last, complete=False))
                    return Delta(records, coverage)
                else:
                    record = self._held_record(entry, digest, sent_keys)
                if record is not None:
                    size = record.size()
                    if records and used + size > budget_bytes:
                        coverage.append(Coverage(origin, base, last, complete=False))
                        return Delta(records, coverage)
                    records.append(record)
                    sent_keys.add(record.stored_key)
                    used += size
                if claimed:
                    last = seq
            if mark > base:
                coverage.append(Coverage(origin, base, mark, complete=True))
        return Delta(records, coverage)

    def _log_origins(self, known: Mapping[int, int]) -> list[int]:
        """Every origin with a watermark here or an entry in the log, in order."""
        origins = set(known)
        probe = 0
        while True:
            found = next(iter(self.store.scan(LOG, layout.log_key(probe, 0))), None)
            if found is None:
                break
            origin = layout.split_log_key(found[0])[0]
            origins.add(origin)
            if origin == (1 << 64) - 1:
                break
            probe = origin + 1
        return sorted(origins)

    def _held_record(
        self, stored_key: bytes, digest: Mapping[int, int], sent_keys: set[bytes]
    ) -> WireRecord | None:
        """The record held for a key, unless already sent or already seen by the peer."""
        if stored_key in sent_keys:
            return None
        header = self.store.get(KV, stored_key)
        if header is None:  # purged: stable everywhere, nobody needs it
            return None
        record = WireRecord(
            stored_key[: layout.NAMESPACE_BYTES], stored_key[layout.NAMESPACE_BYTES :], header
        )
        _, origin, seq = record.ids()
        if seq <= digest.get(origin, 0):
            return None
        value = self.store.get(VAL, stored_key) or b""
        return WireRecord(record.namespace, record.key, header, value)

    def _refresh_deferred_floor(self) -> None:
        """Recompute, per origin, the lowest seq still deferred (a scan; deferral is rare)."""
        self._deferred_floor = {}
        if self.deferred_held:
            for origin, records in self._deferred_by_origin().items():
                self._deferred_floor[origin] = min(seq for seq, _ in records)

    def _deferred_by_origin(self) -> dict[int, list[tuple[int, WireRecord]]]:
        grouped: dict[int, list[tuple[int, WireRecord]]] = {}
        for _, raw in self.store.scan(DEFERRED, b""):
            record = WireRecord.decode(raw)
            _, origin, seq = record.ids()
            grouped.setdefault(origin, []).append((seq, record))
        return grouped

    def sweep_log(self, start: bytes, budget: int) -> bytes | None:
        """Drop log entries of replaced records that every member has seen; returns where
        to continue, or None after the last entry."""
        stable = self.purge_rule.stable
        batch = self.store.batch()
        next_start: bytes | None = None
        candidates: list[tuple[bytes, int, int]] = []
        stored_keys: list[bytes] = []
        for scanned, (log_key, stored_key) in enumerate(self.store.scan(LOG, start)):
            if scanned == budget:
                next_start = log_key
                break
            origin, seq = layout.split_log_key(log_key)
            if seq <= stable.get(origin, 0):
                candidates.append((log_key, origin, seq))
                stored_keys.append(stored_key)
        for (log_key, origin, seq), raw in zip(
            candidates, self.store.get_many(KV, stored_keys), strict=True
        ):
            if raw is None or header_ids(raw)[1:] != (origin, seq):
                batch.delete(LOG, log_key)
        if len(batch):
            self.store.write(batch)
        return next_start

    # ---- audit ----------------------------------------------------------

    def audit_entries(self, buckets: Iterable[int]) -> list[AuditEntry]:
        """(key, version) of every record held in ``buckets`` (a full scan: audits are rare)."""
        wanted = set(buckets)
        entries = []
        for stored_key, raw in self.store.scan(KV, b""):
            if audit.bucket_of(stored_key) in wanted:
                header = RecordHeader.decode(raw)
                entries.append(
                    AuditEntry(
                        stored_key,
                        header.hlc,
                        header.origin,
                        header.seq,
                        header.tombstone,
                        header.expiration,
                    )
                )
        return entries

    def audit_wanted(self, theirs: Iterable[AuditEntry], now_s: float) -> list[bytes]:
        """Keys whose record a peer holds and this node should hold too, but does not.

        Only records this node's watermarks claim as seen count: anything else is
        merely in flight, and anti-entropy will bring it.
        """
        wanted = []
        for entry in theirs:
            if entry.tombstone or 0 < entry.expiration <= now_s:
                continue
            if not self.watermarks.seen(entry.origin, entry.seq):
                continue
            raw = self.store.get(KV, entry.stored_key)
            if raw is not None:
                version, tombstone = decode_version(raw)
                if not supersedes(Version(entry.hlc, entry.origin), False, version, tombstone):
                    continue
            wanted.append(entry.stored_key)
        return wanted

    def fetch(self, stored_keys: Iterable[bytes]) -> list[WireRecord]:
        records = []
        for stored_key in stored_keys:
            header = self.store.get(KV, stored_key)
            if header is not None:
                value = self.store.get(VAL, stored_key) or b""
                records.append(
                    WireRecord(
                        stored_key[: layout.NAMESPACE_BYTES],
                        stored_key[layout.NAMESPACE_BYTES :],
                        header,
                        value,
                    )
                )
        return records

    def apply_repairs(self, records: Sequence[WireRecord]) -> int:
        """Apply records fetched by an audit (already seen, so not filtered); counts repairs."""
        batch = self.store.batch()
        pending = _Pending()
        repaired = sum(1 for record in records if self._place(batch, record, pending))
        if repaired:
            self._commit(batch, pending)
            self.audit_repairs_total += repaired
        return repaired

    def plant(self, record: WireRecord) -> None:
        """Test hook: hold a record without marking it seen or pushing it anywhere."""
        batch = self.store.batch()
        pending = _Pending()
        header = record.decoded()
        self._stage(
            batch, record.namespace, record.key, header, record.header, record.value, pending
        )
        pending.new_records.clear()
        self._commit(batch, pending)

    # ---- membership records ---------------------------------------------

    def is_retired(self, node_id: int) -> bool:
        if node_id not in self._retired:
            raw = self.store.get(
                KV, layout.record_key(MEMBERS_NAMESPACE, f"{node_id:016x}".encode())
            )
            self._retired[node_id] = raw is not None and not decode_version(raw)[1]
        return self._retired[node_id]

    def retire(self, node_id: int, wall_ms: int) -> Applied:
        """Write the replicated, never-purged record that removes ``node_id`` for ever."""
        return self.write(Write(MEMBERS_NAMESPACE, f"{node_id:016x}".encode(), b"removed"), wall_ms)

    # ---- reads ----------------------------------------------------------

    def header(self, namespace: bytes, key: bytes) -> RecordHeader | None:
        raw = self.store.get(KV, layout.record_key(namespace, key))
        return None if raw is None else RecordHeader.decode(raw)

    def value(self, namespace: bytes, key: bytes) -> bytes | None:
        return self.store.get(VAL, layout.record_key(namespace, key))

    def read(self, namespace: bytes, key: bytes, now_s: float) -> tuple[RecordHeader, bytes] | None:
        """The live record for a key and its value, or None if missing, deleted or expired."""
        header = self.header(namespace, key)
        if header is None or not header.live(now_s):
            return None
        value = self.value(namespace, key)
        return header, b"" if value is None else value

    def read_many(
        self, namespace: bytes, keys: Sequence[bytes], now_s: float
    ) -> list[tuple[RecordHeader, bytes] | None]:
        """``read`` for several keys, with one multi-get per column family."""
        stored = [layout.record_key(namespace, key) for key in keys]
        live: dict[int, RecordHeader] = {}
        for index, raw in enumerate(self.store.get_many(KV, stored)):
            if raw is not None:
                header = RecordHeader.decode(raw)
                if header.live(now_s):
                    live[index] = header
        values = self.store.get_many(VAL, [stored[index] for index in live])
        value_of = dict(zip(live, values, strict=True))
        return [
            (live[index], value_of[index] or b"") if index in live else None
            for index in range(len(keys))
        ]

    def list_page(
        self,
        namespace: bytes,
        prefix: bytes,
        start_after: bytes | None,
        limit: int,
        now_s: float,
    ) -> ListPage:
        """Up to ``limit`` live keys with ``prefix``, in byte order, after ``start_after``.

        Pages are filled: expired and deleted keys are skipped, not counted, so a
        short page means the listing is complete. Reads headers only.
        """
        low = layout.record_key(namespace, prefix)
        if start_after is not None and start_after >= prefix:
            low = max(low, layout.record_key(namespace, start_after) + b"\x00")
        high = prefix_end(layout.record_key(namespace, prefix))
        keys: list[tuple[bytes, RecordHeader]] = []
        for stored_key, raw in self.store.scan(KV, low, high):
            header = RecordHeader.decode(raw)
            if not header.live(now_s):
                continue
            if len(keys) == limit:
                return ListPage(keys, complete=False)
            keys.append((stored_key[layout.NAMESPACE_BYTES :], header))
        return ListPage(keys, complete=True)

    # ---- namespaces -----------------------------------------------------

    def namespace_record(self, namespace: bytes) -> RecordHeader | None:
        """The record of a namespace in the reserved namespace (cached)."""
        key = namespace.hex().encode()
        if key not in self._namespaces:
            self._namespaces[key] = self.header(RESERVED_NAMESPACE, key)
        return self._namespaces[key]

    def namespace_live(self, namespace: bytes) -> bool:
        record = self.namespace_record(namespace)
        return record is not None and not record.tombstone

    def namespaces(self) -> Iterator[tuple[bytes, RecordHeader, bytes]]:
        """Every namespace record held: (id as hex key, header, title bytes)."""
        for stored_key, raw in self.store.scan(
            KV, RESERVED_NAMESPACE, prefix_end(RESERVED_NAMESPACE)
        ):
            key = stored_key[layout.NAMESPACE_BYTES :]
            header = RecordHeader.decode(raw)
            title = b"" if header.tombstone else self.value(RESERVED_NAMESPACE, key) or b""
            yield key, header, title

    # ---- garbage collection ---------------------------------------------

    def own_watermarks(self) -> dict[int, int]:
        """This node's durable watermark vector, as digests advertise it.

        A deferred record counts as seen, but it is not applied and its HLC is not
        merged yet, so this node may still create versions older than it. Peers use
        the advertised vector to decide when a tombstone is safe to purge (and to
        count replicas), so it stops short of any deferred seq.
        """
        vector = {**self.durable_watermarks, self.node_id: self.durable_seq}
        for origin, lowest in self._deferred_floor.items():
            if vector.get(origin, 0) >= lowest:
                vector[origin] = lowest - 1
        return vector

    def sweep(
        self, start: bytes, now_s: float, budget: int, stop: bytes | None = None
    ) -> bytes | None:
        """Purge, among up to ``budget`` headers in [start, stop), what may go.

        A tombstone or expired record goes once the purge rule says it is stable;
        a record of a deleted namespace goes at once (the namespace tombstone is
        never purged and drops later records for it). Returns where to continue,
        or None after the last key.
        """
        scanned = 0
        purge: list[tuple[bytes, RecordHeader]] = []
        next_start: bytes | None = None
        for stored_key, raw in self.store.scan(KV, start, stop):
            if scanned == budget:
                next_start = stored_key
                break
            scanned += 1
            namespace = stored_key[: layout.NAMESPACE_BYTES]
            if namespace == RESERVED_NAMESPACE:
                continue
            namespace_record = self.namespace_record(namespace)
            if (namespace_record is not None and namespace_record.tombstone) or (
                gone(raw, now_s) and self.purge_rule.purgeable(*header_ids(raw)[1:])
            ):
                purge.append((stored_key, RecordHeader.decode(raw)))
        self.purge(purge)
        return next_start

    def sweep_namespace(self, namespace: bytes, now_s: float, budget: int) -> bool:
        """Purge up to ``budget`` records of one namespace; True once none are left to scan."""
        start = layout.record_key(namespace, b"")
        return self.sweep(start, now_s, budget, stop=prefix_end(start)) is None

    def purge(self, records: Iterable[tuple[bytes, RecordHeader]]) -> int:
        """Remove held records entirely (record, value, log entry), in batches."""
        batch = self.store.batch()
        pending = _Pending()
        count = 0
        for stored_key, header in records:
            batch.delete(KV, stored_key)
            batch.delete(VAL, stored_key)
            batch.delete(LOG, layout.log_key(header.origin, header.seq))
            if header.tombstone:
                self.tombstones_held -= 1
            else:
                self.records_held -= 1
                bucket = audit.bucket_of(stored_key)
                self.audit_buckets[bucket] ^= audit.record_hash(
                    stored_key, header.hlc, header.origin
                )
                pending.dirty_buckets.add(bucket)
            count += 1
            if count % MAX_BATCH_RECORDS == 0:
                self._commit(batch, pending)
                batch = self.store.batch()
                pending = _Pending()
        if count % MAX_BATCH_RECORDS:
            self._commit(batch, pending)
        return count
