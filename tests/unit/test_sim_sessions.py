"""Session clients in the simulator: they move between nodes and break no guarantee,
and the same schedules without the wait for the token do break them (the check bites)."""

from __future__ import annotations

import pytest

from rumor.experiments.sim import session_clients
from rumor.experiments.sim.execution import run_schedule
from rumor.experiments.sim.random_schedule import generate
from rumor.experiments.sim.schedule import Schedule
from rumor.node.replication.replica.replica import Replica

SCHEDULES = range(8)


def _session_failures(seeds: range) -> tuple[int, int]:
    """(schedules with a session violation, calls answered), over ``seeds``."""
    failed = answered = 0
    made: list[session_clients.SessionClients] = []
    original = session_clients.SessionClients.__init__

    def remembering(self: session_clients.SessionClients, cluster: object, stop_ms: float) -> None:
        original(self, cluster, stop_ms)  # type: ignore[arg-type]
        made.append(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(session_clients.SessionClients, "__init__", remembering)
        for seed in seeds:
            outcome = run_schedule(generate(2000 + seed, session_clients=2))
            failed += "session-guarantees" in outcome.invariants_broken
    answered = sum(call.answered for clients in made for call in clients.calls)
    return failed, answered


def test_session_clients_break_no_guarantee_under_random_faults() -> None:
    failed, answered = _session_failures(SCHEDULES)
    assert failed == 0
    assert answered > 200  # they did call: 2 clients x 40 calls x 8 schedules at most


def test_without_waiting_for_the_token_the_same_clients_break_guarantees(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(Replica, "lacking", lambda self, wanted: {})
    failed, _ = _session_failures(SCHEDULES)
    assert failed > 0


def test_session_plans_survive_a_round_trip_through_json_and_dropping_slots() -> None:
    schedule = generate(7, session_clients=2)
    assert len(schedule.sessions) == 2
    assert Schedule.from_json(schedule.to_json()) == schedule
    dropped = schedule.without_slots({0})
    assert all(call[0] != 0 for plan in dropped.sessions for call in plan.calls)
    # Without session clients, a seed draws the schedule it always drew.
    assert generate(7).writes == schedule.writes and generate(7).sessions == ()
