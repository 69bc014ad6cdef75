"""The properties of correctness (rumor.experiments.properties), without an observer.

Each family on hand-made observations that must pass and must fail, and on
generated ones where a property fits: a cluster in which every node holds
each key's highest version loses nothing, agrees and resurrects nothing;
taking one node's record of one key back to an older version is caught.
"""

from __future__ import annotations

from collections.abc import Mapping

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rumor.experiments.properties import convergence, lost_writes, lww, resurrection
from rumor.experiments.properties.observation import Applied, Observation, Record, Write
from rumor.experiments.properties.purgeability import is_expired, is_live, purgeable_versions

NODES = ("a", "b", "c")
NOW = 1000.0
PAST = 900.0
FUTURE = 2000.0


def put(key: str, hlc: int, *, expiration: float | None = None, acked: bool = True) -> Write:
    return Write(key, (hlc, 1), False, expiration, acked)


def delete(key: str, hlc: int, *, acked: bool = True) -> Write:
    return Write(key, (hlc, 1), True, None, acked)


def attempt(key: str) -> Write:
    return Write(key, None, False, None, False)


def record_of(write: Write) -> Record:
    assert write.version is not None
    return Record(write.key, write.version, write.deleted, write.expiration)


def holding(records: Mapping[str, Record], *nodes_missing: str) -> dict[tuple[str, str], Record]:
    """Every node holds each key's record, except ``nodes_missing`` (which hold nothing)."""
    return {
        (node, key): record
        for key, record in records.items()
        for node in NODES
        if node not in nodes_missing
    }


def observed(
    writes: list[Write],
    held: dict[tuple[str, str], Record],
    seen: tuple[Record, ...] = (),
) -> Observation:
    indexed = tuple(
        Write(w.key, w.version, w.deleted, w.expiration, w.acknowledged, i)
        for i, w in enumerate(writes)
    )
    return Observation(NODES, indexed, held, NOW, seen)


# ---- purgeability ---------------------------------------------------------------------


def test_a_record_expires_at_its_expiration_not_after() -> None:
    assert is_expired(NOW, NOW)
    assert not is_expired(NOW + 0.001, NOW)
    assert not is_expired(None, NOW)
    assert not is_live(Record("k", (1, 1), False, NOW), NOW)
    assert not is_live(Record("k", (1, 1), True, None), NOW)
    assert is_live(Record("k", (1, 1), False, FUTURE), NOW)


def test_the_highest_purgeable_version_comes_from_acks_and_records_seen_only() -> None:
    writes = [
        delete("k", 10),
        put("k", 20, expiration=PAST),
        put("k", 30),  # live: not purgeable
        delete("k", 40, acked=False),  # may never have existed
        delete("j", 5),
    ]
    seen = (Record("k", (25, 2), True, None), Record("j", (50, 2), False, PAST))
    assert purgeable_versions(observed(writes, {}, seen)) == {"k": (25, 2), "j": (50, 2)}


# ---- lost writes ----------------------------------------------------------------------


def test_a_write_held_or_hidden_everywhere_is_not_lost() -> None:
    old, newer = put("k", 10), put("k", 20, expiration=PAST)
    assert lost_writes.lost_writes(observed([old, newer], holding({"k": record_of(newer)}))) == []


def test_an_older_record_on_one_node_is_a_lost_write_there() -> None:
    old, new = put("k", 10), put("k", 20)
    held = holding({"k": record_of(new)})
    held[("b", "k")] = record_of(old)
    found = lost_writes.lost_writes(observed([old, new], held))
    assert [(f.write.index, f.node, f.holds) for f in found] == [(1, "b", record_of(old))]


def test_an_older_tombstone_does_not_stand_for_a_newer_delete() -> None:
    first, second = delete("k", 10), delete("k", 20)
    held = holding({"k": record_of(second)})
    held[("c", "k")] = record_of(first)
    assert [f.node for f in lost_writes.lost_writes(observed([first, second], held))] == ["c"]


def test_nothing_held_is_fine_only_behind_a_purgeable_record_as_new() -> None:
    live = put("k", 10)
    assert [f.node for f in lost_writes.lost_writes(observed([live], {}))] == list(NODES)
    gone = delete("k", 20)
    assert lost_writes.lost_writes(observed([live, gone], {})) == []
    # A tombstone seen on some node covers a purge too; an older one does not.
    newer_seen = (Record("k", (30, 2), True, None),)
    assert lost_writes.lost_writes(observed([live], {}, newer_seen)) == []
    older_seen = (Record("k", (5, 2), True, None),)
    assert len(lost_writes.lost_writes(observed([live], {}, older_seen))) == 3


