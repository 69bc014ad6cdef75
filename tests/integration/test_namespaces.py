"""Namespaces: create, list, get, rename, delete; unique titles; ids never reused."""

from __future__ import annotations

import re
import uuid

import grpc
import pytest

from rumor.client import Client, calls
from rumor.v1 import kv_pb2 as pb
from tests.integration.kv_helpers import (
    assert_invalid,
    assert_status,
    failed_call,
    get,
    listed,
    put,
)
from tests.support.nodes import NodeProcess

ID_PATTERN = re.compile(r"[0-9a-f]{32}")


def _create(node: NodeProcess, title: str) -> pb.Namespace:
    namespace: pb.Namespace = node.kv.CreateNamespace(pb.CreateNamespaceRequest(title=title))
    return namespace


def _all(node: NodeProcess) -> dict[str, str]:
    """Every live namespace, id -> title."""
    response = node.kv.ListNamespaces(pb.ListNamespacesRequest())
    return {namespace.id: namespace.title for namespace in response.namespaces}


def _title(suffix: str) -> str:
    """A title no other test in the module uses."""
    return f"ns-{uuid.uuid4().hex[:8]}-{suffix}"


def test_namespace_lifecycle(node: NodeProcess) -> None:
    title = _title("life")
    created = _create(node, title)
    assert ID_PATTERN.fullmatch(created.id) and created.title == title
    assert _all(node)[created.id] == title
    fetched = node.kv.GetNamespace(pb.GetNamespaceRequest(namespace_id=created.id))
    assert (fetched.id, fetched.title) == (created.id, title)

    renamed_title = _title("renamed")
    renamed = node.kv.RenameNamespace(
        pb.RenameNamespaceRequest(namespace_id=created.id, title=renamed_title)
    )
    assert (renamed.id, renamed.title) == (created.id, renamed_title)
    assert node.kv.GetNamespace(pb.GetNamespaceRequest(namespace_id=created.id)).title == (
        renamed_title
    )
    assert _all(node)[created.id] == renamed_title
    assert title not in _all(node).values()

    node.kv.DeleteNamespace(pb.DeleteNamespaceRequest(namespace_id=created.id))
    assert created.id not in _all(node)
    assert_status(
        lambda: node.kv.GetNamespace(pb.GetNamespaceRequest(namespace_id=created.id)),
        grpc.StatusCode.NOT_FOUND,
        "namespace not found",
    )


def test_ids_are_32_lowercase_hex_and_distinct(node: NodeProcess) -> None:
    ids = [_create(node, _title(f"id{i}")).id for i in range(20)]
    assert all(ID_PATTERN.fullmatch(namespace_id) for namespace_id in ids)
    assert len(set(ids)) == len(ids)


def test_duplicate_title_on_create_is_already_exists(node: NodeProcess) -> None:
    title = _title("dup")
    first = _create(node, title)
    assert failed_call(lambda: _create(node, title)).code() == grpc.StatusCode.ALREADY_EXISTS
    assert [nid for nid, t in _all(node).items() if t == title] == [first.id]


def test_duplicate_title_on_rename_is_already_exists(node: NodeProcess) -> None:
    taken, mine = _title("taken"), _title("mine")
    taken_ns = _create(node, taken)
    mine_ns = _create(node, mine)
    error = failed_call(
        lambda: node.kv.RenameNamespace(
            pb.RenameNamespaceRequest(namespace_id=mine_ns.id, title=taken)
        )
    )
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert taken in error.details()
    assert _all(node)[mine_ns.id] == mine and _all(node)[taken_ns.id] == taken
    # Renaming a namespace to its own title is not a conflict.
    same = node.kv.RenameNamespace(pb.RenameNamespaceRequest(namespace_id=mine_ns.id, title=mine))
    assert same.title == mine


def test_titles_are_case_sensitive(node: NodeProcess) -> None:
    title = _title("case")
    lower = _create(node, title)
    upper = _create(node, title.upper())
    assert lower.id != upper.id


