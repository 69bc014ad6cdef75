"""The asyncio SDK (``rumor.client.AsyncClient``) against one real node.

The same surface as the blocking client, awaited: namespaces, every value type
(including async generators) put and read back, streaming in 1 MiB reads,
expiration and metadata, bulk calls, listing with async iteration, the node's
error messages word for word, stickiness and failover across a dead endpoint,
and closing the channels.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import math
import random
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import grpc
import grpc.aio
import pytest

from rumor.client import (
    AsyncClient,
    AsyncKVNamespace,
    KeyInfo,
    ListResult,
    NamespaceInfo,
    ValueWithMetadata,
    WriteResult,
    calls,
)
from rumor.client.errors import (
    InvalidRequestError,
    NamespaceExistsError,
    NamespaceNotFoundError,
    RumorError,
    UnavailableError,
)
from tests.support.nodes import NodeProcess

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
    return f"sdk-async-{label}-{uuid.uuid4().hex[:12]}"


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


async def joined(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in stream])


async def wait_until_missing(ns: AsyncKVNamespace, key: str, timeout: float = 10.0) -> None:
    """Poll ``key`` every 20 ms, like ``tests.support.nodes.poll``, until it reads as absent;
    fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while await ns.get(key) is not None:
        assert time.monotonic() < deadline, f"{key!r} still present after {timeout} s"
        await asyncio.sleep(0.02)


@pytest.fixture
async def client(node: NodeProcess) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(node.address, timeout=TIMEOUT) as kv:
        yield kv


@pytest.fixture
async def kv_ns(client: AsyncClient, request: pytest.FixtureRequest) -> AsyncKVNamespace:
    """A fresh namespace for one test, created through the SDK."""
    info = await client.namespaces.create(unique_title(request.node.name))
    return client.namespace(info.id)


# --- namespaces -------------------------------------------------------------------------


async def test_namespace_create_list_get_rename_delete(client: AsyncClient) -> None:
    title = unique_title("lifecycle")
    info = await client.namespaces.create(title)
    assert isinstance(info, NamespaceInfo)
    assert re.fullmatch(r"[0-9a-f]{32}", info.id)
    assert info.title == title
    assert info in await client.namespaces.list()
    assert await client.namespaces.get(info.id) == info

    renamed = await client.namespaces.rename(info.id, title + "-renamed")
    assert renamed == NamespaceInfo(info.id, title + "-renamed")
    assert (await client.namespaces.get(info.id)).title == title + "-renamed"

    await client.namespaces.delete(info.id)
    assert info.id not in {listed.id for listed in await client.namespaces.list()}
    with pytest.raises(NamespaceNotFoundError):
        await client.namespaces.get(info.id)


