"""What this node sends a peer that lacks records: anti-entropy answers and push-backs.

Theory of operation. ``delta_for(digest)`` answers a peer whose watermarks are
``digest`` from one consistent view (one synchronous step). Per origin o, in
seq order, every seq in (digest[o], durable wm[o]] is accounted for: the
record itself if it is still held; else the record that replaced it (the
``log`` column family keeps the entries of replaced records until GC) unless
the peer has seen that one; else the record deferred here. Held records above
the watermark (arrived out of order) are sent too, so whatever this node
holds reaches the peer. Each origin gets a ``Coverage`` claim.

Rules:
- A complete answer's claims never vouch for a seq whose record, or
  something newer for its key, was not sent (or already seen by the peer).
  A deferred record sent does not stand for its key: it is older than what
  may be held for the key, which goes out too when a seq names it.
- The answer is cut short (``complete=False``) at the byte budget (at least
  one record is sent), at the entry budget (log entries visited: the work of
  one answer on the event loop is bounded whatever the store holds, and the
  asker's next round goes on from where this one stopped), or at a key whose
  latest change is not durable yet: it must not vouch for a state a power
  loss could undo.
- The log is read lazily, in seq order, and the walk stops at the budget:
  an answer costs what it sends, never the length of the tail above the
  asker's watermark.
- A sender never serves a record it would reject: a held record that breaks
  a structural rule (``record_shape``) is left out as if it were absent and
  counted in ``invalid_records_skipped``. Its seqs are still covered, which
  is sound for every other seq; the receiver would reject the record anyway.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping

from rumor.node.core import record_shape
from rumor.node.core.record import HEADER_FIXED_SIZE
from rumor.node.replication.replica import remote_apply
from rumor.node.replication.replica.delta import Coverage, Delta, WireRecord
from rumor.node.replication.replica.state import ReplicaState
from rumor.node.storage import layout
from rumor.node.storage.store import KV, LOG, VAL

DELTA_BUDGET = 4 * 1024 * 1024
ENTRY_BUDGET = 1 << 62  # log entries visited per answer (the engine passes its own)
PUSH_BACK_BUDGET = 256 * 1024  # a larger backlog is left for the peer to pull
_LAST_ORIGIN = (1 << 64) - 1


def push_back_for(state: ReplicaState, watermarks: Mapping[int, int]) -> Delta | None:
    """What to push back to a peer with ``watermarks`` after pulling from it, if anything.

    Only a small backlog, whole: a peer that lacks more pulls it itself, one
    synchronisation at a time, whereas every node that finds it lagging would
    push it the whole backlog at once.
    """
    delta = delta_for(state, watermarks, budget_bytes=PUSH_BACK_BUDGET)
    if not delta.records or not all(claim.complete for claim in delta.coverage):
        return None
    return delta


def delta_for(
    state: ReplicaState,
    digest: Mapping[int, int],
    budget_bytes: int = DELTA_BUDGET,
    budget_entries: int = ENTRY_BUDGET,
) -> Delta:
    """The records a peer with watermarks ``digest`` lacks, from one consistent view."""
    records: list[WireRecord] = []
    coverage: list[Coverage] = []
    sent_keys: set[bytes] = set()
    used = 0
    visited = 0
    deferred = remote_apply.deferred_by_origin(state) if state.deferred_held else {}
    for origin in log_origins(state, state.durable_watermarks):
        mark = state.durable_watermarks.get(origin, 0)
        base = digest.get(origin, 0)
        last = base
        for seq, entry in _entries(state, origin, base, mark, deferred.get(origin, [])):
            if visited >= budget_entries and (records or last > base):
                coverage.append(Coverage(origin, base, last, complete=False))
                return Delta(records, coverage)
            visited += 1
            claimed = seq <= mark
            if isinstance(entry, WireRecord):  # deferred here: send it as it came
                record: WireRecord | None = _servable(state, entry)
            elif entry in state.unsynced:
                if not claimed:
                    continue
                coverage.append(Coverage(origin, base, last, complete=False))
                return Delta(records, coverage)
            else:
                record = _held_record(state, entry, digest, sent_keys)
            if record is not None:
                size = record.size()
                if records and used + size > budget_bytes:
                    coverage.append(Coverage(origin, base, last, complete=False))
                    return Delta(records, coverage)
                records.append(record)
                if not isinstance(entry, WireRecord):
                    # Only the held record stands for its key: a deferred one is older
                    # than what this node may hold, which must still be sent.
                    sent_keys.add(record.stored_key)
                used += size
            if claimed:
                last = seq
        if mark > base:
            coverage.append(Coverage(origin, base, mark, complete=True))
    return Delta(records, coverage)


def _entries(
    state: ReplicaState,
    origin: int,
    base: int,
    mark: int,
    deferred: list[tuple[int, WireRecord]],
) -> Iterator[tuple[int, bytes | WireRecord]]:
    """Origin's seqs above ``base`` in order, lazily: a stored key from the log, or a
    deferred record (few, already in memory)."""
    logged: Iterator[tuple[int, bytes | WireRecord]] = (
        (layout.split_log_key(log_key)[1], stored_key)
        for log_key, stored_key in state.store.scan(
            LOG,
            layout.log_key(origin, base + 1),
            layout.log_key(origin + 1, 0) if origin < _LAST_ORIGIN else None,
        )
    )
    if not deferred:
        yield from logged
        return
    held_back = sorted(
        ((seq, record) for seq, record in deferred if base < seq <= mark),
        key=lambda entry: entry[0],
    )
    yield from heapq.merge(logged, held_back, key=lambda entry: entry[0])


def log_origins(state: ReplicaState, known: Mapping[int, int]) -> list[int]:
    """Every origin with a watermark here or an entry in the log, in order.

    Only the gaps between known origins are probed, each up to the next known
    one: a probe never walks a known origin's entries, nor the deleted ones
    among them that the store has not compacted yet."""
    origins = set(known)
    probe = 0
    for bound in [*sorted(origins), None]:
        stop = None if bound is None else layout.log_key(bound, 0)
        while True:
            found = next(iter(state.store.scan(LOG, layout.log_key(probe, 0), stop)), None)
            if found is None:
                break
            origin = layout.split_log_key(found[0])[0]
            origins.add(origin)
            if origin == _LAST_ORIGIN:
                return sorted(origins)
            probe = origin + 1
        if bound is None or bound == _LAST_ORIGIN:
            break
        probe = bound + 1
    return sorted(origins)


def _held_record(
    state: ReplicaState, stored_key: bytes, digest: Mapping[int, int], sent_keys: set[bytes]
) -> WireRecord | None:
    """The record held for a key, unless already sent, already seen by the peer, or invalid."""
    if stored_key in sent_keys:
        return None
    header = state.store.get(KV, stored_key)
    if header is None:  # purged: stable everywhere, nobody needs it
        return None
    record = WireRecord(
        stored_key[: layout.NAMESPACE_BYTES], stored_key[layout.NAMESPACE_BYTES :], header
    )
    if len(header) >= HEADER_FIXED_SIZE:  # else corrupt, and _servable counts it
        _, origin, seq = record.ids()
        if seq <= digest.get(origin, 0):
            return None
    value = state.store.get(VAL, stored_key) or b""
    return _servable(state, record._replace(value=value))


def held_records(state: ReplicaState, stored_keys: list[bytes]) -> list[WireRecord]:
    """The records held for ``stored_keys`` that may be served, in order (audit fetches)."""
    records = []
    for stored_key in stored_keys:
        header = state.store.get(KV, stored_key)
        if header is not None:
            value = state.store.get(VAL, stored_key) or b""
            record = WireRecord(
                stored_key[: layout.NAMESPACE_BYTES],
                stored_key[layout.NAMESPACE_BYTES :],
                header,
                value,
            )
            servable = _servable(state, record)
            if servable is not None:
                records.append(servable)
    return records


def _servable(state: ReplicaState, record: WireRecord) -> WireRecord | None:
    """``record`` if a peer would accept it; None (and counted) if it breaks a rule."""
    if record_shape.well_formed(*record):
        return record
    state.invalid_records_skipped += 1
    return None
