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
  them: when a pass ends and more entries were deleted in its families since
  their last compaction than it kept (and at least
  ``COMPACT_AFTER_DELETIONS``), the store compacts those families in the
  background. Only at the end of a pass: a walk resumes past its own
  deletions, so it meets them on its next pass only, and compacting in the
  middle of a pass over a backlog of millions had RocksDB rewrite what lay
  ahead again and again. So a pass meets what is held and fewer deleted
  entries than the larger of that threshold and what it keeps.
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
    # Deletions in its families since they were last compacted: the walk's own, and
    # those made elsewhere (a purged record's log entry, a deleted namespace's keys, a
    # replaced record's log entry dropped by the write that replaced it).
    deleted_uncompacted: int = 0

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

    def finish(self) -> None:
        self.position = None
        self.kept = self.tally.kept
        self.next_expiry_s = self.tally.next_expiry_s

    def compaction_due(self) -> bool:
        """At the end of a pass: whether the deletions since the last compaction (at least
        ``COMPACT_AFTER_DELETIONS``) outnumber the entries the pass kept. Never in the
        middle of a pass: a walk resumes past its own deletions, so it meets them only
        on its next pass, and a pass over a backlog of millions would otherwise have
        RocksDB rewrite the history still ahead of it again and again."""
        deleted = self.deleted_uncompacted
        if deleted < COMPACT_AFTER_DELETIONS or deleted <= self.kept:
            return False
        self.deleted_uncompacted = 0
        return True


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
            self._records.deleted_uncompacted += purged
            self._log.deleted_uncompacted += purged  # a purged record's entry goes too
            return  # one slice per round
        records, log = self._records, self._log
        dropped = replica.log_entries_dropped  # by writes, wherever their entries were
        log.deleted_uncompacted += dropped - self._log_dropped_seen
        self._log_dropped_seen = dropped
        written, stable = replica.written_ticket, replica.purge_rule.stable
        records.begin_if_worth_it(written, stable, now.wall_s)
        if records.position is not None:
            deleted = records.tally.deleted
            next_start = replica.sweep(records.position, now.wall_s, budget, tally=records.tally)
            purged = records.tally.deleted - deleted
            self.purged += purged
            records.deleted_uncompacted += purged
            log.deleted_uncompacted += purged
            self._slice_done(records, next_start)
            if next_start is None:
                self.passes += 1
        log.begin_if_worth_it(written, stable, now.wall_s)
        if log.position is not None:
            deleted = log.tally.deleted
            next_start = replica.sweep_log(log.position, budget, tally=log.tally)
            log.deleted_uncompacted += log.tally.deleted - deleted
            self._slice_done(log, next_start)

    def _slice_done(self, walk: _Walk, next_start: bytes | None) -> None:
        walk.position = next_start
        if next_start is None:
            walk.finish()
            # False from compact: the store keeps no leftovers.
            if walk.compaction_due() and self.services.replica.compact(walk.families):
                self.compactions += 1
