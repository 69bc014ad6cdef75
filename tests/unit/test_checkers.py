"""The consistency checkers (rumor.experiments.lab.checkers) on hand-made histories.

Each checker gets a history that must pass and histories that must fail it:
a lost acknowledged write; unequal final digests or a late convergence; a key
whose nodes disagree or whose final version is not its highest acknowledged
write; a deleted key that is live again at the end, or that a node's Watch
stream shows coming back after its tombstone. The edge cases the rules name
are pinned down too: a put hidden behind a newer record that has since
expired is not lost, and neither is one behind a purged tombstone; an
unacknowledged attempt may explain a higher version. Visibility is checked
on a three-write, three-node example computed by hand.
"""

from __future__ import annotations

from rumor.experiments.lab.checkers import (
    Verdict,
    check_all,
    convergence,
    lost_writes,
    lww,
    no_resurrection,
    observe,
    session_figures,
    session_guarantees,
)
from rumor.experiments.lab.history import Ack, Applied, Attempt, Held, History, MovingCall
from rumor.experiments.lab.visibility import nearest_rank, visibility

NODES = ["n1", "n2", "n3"]
ORIGIN = {"n1": 0xA1, "n2": 0xB2, "n3": 0xC3}
MS = 1_000_000
S = 1_000_000_000
START_NS = 50 * S
END_WALL_S = 1_700_000_000.0
PAST = int(END_WALL_S) - 10  # an expiration that has passed when the final state is read
FUTURE = int(END_WALL_S) + 3600


def ack(
    key: str,
    hlc: int,
    *,
    node: str = "n1",
    deleted: bool = False,
    expiration: int | None = None,
    acked_ms: int = 100,
    op: int = 0,
) -> Ack:
    return Ack(
        op=op,
        node=node,
        key=key,
        deleted=deleted,
        value=None if deleted else f"value-{hlc}",
        expiration=expiration,
        hlc=hlc,
        origin=ORIGIN[node],
        seq=hlc,
        started_ns=START_NS + acked_ms * MS - 2 * MS,
        acked_ns=START_NS + acked_ms * MS,
    )


def held(
    key: str,
    hlc: int,
    *,
    origin_node: str = "n1",
    deleted: bool = False,
    expiration: int | None = None,
    nodes: list[str] | None = None,
) -> list[Held]:
    return [
        Held(
            node=node,
            key=key,
            hlc=hlc,
            origin=ORIGIN[origin_node],
            seq=hlc,
            deleted=deleted,
            expiration=expiration,
        )
        for node in (NODES if nodes is None else nodes)
    ]


def held_like(write: Ack, nodes: list[str] | None = None) -> list[Held]:
    """What every node (or ``nodes``) holds when ``write`` won."""
    return held(
        write.key,
        write.hlc,
        origin_node=write.node,
        deleted=write.deleted,
        expiration=write.expiration,
        nodes=nodes,
    )


def applied(
    node: str,
    key: str,
    hlc: int,
    at_ms: int,
    *,
    origin_node: str = "n1",
    deleted: bool = False,
    expiration: int | None = None,
) -> Applied:
    return Applied(
        node=node,
        key=key,
        hlc=hlc,
        origin=ORIGIN[origin_node],
        seq=hlc,
        deleted=deleted,
        expiration=expiration,
        applied_ns=START_NS + at_ms * MS,
    )


def attempt(key: str, *, deleted: bool = False) -> Attempt:
    return Attempt(
        op=99,
        node="n2",
        key=key,
        deleted=deleted,
        error="DEADLINE_EXCEEDED",
        started_ns=START_NS + 150 * MS,
    )


def history(
    acks: list[Ack],
    holdings: list[Held],
    *,
    applied_events: list[Applied] | None = None,
    attempts: list[Attempt] | None = None,
    digests: dict[str, int] | None = None,
    converged_after_s: float | None = 2.0,
) -> History:
    healed_ns = START_NS + 10 * S
    return History(
        nodes=list(NODES),
        acks=acks,
        attempts=attempts or [],
        applied=applied_events or [],
        held=holdings,
        faults=[],
        final_digests=digests if digests is not None else dict.fromkeys(NODES, 0xFEED),
        started_ns=START_NS,
        healed_ns=healed_ns,
        converged_ns=None if converged_after_s is None else healed_ns + int(converged_after_s * S),
        end_wall_s=END_WALL_S,
    )


