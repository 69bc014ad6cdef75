"""The replica: one node's copy of the data and the rules for changing it, sans-I/O.

Theory of operation. Every write — a client put or delete, a bulk write, a
namespace change, and (with peers) a replicated record — becomes a record
staged into one store batch together with everything that must change with
it: the log index entry of the record, the held-record counters, the audit
buckets, the sequence and clock marks, the watermarks. The batch is written
synchronously, in the same step that assigned the record's HLC and seq, so no
await can ever separate a seq from its write.

Time is passed in (``wall_ms``, ``now_s``); the replica never reads a clock,
never awaits, never opens a socket. The node drives it with grpc.aio and
RocksStore; the simulator drives the same code with virtual time and
MemoryStore.

``Replica`` is the one object the rest of the node uses. It holds a
``ReplicaState`` and hands each call to the module that owns its concept:

- ``state``: the shared state and how it is read from the store;
- ``staging``: batches — staging, commit, durability tickets and settling;
- ``local_writes``: client writes and the seqs and HLCs they take;
- ``remote_apply``: received records, coverage claims, deferral;
- ``answers``: anti-entropy answers and push-backs;
- ``auditing``: audit entries, wanted keys, fetches and repairs;
- ``reads``: reads and list pages;
- ``session_coverage``: which writes a session token names are not readable here yet;
- ``sweeping``: purging records and log entries (garbage collection);
- ``reserved_records``: namespace and retirement records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar, overload

from rumor.node.core.gc import PurgeRule
from rumor.node.core.hlc import HybridClock
from rumor.node.core.record import RecordHeader
from rumor.node.core.watermarks import Watermarks
from rumor.node.replication.replica import (
    answers,
    auditing,
    local_writes,
    reads,
    remote_apply,
    reserved_records,
    session_coverage,
    staging,
    sweeping,
)
from rumor.node.replication.replica.answers import DELTA_BUDGET, ENTRY_BUDGET, PUSH_BACK_BUDGET
from rumor.node.replication.replica.delta import AuditEntry, Coverage, Delta, WireRecord
from rumor.node.replication.replica.local_writes import HLC_BLOCK_MS, SEQ_BLOCK, Applied, Write
from rumor.node.replication.replica.reads import ListPage
from rumor.node.replication.replica.remote_apply import RemoteOutcome
from rumor.node.replication.replica.staging import MAX_BATCH_RECORDS
from rumor.node.replication.replica.state import Durability, ReplicaState, open_state
from rumor.node.storage.store import Store

__all__ = [
    "DELTA_BUDGET",
    "HLC_BLOCK_MS",
    "MAX_BATCH_RECORDS",
    "PUSH_BACK_BUDGET",
    "SEQ_BLOCK",
    "Applied",
    "Durability",
    "ListPage",
    "RemoteOutcome",
    "Replica",
    "Write",
]

T = TypeVar("T")


class _InState(Generic[T]):
    """An attribute of ``Replica`` that lives in its ``ReplicaState``."""

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.name = name

    @overload
    def __get__(self, replica: None, owner: type[Any]) -> _InState[T]: ...

    @overload
    def __get__(self, replica: Replica, owner: type[Any]) -> T: ...

    def __get__(self, replica: Replica | None, owner: type[Any]) -> T | _InState[T]:
        if replica is None:
            return self
        value: T = getattr(replica.state, self.name)
        return value

    def __set__(self, replica: Replica, value: T) -> None:
        setattr(replica.state, self.name, value)


class Replica:
    """One node's copy of the data, and the rules for changing it."""

    __slots__ = ("state",)
    state: ReplicaState

    store: _InState[Store] = _InState()
    node_id: _InState[int] = _InState()
    durability: _InState[Durability] = _InState()
    defer_after_ms: _InState[int] = _InState()
    clock: _InState[HybridClock] = _InState()
    watermarks: _InState[Watermarks] = _InState()
    durable_watermarks: _InState[dict[int, int]] = _InState()
    durable_seq: _InState[int] = _InState()
    seq: _InState[int] = _InState()  # the last own seq issued (durable or not)
    records_held: _InState[int] = _InState()
    tombstones_held: _InState[int] = _InState()
    deferred_held: _InState[int] = _InState()
    audit_buckets: _InState[list[int]] = _InState()
    audit_repairs_total: _InState[int] = _InState()
    invalid_records_skipped: _InState[int] = _InState()
    namespaces_to_sweep: _InState[set[bytes]] = _InState()
    ready_to_push: _InState[list[WireRecord]] = _InState()
    purge_rule: _InState[PurgeRule] = _InState()
    provisional: _InState[dict[int, int]] = _InState()
    listeners: _InState[list[Callable[[list[WireRecord]], None]]] = _InState()

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
        self.state = open_state(
            store,
            new_node_id=new_node_id,
            wall_ms=wall_ms,
            durability=durability,
            max_clock_offset_ms=max_clock_offset_ms,
        )
        remote_apply.refresh_deferred_floor(self.state)

    # ---- client writes --------------------------------------------------

    def write(self, write: Write, wall_ms: int) -> Applied:
        """Apply one client write; returns its header and durability ticket."""
        return local_writes.write_many(self.state, (write,), wall_ms)[0]

    def write_many(self, writes: Sequence[Write], wall_ms: int) -> list[Applied]:
        """Apply client writes, one HLC tick each; a write that cannot be encoded changes
        nothing and raises InvalidRequest."""
        return local_writes.write_many(self.state, writes, wall_ms)

    def write_all(self, writes: Sequence[Write], wall_ms: int) -> int:
        """``write_many`` returning only the durability ticket of the last write (0: none)."""
        return local_writes.write_all(self.state, writes, wall_ms)

    def skip_seqs_past(self, seq: int) -> None:
        """Issue no own seq <= ``seq`` from now on (see ``local_writes.skip_seqs_past``)."""
        local_writes.skip_seqs_past(self.state, seq)

    @property
    def skipped_seqs(self) -> int:
        """Own seqs issued or skipped that the own watermark does not cover yet."""
        return local_writes.skipped_seqs(self.state)

    def cover_skipped_seqs(self) -> int:
        """Cover them all; the ticket (see ``local_writes.cover_skipped_seqs``)."""
        return local_writes.cover_skipped_seqs(self.state)

    # ---- durability -----------------------------------------------------

    @property
    def written_ticket(self) -> int:
        """The ticket of the latest write: a WAL sync started now covers it."""
        return self.state.written

    @property
    def log_entries_dropped(self) -> int:
        """Replaced records' log entries dropped by the writes that replaced them."""
        return self.state.log_entries_dropped

    def issue_ticket(self) -> int:
        """A ticket for what was written outside the replica (a member entry): a WAL
        sync for it covers every write before it."""
        return staging.issue_ticket(self.state)

    def is_durable(self, ticket: int) -> bool:
        return ticket <= self.state.durable

    def mark_durable(self, ticket: int) -> None:
        """Every write with a ticket <= ``ticket`` is synced to disk."""
        staging.mark_durable(self.state, ticket)

    def take_ready_to_push(self) -> list[WireRecord]:
        """Durable records newly held here, to push to peers (each handed out once)."""
        return staging.take_ready_to_push(self.state)

    # ---- replicated records ---------------------------------------------

    def observe_clock(
        self, remote_hlc: int, wall_ms: int, trusted_wall_ms: int | None = None
    ) -> None:
        """Merge a peer's HLC, unless it is too far ahead to trust (see deferral)."""
        remote_apply.observe_clock(self.state, remote_hlc, wall_ms, trusted_wall_ms)

    def check_peer_message(
        self, records: Sequence[WireRecord], coverage: Sequence[Coverage] = ()
    ) -> None:
        """Raise MalformedPeerMessage unless every record and claim is well formed."""
        remote_apply.check_message(records, coverage)

    def apply_remote(
        self,
        records: Sequence[WireRecord],
        wall_ms: int,
        coverage: Sequence[Coverage] = (),
        *,
        session: bool = False,
    ) -> RemoteOutcome:
        """Apply records received from a peer, then its coverage claims (see remote_apply).

        A malformed record or claim rejects the whole message: MalformedPeerMessage.
        """
        return remote_apply.apply_remote(self.state, records, wall_ms, coverage, session=session)

    def begin_sync(self) -> None:
        """Start a synchronisation with one peer: forget provisional claims of an older one."""
        remote_apply.begin_sync(self.state)

    def sync_digest(self) -> dict[int, int]:
        """The digest to send within a synchronisation: durable marks and provisional claims."""
        return remote_apply.sync_digest(self.state)

    def own_watermarks(self) -> dict[int, int]:
        """This node's durable watermark vector, as digests advertise it."""
        return remote_apply.own_watermarks(self.state)

    def own_watermark(self, origin: int) -> int:
        """This node's advertised watermark for one origin (``own_watermarks()[origin]``)."""
        return remote_apply.own_watermark(self.state, origin)

    def apply_deferred(self, wall_ms: int) -> int:
        """Apply the deferred records whose time has come; returns how many were handled."""
        return remote_apply.apply_deferred(self.state, wall_ms)

    # ---- answers --------------------------------------------------------

    def delta_for(
        self,
        digest: Mapping[int, int],
        budget_bytes: int = DELTA_BUDGET,
        budget_entries: int = ENTRY_BUDGET,
    ) -> Delta:
        """The records a peer with watermarks ``digest`` lacks (see answers)."""
        return answers.delta_for(self.state, digest, budget_bytes, budget_entries)

    def push_back_for(self, watermarks: Mapping[int, int]) -> Delta | None:
        """What to push back to a peer with ``watermarks`` after pulling from it, if anything."""
        return answers.push_back_for(self.state, watermarks)

    # ---- audit ----------------------------------------------------------

    def audit_entries(
        self, buckets: Iterable[int], start: bytes = b"", budget: int = 1 << 62
    ) -> tuple[list[AuditEntry], bytes]:
        return auditing.audit_entries(self.state, buckets, start, budget)

    def audit_wanted(self, theirs: Iterable[AuditEntry], now_s: float) -> list[bytes]:
        return auditing.audit_wanted(self.state, theirs, now_s)

    def fetch(self, stored_keys: Iterable[bytes]) -> list[WireRecord]:
        return auditing.fetch(self.state, stored_keys)

    def apply_repairs(self, records: Sequence[WireRecord]) -> int:
        return auditing.apply_repairs(self.state, records)

    def plant(self, record: WireRecord) -> None:
        """Test hook: hold a record without checking it, marking it seen or pushing it."""
        staging.plant(self.state, record)

    # ---- namespace and retirement records -------------------------------

    def is_retired(self, node_id: int) -> bool:
        return reserved_records.is_retired(self.state, node_id)

    def retire(self, node_id: int, wall_ms: int) -> Applied:
        """Write the replicated, never-purged record that removes ``node_id`` for ever."""
        return reserved_records.retire(self.state, node_id, wall_ms)

    def namespace_record(self, namespace: bytes) -> RecordHeader | None:
        return reserved_records.namespace_record(self.state, namespace)

    def namespace_live(self, namespace: bytes) -> bool:
        return reserved_records.namespace_live(self.state, namespace)

    def namespaces(self, after: bytes | None = None) -> Iterator[tuple[bytes, RecordHeader, bytes]]:
        return reserved_records.namespaces(self.state, after)

    def namespaces_titled(self, title: bytes) -> list[bytes]:
        return reserved_records.namespaces_titled(self.state, title)

    # ---- reads ----------------------------------------------------------

    def lacking(self, wanted: Mapping[int, int]) -> dict[int, int]:
        """Per origin of ``wanted`` not covered here, the seq this replica reads up to."""
        return session_coverage.lacking(self.state, wanted)

    def header(self, namespace: bytes, key: bytes) -> RecordHeader | None:
        return reads.header(self.state.store, namespace, key)

    def value(self, namespace: bytes, key: bytes) -> bytes | None:
        return reads.value(self.state.store, namespace, key)

    def read(self, namespace: bytes, key: bytes, now_s: float) -> tuple[RecordHeader, bytes] | None:
        return reads.read(self.state.store, namespace, key, now_s)

    def read_many(
        self, namespace: bytes, keys: Sequence[bytes], now_s: float
    ) -> list[tuple[RecordHeader, bytes] | None]:
        return reads.read_many(self.state.store, namespace, keys, now_s)

    def list_page(
        self,
        namespace: bytes,
        prefix: bytes,
        start_after: bytes | None,
        limit: int,
        now_s: float,
        *,
        scan_budget: int | None = None,
        resume_from: bytes | None = None,
    ) -> ListPage:
        return reads.list_page(
            self.state.store,
            namespace,
            prefix,
            start_after,
            limit,
            now_s,
            scan_budget=scan_budget,
            resume_from=resume_from,
            runs=self.state.tombstone_runs,
        )

    # ---- garbage collection ---------------------------------------------

    def sweep(
        self,
        start: bytes,
        now_s: float,
        budget: int,
        stop: bytes | None = None,
        tally: sweeping.PassTally | None = None,
    ) -> bytes | None:
        return sweeping.sweep(self.state, start, now_s, budget, stop, tally)

    def sweep_namespace(self, namespace: bytes, now_s: float, budget: int) -> bool:
        return sweeping.sweep_namespace(self.state, namespace, now_s, budget)

    def sweep_log(
        self, start: bytes, budget: int, tally: sweeping.PassTally | None = None
    ) -> bytes | None:
        return sweeping.sweep_log(self.state, start, budget, tally)

    def compact(self, families: Iterable[str]) -> bool:
        return sweeping.compact(self.state, families)

    def purge(self, records: Iterable[tuple[bytes, RecordHeader]]) -> int:
        return sweeping.purge(self.state, records)