@pytest.mark.parametrize("title", ["", "   "])
def test_blank_title_is_rejected(node: NodeProcess, title: str) -> None:
    before = _all(node)
    assert_invalid(lambda: _create(node, title), "Namespace title cannot be empty.")
    assert _all(node) == before


def test_title_longer_than_512_bytes_is_rejected(node: NodeProcess, ns: str) -> None:
    assert_invalid(
        lambda: _create(node, "t" * 513), "Namespace title length of 513 exceeds limit of 512."
    )
    assert_invalid(
        lambda: node.kv.RenameNamespace(pb.RenameNamespaceRequest(namespace_id=ns, title="")),
        "Namespace title cannot be empty.",
    )


@pytest.mark.parametrize(
    "namespace_id",
    [
        pytest.param(uuid.uuid4().hex, id="unknown"),
        pytest.param(uuid.uuid4().hex.upper(), id="uppercase"),
        pytest.param("0" * 32, id="reserved"),
        pytest.param("abc", id="short"),
        pytest.param("g" * 32, id="not-hex"),
        pytest.param("", id="empty"),
    ],
)
def test_unknown_or_malformed_namespace_is_not_found(node: NodeProcess, namespace_id: str) -> None:
    calls = [
        lambda: node.kv.GetNamespace(pb.GetNamespaceRequest(namespace_id=namespace_id)),
        lambda: node.kv.RenameNamespace(
            pb.RenameNamespaceRequest(namespace_id=namespace_id, title=_title("x"))
        ),
        lambda: node.kv.DeleteNamespace(pb.DeleteNamespaceRequest(namespace_id=namespace_id)),
    ]
    for call in calls:
        assert_status(call, grpc.StatusCode.NOT_FOUND, "namespace not found")


def test_deleted_namespace_is_not_found_for_key_operations(node: NodeProcess) -> None:
    namespace_id = _create(node, _title("gone")).id
    put(node, namespace_id, b"k", b"v")
    node.kv.DeleteNamespace(pb.DeleteNamespaceRequest(namespace_id=namespace_id))
    text = pb.VALUE_TYPE_TEXT
    calls = [
        lambda: put(node, namespace_id, b"k", b"v"),
        lambda: get(node, namespace_id, b"k"),
        lambda: list(node.kv.GetStream(pb.GetRequest(namespace_id=namespace_id, key=b"k"))),
        lambda: node.kv.BulkGet(
            pb.BulkGetRequest(namespace_id=namespace_id, keys=[b"k"], type=text)
        ),
        lambda: node.kv.Delete(pb.DeleteRequest(namespace_id=namespace_id, key=b"k")),
        lambda: node.kv.List(pb.ListRequest(namespace_id=namespace_id)),
        lambda: node.kv.BulkPut(
            pb.BulkPutRequest(namespace_id=namespace_id, items=[pb.PutRequest(key=b"k")])
        ),
        lambda: node.kv.BulkDelete(pb.BulkDeleteRequest(namespace_id=namespace_id, keys=[b"k"])),
        lambda: node.kv.PutStream(
            iter(
                [
                    pb.PutStreamRequest(
                        header=pb.PutRequest(namespace_id=namespace_id, key=b"k"), last=True
                    )
                ]
            )
        ),
        lambda: node.kv.DeleteNamespace(pb.DeleteNamespaceRequest(namespace_id=namespace_id)),
        lambda: node.kv.RenameNamespace(
            pb.RenameNamespaceRequest(namespace_id=namespace_id, title=_title("back"))
        ),
    ]
    for call in calls:
        assert_status(call, grpc.StatusCode.NOT_FOUND, "namespace not found")
    assert namespace_id not in _all(node)


