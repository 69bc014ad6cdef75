"""Namespaces by title (rumor.node.replication.replica.namespace_titles): the index agrees
with the namespace records whatever is created, renamed, deleted or replicated, and a
create's title check looks the title up instead of walking every namespace."""

from __future__ import annotations

from collections.abc import Iterator

from hypothesis import given
from hypothesis import strategies as st

from rumor.node.core.namespaces import RESERVED_NAMESPACE
from rumor.node.replication.replica.namespace_titles import NamespaceTitles
from rumor.node.replication.replica.replica import Replica, Write
from rumor.node.storage import MemoryStore

NODE_ID = 0x1234_5678_9ABC_DEF0
WALL_MS = 1_700_000_000_000


class CountingStore(MemoryStore):
    """A store that counts the entries its scans of the reserved namespace yield."""

    def __init__(self) -> None:
        super().__init__()
        self.namespace_entries_scanned = 0

    def scan(
        self, family: str, start: bytes, stop: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        for entry in super().scan(family, start, stop):
            if entry[0].startswith(RESERVED_NAMESPACE):
                self.namespace_entries_scanned += 1
            yield entry


def _key(index: int) -> bytes:
    return f"{index:032x}".encode()


changes = st.lists(
    st.tuples(st.integers(0, 7), st.one_of(st.none(), st.sampled_from([b"a", b"b", b"c"]))),
    max_size=40,
)


@given(changes)
def test_the_index_holds_each_live_namespace_under_its_title(
    steps: list[tuple[int, bytes | None]],
) -> None:
    titles = NamespaceTitles()
    model: dict[bytes, bytes] = {}
    for index, title in steps:
        titles.changed(_key(index), title)
        if title is None:
            model.pop(_key(index), None)
        else:
            model[_key(index)] = title
    for title in (b"a", b"b", b"c", b"z"):
        assert titles.holding(title) == sorted(k for k, t in model.items() if t == title)
    assert len(titles) == len(model)


@given(changes)
def test_the_replica_index_follows_its_namespace_records(
    steps: list[tuple[int, bytes | None]],
) -> None:
    """Written through the replica (creates, renames, deletes), the index built before
    and the index built after from the store agree on every title."""
    replica = Replica(MemoryStore(), new_node_id=NODE_ID, wall_ms=WALL_MS)
    assert replica.namespaces_titled(b"a") == []  # built now, empty
    for index, title in steps:
        if title is None:
            write = Write(RESERVED_NAMESPACE, _key(index), tombstone=True)
        else:
            write = Write(RESERVED_NAMESPACE, _key(index), title)
        replica.write(write, WALL_MS)
    fresh = Replica(replica.store, new_node_id=NODE_ID, wall_ms=WALL_MS)
    for title in (b"a", b"b", b"c"):
        expected = sorted(
            key
            for key, header, held in replica.namespaces()
            if not header.tombstone and held == title
        )
        assert replica.namespaces_titled(title) == expected
        assert fresh.namespaces_titled(title) == expected


def test_a_title_check_walks_the_namespaces_once_not_at_every_create() -> None:
    store = CountingStore()
    replica = Replica(store, new_node_id=NODE_ID, wall_ms=WALL_MS)
    replica.write_many(
        [Write(RESERVED_NAMESPACE, _key(i), b"title-%d" % i) for i in range(3500)], WALL_MS
    )
    assert replica.namespaces_titled(b"title-7") == [_key(7)]
    walked = store.namespace_entries_scanned
    assert walked >= 3500  # the one walk that builds the index
    for i in range(3500, 3600):
        assert replica.namespaces_titled(b"title-%d" % i) == []
        replica.write(Write(RESERVED_NAMESPACE, _key(i), b"title-%d" % i), WALL_MS)
        assert replica.namespaces_titled(b"title-%d" % i) == [_key(i)]
    replica.write(Write(RESERVED_NAMESPACE, _key(7), b"renamed"), WALL_MS)
    replica.write(Write(RESERVED_NAMESPACE, _key(8), tombstone=True), WALL_MS)
    assert replica.namespaces_titled(b"title-7") == []
    assert replica.namespaces_titled(b"renamed") == [_key(7)]
    assert replica.namespaces_titled(b"title-8") == []
    assert store.namespace_entries_scanned == walked  # 100 creates, a rename, a delete: no walk
