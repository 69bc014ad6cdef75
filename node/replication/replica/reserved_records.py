"""The records of Rumor's own namespaces: namespaces, and retirements of members.

Theory of operation. Namespaces and removed members are records, so they
replicate like data. The record of namespace N lives in the reserved
namespace under the key N (32 hex digits), with the title as its value; a
deleted namespace is a tombstone there. A removed member's retirement record
lives in the members namespace under its id (16 hex digits). Both are read
often (every write checks its namespace, every message its sender), so they
are cached here, and live namespaces are indexed by title
(``namespace_titles``); ``staging.commit`` updates the caches and the index
with every batch that holds such a record.

Rules:
- A namespace tombstone is never purged, so an id is never reused, and it
  drops every later record for the namespace.
- A retirement record is never purged: a removed id is refused for ever.
"""

from __future__ import annotations

from collections.abc import Iterator

from rumor.node.core.namespaces import MEMBERS_NAMESPACE, RESERVED_NAMESPACE
from rumor.node.core.record import RecordHeader, decode_version
from rumor.node.replication.replica import local_writes, reads
from rumor.node.replication.replica.local_writes import Applied, Write
from rumor.node.replication.replica.namespace_titles import NamespaceTitles
from rumor.node.replication.replica.state import ReplicaState
from rumor.node.storage import layout
from rumor.node.storage.store import KV, prefix_end


def namespace_record(state: ReplicaState, namespace: bytes) -> RecordHeader | None:
    """The record of a namespace in the reserved namespace (cached)."""
    key = namespace.hex().encode()
    if key not in state.namespaces:
        state.namespaces[key] = reads.header(state.store, RESERVED_NAMESPACE, key)
    return state.namespaces[key]


def namespace_live(state: ReplicaState, namespace: bytes) -> bool:
    record = namespace_record(state, namespace)
    return record is not None and not record.tombstone


def namespaces(
    state: ReplicaState, after: bytes | None = None
) -> Iterator[tuple[bytes, RecordHeader, bytes]]:
    """Every namespace record held, in id order, after the id key ``after`` if given:
    (id as hex key, header, title bytes)."""
    start = RESERVED_NAMESPACE if after is None else RESERVED_NAMESPACE + after + b"\x00"
    for stored_key, raw in state.store.scan(KV, start, prefix_end(RESERVED_NAMESPACE)):
        key = stored_key[layout.NAMESPACE_BYTES :]
        header = RecordHeader.decode(raw)
        title = b"" if header.tombstone else reads.value(state.store, RESERVED_NAMESPACE, key)
        yield key, header, title or b""


def namespaces_titled(state: ReplicaState, title: bytes) -> list[bytes]:
    """The ids (hex keys) of the live namespaces titled ``title``: an index lookup (the
    index is built by one walk of the namespace records, the first time)."""
    if state.titles is None:
        state.titles = NamespaceTitles(
            (key, None if header.tombstone else held) for key, header, held in namespaces(state)
        )
    return state.titles.holding(title)


def is_retired(state: ReplicaState, node_id: int) -> bool:
    if node_id not in state.retired:
        raw = state.store.get(KV, layout.record_key(MEMBERS_NAMESPACE, member_key(node_id)))
        state.retired[node_id] = raw is not None and not decode_version(raw)[1]
    return state.retired[node_id]


def retire(state: ReplicaState, node_id: int, wall_ms: int) -> Applied:
    """Write the replicated, never-purged record that removes ``node_id`` for ever."""
    write = Write(MEMBERS_NAMESPACE, member_key(node_id), b"removed")
    return local_writes.write_many(state, [write], wall_ms)[0]


def member_key(node_id: int) -> bytes:
    return f"{node_id:016x}".encode()
