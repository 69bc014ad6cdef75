"""The blocking SDK (``rumor.client.Client``) against one real node.

Every test talks to the node only through the SDK: namespaces, every value
type put and read back, streaming in 1 MiB reads, expiration and metadata,
bulk calls, listing, the node's error messages word for word, stickiness and
failover across a dead endpoint, and closing the channels.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import random
import re
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import grpc
import pytest

from rumor.client import (
    Client,
    KeyInfo,
    KVNamespace,
    ListResult,
    NamespaceInfo,
    ValueWithMetadata,
    WriteResult,
)
from rumor.client.errors import (
    InvalidRequestError,
    NamespaceExistsError,
    NamespaceNotFoundError,
    RumorError,
    UnavailableError,
)
from tests.support.nodes import NodeProcess, poll

MIB = 1024 * 1024
MAX_VALUE = 26_214_400  # 25 MiB, the value limit
TIMEOUT = 5.0
UNKNOWN_ID = "0" * 32
LIST_NAMESPACES = "/rumor.v1.KV/ListNamespaces"
ACCEPTED_WORDS = ("str", "bytes", "bytearray", "memoryview", "binary file", "iterable of bytes")


def dead_address() -> str:
    """An address nothing listens on: a port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"127.0.0.1:{port}"


def unique_title(label: str) -> str:
    return f"sdk-{label}-{uuid.uuid4().hex[:12]}"