def joined(verdict: Verdict) -> str:
    return "\n".join(verdict.details)


# ---------------------------------------------------------------------------
# Verdict


def test_verdict_line_marks_pass_and_fail() -> None:
    assert Verdict("lost-writes", True, "0 of 3 acknowledged writes lost", []).line() == (
        "✔ lost-writes: 0 of 3 acknowledged writes lost"
    )
    assert Verdict("lww", False, "1 of 2 keys wrong", ["x"]).line() == "✘ lww: 1 of 2 keys wrong"


def test_check_all_runs_every_checker_in_order() -> None:
    first, second = ack("k", 10, op=1), ack("k", 20, node="n2", op=2)
    verdicts = check_all(history([first, second], held_like(second)))
    assert [v.name for v in verdicts] == ["lost-writes", "convergence", "lww", "no-resurrection"]
    assert all(v.ok for v in verdicts), [v.line() for v in verdicts]


# ---------------------------------------------------------------------------
# Lost writes


def test_lost_writes_passes_when_the_highest_version_is_held_everywhere() -> None:
    first, second = ack("k", 10, op=1), ack("k", 20, node="n2", op=2)
    verdict = lost_writes(history([first, second], held_like(second)))
    assert verdict.ok
    assert verdict.summary == "0 of 2 acknowledged writes lost"


def test_an_older_version_on_one_node_is_a_lost_write() -> None:
    first, second = ack("k", 10, op=1), ack("k", 20, node="n2", op=2)
    holdings = held_like(second, ["n1", "n2"]) + held_like(first, ["n3"])
    verdict = lost_writes(history([first, second], holdings))
    assert not verdict.ok
    assert verdict.summary.startswith("1 of 2 acknowledged writes lost")
    assert len(verdict.details) == 1
    assert "'k'" in verdict.details[0]
    assert "op 2" in verdict.details[0]
    assert "n3 holds put (10, a1)" in verdict.details[0]


def test_a_live_put_missing_from_a_node_is_lost() -> None:
    write = ack("k", 10)
    verdict = lost_writes(history([write], held_like(write, ["n1", "n2"])))
    assert not verdict.ok
    assert "n3 holds nothing" in joined(verdict)


def test_a_put_hidden_behind_a_newer_expired_record_is_not_lost() -> None:
    old = ack("k", 10, op=1)
    newer_expired = ack("k", 20, node="n2", expiration=PAST, op=2)
    # Still held (expired) on two nodes, already purged on the third.
    holdings = held_like(newer_expired, ["n1", "n2"])
    verdict = lost_writes(history([old, newer_expired], holdings))
    assert verdict.ok, verdict.details


def test_an_expired_put_may_be_gone() -> None:
    write = ack("k", 10, expiration=PAST)
    assert lost_writes(history([write], [])).ok


def test_an_unexpired_put_may_not_be_gone() -> None:
    write = ack("k", 10, expiration=FUTURE)
    verdict = lost_writes(history([write], []))
    assert not verdict.ok
    assert len(verdict.details) == 3


def test_writes_behind_a_purged_tombstone_are_not_lost() -> None:
    put, delete = ack("k", 10, op=1), ack("k", 20, deleted=True, op=2)
    assert lost_writes(history([put, delete], [])).ok


def test_a_tombstone_seen_only_in_the_watch_stream_covers_a_purge() -> None:
    put = ack("k", 10)
    # A delete that timed out for the client but happened: n2 applied its tombstone.
    tombstone = applied("n2", "k", 20, 300, origin_node="n2", deleted=True)
    hist = history([put], [], applied_events=[tombstone], attempts=[attempt("k", deleted=True)])
    assert lost_writes(hist).ok


def test_an_older_tombstone_does_not_excuse_a_missing_put() -> None:
    delete, put = ack("k", 10, deleted=True, op=1), ack("k", 20, op=2)
    verdict = lost_writes(history([delete, put], []))
    assert not verdict.ok
    assert verdict.summary.startswith("1 of 2")


