"""Every validation rule of the Workers KV data model, through real gRPC calls.

Each broken limit is answered INVALID_ARGUMENT with Workers KV's exact wording;
an unknown namespace is NOT_FOUND "namespace not found"; a missing key is a
normal answer. A request that fails changes nothing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from rumor.v1 import admin_pb2, admin_pb2_grpc
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

MAX_VALUE = 26_214_400
TOO_LONG_KEY = b"k" * 513

BAD_KEYS = [
    pytest.param(b"", "Key name cannot be empty.", id="empty"),
    pytest.param(b".", '"." is not allowed as a key name.', id="dot"),
    pytest.param(b"..", '".." is not allowed as a key name.', id="dotdot"),
    pytest.param(
        TOO_LONG_KEY,
        "UTF-8 encoded length of 513 exceeds key length limit of 512.",
        id="513-bytes",
    ),
    pytest.param(
        "é".encode() * 256 + b"a",
        "UTF-8 encoded length of 513 exceeds key length limit of 512.",
        id="257-chars-513-bytes",
    ),
    pytest.param(b"\xff", "Key name must be valid UTF-8.", id="invalid-utf8"),
    pytest.param(b"ok\xc3", "Key name must be valid UTF-8.", id="truncated-utf8"),
]


def _put_stream(node: NodeProcess, header: pb.PutRequest, chunks: list[bytes]) -> pb.PutResponse:
    def messages() -> Iterator[pb.PutStreamRequest]:
        yield pb.PutStreamRequest(header=header, chunk=chunks[0] if chunks else b"")
        for chunk in chunks[1:]:
            yield pb.PutStreamRequest(chunk=chunk)
        yield pb.PutStreamRequest(last=True)

    response: pb.PutResponse = node.kv.PutStream(messages())
    return response


def _key_calls(node: NodeProcess, ns: str, key: bytes) -> dict[str, Callable[[], object]]:
    """Every KV method that takes a key, called with ``key``."""
    text = pb.VALUE_TYPE_TEXT
    return {
        "Put": lambda: node.kv.Put(pb.PutRequest(namespace_id=ns, key=key, value=b"v")),
        "PutStream": lambda: _put_stream(node, pb.PutRequest(namespace_id=ns, key=key), [b"v"]),
        "Get": lambda: node.kv.Get(pb.GetRequest(namespace_id=ns, key=key)),
        "GetStream": lambda: list(node.kv.GetStream(pb.GetRequest(namespace_id=ns, key=key))),
        "BulkGet": lambda: node.kv.BulkGet(
            pb.BulkGetRequest(namespace_id=ns, keys=[b"fine", key], type=text)
        ),
        "Delete": lambda: node.kv.Delete(pb.DeleteRequest(namespace_id=ns, key=key)),
        "BulkPut": lambda: node.kv.BulkPut(
            pb.BulkPutRequest(
                namespace_id=ns,
                items=[pb.PutRequest(key=b"fine", value=b"v"), pb.PutRequest(key=key, value=b"v")],
            )
        ),
        "BulkDelete": lambda: node.kv.BulkDelete(
            pb.BulkDeleteRequest(namespace_id=ns, keys=[b"fine", key])
        ),
    }


KEY_METHODS = ["Put", "PutStream", "Get", "GetStream", "BulkGet", "Delete", "BulkPut", "BulkDelete"]


# ---- keys -------------------------------------------------------------------


@pytest.mark.parametrize("method", KEY_METHODS)
@pytest.mark.parametrize(("key", "message"), BAD_KEYS)
def test_bad_key_is_rejected_by_every_key_method(
    node: NodeProcess, ns: str, method: str, key: bytes, message: str
) -> None:
    assert_invalid(_key_calls(node, ns, key)[method], message)
    # Nothing was written, not even the valid key of a bulk request.
    assert listed(node, ns) == []


def test_longest_keys_are_accepted(node: NodeProcess, ns: str) -> None:
    ascii_key = b"k" * 512
    two_byte_key = "é".encode() * 256  # 256 characters, 512 bytes
    for key in (ascii_key, two_byte_key):
        put(node, ns, key, b"long")
        assert get(node, ns, key).value == b"long"
    assert sorted(listed(node, ns)) == sorted([ascii_key, two_byte_key])


# ---- expiration ---------------------------------------------------------------


@pytest.mark.parametrize("ttl", [0, -1, -86_400])
def test_ttl_not_positive_is_rejected(node: NodeProcess, ns: str, ttl: int) -> None:
    assert_invalid(
        lambda: put(node, ns, b"k", expiration_ttl=ttl),
        f"Invalid expiration_ttl of {ttl}. Please specify integer greater than 0.",
    )
    assert not get(node, ns, b"k").found


@pytest.mark.parametrize("seconds_ago", [1, 3600, 2_000_000_000])
def test_absolute_expiration_in_the_past_is_rejected(
    node: NodeProcess, ns: str, seconds_ago: int
) -> None:
    expiration = int(time.time()) - seconds_ago
    assert_invalid(
        lambda: put(node, ns, b"k", expiration=expiration),
        f"Invalid expiration of {expiration}. Please specify integer greater than"
        " the current number of seconds since the UNIX epoch.",
    )
    assert not get(node, ns, b"k").found


def test_ttl_of_one_second_is_accepted_with_min_ttl_one(node: NodeProcess, ns: str) -> None:
    before = int(time.time())
    response = put(node, ns, b"k", expiration_ttl=1)
    assert before <= response.expiration <= int(time.time()) + 2


def test_minimum_ttl_is_enforced_with_its_configured_value(tmp_path: Path) -> None:
    """A node with the default minimum of 60 s words both "at least" messages."""
    with NodeProcess(tmp_path / "data") as strict:
        ns = strict.kv.CreateNamespace(pb.CreateNamespaceRequest(title="strict")).id
        assert_invalid(
            lambda: put(strict, ns, b"k", expiration_ttl=30),
            "Invalid expiration_ttl of 30. Expiration TTL must be at least 60.",
        )
        soon = int(time.time()) + 30
        assert_invalid(
            lambda: put(strict, ns, b"k", expiration=soon),
            f"Invalid expiration of {soon}. Expiration times must be at least 60 seconds"
            " in the future.",
        )
        assert not get(strict, ns, b"k").found
        assert put(strict, ns, b"k", expiration_ttl=60).expiration >= int(time.time()) + 59


# ---- values and metadata ----------------------------------------------------


def test_value_one_byte_over_the_limit_is_rejected(node: NodeProcess, ns: str) -> None:
    assert_invalid(
        lambda: put(node, ns, b"big", b"x" * (MAX_VALUE + 1)),
        "Value length of 26214401 exceeds limit of 26214400.",
    )
    assert not get(node, ns, b"big").found


def test_value_at_the_limit_is_accepted(node: NodeProcess, ns: str) -> None:
    value = b"y" * MAX_VALUE
    put(node, ns, b"big", value)
    got = get(node, ns, b"big")
    assert got.found and len(got.value) == MAX_VALUE and got.value == value


def test_metadata_over_1024_bytes_is_rejected(node: NodeProcess, ns: str) -> None:
    metadata = b'"' + b"m" * 1023 + b'"'  # a JSON string of 1025 bytes
    assert_invalid(
        lambda: put(node, ns, b"k", metadata=metadata),
        "Metadata length of 1025 exceeds limit of 1024.",
    )
    assert not get(node, ns, b"k").found


def test_metadata_size_is_its_compact_utf8_json(node: NodeProcess, ns: str) -> None:
    # 1024 bytes once compact, though the text sent is much longer (spaces, \\u escapes).
    spaced = b'{"a" :   "' + b"m" * 1016 + b'"}'  # compact: {"a":"m...m"} = 1024 bytes
    put(node, ns, b"spaced", metadata=spaced)
    assert len(get(node, ns, b"spaced", with_metadata=True).metadata) == 1024
    escaped = b'"' + b"\\u00e9" * 511 + b'"'  # compact: "é"*511 in quotes = 1024 bytes
    put(node, ns, b"escaped", metadata=escaped)
    compact = ('"' + "é" * 511 + '"').encode()
    assert get(node, ns, b"escaped", with_metadata=True).metadata == compact
    # One more "é" is two more bytes of UTF-8: 1026.
    assert_invalid(
        lambda: put(node, ns, b"k", metadata=b'"' + b"\\u00e9" * 512 + b'"'),
        "Metadata length of 1026 exceeds limit of 1024.",
    )


@pytest.mark.parametrize("metadata", [b"{", b"not json", b"NaN", b"", b"\xff"])
def test_metadata_that_is_not_json_is_rejected(node: NodeProcess, ns: str, metadata: bytes) -> None:
    assert_invalid(lambda: put(node, ns, b"k", metadata=metadata), "Metadata must be valid JSON.")
    assert not get(node, ns, b"k").found


# ---- list -------------------------------------------------------------------


def test_list_limit_over_1000_is_rejected(node: NodeProcess, ns: str) -> None:
    assert_invalid(
        lambda: node.kv.List(pb.ListRequest(namespace_id=ns, limit=1001)),
        "Invalid key_count_limit of 1001. Please specify an integer less than 1000.",
    )


def test_list_limit_of_zero_means_the_default(node: NodeProcess, ns: str) -> None:
    """As workerd reads it: such a limit is dropped, and the default page is 1000."""
    put(node, ns, b"a")
    put(node, ns, b"b")
    page = node.kv.List(pb.ListRequest(namespace_id=ns, limit=0))
    assert [info.name for info in page.keys] == [b"a", b"b"] and page.list_complete


@pytest.mark.parametrize("limit", [1, 1000])
def test_list_limit_bounds_are_accepted(node: NodeProcess, ns: str, limit: int) -> None:
    put(node, ns, b"a")
    put(node, ns, b"b")
    page = node.kv.List(pb.ListRequest(namespace_id=ns, limit=limit))
    assert [info.name for info in page.keys] == [b"a", b"b"][:limit]


def test_prefix_longer_than_512_bytes_is_rejected(node: NodeProcess, ns: str) -> None:
    assert_invalid(
        lambda: node.kv.List(pb.ListRequest(namespace_id=ns, prefix=TOO_LONG_KEY)),
        "UTF-8 encoded length of 513 exceeds key length limit of 512.",
    )
    page = node.kv.List(pb.ListRequest(namespace_id=ns, prefix=b"p" * 512))
    assert page.list_complete and list(page.keys) == []


def test_prefix_must_be_valid_utf8(node: NodeProcess, ns: str) -> None:
    assert_invalid(
        lambda: node.kv.List(pb.ListRequest(namespace_id=ns, prefix=b"\xff")),
        "Prefix must be valid UTF-8.",
    )


@pytest.mark.parametrize("cursor", [b"not-a-cursor", b"AAAA", b"!!!!"])
def test_garbage_cursor_is_rejected(node: NodeProcess, ns: str, cursor: bytes) -> None:
    assert_invalid(
        lambda: node.kv.List(pb.ListRequest(namespace_id=ns, cursor=cursor)),
        f'Invalid cursor "{cursor.decode()}". Pass the cursor returned by the previous list call.',
    )


# ---- bulk get -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "message"),
    [(0, "You must request a minimum of 1 key"), (101, "You can request a maximum of 100 keys")],
)
def test_bulk_get_key_count_out_of_range_is_rejected(
    node: NodeProcess, ns: str, count: int, message: str
) -> None:
    keys = [b"k%d" % i for i in range(count)]
    assert_invalid(
        lambda: node.kv.BulkGet(
            pb.BulkGetRequest(namespace_id=ns, keys=keys, type=pb.VALUE_TYPE_TEXT)
        ),
        message,
    )


def test_bulk_get_of_100_keys_is_accepted(node: NodeProcess, ns: str) -> None:
    keys = [b"k%d" % i for i in range(100)]
    response = node.kv.BulkGet(
        pb.BulkGetRequest(namespace_id=ns, keys=keys, type=pb.VALUE_TYPE_TEXT)
    )
    assert [entry.key for entry in response.entries] == keys
    assert not any(entry.result.found for entry in response.entries)


def test_bulk_get_as_bytes_is_rejected(node: NodeProcess, ns: str) -> None:
    assert_invalid(
        lambda: node.kv.BulkGet(
            pb.BulkGetRequest(namespace_id=ns, keys=[b"k"], type=pb.VALUE_TYPE_BYTES)
        ),
        '"bytes" is not a valid type. Use "json" or "text"',
    )


# ---- namespaces and missing keys ----------------------------------------------


@pytest.mark.parametrize("method", [*KEY_METHODS, "List"])
@pytest.mark.parametrize(
    "namespace_id",
    [
        pytest.param(uuid.UUID(int=0xFEED).hex, id="well-formed-unknown"),
        pytest.param("0" * 32, id="reserved"),
        pytest.param("not-a-namespace", id="malformed"),
        pytest.param("", id="empty"),
    ],
)
def test_unknown_namespace_is_not_found_for_every_key_method(
    node: NodeProcess, method: str, namespace_id: str
) -> None:
    calls = _key_calls(node, namespace_id, b"k")
    calls["List"] = lambda: node.kv.List(pb.ListRequest(namespace_id=namespace_id))
    assert_status(calls[method], grpc.StatusCode.NOT_FOUND, "namespace not found")


def test_missing_key_is_a_normal_answer(node: NodeProcess, ns: str) -> None:
    for value_type in (pb.VALUE_TYPE_BYTES, pb.VALUE_TYPE_TEXT, pb.VALUE_TYPE_JSON):
        got = get(node, ns, b"missing", value_type, with_metadata=True)
        assert not got.found
        assert got.WhichOneof("payload") is None
        assert not got.HasField("metadata")
    stream = list(node.kv.GetStream(pb.GetRequest(namespace_id=ns, key=b"missing")))
    assert len(stream) == 1 and not stream[0].header.found
    # Deleting a missing key succeeds too (it writes a tombstone).
    deleted = node.kv.Delete(pb.DeleteRequest(namespace_id=ns, key=b"missing"))
    assert deleted.version.hlc > 0


# ---- a failed request changes nothing -------------------------------------------


def test_failed_requests_leave_the_key_as_it_was(node: NodeProcess, ns: str) -> None:
    written = put(node, ns, b"k", b"old", metadata=b'{"v":1}')
    past = int(time.time()) - 10
    failing: list[Callable[[], object]] = [
        lambda: put(node, ns, b"k", b"new", expiration_ttl=0),
        lambda: put(node, ns, b"k", b"new", expiration=past),
        lambda: put(node, ns, b"k", b"new", metadata=b'"' + b"m" * 2000 + b'"'),
        lambda: put(node, ns, b"k", b"new", metadata=b"{broken"),
        lambda: put(node, ns, b"k", b"n" * (MAX_VALUE + 1)),
        lambda: node.kv.BulkPut(
            pb.BulkPutRequest(
                namespace_id=ns,
                items=[pb.PutRequest(key=b"k", value=b"new"), pb.PutRequest(key=b"", value=b"x")],
            )
        ),
        lambda: node.kv.BulkDelete(pb.BulkDeleteRequest(namespace_id=ns, keys=[b"k", b".."])),
    ]
    for call in failing:
        assert failed_call(call).code() == grpc.StatusCode.INVALID_ARGUMENT
    got = get(node, ns, b"k", with_metadata=True)
    assert got.found and got.value == b"old"
    assert got.metadata == b'{"v":1}'
    assert got.expiration == 0
    assert (got.version.hlc, got.version.origin) == (written.version.hlc, written.version.origin)
    assert listed(node, ns) == [b"k"]


# ---- the 32-bit range and rejected writes ----------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "expiration_ttl",
            2**63 - 1,  # now + ttl would overflow 64 bits
            f"Invalid expiration_ttl of {2**63 - 1}. Expiration TTL must be less than 2147483648.",
        ),
        (
            "expiration",
            2**31,
            "Invalid expiration of 2147483648. Expiration times must be less than 2147483648"
            " seconds since the UNIX epoch.",
        ),
    ],
)
def test_out_of_range_expirations_are_rejected_and_change_nothing(
    node: NodeProcess, ns: str, field: str, value: int, message: str
) -> None:
    admin = admin_pb2_grpc.AdminStub(node.channel)
    before_seq = node.kv.Put(pb.PutRequest(namespace_id=ns, key=b"marker", value=b"1")).seq
    before = admin.Status(admin_pb2.StatusRequest())
    request = pb.PutRequest(namespace_id=ns, key=b"far", value=b"x")
    setattr(request, field, value)
    assert_invalid(lambda: node.kv.Put(request), message)
    after = admin.Status(admin_pb2.StatusRequest())
    assert after.records_held == before.records_held
    assert after.audit_digest == before.audit_digest
    next_seq = node.kv.Put(pb.PutRequest(namespace_id=ns, key=b"marker", value=b"2")).seq
    assert next_seq == before_seq + 1  # the rejected write consumed no seq
    assert not node.kv.Get(pb.GetRequest(namespace_id=ns, key=b"far")).found


def test_cache_ttl_is_checked_and_otherwise_ignored(node: NodeProcess, ns: str) -> None:
    put(node, ns, b"k")
    found = node.kv.Get(pb.GetRequest(namespace_id=ns, key=b"k", cache_ttl=60))
    assert found.found
    assert_invalid(
        lambda: node.kv.Get(pb.GetRequest(namespace_id=ns, key=b"k", cache_ttl=10)),
        "Invalid cache_ttl of 10. Cache TTL must be at least 30.",
    )
    assert_invalid(
        lambda: node.kv.BulkGet(
            pb.BulkGetRequest(namespace_id=ns, keys=[b"k"], type=pb.VALUE_TYPE_TEXT, cache_ttl=29)
        ),
        "Invalid cache_ttl of 29. Cache TTL must be at least 30.",
    )
