"""Bulk writes, deletes and reads: their limits, all-or-nothing validation, results in order."""

from __future__ import annotations

import time

import pytest

from rumor.v1 import kv_pb2 as pb
from tests.integration.kv_helpers import assert_invalid, get, list_pages, listed, put
from tests.support.nodes import NodeProcess

MAX_VALUE = 26_214_400


def _items(count: int, prefix: bytes = b"key") -> list[pb.PutRequest]:
    return [
        pb.PutRequest(key=b"%s-%05d" % (prefix, i), value=b"value-%d" % i) for i in range(count)
    ]


def _bulk_get(
    node: NodeProcess,
    ns: str,
    keys: list[bytes],
    value_type: pb.ValueType = pb.VALUE_TYPE_TEXT,
    *,
    with_metadata: bool = False,
) -> list[pb.BulkGetEntry]:
    response = node.kv.BulkGet(
        pb.BulkGetRequest(namespace_id=ns, keys=keys, type=value_type, with_metadata=with_metadata)
    )
    return list(response.entries)


def _count(node: NodeProcess, ns: str) -> int:
    return sum(len(page.keys) for page in list_pages(node, ns, limit=1000))


# ---- bulk put -----------------------------------------------------------------


def test_bulk_put_of_10000_pairs_writes_them_all(node: NodeProcess, ns: str) -> None:
    items = _items(10_000)
    response = node.kv.BulkPut(pb.BulkPutRequest(namespace_id=ns, items=items))
    assert response.successful_key_count == 10_000
    assert list(response.unsuccessful_keys) == []
    assert _count(node, ns) == 10_000
    sample = [0, 1, 4999, 9998, 9999]
    entries = _bulk_get(node, ns, [items[i].key for i in sample])
    assert [entry.result.text for entry in entries] == [f"value-{i}" for i in sample]


def test_bulk_put_of_10001_pairs_fails_and_writes_nothing(node: NodeProcess, ns: str) -> None:
    assert_invalid(
        lambda: node.kv.BulkPut(pb.BulkPutRequest(namespace_id=ns, items=_items(10_001))),
        "Bulk write of 10001 pairs exceeds limit of 10000.",
    )
    assert listed(node, ns) == []


def test_bulk_put_over_100_mb_fails_and_writes_nothing(node: NodeProcess, ns: str) -> None:
    value = b"b" * MAX_VALUE  # four of them: 104,857,600 bytes of values
    items = [pb.PutRequest(key=b"big-%d" % i, value=value) for i in range(4)]
    total = sum(len(item.key) + len(item.value) for item in items)
    assert_invalid(
        lambda: node.kv.BulkPut(pb.BulkPutRequest(namespace_id=ns, items=items)),
        f"Bulk write of {total} bytes exceeds limit of 100000000.",
    )
    assert listed(node, ns) == []


BAD_ITEMS = [
    pytest.param(pb.PutRequest(key=b"", value=b"v"), "Key name cannot be empty.", id="empty-key"),
    pytest.param(
        pb.PutRequest(key=b"..", value=b"v"), '".." is not allowed as a key name.', id="dotdot"
    ),
    pytest.param(
        pb.PutRequest(key=b"k" * 513, value=b"v"),
        "UTF-8 encoded length of 513 exceeds key length limit of 512.",
        id="long-key",
    ),
    pytest.param(
        pb.PutRequest(key=b"\xff", value=b"v"), "Key name must be valid UTF-8.", id="utf8"
    ),
    pytest.param(
        pb.PutRequest(key=b"ttl", value=b"v", expiration_ttl=0),
        "Invalid expiration_ttl of 0. Please specify integer greater than 0.",
        id="ttl-0",
    ),
    pytest.param(
        pb.PutRequest(key=b"meta", value=b"v", metadata=b'"' + b"m" * 1023 + b'"'),
        "Metadata length of 1025 exceeds limit of 1024.",
        id="metadata-1025",
    ),
    pytest.param(
        pb.PutRequest(key=b"meta", value=b"v", metadata=b"{not json"),
        "Metadata must be valid JSON.",
        id="metadata-not-json",
    ),
    pytest.param(
        pb.PutRequest(key=b"huge", value=b"h" * (MAX_VALUE + 1)),
        "Value length of 26214401 exceeds limit of 26214400.",
        id="value-too-large",
    ),
]