def test_writes_not_acknowledged_are_not_judged_nor_evidence() -> None:
    maybe, gone = put("k", 10, acked=False), delete("k", 20, acked=False)
    assert lost_writes.lost_writes(observed([maybe, gone], {})) == []
    acked = put("k", 5)
    assert len(lost_writes.lost_writes(observed([acked, gone], {}))) == 3


# ---- resurrection ---------------------------------------------------------------------


def test_a_deleted_or_expired_key_live_again_is_revived() -> None:
    old, gone = put("k", 10), delete("k", 20)
    held = holding({"k": record_of(gone)})
    held[("a", "k")] = record_of(old)
    found = resurrection.revived(observed([old, gone], held))
    assert [(f.key, f.node, f.gone_by.index) for f in found] == [("k", "a", 1)]
    expiring = put("k", 20, expiration=PAST)
    assert resurrection.gone_keys(observed([old, expiring], {})) == {
        "k": Write("k", (20, 1), False, PAST, True, 1)
    }
    assert len(resurrection.revived(observed([old, expiring], holding({"k": record_of(old)})))) == 3


def test_a_newer_live_version_needs_a_write_that_may_have_made_it() -> None:
    gone, revived = delete("k", 20), put("k", 30, acked=False)
    held = holding({"k": record_of(revived)})
    assert resurrection.revived(observed([gone, revived], held)) == []
    other = put("k", 31, acked=False)  # a different unacknowledged write explains nothing
    assert len(resurrection.revived(observed([gone, other], held))) == 3
    assert resurrection.revived(observed([gone, attempt("k")], held)) == []  # version unknown


def test_a_version_applied_after_a_newer_tombstone_is_caught_in_time_order() -> None:
    events = [
        Applied("a", "k", (10, 1), False, 400.0),
        Applied("a", "k", (20, 1), True, 200.0),
        Applied("a", "k", (30, 1), False, 500.0),  # newer: fine
        Applied("b", "k", (10, 1), False, 100.0),  # before the tombstone: fine
        Applied("b", "k", (20, 1), True, 300.0),
    ]
    found = resurrection.applied_after_tombstone(events)
    assert [(f.event.node, f.event.version, f.tombstone.version) for f in found] == [
        ("a", (10, 1), (20, 1))
    ]


@given(st.lists(st.tuples(st.integers(0, 50), st.booleans()), max_size=30))
def test_a_stream_applied_in_version_order_never_resurrects(
    steps: list[tuple[int, bool]],
) -> None:
    ordered = sorted(steps)
    events = [
        Applied("a", "k", (hlc, 1), deleted, float(at)) for at, (hlc, deleted) in enumerate(ordered)
    ]
    assert resurrection.applied_after_tombstone(events) == []


# ---- last writer wins -----------------------------------------------------------------


def test_every_node_at_the_highest_acknowledged_write_passes() -> None:
    writes = [put("k", 10), delete("k", 30), put("j", 5)]
    held = holding({"k": record_of(writes[1]), "j": record_of(writes[2])})
    assert lww.lww(observed(writes, held)) == []


def test_nodes_that_disagree_fail() -> None:
    old, new = put("k", 10), put("k", 20)
    held = holding({"k": record_of(new)})
    held[("b", "k")] = record_of(old)
    assert [w.wrong for w in lww.lww(observed([old, new], held))] == [lww.Wrong.DISAGREE]


def test_a_live_record_missing_from_a_node_fails_a_purged_one_does_not() -> None:
    live = put("k", 10)
    found = lww.lww(observed([live], holding({"k": record_of(live)}, "c")))
    assert [w.wrong for w in found] == [lww.Wrong.MISSING_LIVE]
    gone = delete("k", 20)
    assert lww.lww(observed([live, gone], holding({"k": record_of(gone)}, "c"))) == []


