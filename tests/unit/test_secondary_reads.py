"""A worker's view (``SecondaryReads``) over a real RocksDB primary, in one process.

The primary is written through a ``Replica`` as the owner writes it; the
owner's published state (``OwnerStatePublisher``) says what was acknowledged.
A read after an acknowledged write sees it (one catch-up, shared; none while
nothing new is acknowledged); a namespace created or deleted after the view
opened reads so; while the owner refuses reads the view passes them on; the
lag bound it reports is the owner's, aged since it was computed; and its
answers, misses and errors are those of the owner's ``Operations``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rumor.node.core.errors import InvalidRequest, NamespaceNotFound
from rumor.node.core.namespaces import RESERVED_NAMESPACE
from rumor.node.replication import Replica
from rumor.node.replication.replica.replica import Write
from rumor.node.server.workers.owner_state import (
    OwnerStatePublisher,
    OwnerStateView,
    monotonic_ms,
)
from rumor.node.server.workers.secondary_reads import SecondaryReads
from rumor.node.storage import RocksStore

NAMESPACE = bytes(range(1, 17))


class Owner:
    """The primary, written as the owner writes it, and what the owner publishes."""

    def __init__(self, root: Path) -> None:
        self.store = RocksStore(root / "data")
        self.replica = Replica(self.store, new_node_id=7, wall_ms=self.wall_ms())
        self.published = OwnerStatePublisher(str(root))

    @staticmethod
    def wall_ms() -> int:
        return time.time_ns() // 1_000_000

    def write(self, *writes: Write) -> None:
        """Write and acknowledge (the group commit's hook publishes the seq)."""
        self.replica.write_many(writes, self.wall_ms())
        self.published.acknowledging(self.store.latest_sequence_number())

    def create_namespace(self, namespace: bytes) -> None:
        self.write(Write(RESERVED_NAMESPACE, namespace.hex().encode(), b"title"))

    def delete_namespace(self, namespace: bytes) -> None:
        self.write(Write(RESERVED_NAMESPACE, namespace.hex().encode(), tombstone=True))

    def close(self) -> None:
        self.published.close()
        self.store.close()


@pytest.fixture
def owner(tmp_path: Path) -> Iterator[Owner]:
    made = Owner(tmp_path)
    made.create_namespace(NAMESPACE)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def view(owner: Owner, tmp_path: Path) -> Iterator[SecondaryReads]:
    published = OwnerStateView(str(tmp_path))
    opened = SecondaryReads(str(tmp_path / "data"), tmp_path / "view", published)
    try:
        yield opened
    finally:
        opened.close()


async def test_a_read_after_an_acknowledged_write_sees_it(
    owner: Owner, view: SecondaryReads
) -> None:
    namespace_id = NAMESPACE.hex()
    for i in range(20):
        owner.write(Write(NAMESPACE, b"k", b"v%d" % i))
        assert await view.fresh()
        found = view.operations.get(namespace_id, b"k")
        assert found is not None and found.value == b"v%d" % i
    caught = view.catch_ups
    for _ in range(20):  # nothing new acknowledged: no catch-up
        assert await view.fresh()
    assert view.catch_ups == caught
    assert view.reads_answered == 40


async def test_namespaces_created_and_deleted_after_the_view_opened_read_so(
    owner: Owner, view: SecondaryReads
) -> None:
    later = bytes(range(2, 18))
    with pytest.raises(NamespaceNotFound):
        view.operations.get(later.hex(), b"k")  # also caches that it is missing
    owner.create_namespace(later)
    assert await view.fresh()
    assert view.operations.get(later.hex(), b"k") is None
    owner.delete_namespace(later)
    assert await view.fresh()
    with pytest.raises(NamespaceNotFound):
        view.operations.get(later.hex(), b"k")


async def test_the_view_answers_as_the_owner_s_operations_do(
    owner: Owner, view: SecondaryReads
) -> None:
    owner.write(
        Write(NAMESPACE, b"m", b"{}", metadata=b'{"a": 1}', expiration=int(time.time()) + 60),
        Write(NAMESPACE, b"gone", b"x", expiration=int(time.time()) - 1),
    )
    assert await view.fresh()
    found = view.operations.get(NAMESPACE.hex(), b"m")
    assert found is not None and found.header.metadata == b'{"a": 1}'
    assert view.operations.get(NAMESPACE.hex(), b"gone") is None  # expired
    with pytest.raises(InvalidRequest):
        view.operations.get(NAMESPACE.hex(), b"")
    with pytest.raises(NamespaceNotFound):
        view.operations.get("not-an-id", b"k")
    many = view.operations.get_many(NAMESPACE.hex(), [b"m", b"none"])
    assert [None if f is None else f.value for f in many] == [b"{}", None]


async def test_while_the_owner_refuses_reads_the_view_passes_them_on(
    owner: Owner, view: SecondaryReads
) -> None:
    seq = owner.store.latest_sequence_number()
    owner.published.publish(seq, 0, monotonic_ms(), refused=True, ages=False)
    assert not await view.fresh()
    assert view.reads_to_owner == 1
    owner.published.publish(seq, 0, monotonic_ms(), refused=False, ages=False)
    assert await view.fresh()


async def test_the_lag_bound_is_the_owner_s_aged_since_it_was_computed(
    owner: Owner, view: SecondaryReads
) -> None:
    seq = owner.store.latest_sequence_number()
    owner.published.publish(seq, None, monotonic_ms() - 200, refused=False, ages=True)
    assert await view.fresh()
    assert view.lag_bound() == "unknown"
    owner.published.publish(seq, 40, monotonic_ms() - 100, refused=False, ages=True)
    assert await view.fresh()
    assert int(view.lag_bound()) >= 140
    owner.published.publish(seq, 0, monotonic_ms(), refused=False, ages=False)
    assert await view.fresh()
    assert view.lag_bound() == "0"  # no member to lag