# ---------------------------------------------------------------------------
# Convergence


def test_convergence_passes_and_says_how_long_it_took() -> None:
    verdict = convergence(history([], [], converged_after_s=2.5), bound_s=30)
    assert verdict.ok
    assert "2.500 s after the heal" in verdict.summary


def test_unequal_digests_fail_convergence() -> None:
    digests = {"n1": 0xAA, "n2": 0xAA, "n3": 0xBB}
    verdict = convergence(history([], [], digests=digests), bound_s=30)
    assert not verdict.ok
    assert verdict.summary == "2 different final digests across 3 nodes"
    assert any("n3" in detail and "00000000000000bb" in detail for detail in verdict.details)


def test_a_node_without_a_digest_fails_convergence() -> None:
    verdict = convergence(history([], [], digests={"n1": 1, "n2": 1}), bound_s=30)
    assert not verdict.ok
    assert "n3" in joined(verdict)


def test_no_convergence_time_fails() -> None:
    verdict = convergence(history([], [], converged_after_s=None), bound_s=30)
    assert not verdict.ok
    assert "not within 30 s" in verdict.summary


def test_converging_after_the_bound_fails() -> None:
    verdict = convergence(history([], [], converged_after_s=40.0), bound_s=30)
    assert not verdict.ok
    assert "40.000 s" in verdict.summary


# ---------------------------------------------------------------------------
# Last writer wins


def test_lww_passes_when_every_key_ends_at_its_highest_acknowledged_write() -> None:
    a1, a2 = ack("a", 10, op=1), ack("a", 30, node="n3", op=2)
    b1 = ack("b", 20, node="n2", op=3)
    verdict = lww(history([a1, a2, b1], held_like(a2) + held_like(b1)))
    assert verdict.ok, verdict.details
    assert verdict.summary == "all 2 keys end at their highest acknowledged write on every node"


def test_a_divergent_node_fails_lww() -> None:
    first, second = ack("k", 10, op=1), ack("k", 20, node="n2", op=2)
    holdings = held_like(second, ["n1", "n2"]) + held_like(first, ["n3"])
    verdict = lww(history([first, second], holdings))
    assert not verdict.ok
    assert "nodes disagree" in joined(verdict)


def test_a_final_value_that_is_not_the_highest_acknowledged_write_fails_lww() -> None:
    first, second = ack("k", 10, op=1), ack("k", 20, node="n2", op=2)
    verdict = lww(history([first, second], held_like(first)))
    assert not verdict.ok
    assert verdict.summary == "1 of 1 keys do not end at their highest acknowledged write"
    assert "not the highest acknowledged write" in joined(verdict)


def test_a_higher_version_is_accepted_only_when_an_attempt_may_have_written_it() -> None:
    write = ack("k", 10)
    unexplained = held("k", 40, origin_node="n2")
    assert not lww(history([write], unexplained)).ok
    assert lww(history([write], unexplained, attempts=[attempt("k")])).ok


def test_with_an_attempt_the_held_version_may_not_be_older_than_the_highest_ack() -> None:
    first, second = ack("k", 10, op=1), ack("k", 20, node="n2", op=2)
    verdict = lww(history([first, second], held_like(first), attempts=[attempt("k")]))
    assert not verdict.ok


def test_a_tombstone_purged_on_some_nodes_agrees_with_nodes_still_holding_it() -> None:
    put, delete = ack("k", 10, op=1), ack("k", 20, deleted=True, op=2)
    assert lww(history([put, delete], held_like(delete, ["n1"]))).ok


def test_a_live_record_on_some_nodes_and_nothing_on_others_fails_lww() -> None:
    write = ack("k", 10)
    verdict = lww(history([write], held_like(write, ["n1"])))
    assert not verdict.ok
    assert "n2, n3 hold nothing" in joined(verdict)


# ---------------------------------------------------------------------------
# No resurrection


