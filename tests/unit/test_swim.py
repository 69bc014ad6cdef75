"""SWIM membership: the transition table, and Membership applying it (no I/O)."""

from __future__ import annotations

import itertools

import pytest

from rumor.node.core.membership import TRANSITIONS, Event, Member, State, supersedes, transition
from rumor.node.replication.engine.membership import Membership
from rumor.node.storage import MemoryStore

ME = 0xA
PEER = 0xB


def membership() -> Membership:
    table = Membership(
        MemoryStore(), Member(ME, "127.0.0.1:1", 0, State.ALIVE, 1), suspicion_timeout_ms=100
    )
    table.heard_from(PEER, "127.0.0.1:2", 7, now_ms=0)
    return table


@pytest.mark.parametrize(
    ("state", "event", "expected"),
    [
        (State.ALIVE, Event.PROBE_FAILED, (State.SUSPECT, False)),
        (State.ALIVE, Event.PROBE_OK, None),
        (State.SUSPECT, Event.PROBE_OK, (State.ALIVE, True)),
        (State.SUSPECT, Event.SUSPICION_TIMEOUT, (State.DEAD, False)),
        (State.SUSPECT, Event.PROBE_FAILED, None),
        (State.DEAD, Event.PROBE_OK, (State.ALIVE, True)),
        (State.DEAD, Event.SUSPICION_TIMEOUT, None),
        (State.LEFT, Event.HEARD_SAME_BOOT, None),
        (State.LEFT, Event.HEARD_NEW_BOOT, (State.ALIVE, True)),
        (State.LEFT, Event.PROBE_OK, None),
        (State.DEAD, Event.REMOVED, (State.REMOVED, False)),
        (State.REMOVED, Event.HEARD_NEW_BOOT, None),
        (State.REMOVED, Event.PROBE_OK, None),
    ],
)
def test_each_transition(state: State, event: Event, expected: tuple[State, bool] | None) -> None:
    assert transition(state, event) == expected


def test_removed_is_final_and_every_other_state_can_be_removed() -> None:
    for event in Event:
        assert transition(State.REMOVED, event) is None
    for state in State:
        if state is not State.REMOVED:
            assert transition(state, Event.REMOVED) == (State.REMOVED, False)


def test_only_coming_back_raises_the_incarnation() -> None:
    for (state, event), (new, bump) in TRANSITIONS.items():
        assert bump == (new is State.ALIVE and state is not State.ALIVE), (state, event)


def test_a_failed_probe_makes_a_suspect_then_dead_after_the_timeout() -> None:
    table = membership()
    table.probe_failed(PEER, now_ms=10)
    assert table.state_of(PEER) is State.SUSPECT
    assert table.tick(now_ms=50) == []
    assert table.state_of(PEER) is State.SUSPECT
    table.tick(now_ms=110)
    assert table.state_of(PEER) is State.DEAD


def test_a_suspect_that_answers_is_alive_at_a_higher_incarnation() -> None:
    table = membership()
    table.probe_failed(PEER, now_ms=10)
    table.probe_succeeded(PEER, now_ms=20)
    member = table.members[PEER]
    assert member.state is State.ALIVE and member.incarnation == 1
    table.tick(now_ms=1000)
    assert table.state_of(PEER) is State.ALIVE


def test_a_departed_member_stays_left_until_a_new_process_speaks() -> None:
    table = membership()
    table.merge(Member(PEER, "127.0.0.1:2", 0, State.LEFT, 7), now_ms=5)
    table.heard_from(PEER, "127.0.0.1:2", 7, now_ms=6)  # its last words
    assert table.state_of(PEER) is State.LEFT
    table.heard_from(PEER, "127.0.0.1:2", 8, now_ms=7)  # restarted
    assert table.state_of(PEER) is State.ALIVE


def test_a_member_refutes_suspicion_of_itself() -> None:
    table = membership()
    table.merge(Member(ME, "127.0.0.1:1", 0, State.SUSPECT, 1), now_ms=5)
    assert table.me.state is State.ALIVE and table.me.incarnation == 1
    assert any(update.id == ME and update.incarnation == 1 for update in table.updates(limit=50))


def test_dead_members_time_out_only_with_a_member_timeout() -> None:
    table = membership()
    table.heard_from(0xC, "127.0.0.1:3", 9, now_ms=0)  # up: a majority sees PEER dead
    table.member_timeout_ms = 500
    table.probe_failed(PEER, now_ms=0)
    table.tick(now_ms=100)  # dead
    assert table.tick(now_ms=300) == []
    assert table.tick(now_ms=700) == [PEER]


def test_the_merge_order_is_total_for_every_pair_of_states() -> None:
    """Any two reports about one member: exactly one of them wins (or they are equal)."""
    reports = [
        Member(PEER, "a", incarnation, state, 7)
        for incarnation, state in itertools.product(range(3), State)
    ]
    for one, other in itertools.product(reports, reports):
        if one == other:
            continue
        assert (
            supersedes(one, other) != supersedes(other, one)
            or one.state is other.state is State.REMOVED
        )