class RecordingReader:
    """A binary file that records the size asked for by every ``read()``."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.sizes: list[int] = []

    def read(self, size: int = -1) -> bytes:
        self.sizes.append(size)
        return self._raw.read(size)

    def seekable(self) -> bool:
        return self._raw.seekable()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def assert_streamed(self, total: int) -> None:
        """Every read asked for 1..1 MiB bytes, so the file was never read whole."""
        assert self.sizes, "the file was never read"
        assert all(0 < size <= MIB for size in self.sizes), self.sizes
        assert len(self.sizes) >= math.ceil(total / MIB)


@pytest.fixture
def client(node: NodeProcess) -> Iterator[Client]:
    with Client(node.address, timeout=TIMEOUT) as kv:
        yield kv


@pytest.fixture
def kv_ns(client: Client, request: pytest.FixtureRequest) -> KVNamespace:
    """A fresh namespace for one test, created through the SDK."""
    info = client.namespaces.create(unique_title(request.node.name))
    return client.namespace(info.id)


# --- namespaces -------------------------------------------------------------------------


def test_namespace_create_list_get_rename_delete(client: Client) -> None:
    title = unique_title("lifecycle")
    info = client.namespaces.create(title)
    assert isinstance(info, NamespaceInfo)
    assert re.fullmatch(r"[0-9a-f]{32}", info.id)
    assert info.title == title
    assert info in client.namespaces.list()
    assert client.namespaces.get(info.id) == info

    renamed = client.namespaces.rename(info.id, title + "-renamed")
    assert renamed == NamespaceInfo(info.id, title + "-renamed")
    assert client.namespaces.get(info.id).title == title + "-renamed"

    client.namespaces.delete(info.id)
    assert info.id not in {listed.id for listed in client.namespaces.list()}
    with pytest.raises(NamespaceNotFoundError):
        client.namespaces.get(info.id)


def test_create_with_a_taken_title_raises_namespace_exists(client: Client) -> None:
    title = unique_title("dup")
    first = client.namespaces.create(title)
    with pytest.raises(NamespaceExistsError):
        client.namespaces.create(title)
    assert [n for n in client.namespaces.list() if n.title == title] == [first]


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda kv: kv.namespaces.get(UNKNOWN_ID), id="get"),
        pytest.param(lambda kv: kv.namespaces.rename(UNKNOWN_ID, "x"), id="rename"),
        pytest.param(lambda kv: kv.namespaces.delete(UNKNOWN_ID), id="delete"),
        pytest.param(lambda kv: kv.namespace(UNKNOWN_ID).get("k"), id="get-key"),
        pytest.param(lambda kv: kv.namespace(UNKNOWN_ID).put("k", "v"), id="put-key"),
    ],
)
def test_unknown_namespace_raises_not_found_with_the_nodes_message(
    client: Client, call: Callable[[Client], object]
) -> None:
    with pytest.raises(NamespaceNotFoundError) as caught:
        call(client)
    assert isinstance(caught.value, LookupError)
    assert isinstance(caught.value, RumorError)
    assert caught.value.message == "namespace not found"


# --- put: value types -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        pytest.param("héllo 🌍", "héllo 🌍".encode(), id="str"),
        pytest.param(b"\x00\x01\xff", b"\x00\x01\xff", id="bytes"),
        pytest.param(bytearray(b"\x02\x03"), b"\x02\x03", id="bytearray"),
        pytest.param(memoryview(b"--view--")[2:6], b"view", id="memoryview"),
        pytest.param(b"", b"", id="empty"),
    ],
)
def test_put_small_values_round_trip(kv_ns: KVNamespace, value: object, stored: bytes) -> None:
    result = kv_ns.put("k", value)
    assert isinstance(result, WriteResult)
    assert result.expiration is None
    assert kv_ns.get("k", type="bytes") == stored


def test_put_bytesio_is_streamed_in_reads_of_at_most_1_mib(kv_ns: KVNamespace) -> None:
    value = random.randbytes(2 * MIB + 12345)
    reader = RecordingReader(io.BytesIO(value))
    kv_ns.put("bio", reader)
    reader.assert_streamed(len(value))
    assert kv_ns.get("bio", type="bytes") == value


def test_put_real_binary_file_is_streamed_never_read_whole(
    kv_ns: KVNamespace, tmp_path: Path
) -> None:
    value = random.randbytes(3 * MIB + 7)
    path = tmp_path / "three.bin"
    path.write_bytes(value)
    with path.open("rb") as handle:
        reader = RecordingReader(handle)
        kv_ns.put("file", reader, metadata={"name": "three.bin"})
    reader.assert_streamed(len(value))
    got = kv_ns.get_with_metadata("file", type="bytes")
    assert got == ValueWithMetadata(value, {"name": "three.bin"})


def test_put_plain_binary_file_object(kv_ns: KVNamespace, tmp_path: Path) -> None:
    path = tmp_path / "plain.bin"
    path.write_bytes(b"plain file")
    with path.open("rb") as handle:
        kv_ns.put("plain", handle)
    assert kv_ns.get("plain") == "plain file"


def test_put_iterable_and_generator_of_bytes_are_streamed(kv_ns: KVNamespace) -> None:
    def generate() -> Iterator[bytes | bytearray | memoryview]:
        yield b"alpha-"
        yield bytearray(b"beta-")
        yield memoryview(b"gamma")
        yield b"x" * (MIB + 1)

    kv_ns.put("gen", generate())
    assert kv_ns.get("gen", type="bytes") == b"alpha-beta-gamma" + b"x" * (MIB + 1)
    kv_ns.put("list", [b"one", b"two"])
    assert kv_ns.get("list") == "onetwo"


@pytest.mark.parametrize("value", [1.5, {"a": 1}, 3, None], ids=["float", "dict", "int", "none"])
def test_put_unsupported_value_raises_type_error_naming_accepted_types(
    kv_ns: KVNamespace, value: object
) -> None:
    with pytest.raises(TypeError) as caught:
        kv_ns.put("k", value)
    for word in ACCEPTED_WORDS:
        assert word in str(caught.value)
    assert kv_ns.get("k") is None


def test_put_text_mode_file_raises_type_error_naming_accepted_types(
    kv_ns: KVNamespace, tmp_path: Path
) -> None:
    path = tmp_path / "text.txt"
    path.write_text("some text\nmore text\n")
    with path.open("r") as handle, pytest.raises(TypeError) as caught:
        kv_ns.put("k", handle)
    for word in ACCEPTED_WORDS:
        assert word in str(caught.value)
    assert kv_ns.get("k") is None


def test_put_iterable_yielding_str_raises_type_error(kv_ns: KVNamespace) -> None:
    with pytest.raises(TypeError, match="bytes"):
        kv_ns.put("k", iter(["not", "bytes"]))
    assert kv_ns.get("k") is None


# --- put: expiration and metadata -------------------------------------------------------


def test_put_with_expiration_ttl_returns_the_absolute_expiration(kv_ns: KVNamespace) -> None:
    before = time.time()
    result = kv_ns.put("k", "v", expiration_ttl=600)
    after = time.time()
    assert isinstance(result, WriteResult)
    assert result.expiration is not None
    assert math.floor(before) + 600 <= result.expiration <= math.ceil(after) + 600
    assert kv_ns.list().keys == [KeyInfo("k", result.expiration, None)]


def test_put_with_absolute_expiration(kv_ns: KVNamespace) -> None:
    expiration = int(time.time()) + 3600
    result = kv_ns.put("k", "v", expiration=expiration)
    assert result.expiration == expiration
    assert kv_ns.list().keys == [KeyInfo("k", expiration, None)]
    assert kv_ns.get("k") == "v"


def test_expiration_ttl_wins_over_expiration(kv_ns: KVNamespace) -> None:
    far = int(time.time()) + 100_000
    result = kv_ns.put("k", "v", expiration=far, expiration_ttl=600)
    assert result.expiration is not None
    assert result.expiration < far
    assert abs(result.expiration - (time.time() + 600)) <= 2


def test_key_with_a_short_ttl_expires(kv_ns: KVNamespace) -> None:
    kv_ns.put("short", "v", expiration_ttl=1)
    poll(lambda: kv_ns.get("short") is None, timeout=10)
    assert kv_ns.get_with_metadata("short") == ValueWithMetadata(None, None)
    assert kv_ns.list().keys == []


@pytest.mark.parametrize(
    "metadata",
    [{"owner": "ada", "tags": ["a", 1], "nested": {"ok": True}}, 42, 2.5, "a string"],
    ids=["object", "int", "float", "string"],
)
def test_put_metadata_of_every_json_kind(kv_ns: KVNamespace, metadata: Any) -> None:
    kv_ns.put("k", "v", metadata=metadata)
    assert kv_ns.get_with_metadata("k") == ValueWithMetadata("v", metadata)
    assert kv_ns.list().keys == [KeyInfo("k", None, metadata)]


def test_put_replaces_value_metadata_and_expiration_together(kv_ns: KVNamespace) -> None:
    first = kv_ns.put("k", "old", expiration_ttl=600, metadata={"v": 1})
    assert first.expiration is not None
    assert kv_ns.list().keys == [KeyInfo("k", first.expiration, {"v": 1})]

    second = kv_ns.put("k", "new")
    assert second.expiration is None
    assert kv_ns.get_with_metadata("k") == ValueWithMetadata("new", None)
    assert kv_ns.list().keys == [KeyInfo("k", None, None)]

    third = kv_ns.put("k", b"newest", metadata="m")
    assert third.expiration is None
    assert kv_ns.get_with_metadata("k", type="bytes") == ValueWithMetadata(b"newest", "m")


# --- get --------------------------------------------------------------------------------


def test_get_as_text_json_bytes_and_array_buffer(kv_ns: KVNamespace) -> None:
    document = {"a": [1, "b"], "c": None}
    kv_ns.put("doc", json.dumps(document))
    assert kv_ns.get("doc") == json.dumps(document)
    assert kv_ns.get("doc", type="text") == json.dumps(document)
    assert kv_ns.get("doc", type="json") == document
    assert kv_ns.get("doc", type="bytes") == json.dumps(document).encode()
    assert kv_ns.get("doc", type="arrayBuffer") == kv_ns.get("doc", type="bytes")


def test_get_stream_yields_chunks_that_join_to_the_value(kv_ns: KVNamespace) -> None:
    value = random.randbytes(2 * MIB + 99)
    kv_ns.put("big", value)
    stream = kv_ns.get("big", type="stream")
    assert isinstance(stream, Iterator)
    chunks = list(stream)
    assert len(chunks) >= 3
    assert all(isinstance(chunk, bytes) for chunk in chunks)
    assert b"".join(chunks) == value


@pytest.mark.parametrize("value_type", ["text", "json", "bytes", "arrayBuffer", "stream"])
def test_get_of_a_missing_key_is_none(kv_ns: KVNamespace, value_type: str) -> None:
    assert kv_ns.get("missing", type=value_type) is None


def test_get_of_a_deleted_key_is_none(kv_ns: KVNamespace) -> None:
    kv_ns.put("k", "v")
    kv_ns.delete("k")
    assert kv_ns.get("k") is None
    assert kv_ns.get("k", type="stream") is None


def test_25_mib_value_round_trips_through_file_put_and_stream_get(
    kv_ns: KVNamespace, tmp_path: Path
) -> None:
    value = random.randbytes(MAX_VALUE)
    path = tmp_path / "max.bin"
    path.write_bytes(value)
    with path.open("rb") as handle:
        reader = RecordingReader(handle)
        kv_ns.put("max", reader)
    reader.assert_streamed(MAX_VALUE)

    stream = kv_ns.get("max", type="stream")
    assert stream is not None
    digest = hashlib.sha256()
    length = 0
    for chunk in stream:
        digest.update(chunk)
        length += len(chunk)
    assert length == MAX_VALUE
    assert digest.digest() == hashlib.sha256(value).digest()


def test_get_a_list_of_keys_returns_a_dict_with_none_for_missing(kv_ns: KVNamespace) -> None:
    kv_ns.put("a", '{"n": 1}')
    kv_ns.put("b", "[2]")
    assert kv_ns.get(["a", "b", "missing"]) == {"a": '{"n": 1}', "b": "[2]", "missing": None}
    assert kv_ns.get(["a", "b", "missing"], type="json") == {
        "a": {"n": 1},
        "b": [2],
        "missing": None,
    }


def test_get_a_list_of_100_keys(kv_ns: KVNamespace) -> None:
    keys = [f"k{i:03d}" for i in range(100)]
    assert kv_ns.bulk_put([{"key": key, "value": key.upper()} for key in keys[:50]]) == 50
    got = kv_ns.get(keys)
    assert got == {key: (key.upper() if i < 50 else None) for i, key in enumerate(keys)}


def test_get_101_keys_is_invalid(kv_ns: KVNamespace) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        kv_ns.get([f"k{i}" for i in range(101)])
    assert caught.value.message == "You can request a maximum of 100 keys"


def test_get_with_metadata(kv_ns: KVNamespace) -> None:
    kv_ns.put("a", "1", metadata={"m": "a"})
    kv_ns.put("b", "2")
    assert kv_ns.get_with_metadata("a") == ValueWithMetadata("1", {"m": "a"})
    assert kv_ns.get_with_metadata("b") == ValueWithMetadata("2", None)
    assert kv_ns.get_with_metadata("missing") == ValueWithMetadata(None, None)
    assert kv_ns.get_with_metadata("a", type="json") == ValueWithMetadata(1, {"m": "a"})
    assert kv_ns.get_with_metadata(["a", "b", "missing"]) == {
        "a": ValueWithMetadata("1", {"m": "a"}),
        "b": ValueWithMetadata("2", None),
        "missing": None,  # as workerd answers a missing key
    }


# --- delete, bulk, list -----------------------------------------------------------------


def test_delete_a_key_and_a_missing_key(kv_ns: KVNamespace) -> None:
    kv_ns.put("k", "v")
    deleted = kv_ns.delete("k")
    assert isinstance(deleted, WriteResult)
    assert kv_ns.get("k") is None
    assert isinstance(kv_ns.delete("never-existed"), WriteResult)
    assert kv_ns.list().keys == []


def test_bulk_put_with_base64_metadata_and_expiration(kv_ns: KVNamespace) -> None:
    expiration = int(time.time()) + 7200
    before = time.time()
    count = kv_ns.bulk_put(
        [
            {"key": "plain", "value": "text"},
            {"key": "b64", "value": "AAH/aGk=", "base64": True},
            {"key": "ttl", "value": "t", "expiration_ttl": 600, "metadata": {"m": 1}},
            {"key": "abs", "value": "x", "expiration": expiration},
            {"key": "raw", "value": b"\x00raw"},
        ]
    )
    assert count == 5
    assert kv_ns.get("plain") == "text"
    assert kv_ns.get("b64", type="bytes") == b"\x00\x01\xffhi"
    assert kv_ns.get("raw", type="bytes") == b"\x00raw"
    assert kv_ns.get_with_metadata("ttl") == ValueWithMetadata("t", {"m": 1})
    listed = {info.name: info for info in kv_ns.list().keys}
    assert listed["abs"].expiration == expiration
    ttl_expiration = listed["ttl"].expiration
    assert ttl_expiration is not None
    assert math.floor(before) + 600 <= ttl_expiration <= math.ceil(time.time()) + 600
    assert listed["plain"] == KeyInfo("plain", None, None)


def test_bulk_put_with_one_bad_item_writes_nothing(kv_ns: KVNamespace) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        kv_ns.bulk_put(
            [
                {"key": "good-1", "value": "1"},
                {"key": "", "value": "2"},
                {"key": "good-2", "value": "3"},
            ]
        )
    assert caught.value.message == "Key name cannot be empty."
    assert kv_ns.get(["good-1", "good-2"]) == {"good-1": None, "good-2": None}
    assert kv_ns.list().keys == []


def test_bulk_delete(kv_ns: KVNamespace) -> None:
    kv_ns.bulk_put([{"key": key, "value": key} for key in ("a", "b", "c")])
    count = kv_ns.bulk_delete(["a", "c", "never-existed"])
    assert count == 3
    assert kv_ns.get(["a", "b", "c"]) == {"a": None, "b": "b", "c": None}
    assert [info.name for info in kv_ns.list().keys] == ["b"]


def test_list_with_prefix_limit_and_cursor(kv_ns: KVNamespace) -> None:
    names = [f"user:{i}" for i in range(5)]
    kv_ns.bulk_put([{"key": name, "value": "v"} for name in [*names, "other", "user"]])

    first = kv_ns.list(prefix="user:", limit=2)
    assert isinstance(first, ListResult)
    assert [info.name for info in first.keys] == names[:2]
    assert first.list_complete is False
    assert first.cursor is not None

    second = kv_ns.list(prefix="user:", limit=2, cursor=first.cursor)
    assert [info.name for info in second.keys] == names[2:4]
    assert second.list_complete is False
    assert second.cursor is not None

    third = kv_ns.list(prefix="user:", limit=2, cursor=second.cursor)
    assert third == ListResult([KeyInfo(names[4], None, None)], True, None)

    everything = kv_ns.list()
    assert [info.name for info in everything.keys] == ["other", "user", *names]
    assert everything.list_complete is True
    assert everything.cursor is None


def test_iter_keys_yields_2500_keys_in_byte_order_exactly_once(kv_ns: KVNamespace) -> None:
    names = [f"p:{i:04d}" for i in range(2400)] + [f"p:é{i:02d}" for i in range(50)]
    names += [f"p:\U0001f600{i:02d}" for i in range(50)]
    random.shuffle(names)
    noise = [f"q:{i}" for i in range(20)] + ["p", "o:zz"]
    assert kv_ns.bulk_put([{"key": name, "value": "v"} for name in names + noise]) == 2522

    seen = [info.name for info in kv_ns.iter_keys(prefix="p:")]
    assert len(seen) == 2500
    assert len(set(seen)) == 2500
    assert seen == sorted(names, key=lambda name: name.encode("utf-8"))
    assert sum(1 for _ in kv_ns.iter_keys()) == 2522


# --- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "kwargs", "message"),
    [
        ("", {}, "Key name cannot be empty."),
        ("a" * 513, {}, "UTF-8 encoded length of 513 exceeds key length limit of 512."),
        ("é" * 256 + "a", {}, "UTF-8 encoded length of 513 exceeds key length limit of 512."),
        (".", {}, '"." is not allowed as a key name.'),
        (
            "k",
            {"expiration_ttl": 0},
            "Invalid expiration_ttl of 0. Please specify integer greater than 0.",
        ),
    ],
    ids=["empty", "513-ascii", "513-utf8", "dot", "ttl-0"],
)
def test_invalid_request_is_a_value_error_with_the_nodes_message(
    kv_ns: KVNamespace, key: str, kwargs: dict[str, int], message: str
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        kv_ns.put(key, "x", **kwargs)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, RumorError)
    assert caught.value.message == message


def test_a_512_byte_key_is_accepted(kv_ns: KVNamespace) -> None:
    key = "é" * 256
    kv_ns.put(key, "x")
    assert kv_ns.get(key) == "x"


# --- stickiness and failover ------------------------------------------------------------


@pytest.fixture
def failover(node: NodeProcess) -> Iterator[Client]:
    """A client whose first endpoint is dead and second is the node."""
    with Client([dead_address(), node.address], timeout=TIMEOUT) as kv:
        yield kv


def test_namespaces_list_fails_over_and_sticks(
    failover: Client, kv_ns: KVNamespace, node: NodeProcess
) -> None:
    assert failover.endpoints.current == 0
    assert kv_ns.id in {info.id for info in failover.namespaces.list()}
    assert failover.endpoints.current == 1
    for _ in range(3):
        failover.namespaces.get(kv_ns.id)
        assert failover.endpoints.current == 1
    assert failover.endpoints.addresses[failover.endpoints.current] == node.address


@pytest.mark.parametrize("value_type", ["text", "stream"])
def test_get_fails_over_and_sticks(failover: Client, kv_ns: KVNamespace, value_type: str) -> None:
    kv_ns.put("k", "value")
    got = failover.namespace(kv_ns.id).get("k", type=value_type)
    if value_type == "stream":
        assert got is not None
        got = b"".join(got).decode()
    assert got == "value"
    assert failover.endpoints.current == 1
    assert failover.namespace(kv_ns.id).get(["k"]) == {"k": "value"}
    assert failover.endpoints.current == 1


def _put_str(ns: KVNamespace) -> None:
    ns.put("k", "v")


def _put_file(ns: KVNamespace) -> None:
    ns.put("k", io.BytesIO(b"v" * (MIB + 5)))


def _delete(ns: KVNamespace) -> None:
    ns.delete("gone")


def _bulk_put(ns: KVNamespace) -> None:
    ns.bulk_put([{"key": "b1", "value": "1"}, {"key": "b2", "value": "2"}])


def _bulk_delete(ns: KVNamespace) -> None:
    ns.bulk_delete(["gone", "b1"])


@pytest.mark.parametrize(
    ("write", "expected"),
    [
        pytest.param(_put_str, {"k": "v"}, id="put"),
        pytest.param(_put_file, {"k": "v" * (MIB + 5)}, id="put-file"),
        pytest.param(_delete, {"gone": None}, id="delete"),
        pytest.param(_bulk_put, {"b1": "1", "b2": "2"}, id="bulk_put"),
        pytest.param(_bulk_delete, {"gone": None, "b1": None}, id="bulk_delete"),
    ],
)
def test_writes_fail_over_and_stick(
    failover: Client,
    kv_ns: KVNamespace,
    write: Callable[[KVNamespace], None],
    expected: dict[str, str | None],
) -> None:
    kv_ns.bulk_put([{"key": "gone", "value": "x"}, {"key": "b1", "value": "x"}])
    write(failover.namespace(kv_ns.id))
    assert failover.endpoints.current == 1
    assert kv_ns.get(list(expected)) == expected


def test_namespace_create_is_not_retried(failover: Client, client: Client) -> None:
    dead = failover.endpoints.addresses[0]
    lost = unique_title("lost")
    with pytest.raises(UnavailableError) as caught:
        failover.namespaces.create(lost)
    assert dead in str(caught.value)
    assert failover.endpoints.current == 1
    assert lost not in {info.title for info in client.namespaces.list()}

    kept = unique_title("kept")
    info = failover.namespaces.create(kept)
    assert info.title == kept
    assert client.namespaces.get(info.id) == info
    assert failover.endpoints.current == 1


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda kv: kv.namespaces.list(), id="namespaces.list"),
        pytest.param(lambda kv: kv.namespaces.get(UNKNOWN_ID), id="namespaces.get"),
        pytest.param(lambda kv: kv.namespace(UNKNOWN_ID).get("k"), id="get"),
        pytest.param(lambda kv: kv.namespace(UNKNOWN_ID).get("k", type="stream"), id="stream"),
        pytest.param(lambda kv: kv.namespace(UNKNOWN_ID).put("k", "v"), id="put"),
        pytest.param(lambda kv: kv.namespace(UNKNOWN_ID).delete("k"), id="delete"),
        pytest.param(lambda kv: kv.namespace(UNKNOWN_ID).list(), id="list"),
        pytest.param(lambda kv: kv.namespace(UNKNOWN_ID).bulk_delete(["k"]), id="bulk_delete"),
    ],
)
def test_only_dead_endpoints_raise_unavailable_naming_each(
    call: Callable[[Client], object],
) -> None:
    addresses = [dead_address(), dead_address()]
    with Client(addresses, timeout=TIMEOUT) as kv:
        with pytest.raises(UnavailableError) as caught:
            call(kv)
        for address in addresses:
            assert address in str(caught.value)


def test_create_on_only_dead_endpoints_names_the_endpoint_tried() -> None:
    addresses = [dead_address(), dead_address()]
    with Client(addresses, timeout=TIMEOUT) as kv:
        with pytest.raises(UnavailableError) as caught:
            kv.namespaces.create(unique_title("nowhere"))
        assert addresses[0] in str(caught.value)
        assert kv.endpoints.current == 1
        with pytest.raises(UnavailableError) as again:
            kv.namespaces.create(unique_title("nowhere"))
        assert addresses[1] in str(again.value)


# --- closing ----------------------------------------------------------------------------


def test_context_manager_closes_every_channel(
    node: NodeProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[grpc.Channel] = []
    real_insecure_channel = grpc.insecure_channel

    def recording(target: str, options: Any = None, compression: Any = None) -> grpc.Channel:
        channel = real_insecure_channel(target, options=options, compression=compression)
        opened.append(channel)
        return channel

    monkeypatch.setattr(grpc, "insecure_channel", recording)
    with Client([dead_address(), node.address], timeout=TIMEOUT) as kv:
        assert isinstance(kv.namespaces.list(), list)
        assert len(opened) == 2
        ping = opened[1].unary_unary(LIST_NAMESPACES, None, None)
        assert isinstance(ping(b"", timeout=TIMEOUT), bytes)
    for channel in opened:
        with pytest.raises(ValueError, match="closed channel"):
            channel.unary_unary(LIST_NAMESPACES, None, None)(b"", timeout=TIMEOUT)


def test_errors_read_as_workerd_words_them(kv_ns: KVNamespace) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        kv_ns.put("k", "v", expiration_ttl=0)
    error = caught.value
    assert (error.operation, error.status) == ("PUT", 400)
    assert str(error) == (
        "KV PUT failed: 400 Invalid expiration_ttl of 0. Please specify integer greater than 0."
    )
    with pytest.raises(InvalidRequestError) as too_long:
        kv_ns.get("x" * 513)
    assert str(too_long.value) == (
        "KV GET failed: 414 UTF-8 encoded length of 513 exceeds key length limit of 512."
    )


def test_get_with_metadata_as_a_stream_and_cache_ttl(kv_ns: KVNamespace) -> None:
    kv_ns.put("s", b"x" * 3_000_000, metadata={"big": True})
    found = kv_ns.get_with_metadata("s", type="stream", cache_ttl=60)
    assert found.metadata == {"big": True}
    assert b"".join(found.value) == b"x" * 3_000_000
    assert kv_ns.get_with_metadata("absent", type="stream") == ValueWithMetadata(None, None)
    assert kv_ns.get(["s"], cache_ttl=30) == {"s": "x" * 3_000_000}
    with pytest.raises(InvalidRequestError) as caught:
        kv_ns.get("s", cache_ttl=10)
    assert caught.value.message == "Invalid cache_ttl of 10. Cache TTL must be at least 30."