def test_title_is_reused_after_delete_with_a_new_id_and_no_old_keys(node: NodeProcess) -> None:
    title = _title("reuse")
    old = _create(node, title)
    node.kv.BulkPut(
        pb.BulkPutRequest(
            namespace_id=old.id,
            items=[pb.PutRequest(key=b"old-%03d" % i, value=b"v") for i in range(200)],
        )
    )
    node.kv.DeleteNamespace(pb.DeleteNamespaceRequest(namespace_id=old.id))
    new = _create(node, title)
    assert new.id != old.id and new.title == title
    assert listed(node, new.id) == []
    assert not get(node, new.id, b"old-000").found
    assert [nid for nid, t in _all(node).items() if t == title] == [new.id]
    # The old namespace stays deleted: its id is not brought back by the new one.
    assert_status(
        lambda: get(node, old.id, b"old-000"), grpc.StatusCode.NOT_FOUND, "namespace not found"
    )


def test_rename_frees_the_old_title(node: NodeProcess) -> None:
    first_title, second_title = _title("first"), _title("second")
    renamed = _create(node, first_title)
    node.kv.RenameNamespace(pb.RenameNamespaceRequest(namespace_id=renamed.id, title=second_title))
    reused = _create(node, first_title)
    assert reused.id != renamed.id
    assert _all(node)[reused.id] == first_title and _all(node)[renamed.id] == second_title


def test_keys_survive_a_rename(node: NodeProcess) -> None:
    namespace = _create(node, _title("keys"))
    put(node, namespace.id, b"k", b"kept")
    node.kv.RenameNamespace(pb.RenameNamespaceRequest(namespace_id=namespace.id, title=_title("r")))
    assert get(node, namespace.id, b"k").value == b"kept"


def test_unicode_titles_round_trip(node: NodeProcess) -> None:
    title = _title("названіе-名前-🙂")
    created = _create(node, title)
    assert node.kv.GetNamespace(pb.GetNamespaceRequest(namespace_id=created.id)).title == title
    assert _all(node)[created.id] == title


def test_list_namespaces_pages_by_limit_and_cursor(
    node: NodeProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gRPC ListNamespaces pages in id order; limit 0 (a client from before paging)
    still gets every namespace in one answer; the SDK's list() follows the cursors."""
    created = {_create(node, _title(f"page{i}")).id for i in range(5)}
    everything = node.kv.ListNamespaces(pb.ListNamespacesRequest())
    ids = [namespace.id for namespace in everything.namespaces]
    assert created <= set(ids) and ids == sorted(ids)
    assert everything.list_complete and not everything.cursor
    paged: list[str] = []
    cursor = ""
    while True:
        page = node.kv.ListNamespaces(pb.ListNamespacesRequest(limit=2, cursor=cursor))
        assert len(page.namespaces) <= 2
        paged += [namespace.id for namespace in page.namespaces]
        assert page.list_complete == (not page.cursor)
        if page.list_complete:
            break
        assert len(page.namespaces) == 2
        cursor = page.cursor
    assert paged == ids
    assert_invalid(
        lambda: node.kv.ListNamespaces(pb.ListNamespacesRequest(limit=1001)),
        "Invalid key_count_limit of 1001. Please specify an integer less than 1000.",
    )
    bad_cursor = failed_call(
        lambda: node.kv.ListNamespaces(pb.ListNamespacesRequest(limit=2, cursor="%%%"))
    )
    assert bad_cursor.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "cursor" in str(bad_cursor.details())
    with Client(node.address) as client:
        assert [info.id for info in client.namespaces.list()] == ids
        monkeypatch.setattr(calls, "NAMESPACE_PAGE", 2)  # list() follows every cursor
        assert [info.id for info in client.namespaces.list()] == ids
        first = client.namespaces.list_page(limit=3)
        assert [info.id for info in first.namespaces] == ids[:3]
        assert not first.list_complete and first.cursor
        rest = client.namespaces.list_page(limit=1000, cursor=first.cursor)
        assert [info.id for info in rest.namespaces] == ids[3:]
        assert rest.list_complete and rest.cursor is None