async def test_namespaces_list_in_pages(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    for suffix in ("a", "b", "c"):
        await client.namespaces.create(unique_title(f"paged-{suffix}"))
    every = [info.id for info in await client.namespaces.list()]
    assert every == sorted(every) and len(every) >= 3
    first = await client.namespaces.list_page(limit=2)
    assert [info.id for info in first.namespaces] == every[:2] and first.cursor
    rest = await client.namespaces.list_page(cursor=first.cursor)
    assert [info.id for info in rest.namespaces] == every[2:] and rest.list_complete
    monkeypatch.setattr(calls, "NAMESPACE_PAGE", 1)  # list() follows every cursor
    assert [info.id for info in await client.namespaces.list()] == every


async def test_create_with_a_taken_title_raises_namespace_exists(client: AsyncClient) -> None:
    title = unique_title("dup")
    first = await client.namespaces.create(title)
    with pytest.raises(NamespaceExistsError):
        await client.namespaces.create(title)
    assert [n for n in await client.namespaces.list() if n.title == title] == [first]


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
async def test_unknown_namespace_raises_not_found_with_the_nodes_message(
    client: AsyncClient, call: Callable[[AsyncClient], Awaitable[object]]
) -> None:
    with pytest.raises(NamespaceNotFoundError) as caught:
        await call(client)
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
async def test_put_small_values_round_trip(
    kv_ns: AsyncKVNamespace, value: object, stored: bytes
) -> None:
    result = await kv_ns.put("k", value)
    assert isinstance(result, WriteResult)
    assert result.expiration is None
    assert await kv_ns.get("k", type="bytes") == stored


async def test_put_bytesio_is_streamed_in_reads_of_at_most_1_mib(
    kv_ns: AsyncKVNamespace,
) -> None:
    value = random.randbytes(2 * MIB + 12345)
    reader = RecordingReader(io.BytesIO(value))
    await kv_ns.put("bio", reader)
    reader.assert_streamed(len(value))
    assert await kv_ns.get("bio", type="bytes") == value


async def test_put_real_binary_file_is_streamed_never_read_whole(
    kv_ns: AsyncKVNamespace, tmp_path: Path
) -> None:
    value = random.randbytes(3 * MIB + 7)
    path = tmp_path / "three.bin"
    path.write_bytes(value)
    with path.open("rb") as handle:
        reader = RecordingReader(handle)
        await kv_ns.put("file", reader, metadata={"name": "three.bin"})
    reader.assert_streamed(len(value))
    got = await kv_ns.get_with_metadata("file", type="bytes")
    assert got == ValueWithMetadata(value, {"name": "three.bin"})


async def test_put_plain_binary_file_object(kv_ns: AsyncKVNamespace, tmp_path: Path) -> None:
    path = tmp_path / "plain.bin"
    path.write_bytes(b"plain file")
    with path.open("rb") as handle:
        await kv_ns.put("plain", handle)
    assert await kv_ns.get("plain") == "plain file"


async def test_put_async_generator_of_bytes_is_streamed(kv_ns: AsyncKVNamespace) -> None:
    async def generate() -> AsyncIterator[bytes | bytearray | memoryview]:
        yield b"alpha-"
        yield bytearray(b"beta-")
        yield memoryview(b"gamma")
        yield b"x" * (MIB + 1)

    await kv_ns.put("agen", generate(), metadata={"from": "agen"})
    assert await kv_ns.get_with_metadata("agen", type="bytes") == ValueWithMetadata(
        b"alpha-beta-gamma" + b"x" * (MIB + 1), {"from": "agen"}
    )


async def test_put_sync_iterable_and_generator_of_bytes(kv_ns: AsyncKVNamespace) -> None:
    def generate() -> Iterator[bytes]:
        yield b"sync-"
        yield b"gen"

    await kv_ns.put("gen", generate())
    assert await kv_ns.get("gen") == "sync-gen"
    await kv_ns.put("list", [b"one", b"two"])
    assert await kv_ns.get("list") == "onetwo"


@pytest.mark.parametrize("value", [1.5, {"a": 1}, 3, None], ids=["float", "dict", "int", "none"])
async def test_put_unsupported_value_raises_type_error_naming_accepted_types(
    kv_ns: AsyncKVNamespace, value: object
) -> None:
    with pytest.raises(TypeError) as caught:
        await kv_ns.put("k", value)
    for word in ACCEPTED_WORDS:
        assert word in str(caught.value)
    assert await kv_ns.get("k") is None


async def test_put_text_mode_file_raises_type_error_naming_accepted_types(
    kv_ns: AsyncKVNamespace, tmp_path: Path
) -> None:
    path = tmp_path / "text.txt"
    path.write_text("some text\nmore text\n")
    with path.open("r") as handle, pytest.raises(TypeError) as caught:
        await kv_ns.put("k", handle)
    for word in ACCEPTED_WORDS:
        assert word in str(caught.value)
    assert await kv_ns.get("k") is None


async def test_put_iterable_yielding_str_raises_type_error(kv_ns: AsyncKVNamespace) -> None:
    with pytest.raises(TypeError, match="bytes"):
        await kv_ns.put("k", iter(["not", "bytes"]))
    assert await kv_ns.get("k") is None


async def test_put_async_generator_yielding_str_raises_type_error(
    kv_ns: AsyncKVNamespace,
) -> None:
    async def generate() -> AsyncIterator[str]:
        yield "not bytes"

    with pytest.raises(TypeError, match="bytes"):
        await kv_ns.put("k", generate())
    assert await kv_ns.get("k") is None


# --- put: expiration and metadata -------------------------------------------------------


async def test_put_with_expiration_ttl_returns_the_absolute_expiration(
    kv_ns: AsyncKVNamespace,
) -> None:
    before = time.time()
    result = await kv_ns.put("k", "v", expiration_ttl=600)
    after = time.time()
    assert isinstance(result, WriteResult)
    assert result.expiration is not None
    assert math.floor(before) + 600 <= result.expiration <= math.ceil(after) + 600
    assert (await kv_ns.list()).keys == [KeyInfo("k", result.expiration, None)]


async def test_put_with_absolute_expiration(kv_ns: AsyncKVNamespace) -> None:
    expiration = int(time.time()) + 3600
    result = await kv_ns.put("k", "v", expiration=expiration)
    assert result.expiration == expiration
    assert (await kv_ns.list()).keys == [KeyInfo("k", expiration, None)]
    assert await kv_ns.get("k") == "v"


async def test_expiration_ttl_wins_over_expiration(kv_ns: AsyncKVNamespace) -> None:
    far = int(time.time()) + 100_000
    result = await kv_ns.put("k", "v", expiration=far, expiration_ttl=600)
    assert result.expiration is not None
    assert result.expiration < far
    assert abs(result.expiration - (time.time() + 600)) <= 2


async def test_key_with_a_short_ttl_expires(kv_ns: AsyncKVNamespace) -> None:
    await kv_ns.put("short", "v", expiration_ttl=1)
    await wait_until_missing(kv_ns, "short")
    assert await kv_ns.get_with_metadata("short") == ValueWithMetadata(None, None)
    assert (await kv_ns.list()).keys == []


@pytest.mark.parametrize(
    "metadata",
    [{"owner": "ada", "tags": ["a", 1], "nested": {"ok": True}}, 42, 2.5, "a string"],
    ids=["object", "int", "float", "string"],
)
async def test_put_metadata_of_every_json_kind(kv_ns: AsyncKVNamespace, metadata: Any) -> None:
    await kv_ns.put("k", "v", metadata=metadata)
    assert await kv_ns.get_with_metadata("k") == ValueWithMetadata("v", metadata)
    assert (await kv_ns.list()).keys == [KeyInfo("k", None, metadata)]


async def test_put_replaces_value_metadata_and_expiration_together(
    kv_ns: AsyncKVNamespace,
) -> None:
    first = await kv_ns.put("k", "old", expiration_ttl=600, metadata={"v": 1})
    assert first.expiration is not None
    assert (await kv_ns.list()).keys == [KeyInfo("k", first.expiration, {"v": 1})]

    second = await kv_ns.put("k", "new")
    assert second.expiration is None
    assert await kv_ns.get_with_metadata("k") == ValueWithMetadata("new", None)
    assert (await kv_ns.list()).keys == [KeyInfo("k", None, None)]

    third = await kv_ns.put("k", b"newest", metadata="m")
    assert third.expiration is None
    assert await kv_ns.get_with_metadata("k", type="bytes") == ValueWithMetadata(b"newest", "m")


# --- get --------------------------------------------------------------------------------


async def test_get_as_text_json_bytes_and_array_buffer(kv_ns: AsyncKVNamespace) -> None:
    document = {"a": [1, "b"], "c": None}
    await kv_ns.put("doc", json.dumps(document))
    assert await kv_ns.get("doc") == json.dumps(document)
    assert await kv_ns.get("doc", type="text") == json.dumps(document)
    assert await kv_ns.get("doc", type="json") == document
    assert await kv_ns.get("doc", type="bytes") == json.dumps(document).encode()
    assert await kv_ns.get("doc", type="arrayBuffer") == json.dumps(document).encode()


async def test_get_stream_yields_chunks_that_join_to_the_value(kv_ns: AsyncKVNamespace) -> None:
    value = random.randbytes(2 * MIB + 99)
    await kv_ns.put("big", value)
    stream = await kv_ns.get("big", type="stream")
    assert isinstance(stream, AsyncIterator)
    chunks = [chunk async for chunk in stream]
    assert len(chunks) >= 3
    assert all(isinstance(chunk, bytes) for chunk in chunks)
    assert b"".join(chunks) == value


@pytest.mark.parametrize("value_type", ["text", "json", "bytes", "arrayBuffer", "stream"])
async def test_get_of_a_missing_key_is_none(kv_ns: AsyncKVNamespace, value_type: str) -> None:
    assert await kv_ns.get("missing", type=value_type) is None


async def test_get_of_a_deleted_key_is_none(kv_ns: AsyncKVNamespace) -> None:
    await kv_ns.put("k", "v")
    await kv_ns.delete("k")
    assert await kv_ns.get("k") is None
    assert await kv_ns.get("k", type="stream") is None


async def test_25_mib_value_round_trips_through_file_put_and_stream_get(
    kv_ns: AsyncKVNamespace, tmp_path: Path
) -> None:
    value = random.randbytes(MAX_VALUE)
    path = tmp_path / "max.bin"
    path.write_bytes(value)
    with path.open("rb") as handle:
        reader = RecordingReader(handle)
        await kv_ns.put("max", reader)
    reader.assert_streamed(MAX_VALUE)

    stream = await kv_ns.get("max", type="stream")
    assert stream is not None
    digest = hashlib.sha256()
    length = 0
    async for chunk in stream:
        digest.update(chunk)
        length += len(chunk)
    assert length == MAX_VALUE
    assert digest.digest() == hashlib.sha256(value).digest()


async def test_get_a_list_of_keys_returns_a_dict_with_none_for_missing(
    kv_ns: AsyncKVNamespace,
) -> None:
    await kv_ns.put("a", '{"n": 1}')
    await kv_ns.put("b", "[2]")
    assert await kv_ns.get(["a", "b", "missing"]) == {
        "a": '{"n": 1}',
        "b": "[2]",
        "missing": None,
    }
    assert await kv_ns.get(["a", "b", "missing"], type="json") == {
        "a": {"n": 1},
        "b": [2],
        "missing": None,
    }


async def test_get_a_list_of_100_keys(kv_ns: AsyncKVNamespace) -> None:
    keys = [f"k{i:03d}" for i in range(100)]
    assert await kv_ns.bulk_put([{"key": key, "value": key.upper()} for key in keys[:50]]) == 50
    got = await kv_ns.get(keys)
    assert got == {key: (key.upper() if i < 50 else None) for i, key in enumerate(keys)}


async def test_get_101_keys_is_invalid(kv_ns: AsyncKVNamespace) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        await kv_ns.get([f"k{i}" for i in range(101)])
    assert caught.value.message == "You can request a maximum of 100 keys"


async def test_get_with_metadata(kv_ns: AsyncKVNamespace) -> None:
    await kv_ns.put("a", "1", metadata={"m": "a"})
    await kv_ns.put("b", "2")
    assert await kv_ns.get_with_metadata("a") == ValueWithMetadata("1", {"m": "a"})
    assert await kv_ns.get_with_metadata("b") == ValueWithMetadata("2", None)
    assert await kv_ns.get_with_metadata("missing") == ValueWithMetadata(None, None)
    assert await kv_ns.get_with_metadata("a", type="json") == ValueWithMetadata(1, {"m": "a"})
    assert await kv_ns.get_with_metadata(["a", "b", "missing"]) == {
        "a": ValueWithMetadata("1", {"m": "a"}),
        "b": ValueWithMetadata("2", None),
        "missing": None,  # as workerd answers a missing key
    }


# --- delete, bulk, list -----------------------------------------------------------------


async def test_delete_a_key_and_a_missing_key(kv_ns: AsyncKVNamespace) -> None:
    await kv_ns.put("k", "v")
    deleted = await kv_ns.delete("k")
    assert isinstance(deleted, WriteResult)
    assert await kv_ns.get("k") is None
    assert isinstance(await kv_ns.delete("never-existed"), WriteResult)
    assert (await kv_ns.list()).keys == []


async def test_bulk_put_with_base64_metadata_and_expiration(kv_ns: AsyncKVNamespace) -> None:
    expiration = int(time.time()) + 7200
    before = time.time()
    count = await kv_ns.bulk_put(
        [
            {"key": "plain", "value": "text"},
            {"key": "b64", "value": "AAH/aGk=", "base64": True},
            {"key": "ttl", "value": "t", "expiration_ttl": 600, "metadata": {"m": 1}},
            {"key": "abs", "value": "x", "expiration": expiration},
            {"key": "raw", "value": b"\x00raw"},
        ]
    )
    assert count == 5
    assert await kv_ns.get("plain") == "text"
    assert await kv_ns.get("b64", type="bytes") == b"\x00\x01\xffhi"
    assert await kv_ns.get("raw", type="bytes") == b"\x00raw"
    assert await kv_ns.get_with_metadata("ttl") == ValueWithMetadata("t", {"m": 1})
    listed = {info.name: info for info in (await kv_ns.list()).keys}
    assert listed["abs"].expiration == expiration
    ttl_expiration = listed["ttl"].expiration
    assert ttl_expiration is not None
    assert math.floor(before) + 600 <= ttl_expiration <= math.ceil(time.time()) + 600
    assert listed["plain"] == KeyInfo("plain", None, None)


async def test_bulk_put_with_one_bad_item_writes_nothing(kv_ns: AsyncKVNamespace) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        await kv_ns.bulk_put(
            [
                {"key": "good-1", "value": "1"},
                {"key": "", "value": "2"},
                {"key": "good-2", "value": "3"},
            ]
        )
    assert caught.value.message == "Key name cannot be empty."
    assert await kv_ns.get(["good-1", "good-2"]) == {"good-1": None, "good-2": None}
    assert (await kv_ns.list()).keys == []


async def test_bulk_delete(kv_ns: AsyncKVNamespace) -> None:
    await kv_ns.bulk_put([{"key": key, "value": key} for key in ("a", "b", "c")])
    count = await kv_ns.bulk_delete(["a", "c", "never-existed"])
    assert count == 3
    assert await kv_ns.get(["a", "b", "c"]) == {"a": None, "b": "b", "c": None}
    assert [info.name for info in (await kv_ns.list()).keys] == ["b"]


async def test_list_with_prefix_limit_and_cursor(kv_ns: AsyncKVNamespace) -> None:
    names = [f"user:{i}" for i in range(5)]
    await kv_ns.bulk_put([{"key": name, "value": "v"} for name in [*names, "other", "user"]])

    first = await kv_ns.list(prefix="user:", limit=2)
    assert isinstance(first, ListResult)
    assert [info.name for info in first.keys] == names[:2]
    assert first.list_complete is False
    assert first.cursor is not None

    second = await kv_ns.list(prefix="user:", limit=2, cursor=first.cursor)
    assert [info.name for info in second.keys] == names[2:4]
    assert second.list_complete is False
    assert second.cursor is not None

    third = await kv_ns.list(prefix="user:", limit=2, cursor=second.cursor)
    assert third == ListResult([KeyInfo(names[4], None, None)], True, None)

    everything = await kv_ns.list()
    assert [info.name for info in everything.keys] == ["other", "user", *names]
    assert everything.list_complete is True
    assert everything.cursor is None


async def test_iter_keys_yields_2500_keys_in_byte_order_exactly_once(
    kv_ns: AsyncKVNamespace,
) -> None:
    names = [f"p:{i:04d}" for i in range(2400)] + [f"p:é{i:02d}" for i in range(50)]
    names += [f"p:\U0001f600{i:02d}" for i in range(50)]
    random.shuffle(names)
    noise = [f"q:{i}" for i in range(20)] + ["p", "o:zz"]
    assert await kv_ns.bulk_put([{"key": name, "value": "v"} for name in names + noise]) == 2522

    seen = [info.name async for info in kv_ns.iter_keys(prefix="p:")]
    assert len(seen) == 2500
    assert len(set(seen)) == 2500
    assert seen == sorted(names, key=lambda name: name.encode("utf-8"))
    assert len([info async for info in kv_ns.iter_keys()]) == 2522


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
async def test_invalid_request_is_a_value_error_with_the_nodes_message(
    kv_ns: AsyncKVNamespace, key: str, kwargs: dict[str, int], message: str
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        await kv_ns.put(key, "x", **kwargs)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, RumorError)
    assert caught.value.message == message


async def test_a_512_byte_key_is_accepted(kv_ns: AsyncKVNamespace) -> None:
    key = "é" * 256
    await kv_ns.put(key, "x")
    assert await kv_ns.get(key) == "x"


# --- stickiness and failover ------------------------------------------------------------


@pytest.fixture
async def failover(node: NodeProcess) -> AsyncIterator[AsyncClient]:
    """A client whose first endpoint is dead and second is the node."""
    async with AsyncClient([dead_address(), node.address], timeout=TIMEOUT) as kv:
        yield kv


async def test_namespaces_list_fails_over_and_sticks(
    failover: AsyncClient, kv_ns: AsyncKVNamespace, node: NodeProcess
) -> None:
    assert failover.endpoints.current == 0
    assert kv_ns.id in {info.id for info in await failover.namespaces.list()}
    assert failover.endpoints.current == 1
    for _ in range(3):
        await failover.namespaces.get(kv_ns.id)
        assert failover.endpoints.current == 1
    assert failover.endpoints.addresses[failover.endpoints.current] == node.address


@pytest.mark.parametrize("value_type", ["text", "stream"])
async def test_get_fails_over_and_sticks(
    failover: AsyncClient, kv_ns: AsyncKVNamespace, value_type: str
) -> None:
    await kv_ns.put("k", "value")
    got = await failover.namespace(kv_ns.id).get("k", type=value_type)
    if value_type == "stream":
        assert got is not None
        got = (await joined(got)).decode()
    assert got == "value"
    assert failover.endpoints.current == 1
    assert await failover.namespace(kv_ns.id).get(["k"]) == {"k": "value"}
    assert failover.endpoints.current == 1


async def _put_str(ns: AsyncKVNamespace) -> None:
    await ns.put("k", "v")


async def _put_file(ns: AsyncKVNamespace) -> None:
    await ns.put("k", io.BytesIO(b"v" * (MIB + 5)))


async def _delete(ns: AsyncKVNamespace) -> None:
    await ns.delete("gone")


async def _bulk_put(ns: AsyncKVNamespace) -> None:
    await ns.bulk_put([{"key": "b1", "value": "1"}, {"key": "b2", "value": "2"}])


async def _bulk_delete(ns: AsyncKVNamespace) -> None:
    await ns.bulk_delete(["gone", "b1"])


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
async def test_writes_fail_over_and_stick(
    failover: AsyncClient,
    kv_ns: AsyncKVNamespace,
    write: Callable[[AsyncKVNamespace], Awaitable[None]],
    expected: dict[str, str | None],
) -> None:
    await kv_ns.bulk_put([{"key": "gone", "value": "x"}, {"key": "b1", "value": "x"}])
    await write(failover.namespace(kv_ns.id))
    assert failover.endpoints.current == 1
    assert await kv_ns.get(list(expected)) == expected


async def test_namespace_create_is_not_retried(failover: AsyncClient, client: AsyncClient) -> None:
    dead = failover.endpoints.addresses[0]
    lost = unique_title("lost")
    with pytest.raises(UnavailableError) as caught:
        await failover.namespaces.create(lost)
    assert dead in str(caught.value)
    assert failover.endpoints.current == 1
    assert lost not in {info.title for info in await client.namespaces.list()}

    kept = unique_title("kept")
    info = await failover.namespaces.create(kept)
    assert info.title == kept
    assert await client.namespaces.get(info.id) == info
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
async def test_only_dead_endpoints_raise_unavailable_naming_each(
    call: Callable[[AsyncClient], Awaitable[object]],
) -> None:
    addresses = [dead_address(), dead_address()]
    async with AsyncClient(addresses, timeout=TIMEOUT) as kv:
        with pytest.raises(UnavailableError) as caught:
            await call(kv)
        for address in addresses:
            assert address in str(caught.value)


async def test_create_on_only_dead_endpoints_names_the_endpoint_tried() -> None:
    addresses = [dead_address(), dead_address()]
    async with AsyncClient(addresses, timeout=TIMEOUT) as kv:
        with pytest.raises(UnavailableError) as caught:
            await kv.namespaces.create(unique_title("nowhere"))
        assert addresses[0] in str(caught.value)
        assert kv.endpoints.current == 1
        with pytest.raises(UnavailableError) as again:
            await kv.namespaces.create(unique_title("nowhere"))
        assert addresses[1] in str(again.value)


# --- closing ----------------------------------------------------------------------------


async def test_context_manager_closes_every_channel(
    node: NodeProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[grpc.aio.Channel] = []
    real_insecure_channel = grpc.aio.insecure_channel

    def recording(target: str, options: Any = None, compression: Any = None) -> grpc.aio.Channel:
        channel = real_insecure_channel(target, options=options, compression=compression)
        opened.append(channel)
        return channel

    monkeypatch.setattr(grpc.aio, "insecure_channel", recording)
    async with AsyncClient([dead_address(), node.address], timeout=TIMEOUT) as kv:
        assert isinstance(await kv.namespaces.list(), list)
        assert len(opened) == 2
        assert opened[1].get_state() == grpc.ChannelConnectivity.READY
    for channel in opened:
        assert channel.get_state() == grpc.ChannelConnectivity.SHUTDOWN
        with pytest.raises(grpc.aio.UsageError):
            await channel.unary_unary(LIST_NAMESPACES, None, None)(b"", timeout=TIMEOUT)
