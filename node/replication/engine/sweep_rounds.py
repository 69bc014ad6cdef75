"""Sweep rounds: purging what garbage collection allows, a slice per interval.

Every ``sweep_interval_ms`` the engine purges one slice: first the keys of
deleted namespaces (a namespace tombstone range-deletes its keys locally;
they go at once), otherwise ``sweep_slice_records`` headers of the key space,
where a tombstone or an expired record goes once the purge rule (two-phase
GC, see ``rumor.node.core.gc``) says it is stable everywhere, and a slice of
the log's entries of replaced records that every member has seen. The scan
resumes where the last slice stopped, so a pass over a large store costs
little per interval.
"""

from __future__ import annotations

from rumor.node.replication.engine.components import Services
from rumor.node.replication.engine.messages import Now


class SweepRounds:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.passes = 0
        self.purged = 0
        self._next_start = b""
        self._next_log = b""
        self._next_round_ms = 0

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
            if replica.sweep_namespace(namespace, now.wall_s, budget):
                replica.namespaces_to_sweep.discard(namespace)
            return  # one slice per round
        before = replica.records_held + replica.tombstones_held
        next_start = replica.sweep(self._next_start, now.wall_s, budget)
        self.purged += before - (replica.records_held + replica.tombstones_held)
        self._next_log = replica.sweep_log(self._next_log, budget) or b""
        if next_start is None:
            self.passes += 1
            self._next_start = b""
        else:
            self._next_start = next_start