@pytest.mark.parametrize(("bad", "message"), BAD_ITEMS)
def test_one_bad_item_fails_the_whole_bulk_put(
    node: NodeProcess, ns: str, bad: pb.PutRequest, message: str
) -> None:
    put(node, ns, b"key-00000", b"before")
    items = _items(1000)
    items[500] = bad
    assert_invalid(
        lambda: node.kv.BulkPut(pb.BulkPutRequest(namespace_id=ns, items=items)), message
    )
    assert listed(node, ns) == [b"key-00000"]
    assert get(node, ns, b"key-00000").value == b"before"


def test_bad_absolute_expiration_at_the_end_fails_the_whole_bulk_put(
    node: NodeProcess, ns: str
) -> None:
    past = int(time.time()) - 60
    items = [*_items(999), pb.PutRequest(key=b"late", value=b"v", expiration=past)]
    assert_invalid(
        lambda: node.kv.BulkPut(pb.BulkPutRequest(namespace_id=ns, items=items)),
        f"Invalid expiration of {past}. Please specify integer greater than"
        " the current number of seconds since the UNIX epoch.",
    )
    assert listed(node, ns) == []


def test_key_listed_twice_keeps_its_last_occurrence(node: NodeProcess, ns: str) -> None:
    items = [
        pb.PutRequest(key=b"dup", value=b"first", metadata=b'{"n":1}', expiration_ttl=3600),
        pb.PutRequest(key=b"other", value=b"o"),
        pb.PutRequest(key=b"dup", value=b"last"),
    ]
    node.kv.BulkPut(pb.BulkPutRequest(namespace_id=ns, items=items))
    got = get(node, ns, b"dup", with_metadata=True)
    assert got.value == b"last"
    assert not got.HasField("metadata") and got.expiration == 0
    assert listed(node, ns) == [b"dup", b"other"]


def test_bulk_put_items_carry_metadata_and_expiration(node: NodeProcess, ns: str) -> None:
    items = [
        pb.PutRequest(key=b"a", value=b"1", metadata=b'{"x": 1}'),
        pb.PutRequest(key=b"b", value=b"2", expiration_ttl=3600),
        pb.PutRequest(key=b"c", value=b"3", namespace_id="ignored-for-items"),
    ]
    response = node.kv.BulkPut(pb.BulkPutRequest(namespace_id=ns, items=items))
    assert response.successful_key_count == 3
    infos = {info.name: info for info in node.kv.List(pb.ListRequest(namespace_id=ns)).keys}
    assert infos[b"a"].metadata == b'{"x":1}'
    assert abs(infos[b"b"].expiration - (time.time() + 3600)) <= 2
    assert get(node, ns, b"c").value == b"3"


def test_empty_bulk_put_writes_nothing(node: NodeProcess, ns: str) -> None:
    response = node.kv.BulkPut(pb.BulkPutRequest(namespace_id=ns))
    assert response.successful_key_count == 0
    assert listed(node, ns) == []


# ---- bulk delete ----------------------------------------------------------------


def test_bulk_delete_removes_keys_and_accepts_missing_ones(node: NodeProcess, ns: str) -> None:
    node.kv.BulkPut(pb.BulkPutRequest(namespace_id=ns, items=_items(5)))
    keys = [b"key-00001", b"never-written", b"key-00003", b"key-00004"]
    response = node.kv.BulkDelete(pb.BulkDeleteRequest(namespace_id=ns, keys=keys))
    assert response.successful_key_count == len(keys)
    assert listed(node, ns) == [b"key-00000", b"key-00002"]
    assert not get(node, ns, b"key-00003").found


def test_bulk_delete_of_10000_keys_works(node: NodeProcess, ns: str) -> None:
    items = _items(10_000)
    node.kv.BulkPut(pb.BulkPutRequest(namespace_id=ns, items=items))
    node.kv.BulkPut(pb.BulkPutRequest(namespace_id=ns, items=_items(3, b"keep")))
    response = node.kv.BulkDelete(
        pb.BulkDeleteRequest(namespace_id=ns, keys=[item.key for item in items])
    )
    assert response.successful_key_count == 10_000
    assert listed(node, ns) == [b"keep-00000", b"keep-00001", b"keep-00002"]


