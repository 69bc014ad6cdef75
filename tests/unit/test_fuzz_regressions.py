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

Later, with every kind of ``KINDS_OWN_WRITES`` (``restore`` found them): seed 20
schedule 48 (two session clients) and seed 23 schedules 74, 127 and 179 under
durability ``wal`` did not converge (two audit digests). A node restarted on a
stale copy of its own disk claimed own writes it did not hold, so its peers never
sent them back: a copy taken before its first write read its missing own
watermark as the seq it skipped for its peers, and a ``wal`` copy covered its whole
reserved seq block at start. A protocol bug, fixed by the rule that a node's own
watermark covers only own writes it holds (``engine/own_writes.py``;
``tests/unit/test_stale_copy.py``).

Later, with every kind of ``KINDS_ORPHANED`` (``replace`` and ``return``
together): seed 1 schedule 111 under durability ``wal`` lost 59 acknowledged
writes (shrunk: 5 writes, one delete lost). Nodes 0 and 1 formed a group apart
from 2, 3 and 4 (a split); node 1 went down past the member timeout and node 0
was replaced at its address by a new, empty process that joined the others.
So no member left knew node 1: nobody retired it, their GC never counted it,
and they purged a tombstone newer than a put node 1 held. Back on its old disk,
node 1 was an unknown id, taken in, and its put came back everywhere. A
protocol bug, fixed by the rule that a node back past the member timeout says
so and is refused as removed by a member that does not know it
(``engine/envelopes.py``, "Back past the member timeout";
``tests/unit/test_member_lifecycle.py``).
"""

from __future__ import annotations

import json

import pytest

from rumor.experiments.faults import FaultKind
from rumor.experiments.sim import invariants, session_clients
from rumor.experiments.sim.execution import run_schedule
from rumor.experiments.sim.fuzz import schedule_for
from rumor.experiments.sim.schedule import DRAWS, Schedule
from rumor.node.replication.engine.envelopes import Envelopes

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


# The fault kinds the fuzz drew from when the stale-copy schedules failed.
KINDS_OWN_WRITES = frozenset(
    {
        FaultKind.PARTITION,
        FaultKind.BLOCK,
        FaultKind.LOSS,
        FaultKind.DELAY,
        FaultKind.SKEW,
        FaultKind.CRASH,
        FaultKind.POWER,
        FaultKind.JOIN,
        FaultKind.RESTORE,
        FaultKind.REMOVE,
        FaultKind.DUPLICATE,
        FaultKind.FORGE,
        FaultKind.SNAPJOIN,
        FaultKind.STALE_BACKUP,
        FaultKind.REPLACE,
        FaultKind.RETURN,
    }
)


@pytest.mark.parametrize(
    ("seed", "index", "durability", "session_clients"),
    [(20, 48, "fsync", 2), (23, 74, "wal", 0), (23, 127, "wal", 0), (23, 179, "wal", 0)],
)
def test_a_stale_copy_of_a_disk_takes_its_own_writes_back_and_converges(
    seed: int, index: int, durability: str, session_clients: int
) -> None:
    schedule = schedule_for(
        seed, index, durability, (), session_clients=session_clients, kinds=KINDS_OWN_WRITES
    )
    assert FaultKind.RESTORE in {fault.kind for fault in schedule.faults}
    outcome = run_schedule(schedule)
    assert not outcome.failed, outcome.summary()


# The fault kinds the fuzz drew from when seed 1 schedule 111 (wal) failed.
KINDS_ORPHANED = frozenset(DRAWS)

# Seed 1 schedule 111 (wal), shrunk: the put of key 10 by node 1 (apart with node 0)
# came back over node 4's later delete.
ORPHANED_SHRUNK = Schedule.from_json(
    json.dumps(
        {
            "seed": 5930514040094391559,
            "durability": "wal",
            "canaries": [],
            "nodes": [
                {"slot": 0, "start_ms": 0, "seeds": [2]},
                {"slot": 1, "start_ms": 0, "seeds": [0, 2]},
                {"slot": 2, "start_ms": 357, "seeds": [0]},
                {"slot": 3, "start_ms": 153, "seeds": [2, 0]},
                {"slot": 4, "start_ms": 380, "seeds": [2, 0]},
            ],
            "writes": [
                {"at_ms": 1213, "slot": 2, "key": 7, "op": "put", "ttl_s": 0},
                {"at_ms": 1251, "slot": 4, "key": 4, "op": "ttl", "ttl_s": 2},
                {"at_ms": 1273, "slot": 2, "key": 15, "op": "put", "ttl_s": 0},
                {"at_ms": 1572, "slot": 1, "key": 10, "op": "put", "ttl_s": 0},
                {"at_ms": 1764, "slot": 4, "key": 10, "op": "delete", "ttl_s": 0},
            ],
            "faults": [
                {
                    "kind": "split",
                    "at_ms": 0,
                    "duration_ms": 2099,
                    "slots": [2, 3, 4],
                    "style": "refuse",
                    "value": 0.0,
                },
                {
                    "kind": "partition",
                    "at_ms": 1300,
                    "duration_ms": 248,
                    "slots": [0],
                    "style": "drop",
                    "value": 0.0,
                },
                {
                    "kind": "return",
                    "at_ms": 2125,
                    "duration_ms": 7000,
                    "slots": [1],
                    "style": "",
                    "value": 0.0,
                },
                {
                    "kind": "replace",
                    "at_ms": 2214,
                    "duration_ms": 918,
                    "slots": [0],
                    "style": "",
                    "value": 0.0,
                },
            ],
        }
    )
)


@pytest.mark.parametrize(
    "schedule",
    [schedule_for(1, 111, "wal", (), kinds=KINDS_ORPHANED), ORPHANED_SHRUNK],
    ids=["1-111", "1-111.min"],
)
def test_a_member_only_a_replaced_node_knew_does_not_bring_old_writes_back(
    schedule: Schedule,
) -> None:
    assert {FaultKind.REPLACE, FaultKind.RETURN} <= {fault.kind for fault in schedule.faults}
    outcome = run_schedule(schedule)
    assert not outcome.failed, outcome.summary()
    assert outcome.rejoins >= 1


def test_without_the_rule_the_shrunk_schedule_loses_the_delete(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(Envelopes, "_was_away", lambda self, now: False)
    assert "lost-writes" in run_schedule(ORPHANED_SHRUNK).invariants_broken
