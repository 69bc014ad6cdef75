"""The audit: finding and repairing records the watermarks claim but the store lacks.

Theory of operation. Watermarks are claims, and a bug in them would lose data
silently, so nodes compare audit buckets (``core.audit``) now and then. For
the buckets that differ, the peer sends its ``AuditEntry`` list
(``audit_entries``); this node asks for the records it should hold but does
not (``audit_wanted``), the peer sends them (``fetch``) and this node applies
them (``apply_repairs``), counting each in ``audit_repairs_total``.

Rules:
- Only records this node's watermarks claim as seen are wanted: anything
  else is merely in flight, and anti-entropy will bring it. So a repair is
  a genuine divergence, and ``audit_repairs_total`` must stay 0.
- Tombstones and expired records are never wanted (GC purges them at
  different times on different nodes).
- Fetched records are peer input: every one is checked before any is
  applied, and a sender never serves a record it would reject.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rumor.node.core import audit
from rumor.node.core.record import RecordHeader, decode_version
from rumor.node.core.version import Version, supersedes
from rumor.node.replication.replica import answers, remote_apply, staging
from rumor.node.replication.replica.delta import AuditEntry, WireRecord
from rumor.node.replication.replica.staging import Pending
from rumor.node.replication.replica.state import ReplicaState
from rumor.node.storage.store import KV


def audit_entries(
    state: ReplicaState, buckets: Iterable[int], start: bytes = b"", budget: int = 1 << 62
) -> tuple[list[AuditEntry], bytes]:
    """(key, version) of the records held in ``buckets`` among up to ``budget`` records
    from ``start`` on, and where the next slice starts (empty: this was the last).

    An audit compares the key space one slice at a time, so an answer costs its
    budget, not a scan of the whole store."""
    wanted = set(buckets)
    entries: list[AuditEntry] = []
    for scanned, (stored_key, raw) in enumerate(state.store.scan(KV, start)):
        if scanned == budget:
            return entries, stored_key
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
    return entries, b""


def audit_wanted(state: ReplicaState, theirs: Iterable[AuditEntry], now_s: float) -> list[bytes]:
    """Keys whose record a peer holds and this node should hold too, but does not."""
    wanted = []
    for entry in theirs:
        if entry.tombstone or 0 < entry.expiration <= now_s:
            continue
        if not state.watermarks.seen(entry.origin, entry.seq):
            continue
        raw = state.store.get(KV, entry.stored_key)
        if raw is not None:
            version, tombstone = decode_version(raw)
            if not supersedes(Version(entry.hlc, entry.origin), False, version, tombstone):
                continue
        wanted.append(entry.stored_key)
    return wanted


def fetch(state: ReplicaState, stored_keys: Iterable[bytes]) -> list[WireRecord]:
    """The records held for ``stored_keys`` that a peer would accept."""
    return answers.held_records(state, list(stored_keys))


def apply_repairs(state: ReplicaState, records: Sequence[WireRecord]) -> int:
    """Apply records fetched by an audit (already seen, so not filtered); counts repairs."""
    headers = remote_apply.check_message(records)
    batch = state.store.batch()
    pending = Pending()
    repaired = 0
    for record, header in zip(records, headers, strict=True):
        if remote_apply.place(state, batch, pending, record, header):
            repaired += 1
    if repaired:
        staging.commit(state, batch, pending)
        state.audit_repairs_total += repaired
    return repaired
