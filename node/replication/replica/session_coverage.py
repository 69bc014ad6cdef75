"""Coverage of a session: which writes a session token names this replica cannot read yet.

A token names, per origin, the highest seq a client wrote or read. This
replica can answer that client once, for every entry, its watermark reaches
the seq: every write up to it is then held here or superseded by something
held (so a read returns the write or something newer), unless it is deferred
(stored, not readable until the local clock reaches it), which this module
counts as not covered.

Rules:
- Pure reads of the state: nothing changes, nothing is read from the store
  but the retirement cache.
- An origin the cluster removed for ever is covered: its writes that reached
  no one left with it, and no later write will ever come from it.
"""

from __future__ import annotations

from collections.abc import Mapping

from rumor.node.replication.replica import reserved_records
from rumor.node.replication.replica.state import ReplicaState


def readable_mark(state: ReplicaState, origin: int) -> int:
    """Every write of ``origin`` up to this seq is readable here (or superseded)."""
    mark = state.watermarks.get(origin)
    deferred = state.deferred_floor.get(origin)
    return mark if deferred is None else min(mark, deferred - 1)


def lacking(state: ReplicaState, wanted: Mapping[int, int]) -> dict[int, int]:
    """The entries of ``wanted`` not covered here, each with the seq this replica reads up to."""
    missing: dict[int, int] = {}
    for origin, seq in wanted.items():
        have = readable_mark(state, origin)
        if have < seq and not reserved_records.is_retired(state, origin):
            missing[origin] = have
    return missing