def test_an_agreed_version_that_did_not_win_fails_unless_a_write_may_have_made_it() -> None:
    old, new = put("k", 10), put("k", 20)
    found = lww.lww(observed([old, new], holding({"k": record_of(old)})))
    assert [(w.wrong, w.best) for w in found] == [
        (lww.Wrong.NOT_HIGHEST, observed([old, new], {}).writes[1])
    ]
    newer = put("k", 30, acked=False)
    assert lww.lww(observed([old, new, newer], holding({"k": record_of(newer)}))) == []
    # An attempt of unknown version may explain a newer version, never an older one.
    assert (
        lww.lww(observed([new, attempt("k")], holding({"k": Record("k", (40, 2), False, None)})))
        == []
    )
    assert lww.lww(observed([new, attempt("k")], holding({"k": record_of(old)}))) != []


def test_nothing_held_is_fine_only_when_what_won_is_purgeable() -> None:
    assert [w.wrong for w in lww.lww(observed([put("k", 10)], {}))] == [lww.Wrong.NOTHING_HELD]
    assert lww.lww(observed([put("k", 10), delete("k", 20)], {})) == []
    assert lww.lww(observed([put("k", 10, expiration=PAST)], {})) == []
    # A newer purged tombstone explains nothing held only if a write may have made it.
    tombstone = (Record("k", (30, 2), True, None),)
    assert lww.lww(observed([put("k", 10)], {}, tombstone)) != []
    assert lww.lww(observed([put("k", 10), attempt("k")], {}, tombstone)) == []


# ---- generated clusters ----------------------------------------------------------------

writes_strategy = st.lists(
    st.tuples(
        st.sampled_from(("k1", "k2", "k3")),
        st.integers(1, 1000),
        st.sampled_from(("put", "delete", "expired", "ttl")),
    ),
    min_size=1,
    max_size=25,
    unique_by=lambda w: w[1],
)


def _writes(drawn: list[tuple[str, int, str]]) -> list[Write]:
    expiration = {"expired": PAST, "ttl": FUTURE}
    return [
        Write(key, (hlc, 1), op == "delete", expiration.get(op), True) for key, hlc, op in drawn
    ]


def _highest(writes: list[Write]) -> dict[str, Record]:
    best: dict[str, Write] = {}
    for write in writes:
        assert write.version is not None
        current = best.get(write.key)
        if current is None or (current.version is not None and write.version > current.version):
            best[write.key] = write
    return {key: record_of(write) for key, write in best.items()}


@settings(max_examples=200)
@given(writes_strategy)
def test_a_cluster_at_each_keys_highest_write_satisfies_every_property(
    drawn: list[tuple[str, int, str]],
) -> None:
    writes = _writes(drawn)
    observation = observed(writes, holding(_highest(writes)))
    assert lost_writes.lost_writes(observation) == []
    assert lww.lww(observation) == []
    assert resurrection.revived(observation) == []


@settings(max_examples=200)
@given(writes_strategy, st.sampled_from(NODES), st.data())
def test_one_node_taken_back_to_an_older_write_is_caught(
    drawn: list[tuple[str, int, str]], node: str, data: st.DataObject
) -> None:
    writes = _writes(drawn)
    highest = _highest(writes)
    key = data.draw(st.sampled_from(sorted(highest)))
    older = [
        w
        for w in writes
        if w.key == key and w.version is not None and w.version < highest[key].version
    ]
    assume(older)
    stale = record_of(data.draw(st.sampled_from(older)))
    held = holding(highest)
    held[(node, key)] = stale
    observation = observed(writes, held)
    assert (highest[key].version, node) in {
        (f.write.version, f.node) for f in lost_writes.lost_writes(observation)
    }
    assert any(w.key == key and w.wrong is lww.Wrong.DISAGREE for w in lww.lww(observation))


# ---- convergence ----------------------------------------------------------------------


def test_equal_digests_in_time_converge() -> None:
    found = convergence.convergence({"a": 7, "b": 7, "c": 7}, 1.5, 30.0)
    assert found.ok and found.agree and found.in_time


def test_convergence_names_what_is_missing_and_groups_the_rest_largest_first() -> None:
    found = convergence.convergence({"a": 1, "b": 2, "c": 2, "d": None}, 1.0, 30.0)
    assert not found.ok
    assert found.missing == ("d",)
    assert list(found.groups.items()) == [(2, ["b", "c"]), (1, ["a"])]


def test_convergence_after_the_bound_or_never_fails() -> None:
    assert not convergence.convergence({"a": 1, "b": 1}, 31.0, 30.0).ok
    never = convergence.convergence({"a": 1, "b": 1}, None, 30.0)
    assert never.agree and not never.in_time and not never.ok
