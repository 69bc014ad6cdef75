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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from rumor.node.core import hlc as hlc_bits
from rumor.node.core.gc import PurgeRule
from rumor.node.core.hlc import HybridClock
from rumor.node.core.namespaces import RESERVED_NAMESPACE
from rumor.node.core.record import RecordHeader
from rumor.node.storage import layout
from rumor.node.storage.store import KV, LOG, META, VAL, Batch, Store, prefix_end

MAX_BATCH_RECORDS = 1000
SEQ_BLOCK = 10_000
HLC_BLOCK_MS = 250


class Durability(enum.Enum):
    FSYNC = "fsync"  # acknowledged after the WAL is synced (group commit)
    WAL = "wal"  # acknowledged after the WAL write: survives a crash, not a power loss


@dataclass(frozen=True, slots=True)
class Applied:
    """A write the replica made: its header and the ticket to wait on for durability."""

    header: RecordHeader
    ticket: int


@dataclass(frozen=True, slots=True)
class Write:
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


class Replica:
    """One node's copy of the data, and the rules for changing it."""

    def __init__(
        self,
        store: Store,
        *,
        new_node_id: int,
        wall_ms: int,
        durability: Durability = Durability.FSYNC,
    ) -> None:
        """Open the replica on ``store``, reading only its marks (never its keys).

        ``new_node_id`` is used only when the store has no id yet (a first start).
        """
        self.store = store
        self.durability = durability
        stored_id = store.get(META, layout.META_NODE_ID)
        if stored_id is None:
            self.node_id = new_node_id
            batch = store.batch()
            batch.put(META, layout.META_NODE_ID, layout.pack_u64(new_node_id))
            store.write(batch)
            store.sync_wal()
        else:
            self.node_id = layout.unpack_u64(stored_id)

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

        self._written = 0  # tickets issued
        self._durable = 0  # tickets known durable
        self._pending_seqs: deque[tuple[int, int]] = deque()  # (ticket, last seq in it)
        self.durable_seq = self._seq  # own watermark: every own seq <= it is durable
        self._namespaces: dict[bytes, RecordHeader | None] = {}
        self.purge_rule = PurgeRule()

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
            staged: dict[bytes, RecordHeader] = {}
            headers = []
            for write in chunk:
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
                self._stage(batch, write.namespace, write.key, header, write.value, staged)
                headers.append(header)
            ticket = self._commit(batch)
            applied.extend(Applied(header, ticket) for header in headers)
        return applied

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

    def _commit(self, batch: Batch) -> int:
        batch.put(META, layout.META_MARKS, layout.pack_marks(self._seq, self.clock.last))
        batch.put(
            META,
            layout.META_COUNTERS,
            layout.pack_counters(self.records_held, self.tombstones_held),
        )
        self.store.write(batch)
        self._written += 1
        if self.durability is Durability.WAL:
            self._durable = self._written
            self.durable_seq = self._seq
        else:
            self._pending_seqs.append((self._written, self._seq))
        return self._written

    def _stage(
        self,
        batch: Batch,
        namespace: bytes,
        key: bytes,
        header: RecordHeader,
        value: bytes,
        staged: dict[bytes, RecordHeader],
    ) -> None:
        """Stage ``header`` (and ``value``) as the record held for the key, replacing any.

        ``staged`` holds what this batch already staged, which the store cannot show yet.
        """
        stored_key = layout.record_key(namespace, key)
        held = staged.get(stored_key)
        if held is None:
            held_raw = self.store.get(KV, stored_key)
            held = None if held_raw is None else RecordHeader.decode(held_raw)
        staged[stored_key] = header
        if held is not None:
            batch.delete(LOG, layout.log_key(held.origin, held.seq))
            if held.tombstone:
                self.tombstones_held -= 1
            else:
                self.records_held -= 1
        batch.put(KV, stored_key, header.encode())
        if header.tombstone:
            batch.delete(VAL, stored_key)
            self.tombstones_held += 1
        else:
            batch.put(VAL, stored_key, value)
            self.records_held += 1
        batch.put(LOG, layout.log_key(header.origin, header.seq), stored_key)
        if namespace == RESERVED_NAMESPACE:
            self._namespaces[key] = header

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
        while self._pending_seqs and self._pending_seqs[0][0] <= ticket:
            self.durable_seq = self._pending_seqs.popleft()[1]

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
        """This node's durable watermark vector (single node: only its own origin)."""
        return {self.node_id: self.durable_seq}

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
            header = RecordHeader.decode(raw)
            namespace_record = self.namespace_record(namespace)
            if (namespace_record is not None and namespace_record.tombstone) or (
                (header.tombstone or header.expired(now_s))
                and self.purge_rule.purgeable(header.origin, header.seq)
            ):
                purge.append((stored_key, header))
        self.purge(purge)
        return next_start

    def sweep_namespace(self, namespace: bytes, now_s: float, budget: int) -> bool:
        """Purge up to ``budget`` records of one namespace; True once none are left to scan."""
        start = layout.record_key(namespace, b"")
        return self.sweep(start, now_s, budget, stop=prefix_end(start)) is None

    def purge(self, records: Iterable[tuple[bytes, RecordHeader]]) -> int:
        """Remove held records entirely (record, value, log entry), in batches."""
        batch = self.store.batch()
        count = 0
        for stored_key, header in records:
            batch.delete(KV, stored_key)
            batch.delete(VAL, stored_key)
            batch.delete(LOG, layout.log_key(header.origin, header.seq))
            if header.tombstone:
                self.tombstones_held -= 1
            else:
                self.records_held -= 1
            count += 1
            if count % MAX_BATCH_RECORDS == 0:
                self._commit(batch)
                batch = self.store.batch()
        if count % MAX_BATCH_RECORDS:
            self._commit(batch)
        return count
