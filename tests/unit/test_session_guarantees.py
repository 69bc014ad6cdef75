"""The session guarantees, judged per key over one client's calls."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rumor.experiments.properties.session_guarantees import (
    ClientCall,
    Guarantee,
    Kind,
    counts,
    violations,
)

READ, PUT, DELETE = Kind.READ, Kind.PUT, Kind.DELETE


def read(version: tuple[int, int] | None, client: int = 1, key: str = "k") -> ClientCall:
    return ClientCall(client, READ, key, version, True, found=version is not None)


def write(version: tuple[int, int] | None, kind: Kind = PUT, client: int = 1) -> ClientCall:
    return ClientCall(client, kind, "k", version, version is not None)


Found = list[tuple[Guarantee, ClientCall, tuple[int, int]]]


def found(
    calls: list[ClientCall], deletes: dict[str, list[tuple[int, int] | None]] | None = None
) -> Found:
    return [(v.guarantee, v.call, v.wanted) for v in violations(calls, deletes or {})]


def test_a_read_older_than_the_clients_write_breaks_read_your_writes() -> None:
    calls = [write((5, 1)), read((3, 2))]
    assert found(calls) == [(Guarantee.READ_YOUR_WRITES, calls[1], (5, 1))]


def test_a_read_of_the_write_or_newer_is_fine() -> None:
    assert found([write((5, 1)), read((5, 1)), read((9, 2))]) == []


def test_nothing_found_after_a_put_breaks_read_your_writes_unless_a_newer_delete() -> None:
    calls = [write((5, 1)), read(None)]
    assert [g for g, _, _ in found(calls)] == [Guarantee.READ_YOUR_WRITES]
    assert found(calls, {"k": [(6, 2)]}) == []
    assert found(calls, {"k": [None]}) == []  # a delete of unknown version may be newer
    assert [g for g, _, _ in found(calls, {"k": [(4, 2)]})] == [Guarantee.READ_YOUR_WRITES]


def test_going_back_breaks_monotonic_reads() -> None:
    calls = [read((7, 2)), read((6, 3))]
    assert found(calls) == [(Guarantee.MONOTONIC_READS, calls[1], (7, 2))]


def test_a_later_write_ordered_first_breaks_monotonic_writes() -> None:
    calls = [write((9, 1)), write((8, 2), DELETE)]
    assert found(calls) == [(Guarantee.MONOTONIC_WRITES, calls[1], (9, 1))]


def test_a_write_ordered_before_what_was_read_breaks_writes_follow_reads() -> None:
    calls = [read((9, 3)), write((8, 2))]
    assert found(calls) == [(Guarantee.WRITES_FOLLOW_READS, calls[1], (9, 3))]


def test_unanswered_calls_and_reads_of_unknown_writes_are_not_judged() -> None:
    unknown = ClientCall(1, READ, "k", None, True, found=True)
    unanswered = ClientCall(1, READ, "k", None, False)
    assert found([write((5, 1)), unknown, unanswered, write(None)]) == []


def test_clients_and_keys_are_judged_apart() -> None:
    assert found([write((5, 1), client=1), read((3, 2), client=2)]) == []
    assert found([write((5, 1)), read((3, 2), key="other")]) == []


versions = st.tuples(st.integers(1, 50), st.integers(1, 3))


@given(st.lists(st.tuples(st.sampled_from([READ, PUT]), versions), max_size=30))
def test_a_client_that_sees_versions_only_grow_breaks_nothing(
    steps: list[tuple[Kind, tuple[int, int]]],
) -> None:
    """A store that serves each client an ever newer state never breaks a guarantee."""
    calls: list[ClientCall] = []
    seen = (0, 0)
    for kind, version in steps:
        seen = max(seen, version)
        calls.append(read(seen) if kind is READ else write(seen))
    assert violations(calls, {}) == []
    assert set(counts(violations(calls, {})).values()) == {0}