def test_a_deleted_key_that_stays_deleted_passes() -> None:
    put, delete = ack("k", 10, op=1), ack("k", 20, deleted=True, op=2)
    stream = [applied(node, "k", 10, 100 + i, origin_node="n1") for i, node in enumerate(NODES)] + [
        applied(node, "k", 20, 200 + i, deleted=True) for i, node in enumerate(NODES)
    ]
    verdict = no_resurrection(history([put, delete], held_like(delete), applied_events=stream))
    assert verdict.ok, verdict.details
    assert "1 such key" in verdict.summary


def test_a_deleted_key_live_at_the_end_is_a_resurrection() -> None:
    put, delete = ack("k", 10, op=1), ack("k", 20, deleted=True, op=2)
    holdings = held_like(delete, ["n1", "n3"]) + held_like(put, ["n2"])
    verdict = no_resurrection(history([put, delete], holdings))
    assert not verdict.ok
    assert "deleted by delete op 2" in joined(verdict)
    assert "n2 holds live put (10, a1)" in joined(verdict)


def test_an_expired_key_live_again_at_the_end_is_a_resurrection() -> None:
    put = ack("k", 10, op=1)
    expiring = ack("k", 20, expiration=PAST, op=2)
    holdings = held_like(expiring, ["n1", "n3"]) + held_like(put, ["n2"])
    verdict = no_resurrection(history([put, expiring], holdings))
    assert not verdict.ok
    assert "expired by put op 2" in joined(verdict)


def test_a_newer_live_version_from_an_attempt_is_not_a_resurrection() -> None:
    delete = ack("k", 20, deleted=True)
    revived = held("k", 30, origin_node="n2")
    assert not no_resurrection(history([delete], revived)).ok
    assert no_resurrection(history([delete], revived, attempts=[attempt("k")])).ok


def test_an_older_version_applied_after_a_tombstone_is_a_resurrection() -> None:
    put, delete = ack("k", 10, op=1), ack("k", 20, deleted=True, op=2)
    # n2 came back to a tombstone state by the end, but its Watch stream shows the
    # old put applied after the tombstone (listed out of order: time decides).
    stream = [
        applied("n2", "k", 10, 400),
        applied("n2", "k", 20, 200, deleted=True),
        applied("n2", "k", 20, 500, deleted=True),
    ]
    verdict = no_resurrection(history([put, delete], held_like(delete), applied_events=stream))
    assert not verdict.ok
    assert "0 live records" in verdict.summary
    assert "1 older versions applied after a tombstone" in verdict.summary
    assert "n2 applied live put (10, a1) 200.0 ms after tombstone (20, a1)" in joined(verdict)


# ---------------------------------------------------------------------------
# Visibility


def test_visibility_on_a_hand_computed_example() -> None:
    # a: acked at 100 ms by n1; n1 0 (applied before the ack), n2 5 ms, n3 30 ms.
    a = ack("k1", 10, node="n1", acked_ms=100, op=1)
    # b: acked at 200 ms by n1; n1 0, n2 100 ms, n3 never.
    b = ack("k2", 20, node="n1", acked_ms=200, op=2)
    # c: acked at 150 ms by n2, newer than a on k1; n1 10 ms, n2 0; n3 only ever
    # applies a still newer (unacknowledged) version, at 400 ms: 250 ms.
    c = ack("k1", 15, node="n2", acked_ms=150, op=3)
    stream = [
        applied("n1", "k1", 10, 99),
        applied("n2", "k1", 10, 105),
        applied("n3", "k1", 10, 130),
        applied("n1", "k2", 20, 199),
        applied("n2", "k2", 20, 300),
        applied("n2", "k1", 15, 149, origin_node="n2"),
        applied("n1", "k1", 15, 160, origin_node="n2"),
        applied("n3", "k1", 30, 400, origin_node="n3"),
    ]
    stats = visibility(history([a, b, c], [], applied_events=stream))

    delays = {w.ack.op: w.delays_ns for w in stats.writes}
    assert delays[1] == {"n1": 0, "n2": 5 * MS, "n3": 30 * MS}
    assert delays[2] == {"n1": 0, "n2": 100 * MS, "n3": None}
    assert delays[3] == {"n1": 10 * MS, "n2": 0, "n3": 250 * MS}
    assert [w.full_ns for w in stats.writes] == [30 * MS, None, 250 * MS]

    curve = stats.t_visibility
    assert curve["n1"][0] == 2 / 3
    assert curve["n1"][10] == 1.0
    assert curve["n2"][0] == 1 / 3
    assert curve["n2"][5] == 2 / 3
    assert curve["n2"][50] == 2 / 3
    assert curve["n2"][100] == 1.0
    assert curve["n3"][20] == 0.0
    assert curve["n3"][50] == 1 / 3
    assert curve["n3"][500] == 2 / 3
    assert curve["n3"][5000] == 2 / 3
    assert stats.share_visible("n3", 250) == 2 / 3
    assert stats.never_seen == {"n1": 0, "n2": 0, "n3": 1}
    assert stats.never_fully_replicated == 1

    full = stats.full_replication
    assert full is not None
    assert (full.count, full.p50_ms, full.p90_ms, full.p99_ms, full.max_ms) == (
        2,
        30.0,
        250.0,
        250.0,
        250.0,
    )
    assert stats.delays_ms("n2") == [0.0, 5.0, 100.0]


