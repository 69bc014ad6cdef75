"""Delta debugging: the shortest schedule that still breaks the same invariant.

``shrink`` drops faults, then nodes (with their writes, faults and the seeds
pointing at them), then writes, in chunks that halve (Zeller's ddmin), keeping
each smaller schedule that still fails with one of the invariants the
original broke. The seed is kept, so what remains is drawn from the same
stream; every candidate is a full, deterministic run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TypeVar

from rumor.experiments.sim.schedule import Schedule

T = TypeVar("T")
Fails = Callable[[Schedule], bool]


def ddmin(items: Sequence[T], fails: Callable[[Sequence[T]], bool], budget: list[int]) -> list[T]:
    """A 1-minimal subsequence of ``items`` that still ``fails`` (within ``budget[0]`` runs)."""
    current = list(items)
    chunks = 2
    while len(current) >= 1 and budget[0] > 0:
        size = max(1, len(current) // chunks)
        reduced = False
        for start in range(0, len(current), size):
            if budget[0] <= 0:
                break
            candidate = current[:start] + current[start + size :]
            budget[0] -= 1
            if fails(candidate):
                current = candidate
                chunks = max(chunks - 1, 2)
                reduced = True
                break
        if not reduced:
            if size == 1:
                break
            chunks = min(len(current), chunks * 2)
    return current


def shrink(schedule: Schedule, fails: Fails, max_runs: int = 150) -> Schedule:
    budget = [max_runs]
    best = schedule

    def keeps(candidate: Schedule) -> bool:
        return fails(candidate)

    faults = ddmin(best.faults, lambda fs: keeps(replace(best, faults=tuple(fs))), budget)
    best = replace(best, faults=tuple(faults))
    extra = sorted(best.slots - {n.slot for n in best.nodes})
    base = [n.slot for n in best.nodes if n.slot != 0] + extra
    kept = ddmin(base, lambda slots: keeps(best.without_slots(set(base) - set(slots))), budget)
    best = best.without_slots(set(base) - set(kept))
    writes = ddmin(best.writes, lambda ws: keeps(replace(best, writes=tuple(ws))), budget)
    return replace(best, writes=tuple(writes))
