"""Listing keys: byte order, literal prefixes, cursor paging with start-after semantics.

Pages are filled with live keys: deleted and expired keys are skipped and not
counted, so a short page means the listing is complete.
"""

from __future__ import annotations

import pytest

from rumor.v1 import kv_pb2 as pb
from tests.integration.kv_helpers import (
    bulk_put,
    early_in_a_second,
    key_names,
    list_pages,
    listed,
    put,
)
from tests.support.nodes import NodeProcess, poll

TWENTY_FIVE_KEYS = [b"key-%02d" % i for i in range(25)]


def _list(
    node: NodeProcess,
    ns: str,
    *,
    prefix: bytes = b"",
    limit: int | None = None,
    cursor: bytes = b"",
) -> pb.ListResponse:
    request = pb.ListRequest(namespace_id=ns, prefix=prefix, cursor=cursor)
    if limit is not None:
        request.limit = limit
    page: pb.ListResponse = node.kv.List(request)
    return page


def _names(page: pb.ListResponse) -> list[bytes]:
    return [info.name for info in page.keys]


def test_keys_are_listed_in_utf8_byte_order(node: NodeProcess, ns: str) -> None:
    keys = [b"a,b", b"a!b", b"b", b"B", b"a", b"A", b"Z", b"_", b"~", b"0", b" ", b"aa"]
    keys += ["é".encode(), "ÿ".encode(), "中".encode(), "🙂".encode(), b"a\x00"]
    bulk_put(node, ns, [(key, b"v") for key in reversed(keys)])
    names = listed(node, ns)
    assert names == sorted(keys)
    # The specific orderings a string compare might get wrong:
    assert names.index(b"a!b") < names.index(b"a,b")  # "!" (0x21) before "," (0x2c)
    assert names.index(b"Z") < names.index(b"a")  # uppercase before lowercase
    assert names.index(b"B") < names.index(b"a")
    assert names.index(b"a") < names.index(b"a\x00") < names.index(b"aa")
    assert names.index(b"~") < names.index("é".encode()) < names.index("🙂".encode())


def test_prefix_is_literal_and_case_sensitive(node: NodeProcess, ns: str) -> None:
    keys = [b"key\\_%", b"key\\_%x", b"key_x", b"keyA", b"KEY\\_%", b"kez"]
    bulk_put(node, ns, [(key, b"v") for key in keys])
    assert listed(node, ns, prefix=b"key\\_%") == [b"key\\_%", b"key\\_%x"]
    assert listed(node, ns, prefix=b"key_") == [b"key_x"]
    assert listed(node, ns, prefix=b"key%") == []
    assert listed(node, ns, prefix=b"key.") == []
    assert listed(node, ns, prefix=b"key") == [b"keyA", b"key\\_%", b"key\\_%x", b"key_x"]
    assert listed(node, ns, prefix=b"KEY") == [b"KEY\\_%"]
    assert listed(node, ns, prefix=b"key_x") == [b"key_x"]  # a whole key is its own prefix
    assert listed(node, ns, prefix=b"key_xy") == []