def test_bulk_delete_of_10001_keys_fails_and_deletes_nothing(node: NodeProcess, ns: str) -> None:
    node.kv.BulkPut(pb.BulkPutRequest(namespace_id=ns, items=_items(3)))
    keys = [b"key-%05d" % i for i in range(10_001)]
    assert_invalid(
        lambda: node.kv.BulkDelete(pb.BulkDeleteRequest(namespace_id=ns, keys=keys)),
        "Bulk delete of 10001 keys exceeds limit of 10000.",
    )
    assert listed(node, ns) == [b"key-00000", b"key-00001", b"key-00002"]


def test_bulk_delete_with_one_bad_key_deletes_nothing(node: NodeProcess, ns: str) -> None:
    node.kv.BulkPut(pb.BulkPutRequest(namespace_id=ns, items=_items(3)))
    assert_invalid(
        lambda: node.kv.BulkDelete(
            pb.BulkDeleteRequest(namespace_id=ns, keys=[b"key-00000", b"", b"key-00001"])
        ),
        "Key name cannot be empty.",
    )
    assert len(listed(node, ns)) == 3


# ---- bulk get -------------------------------------------------------------------


def test_bulk_get_text_keeps_request_order_and_reports_missing_keys(
    node: NodeProcess, ns: str
) -> None:
    put(node, ns, b"a", b"alpha", metadata=b'{"k": "a"}')
    put(node, ns, b"b", b"beta")
    put(node, ns, b"c", "ω".encode())
    keys = [b"c", b"missing", b"a", b"b", b"a"]
    entries = _bulk_get(node, ns, keys)
    assert [entry.key for entry in entries] == keys
    assert [entry.result.found for entry in entries] == [True, False, True, True, True]
    assert [entry.result.text for entry in entries] == ["ω", "", "alpha", "beta", "alpha"]
    assert all(
        entry.result.WhichOneof("payload") == "text" for entry in entries if entry.result.found
    )
    assert entries[1].result.WhichOneof("payload") is None
    # Without with_metadata, no metadata comes back.
    assert not any(entry.result.HasField("metadata") for entry in entries)


def test_bulk_get_with_metadata(node: NodeProcess, ns: str) -> None:
    put(node, ns, b"a", b"alpha", metadata=b'{"k": "a"}')
    put(node, ns, b"b", b"beta")
    put(node, ns, b"c", b"gamma", metadata=b"7", expiration_ttl=3600)
    entries = _bulk_get(node, ns, [b"a", b"b", b"c", b"zz"], with_metadata=True)
    results = [entry.result for entry in entries]
    assert results[0].metadata == b'{"k":"a"}'
    assert not results[1].HasField("metadata")
    assert results[2].metadata == b"7" and results[2].expiration > time.time()
    assert not results[3].found and not results[3].HasField("metadata")


def test_bulk_get_json(node: NodeProcess, ns: str) -> None:
    put(node, ns, b"obj", b'{"a": [1, 2]}', metadata=b'{"m": true}')
    put(node, ns, b"num", b"3.25")
    entries = _bulk_get(node, ns, [b"num", b"obj", b"nope"], pb.VALUE_TYPE_JSON, with_metadata=True)
    assert [entry.result.WhichOneof("payload") for entry in entries] == ["json", "json", None]
    assert entries[0].result.json == "3.25"
    assert entries[1].result.json == '{"a": [1, 2]}'
    assert entries[1].result.metadata == b'{"m":true}'
    assert not entries[2].result.found


def test_bulk_get_json_of_a_non_json_value_is_invalid_argument(node: NodeProcess, ns: str) -> None:
    put(node, ns, b"good", b"[1]")
    put(node, ns, b"bad", b"not json")
    assert_invalid(
        lambda: _bulk_get(node, ns, [b"good", b"bad"], pb.VALUE_TYPE_JSON),
        "At least one of the requested keys corresponds to a non-json value",
    )
    # As text, the same keys read fine.
    assert [entry.result.text for entry in _bulk_get(node, ns, [b"good", b"bad"])] == [
        "[1]",
        "not json",
    ]


def test_bulk_get_sees_deleted_keys_as_missing(node: NodeProcess, ns: str) -> None:
    put(node, ns, b"a")
    put(node, ns, b"b")
    node.kv.Delete(pb.DeleteRequest(namespace_id=ns, key=b"a"))
    entries = _bulk_get(node, ns, [b"a", b"b"])
    assert [entry.result.found for entry in entries] == [False, True]
