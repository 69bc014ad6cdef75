"""Fuzz schedules that once failed (seed 20, two session clients), each for a cause found.

- Schedules 7 and 477: an anti-entropy answer sent a deferred record of a key
  and counted it as the key's answer, leaving out (but covering) the newer
  record held for it; the asker marked that one seen without it, and once its
  tombstone was purged the audit brought the old record back (a protocol bug,
  fixed in ``replica.answers``; the unit test beside the deferral tests holds
  it too).
- Schedule 149: a seed address whose node was removed before some nodes ever
  reached it keeps them from purging (by design: a seed never joined may lead
  a group formed apart), while nodes that reached it purge; every key reads the
  same, the audit digests differ. Reported, as a down member's pinning is.
- Schedule 390: a session read a write that only its node held; the node was
  then restored from a stale copy of its disk, lost it and issued its seqs
  again, so the session's token was covered by other writes. What a restore
  loses is not judged, as for the lost-writes invariant.
"""

from __future__ import annotations

import pytest

from rumor.experiments.faults import FaultKind
from rumor.experiments.sim import invariants, session_clients
from rumor.experiments.sim.execution import run_schedule
from rumor.experiments.sim.fuzz import schedule_for
from rumor.experiments.sim.schedule import DRAWS

# The fault kinds the fuzz drew from when these schedules failed: the kinds added
# since would draw other schedules from the same seed.
KINDS_THEN = frozenset(DRAWS) - {FaultKind.STALE_BACKUP, FaultKind.REPLACE, FaultKind.RETURN}


def outcome_of(index: int) -> invariants.Outcome:
    return run_schedule(schedule_for(20, index, "fsync", (), session_clients=2, kinds=KINDS_THEN))


@pytest.mark.parametrize("index", [7, 477])
def test_a_deferred_record_no_longer_hides_the_newer_one_of_its_key(index: int) -> None:
    outcome = outcome_of(index)
    assert not outcome.failed, outcome.summary()


def test_purges_held_back_by_a_seed_never_joined_are_reported_not_failed() -> None:
    outcome = outcome_of(149)
    assert not outcome.failed, outcome.summary()
    assert outcome.reported["purges held back by a seed never joined"] == 1


def test_without_the_seed_exemption_the_digests_differ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(invariants, "held_back_by_a_seed", lambda live: False)
    assert "convergence" in outcome_of(149).invariants_broken


def test_what_a_stale_restore_lost_is_not_judged_against_a_session() -> None:
    outcome = outcome_of(390)
    assert not outcome.failed, outcome.summary()


def test_judged_it_breaks_monotonic_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session_clients, "_lost_to_replaced_disks", lambda cluster: set())
    assert "session-guarantees" in outcome_of(390).invariants_broken