def test_visibility_without_writes() -> None:
    stats = visibility(history([], []))
    assert stats.total == 0
    assert stats.full_replication is None
    assert stats.t_visibility["n1"][10] == 1.0


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]
    assert nearest_rank(values, 50) == 50.0
    assert nearest_rank(values, 99) == 99.0
    assert nearest_rank(values, 100) == 100.0
    assert nearest_rank([7.0], 1) == 7.0


# ---------------------------------------------------------------------------
# The history as the properties see it


def test_observe_gives_the_properties_acks_attempts_holdings_and_watch_events() -> None:
    put = ack("k", 10, op=1)
    tombstone = applied("n2", "k", 20, 300, origin_node="n2", deleted=True)
    observation = observe(
        history([put], held_like(put, ["n1"]), applied_events=[tombstone], attempts=[attempt("k")])
    )
    assert observation.nodes == tuple(NODES)
    acknowledged, tried = observation.writes
    assert (acknowledged.version, acknowledged.acknowledged, acknowledged.index) == (
        put.version,
        True,
        0,
    )
    assert (tried.version, tried.acknowledged) == (None, False)
    assert set(observation.held) == {("n1", "k")}
    assert [record.version for record in observation.seen] == [tombstone.version]
    assert observation.now_s == END_WALL_S


# ---- session guarantees ---------------------------------------------------------


def _moving(
    client: int, kind: str, key: str, *, session: bool, op: int, read_op: int | None = None
) -> MovingCall:
    write = kind != "read"
    return MovingCall(
        client, session, op, "n1", kind, key, True, read_op is not None, read_op,
        100 + op if write else 0, 1 if write else 0, op, op + 1,
    )  # fmt: skip


def _moving_history(*, session: bool) -> History:
    """A client writes k (op 2) then reads the older write of op 1 on a lagging node."""
    run = History(nodes=["n1"], started_ns=0)
    for op in (1, 2):
        run.acks.append(Ack(op, "n1", "k", False, f"{op}:v", None, 100 + op, 1, op, op, op + 1))
    run.moving = [
        _moving(0, "put", "k", session=session, op=2),
        _moving(0, "read", "k", session=session, op=3, read_op=1),
    ]
    return run


def test_a_stale_read_in_a_session_fails_the_session_checker() -> None:
    verdict = session_guarantees(_moving_history(session=True))
    assert not verdict.ok
    assert "read-your-writes" in verdict.details[0]
    assert "with sessions 1 violations" in verdict.summary


def test_a_stale_read_without_a_session_is_counted_not_failed() -> None:
    run = _moving_history(session=False)
    verdict = session_guarantees(run)
    assert verdict.ok
    assert "read-your-writes 1" in verdict.summary
    figures = session_figures(run)
    assert figures["without_sessions"]["read-your-writes"] == 1
    assert figures["with_sessions"]["calls"] == 0
    assert [v.name for v in check_all(run)][-1] == "session-guarantees"