def test_prefix_ending_in_the_highest_code_point(node: NodeProcess, ns: str) -> None:
    top = "\U0010ffff".encode()  # F4 8F BF BF: the prefix's end must not overflow
    keys = [b"a" + top, b"a" + top + b"z", b"a" + top + top, b"b"]
    bulk_put(node, ns, [(key, b"v") for key in keys])
    assert listed(node, ns, prefix=b"a" + top) == sorted(keys[:3])


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 24, 25, 26, 1000])
def test_cursor_paging_visits_every_key_once_in_order(
    node: NodeProcess, ns: str, limit: int
) -> None:
    bulk_put(node, ns, [(key, b"v") for key in reversed(TWENTY_FIVE_KEYS)])
    pages = list(list_pages(node, ns, limit=limit))
    assert key_names(pages) == TWENTY_FIVE_KEYS
    expected_pages = -(-len(TWENTY_FIVE_KEYS) // limit)  # no trailing empty page
    assert len(pages) == expected_pages
    for page in pages[:-1]:
        assert len(page.keys) == limit
        assert not page.list_complete and page.cursor
    last = pages[-1]
    assert last.list_complete and last.cursor == b""
    assert len(last.keys) == len(TWENTY_FIVE_KEYS) - limit * (expected_pages - 1)


def test_paging_with_a_prefix_stays_inside_it(node: NodeProcess, ns: str) -> None:
    keys = [b"a%02d" % i for i in range(7)] + [b"b%02d" % i for i in range(7)] + [b"c"]
    bulk_put(node, ns, [(key, b"v") for key in keys])
    pages = list(list_pages(node, ns, prefix=b"b", limit=3))
    assert [len(page.keys) for page in pages] == [3, 3, 1]
    assert key_names(pages) == [b"b%02d" % i for i in range(7)]


def test_2500_keys_list_in_three_pages_of_at_most_1000(node: NodeProcess, ns: str) -> None:
    keys = [b"item/%05d" % i for i in range(2500)]
    assert bulk_put(node, ns, [(key, b"%d" % i) for i, key in enumerate(keys)]) == 2500
    pages = list(list_pages(node, ns, limit=1000))
    assert [len(page.keys) for page in pages] == [1000, 1000, 500]
    assert [page.list_complete for page in pages] == [False, False, True]
    assert pages[-1].cursor == b""
    assert key_names(pages) == keys
    # Without a limit the default is 1000.
    assert len(_list(node, ns).keys) == 1000


def test_page_continues_after_its_cursor_when_keys_change_between_pages(
    node: NodeProcess, ns: str
) -> None:
    bulk_put(node, ns, [(b"k%d0" % i, b"v") for i in range(10)])  # k00, k10, ..., k90
    first = _list(node, ns, limit=3)
    assert _names(first) == [b"k00", b"k10", b"k20"]
    put(node, ns, b"k15")  # before the cursor: not visited any more
    put(node, ns, b"k20x")  # right after the cursor's key: next
    put(node, ns, b"k99")  # at the end
    node.kv.Delete(pb.DeleteRequest(namespace_id=ns, key=b"k30"))  # would have been next
    node.kv.Delete(pb.DeleteRequest(namespace_id=ns, key=b"k20"))  # the cursor's own key
    rest = key_names(_continue(node, ns, first.cursor, limit=3))
    assert rest == [b"k20x", b"k40", b"k50", b"k60", b"k70", b"k80", b"k90", b"k99"]


def _continue(node: NodeProcess, ns: str, cursor: bytes, *, limit: int) -> list[pb.ListResponse]:
    pages = []
    while True:
        page = _list(node, ns, limit=limit, cursor=cursor)
        pages.append(page)
        if page.list_complete:
            return pages
        cursor = page.cursor


def test_deleted_keys_are_not_counted_in_a_page(node: NodeProcess, ns: str) -> None:
    keys = [b"d%03d" % i for i in range(300)]
    bulk_put(node, ns, [(key, b"v") for key in keys])
    # Delete two of every three keys, including long runs at the start.
    deleted = [key for i, key in enumerate(keys) if i % 3 or i < 60]
    node.kv.BulkDelete(pb.BulkDeleteRequest(namespace_id=ns, keys=deleted))
    live = [key for key in keys if key not in set(deleted)]
    first = _list(node, ns, limit=7)
    assert _names(first) == live[:7]  # seven live keys, though 60 deleted ones come first
    pages = list(list_pages(node, ns, limit=7))
    assert key_names(pages) == live
    assert all(len(page.keys) == 7 for page in pages[:-1])
    assert len(pages) == -(-len(live) // 7)


def test_expired_keys_are_not_counted_in_a_page(node: NodeProcess, ns: str) -> None:
    early_in_a_second(node)
    items = []
    for i in range(40):
        ttl = 1 if i % 2 == 0 else None
        items.append(pb.PutRequest(key=b"e%02d" % i, value=b"v", expiration_ttl=ttl))
    node.kv.BulkPut(pb.BulkPutRequest(namespace_id=ns, items=items))
    live = [b"e%02d" % i for i in range(1, 40, 2)]
    poll(lambda: _names(_list(node, ns)) == live, timeout=5.0)
    pages = list(list_pages(node, ns, limit=6))
    assert [len(page.keys) for page in pages] == [6, 6, 6, 2]
    assert key_names(pages) == live


def test_a_page_that_ends_exactly_at_the_last_key_is_complete(node: NodeProcess, ns: str) -> None:
    bulk_put(node, ns, [(b"x%d" % i, b"v") for i in range(4)])
    put(node, ns, b"y")
    node.kv.Delete(pb.DeleteRequest(namespace_id=ns, key=b"y"))  # a deleted key after the page
    page = _list(node, ns, limit=4)
    assert _names(page) == [b"x0", b"x1", b"x2", b"x3"]
    assert page.list_complete and page.cursor == b""


def test_metadata_and_expiration_appear_in_key_info(node: NodeProcess, ns: str) -> None:
    with_both = put(node, ns, b"both", metadata=b'{"a": [1, 2]}', expiration_ttl=3600)
    put(node, ns, b"meta-only", metadata=b'"label"')
    only_expiring = put(node, ns, b"expiration-only", expiration_ttl=7200)
    put(node, ns, b"plain")
    infos = {info.name: info for info in _list(node, ns).keys}
    assert list(infos) == [b"both", b"expiration-only", b"meta-only", b"plain"]
    assert infos[b"both"].metadata == b'{"a":[1,2]}'
    assert infos[b"both"].expiration == with_both.expiration
    assert infos[b"meta-only"].metadata == b'"label"'
    assert not infos[b"meta-only"].HasField("expiration")
    assert infos[b"expiration-only"].expiration == only_expiring.expiration
    assert not infos[b"expiration-only"].HasField("metadata")
    assert not infos[b"plain"].HasField("metadata") and not infos[b"plain"].HasField("expiration")


def test_empty_namespace_lists_as_complete(node: NodeProcess, ns: str) -> None:
    page = _list(node, ns, limit=1)
    assert list(page.keys) == [] and page.list_complete and page.cursor == b""


def test_namespaces_do_not_see_each_others_keys(node: NodeProcess, ns: str) -> None:
    other = node.kv.CreateNamespace(pb.CreateNamespaceRequest(title=f"{ns}-other")).id
    put(node, ns, b"mine")
    put(node, other, b"theirs")
    assert listed(node, ns) == [b"mine"]
    assert listed(node, other) == [b"theirs"]
