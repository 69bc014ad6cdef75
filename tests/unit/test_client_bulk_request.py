"""The SDK's BulkPutRequest: items built in place are the messages ``bulk_item`` builds.

Plain ``{"key", "value"}`` dicts take a fast path; every other item goes
through ``bulk_item``. The request (bytes on the wire) and the error an invalid
item raises are the same either way.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import pytest

from rumor.client import codec
from rumor.v1 import kv_pb2

ITEMS: list[Any] = [
    {"key": "a", "value": b"x"},
    {"key": "b", "value": "t\u00e9xt"},
    {"key": "c", "value": "aGk=", "base64": True},
    {"key": "d", "value": b"y", "expiration_ttl": 60, "metadata": {"m": 1}},
    OrderedDict(key="e", value=b"z"),
    {"key": "f", "value": bytearray(b"q")},
    {"key": "\udcff", "value": b""},
]


def _by_bulk_item(items: list[Any]) -> kv_pb2.BulkPutRequest:
    return kv_pb2.BulkPutRequest(namespace_id="ns", items=[codec.bulk_item(i) for i in items])


def test_the_request_is_what_bulk_item_builds() -> None:
    built = codec.bulk_put_request("ns", ITEMS)
    assert built.SerializeToString() == _by_bulk_item(ITEMS).SerializeToString()


@pytest.mark.parametrize(
    "bad",
    [
        {"key": 1, "value": b"x"},
        {"key": "\ud800", "value": b"x"},
        {"key": "a"},
        "not an item",
        {"key": "a", "value": 3},
        {"key": "a", "value": "!", "base64": True},
    ],
)
def test_an_invalid_item_raises_what_bulk_item_raises(bad: Any) -> None:
    items = [{"key": "ok", "value": b"v"}, bad]
    with pytest.raises(Exception) as fast:
        codec.bulk_put_request("ns", items)
    with pytest.raises(Exception) as slow:
        _by_bulk_item(items)
    assert (type(fast.value), str(fast.value)) == (type(slow.value), str(slow.value))
