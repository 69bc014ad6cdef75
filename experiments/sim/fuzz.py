"""Many random schedules; each failure saved as JSON, shrunk, and given a replay command.

Schedule ``i`` of ``fuzz(count, seed)`` is ``generate(seed * 1_000_003 + i)``:
the same command finds the same failures. A failing schedule is written to
``<out>/<seed>-<i>.json`` and its shrunk form to ``<seed>-<i>.min.json``;
``rumor simulate --replay FILE`` runs either again, exactly.

``fuzz_in_parallel`` splits the schedules among processes: schedule ``i`` is
the same schedule whichever process runs it, so the same command finds the
same failures with any number of jobs.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from rumor.experiments.faults import FaultKind
from rumor.experiments.sim.execution import run_schedule
from rumor.experiments.sim.invariants import Outcome
from rumor.experiments.sim.random_schedule import generate
from rumor.experiments.sim.schedule import Schedule
from rumor.experiments.sim.shrink import shrink
from rumor.node.replication.engine.canaries import Canary
from rumor.node.replication.engine.messages import NoticeKind

SEED_STRIDE = 1_000_003


@dataclass(slots=True)
class Failure:
    index: int
    schedule: Schedule
    outcome: Outcome
    path: Path | None = None
    shrunk: Schedule | None = None
    shrunk_path: Path | None = None


@dataclass(slots=True)
class FuzzReport:
    schedules: int = 0
    wall_s: float = 0.0
    failures: list[Failure] = field(default_factory=list)
    reported: dict[str, int] = field(default_factory=dict)
    acknowledged: int = 0
    with_snapshot: int = 0  # schedules in which a node joined by snapshot
    snapshot_joins: int = 0
    snapshot_failures: int = 0
    retired: int = 0  # members retired by a timeout (left, dead, or never confirmed)
    probe_mismatches: int = 0  # probes answered under another id than the probed one
    rejoins: int = 0  # nodes refused as removed that rejoined as new

    def absorb(self, other: FuzzReport) -> None:
        """Add ``other``'s counts and failures to this report's (failures kept in index order)."""
        for each in fields(self):
            mine, theirs = getattr(self, each.name), getattr(other, each.name)
            if isinstance(mine, dict):
                for name, value in theirs.items():
                    mine[name] = mine.get(name, 0) + value
            else:
                setattr(self, each.name, mine + theirs)
        self.failures.sort(key=lambda failure: failure.index)


def schedule_for(
    seed: int,
    index: int,
    durability: str,
    canaries: tuple[Canary, ...],
    session_clients: int = 0,
    kinds: frozenset[FaultKind] | None = None,
) -> Schedule:
    return generate(
        seed * SEED_STRIDE + index,
        durability=durability,
        canaries=canaries,
        session_clients=session_clients,
        kinds=kinds,
    )


def breaks(invariants: set[str]) -> Callable[[Schedule], bool]:
    """Whether a schedule still breaks one of ``invariants`` (what shrinking keeps)."""
    return lambda schedule: bool(run_schedule(schedule).invariants_broken & invariants)


def fuzz(
    count: int,
    seed: int,
    *,
    first: int = 0,
    durability: str = "fsync",
    canaries: tuple[Canary, ...] = (),
    out: Path | None = None,
    shrink_failures: bool = True,
    stop_at_first: bool = False,
    session_clients: int = 0,
    say: Callable[[str], None] = lambda _: None,
) -> FuzzReport:
    """Run schedules ``first`` to ``count - 1`` of ``seed``."""
    report = FuzzReport()
    started = time.perf_counter()
    for index in range(first, count):
        schedule = schedule_for(seed, index, durability, canaries, session_clients)
        outcome = run_schedule(schedule)
        report.schedules += 1
        report.acknowledged += outcome.acknowledged
        report.with_snapshot += outcome.snapshot_joins > 0
        report.snapshot_joins += outcome.snapshot_joins
        report.snapshot_failures += outcome.snapshot_failures
        report.retired += outcome.notices.get(NoticeKind.MEMBER_TIMED_OUT.value, 0)
        report.probe_mismatches += outcome.notices.get(NoticeKind.PROBE_MISMATCH.value, 0)
        report.rejoins += outcome.rejoins
        for name, value in outcome.reported.items():
            report.reported[name] = report.reported.get(name, 0) + value
        if outcome.failed:
            failure = Failure(index, schedule, outcome)
            report.failures.append(failure)
            if out is not None:
                failure.path = schedule.save(out / f"{seed}-{index}.json")
            if shrink_failures:
                failure.shrunk = shrink(schedule, breaks(outcome.invariants_broken))
                if out is not None:
                    failure.shrunk_path = failure.shrunk.save(out / f"{seed}-{index}.min.json")
            tell(failure, say)
            if stop_at_first:
                break
    report.wall_s = time.perf_counter() - started
    return report


def tell(failure: Failure, say: Callable[[str], None]) -> None:
    """What a failed schedule broke, and where to replay it from."""
    say(f"schedule {failure.index} failed: {failure.outcome.summary()}")
    if failure.path is not None:
        say(f"  wrote {failure.path}")
    if failure.shrunk is not None:
        shrunk = failure.shrunk
        say(
            f"  shrunk to {len(shrunk.nodes)} nodes,"
            f" {len(shrunk.faults)} faults, {len(shrunk.writes)} writes"
        )
    replay_from = failure.shrunk_path or failure.path
    if replay_from is not None:
        say(f"  replay: rumor simulate --replay {replay_from}")


def fuzz_in_parallel(
    count: int, seed: int, jobs: int, say: Callable[[str], None] = lambda _: None, **options: Any
) -> FuzzReport:
    """``fuzz`` with the schedules split among ``jobs`` processes (``options`` as
    ``fuzz`` takes them); failures are told once every process is done."""
    if jobs <= 1 or count < 2:
        return fuzz(count, seed, say=say, **options)
    started = time.perf_counter()
    bounds = [count * part // jobs for part in range(jobs + 1)]
    parts = [(seed, bounds[i], bounds[i + 1], options) for i in range(jobs)]
    # spawn: the caller may have threads (grpc's) that a fork would copy mid-step.
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        reports = list(pool.map(_fuzz_part, parts))
    report = FuzzReport()
    for part in reports:
        report.absorb(part)
    for failure in report.failures:
        tell(failure, say)
    report.wall_s = time.perf_counter() - started
    return report


def _fuzz_part(part: tuple[int, int, int, dict[str, Any]]) -> FuzzReport:
    seed, first, end, options = part
    return fuzz(end, seed, first=first, **options)


def replay(path: Path) -> tuple[Schedule, Outcome]:
    schedule = Schedule.load(path)
    return schedule, run_schedule(schedule)
