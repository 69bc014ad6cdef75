"""A joiner that took writes while its snapshot travelled keeps them (no install).

Found by the fuzz under ``wal``: a fresh node asked a peer for a copy, became
ready meanwhile through a peer's exchange, acknowledged client writes, and
then installed the copy, which threw those writes away. The schedule below
(quick fuzz, seed 3, ``wal``, index 89) does exactly that; the joiner must
now fall back to anti-entropy and every invariant hold.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from rumor.experiments.sim import cluster as sim_cluster
from rumor.experiments.sim.disk import SimulatedDisk
from rumor.experiments.sim.execution import run_schedule
from rumor.experiments.sim.fuzz import schedule_for
from rumor.experiments.sim.process import SimulatedProcess


def test_a_joiner_that_took_writes_meanwhile_does_not_install_the_copy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[SimulatedProcess] = []
    start = sim_cluster.Cluster.start

    def recording(
        self: sim_cluster.Cluster,
        slot: int,
        seeds: Sequence[int] = (),
        disk: SimulatedDisk | None = None,
    ) -> SimulatedProcess:
        process = start(self, slot, seeds, disk)
        started.append(process)
        return process

    monkeypatch.setattr(sim_cluster.Cluster, "start", recording)
    outcome = run_schedule(schedule_for(3, 89, "wal", ()))
    assert not outcome.failed, outcome.summary()
    kept = [
        notice
        for process in started
        for _, notice in process.notices
        if "holds data of its own" in notice.message
    ]
    assert kept, "the schedule no longer makes a joiner take writes while its copy travels"
