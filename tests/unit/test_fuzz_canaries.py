"""The quick fuzz finds every fixed bug switched back on, and nothing with none on.

Each canary makes the engine behave as it did before a fix; a fuzz that cannot
tell the difference would not catch the bug coming back.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from rumor.experiments.sim.fuzz import fuzz, fuzz_in_parallel
from rumor.experiments.sim.random_schedule import generate
from rumor.experiments.sim.schedule import Schedule
from rumor.node.replication.engine.canaries import Canary

QUICK = 200  # schedules of the quick fuzz (``make chaos`` runs 10,000)
JOBS = 2  # processes sharing them (the same schedules and failures as one)
# The quick fuzz's seed for a canary whose fault seed 1's 200 schedules draw too
# rarely since the kinds ``stale_backup``, ``replace`` and ``return`` joined the table
# (seed 2 finds gc_alone at schedule 9, restored_rejoins at 25).
SEEDS = {Canary.GC_ALONE: 2, Canary.RESTORED_REJOINS: 2}


@pytest.mark.parametrize("canary", list(Canary), ids=lambda canary: canary.value)
def test_the_quick_fuzz_finds_each_canary(canary: Canary) -> None:
    seed = SEEDS.get(canary, 1)
    report = fuzz(QUICK, seed, canaries=(canary,), shrink_failures=False, stop_at_first=True)
    assert report.failures, f"{report.schedules} schedules and {canary} went unnoticed"


def test_the_quick_fuzz_finds_nothing_without_canaries() -> None:
    report = fuzz_in_parallel(QUICK, 1, JOBS, shrink_failures=False)
    assert report.schedules == QUICK
    assert report.acknowledged > QUICK * 100  # the schedules did write
    assert not report.failures, "\n".join(
        f"schedule {f.index}: {f.outcome.summary()}" for f in report.failures[:5]
    )


def test_a_fuzz_in_parallel_runs_the_same_schedules_and_finds_the_same_failures() -> None:
    options: dict[str, Any] = {"canaries": (Canary.GC_ALONE,), "shrink_failures": False}
    alone = fuzz(13, 2, **options)  # seed 2 finds gc_alone at schedule 9
    shared = fuzz_in_parallel(13, 2, 3, **options)  # 4, 4 and 5 schedules
    assert alone.failures, "the canary makes schedules fail to compare"
    assert [f.index for f in shared.failures] == [f.index for f in alone.failures]
    assert (shared.schedules, shared.acknowledged, shared.reported) == (
        alone.schedules,
        alone.acknowledged,
        alone.reported,
    )


def test_a_schedule_file_names_its_canaries_as_the_cli_does() -> None:
    schedule = generate(5, canaries=(Canary.SNAPSHOT_UNADMITTED, Canary.GC_ALONE))
    text = schedule.to_json()
    assert json.loads(text)["canaries"] == ["gc_alone", "snapshot_unadmitted"]
    assert Schedule.from_json(text) == schedule
