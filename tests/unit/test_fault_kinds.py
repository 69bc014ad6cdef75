"""One fault vocabulary (rumor.experiments.faults.FaultKind) for scenarios and schedules.

Earlier spellings still parse; every kind a schedule draws has a planner that
runs it; and drawing a schedule from a seed gives exactly the schedules it
gave before the draws became a table (pinned by a digest of their JSON).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from rumor.experiments.faults import ALIASES, FaultKind
from rumor.experiments.lab.harness import Harness
from rumor.experiments.lab.scenario import (
    ACTIONS,
    LAB_FAULTS,
    Recovery,
    Scenario,
    ScenarioError,
    bundled,
    load,
)
from rumor.experiments.sim.execution import PLANNERS
from rumor.experiments.sim.fuzz import schedule_for
from rumor.experiments.sim.random_schedule import generate
from rumor.experiments.sim.schedule import DRAWS, FaultPlan, Schedule

#: sha256 of the JSON of the quick fuzz's 200 schedules (seed 1) and of 50 odd-shaped ones,
#: as the draws before the table made them (with ``oneway`` spelled ``block``), since the
#: kinds ``stale_backup``, ``replace`` and ``return`` joined the table (every seed draws
#: anew from then on).
SCHEDULES_DIGEST = "dd36af7bec6066c2b3d2b1a1e2f0f616b5eb44ea989cef51a7ec5169808651ee"


@pytest.mark.parametrize(
    ("spelling", "kind"),
    [("oneway", FaultKind.BLOCK), ("clock_offset", FaultKind.SKEW), ("kill", FaultKind.CRASH)],
)
def test_earlier_spellings_are_aliases(spelling: str, kind: FaultKind) -> None:
    assert ALIASES[spelling] == kind
    assert FaultKind.parse(spelling) is kind
    assert FaultKind.parse(kind.value) is kind


def test_an_unknown_kind_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown fault kind 'flood'; use one of partition, "):
        FaultKind.parse("flood")


def _scenario(action: str) -> str:
    return f'name = "x"\n[[faults]]\nat_s = 1\naction = "{action}"\nnode = 0\n'


@pytest.mark.parametrize(
    ("action", "parsed"),
    [
        ("kill", FaultKind.CRASH),
        ("crash", FaultKind.CRASH),
        ("clock_offset", FaultKind.SKEW),
        ("oneway", FaultKind.BLOCK),
        ("restart", Recovery.RESTART),
        ("heal", Recovery.HEAL),
    ],
)
def test_scenario_actions_parse_to_the_vocabulary(action: str, parsed: object) -> None:
    scenario = Scenario.from_toml(_scenario(action))
    assert scenario.faults[0].action == parsed
    assert scenario.faults[0].action in ACTIONS


def test_a_fault_the_lab_cannot_inject_is_refused() -> None:
    assert FaultKind.FORGE not in LAB_FAULTS
    with pytest.raises(ScenarioError, match="unknown fault action 'forge'; use one of partition"):
        Scenario.from_toml(_scenario("forge"))


def test_every_bundled_scenario_loads_with_its_faults_in_the_vocabulary() -> None:
    names = bundled()
    assert {"partition", "oneway", "crash_restart", "skew_fence", "smoke"} <= set(names)
    for name in names:
        for step in load(name).faults:
            assert step.action in ACTIONS


def test_the_harness_applies_every_scenario_action(tmp_path: Path) -> None:
    harness = Harness(Scenario.from_toml('name = "x"'), tmp_path, say=lambda _: None)
    assert set(harness.faults.appliers()) == set(ACTIONS)


def test_every_kind_a_schedule_has_a_planner() -> None:
    assert set(DRAWS) | {FaultKind.SPLIT} == set(PLANNERS)


def test_a_schedule_file_with_an_earlier_spelling_loads() -> None:
    schedule = generate(3)
    data = json.loads(schedule.to_json())
    data["faults"] = [{**f, "kind": "oneway"} for f in data["faults"]]
    loaded = Schedule.from_json(json.dumps(data))
    assert all(f.kind is FaultKind.BLOCK for f in loaded.faults)
    assert Schedule.from_json(schedule.to_json()) == schedule
    assert isinstance(loaded.faults[0], FaultPlan)


def test_a_seed_draws_the_same_schedules_as_ever() -> None:
    digest = hashlib.sha256()
    for index in range(200):
        digest.update(schedule_for(1, index, "fsync", ()).to_json().encode())
    for seed in range(50):
        odd = generate(seed, nodes=(3, 9), writes=20, faults=8, keys=5)
        digest.update(odd.to_json().encode())
    assert digest.hexdigest() == SCHEDULES_DIGEST
