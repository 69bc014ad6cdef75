"""Sweep rounds: purging what garbage collection allows, a slice per interval.

Every ``sweep_interval_ms`` the engine purges one slice: first the keys of
deleted namespaces (a namespace tombstone range-deletes its keys locally;
they go at once), otherwise ``sweep_slice_records`` headers of the key space,
where a tombstone or an expired record goes once the purge rule (two-phase
GC, see ``rumor.node.core.gc``) says it is stable everywhere, and a slice of
the log's entries of replaced records that every member has seen. Each walk
resumes where its last slice stopped, so a pass over a large store costs
little per interval.

Work follows live data, not history:
- A finished pass is followed by another only once it could find something:
  a batch was written since it began (``written_ticket``: a new record, a
  replaced one, a purge), the purge rule moved, or (for the key space) the
  earliest expiration it saw has come. Otherwise a round scans nothing: the
  pass it skips would have found nothing to purge or drop. The rounds keep
  their cadence.
- Deleted entries stay in RocksDB until compacted, and every scan steps over
  them: once a walk has deleted more entries than it kept since its last
  compaction (and at least ``COMPACT_AFTER_DELETIONS``), the store compacts the
  span the walk emptied — not the whole family: a pass over a backlog of ten
  million entries compacts each span once, never the history ahead of it.
  Deletions outside the walk's own span (the log entries of purged records, a
  deleted namespace's keys) compact the whole family under the same rule. So
  a pass meets what is held and fewer deleted entries than the larger of that
  threshold and what it keeps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rumor.node.replication.engine.components import Services
from rumor.node.replication.engine.messages import Now
from rumor.node.replication.replica.sweeping import PassTally
from rumor.node.storage.store import KV, LOG, VAL

# Fewer deleted entries than this cost little to step over: no compaction for them.
COMPACT_AFTER_DELETIONS = 10_000


@dataclass(slots=True)
class _Walk:
    """One walk of the sweeper (the key space or the log): where it is, what it met."""

    families: tuple[str, ...]  # what its deletions leave behind in the store
    position: bytes | None = None  # None: no pass under way
    tally: PassTally = field(default_factory=PassTally)
    began: tuple[int, dict[int, int]] = (-1, {})  # written ticket and purge rule, at its start
    kept: int = 0  # entries the last finished pass left in place
    next_expiry_s: float = math.inf  # of the last finished pass
    # The walk's own deletions not yet compacted: from ``span_start`` to where it is.
    span_start: bytes = b""
    span_deleted: int = 0
    span_kept_before: int = 0  # the pass's kept entries when the span began
    span_wraps: bool = False  # the span began in an earlier pass: it runs to the end too
    # Deletions elsewhere in its families (a purged record's log entry, a namespace's
    # keys), since they were last compacted: those need the whole family compacted.
    scattered: int = 0

    def begin_if_worth_it(self, written: int, stable: dict[int, int], now_s: float) -> None:
        """Begin a pass unless one is under way or it could find nothing new: no batch
        written and no purge rule change since the last one began, and (key space) no
        expiration come since."""
        if self.position is not None:
            return
        if written == self.began[0] and stable == self.began[1] and now_s < self.next_expiry_s:
            return
        self.position = b""
        self.tally = PassTally()
        self.began = (written, dict(stable))
        # Deletions the last pass left uncompacted stay counted: many short passes
        # add up to one compaction, as one long pass would.
        self.span_wraps = self.span_deleted > 0
        self.span_start, self.span_kept_before = b"", 0

    def finish(self) -> None:
        self.position = None
        self.kept = self.tally.kept
        self.next_expiry_s = self.tally.next_expiry_s

    def span_to_compact(self, reached: bytes | None) -> tuple[bytes, bytes | None] | None:
        """After a slice that stopped at ``reached`` (None: the pass's end), the span its
        deletions emptied, if they outnumber what it kept there (and at least
        ``COMPACT_AFTER_DELETIONS``): compacting only that span costs what the pass
        deleted, however much history the family still holds beyond it."""
        kept = self.tally.kept - self.span_kept_before
        if self.span_wraps:
            kept = max(kept, self.kept)
        if self.span_deleted < COMPACT_AFTER_DELETIONS or self.span_deleted <= kept:
            return None
        span = (self.span_start, None if self.span_wraps else reached)
        self.span_start = reached or b""
        self.span_deleted = 0
        self.span_kept_before = self.tally.kept
        self.span_wraps = False
        return span

    def wants_full_compaction(self) -> bool:
        scattered = self.scattered
        if scattered >= COMPACT_AFTER_DELETIONS and scattered > max(self.kept, self.tally.kept):
            self.scattered = 0
            return True
        return False


class SweepRounds:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.passes = 0
        self.purged = 0
        self.compactions = 0
        self._records = _Walk((KV, VAL))
        self._log = _Walk((LOG,))
        self._next_round_ms = 0
        self._log_dropped_seen = 0  # the replica's count of log entries writes dropped

    def due_ms(self) -> int:
        return self._next_round_ms

    def tick(self, now: Now) -> None:
        if now.mono_ms < self._next_round_ms:
            return
        config = self.services.config
        self._next_round_ms = now.mono_ms + config.sweep_interval_ms
        replica = self.services.replica
        budget = config.sweep_slice_records
        for namespace in list(replica.namespaces_to_sweep):
            before = replica.records_held + replica.tombstones_held
            if replica.sweep_namespace(namespace, now.wall_s, budget):
                replica.namespaces_to_sweep.discard(namespace)
            purged = before - (replica.records_held + replica.tombstones_held)
            self.purged += purged
            self._records.scattered += purged
            self._log.scattered += purged  # a purged record's entry goes too
            return  # one slice per round
        records, log = self._records, self._log
        dropped = replica.log_entries_dropped  # by writes, wherever their entries were
        log.scattered += dropped - self._log_dropped_seen
        self._log_dropped_seen = dropped
        written, stable = replica.written_ticket, replica.purge_rule.stable
        records.begin_if_worth_it(written, stable, now.wall_s)
        if records.position is not None:
            deleted = records.tally.deleted
            next_start = replica.sweep(records.position, now.wall_s, budget, tally=records.tally)
            purged = records.tally.deleted - deleted
            self.purged += purged
            records.span_deleted += purged
            log.scattered += purged
            self._slice_done(records, next_start)
        log.begin_if_worth_it(written, stable, now.wall_s)
        if log.position is not None:
            deleted = log.tally.deleted
            next_start = replica.sweep_log(log.position, budget, tally=log.tally)
            log.span_deleted += log.tally.deleted - deleted
            self._slice_done(log, next_start)
        for walk in (records, log):
            if walk.wants_full_compaction() and replica.compact(walk.families):
                self.compactions += 1

    def _slice_done(self, walk: _Walk, next_start: bytes | None) -> None:
        span = walk.span_to_compact(next_start)
        # False: the store keeps no leftovers.
        if span is not None and self.services.replica.compact(walk.families, *span):
            self.compactions += 1
        walk.position = next_start
        if next_start is None:
            walk.finish()
            if walk is self._records:
                self.passes += 1
