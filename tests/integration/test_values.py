"""Values, metadata and versions make the round trip through a real node intact."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from rumor.v1 import kv_pb2 as pb
from tests.integration.kv_helpers import assert_invalid, get, listed, put
from tests.support.nodes import NodeProcess

MIB = 1024 * 1024
MAX_VALUE = 26_214_400  # 25 MiB


def _stream_messages(
    header: pb.PutRequest, value: bytes, chunk: int
) -> Iterator[pb.PutStreamRequest]:
    """The header alone, then ``value`` in chunks of ``chunk`` bytes, then the last marker."""
    yield pb.PutStreamRequest(header=header)
    for start in range(0, len(value), chunk):
        yield pb.PutStreamRequest(chunk=value[start : start + chunk])
    yield pb.PutStreamRequest(last=True)


def _get_stream(node: NodeProcess, ns: str, key: bytes) -> tuple[pb.GetStreamResponse, bytes]:
    """The header message of a GetStream and the value its chunks add up to."""
    messages = list(node.kv.GetStream(pb.GetRequest(namespace_id=ns, key=key)))
    header, chunks = messages[0], messages[1:]
    assert header.HasField("header")
    assert all(not message.HasField("header") for message in chunks)
    return header, b"".join(message.chunk for message in chunks)


def test_text_round_trip(node: NodeProcess, ns: str) -> None:
    text = "hello, wörld — 你好 🌍"
    put(node, ns, b"greeting", text.encode())
    got = get(node, ns, b"greeting", pb.VALUE_TYPE_TEXT)
    assert got.found and got.WhichOneof("payload") == "text"
    assert got.text == text


def test_text_of_invalid_utf8_uses_replacement_characters(node: NodeProcess, ns: str) -> None:
    put(node, ns, b"k", b"a\xffb\xc3")
    assert get(node, ns, b"k", pb.VALUE_TYPE_TEXT).text == "a\ufffdb\ufffd"
    assert get(node, ns, b"k").value == b"a\xffb\xc3"


def test_json_round_trip_returns_the_text_as_stored(node: NodeProcess, ns: str) -> None:
    document = '{"name": "rumor", "tags": ["kv", "gossip"], "n": 1.5, "ok": true}'
    put(node, ns, b"doc", document.encode())
    got = get(node, ns, b"doc", pb.VALUE_TYPE_JSON)
    assert got.found and got.WhichOneof("payload") == "json"
    assert got.json == document
    for scalar in (b"42", b'"a string"', b"null", b"[]"):
        put(node, ns, b"scalar", scalar)
        assert get(node, ns, b"scalar", pb.VALUE_TYPE_JSON).json == scalar.decode()


@pytest.mark.parametrize("value", [b"not json", b"{", b"NaN", b"", b"{'single': 1}"])
def test_json_of_a_non_json_value_is_invalid_argument(
    node: NodeProcess, ns: str, value: bytes
) -> None:
    put(node, ns, b"plain", value)
    assert_invalid(
        lambda: get(node, ns, b"plain", pb.VALUE_TYPE_JSON),
        'The value of key "plain" is not valid JSON.',
    )
    # The value itself is fine as bytes.
    assert get(node, ns, b"plain").value == value


def test_binary_with_every_byte_value_round_trips(node: NodeProcess, ns: str) -> None:
    every_byte = bytes(range(256)) * 4
    put(node, ns, b"binary", every_byte)
    got = get(node, ns, b"binary", pb.VALUE_TYPE_BYTES)
    assert got.WhichOneof("payload") == "value"
    assert got.value == every_byte
    header, streamed = _get_stream(node, ns, b"binary")
    assert header.value_length == len(every_byte) and streamed == every_byte


def test_empty_value_is_a_present_key(node: NodeProcess, ns: str) -> None:
    put(node, ns, b"empty", b"")
    got = get(node, ns, b"empty")
    assert got.found and got.value == b""
    assert get(node, ns, b"empty", pb.VALUE_TYPE_TEXT).text == ""
    header, streamed = _get_stream(node, ns, b"empty")
    assert header.header.found and header.value_length == 0 and streamed == b""
    assert listed(node, ns) == [b"empty"]


def test_keys_differing_only_in_case_are_distinct(node: NodeProcess, ns: str) -> None:
    for key in (b"key", b"Key", b"KEY"):
        put(node, ns, key, b"value of " + key)
    for key in (b"key", b"Key", b"KEY"):
        assert get(node, ns, key).value == b"value of " + key
    assert listed(node, ns) == [b"KEY", b"Key", b"key"]
    node.kv.Delete(pb.DeleteRequest(namespace_id=ns, key=b"Key"))
    assert [get(node, ns, key).found for key in (b"key", b"Key", b"KEY")] == [True, False, True]


def test_unicode_keys_round_trip(node: NodeProcess, ns: str) -> None:
    names = ["ключ", "鍵/子", "🔑 emoji", "e\u0301", "\u00e9", "tab\tand\nnewline", "nul\x00byte"]
    for name in names:
        put(node, ns, name.encode(), ("value of " + name).encode())
    for name in names:
        assert get(node, ns, name.encode(), pb.VALUE_TYPE_TEXT).text == "value of " + name
    # Decomposed and precomposed é are different keys (no normalisation).
    assert get(node, ns, "e\u0301".encode()).value != get(node, ns, "\u00e9".encode()).value
    assert listed(node, ns) == sorted(name.encode() for name in names)


def test_25_mib_value_streams_in_and_out(node: NodeProcess, ns: str) -> None:
    value = random.Random(25).randbytes(MAX_VALUE)
    header = pb.PutRequest(namespace_id=ns, key=b"huge", metadata=b'{"size":"25MiB"}')
    written = node.kv.PutStream(_stream_messages(header, value, MIB))
    assert written.version.hlc > 0
    first, streamed = _get_stream(node, ns, b"huge")
    assert first.header.found
    assert first.value_length == MAX_VALUE
    assert len(streamed) == MAX_VALUE
    assert streamed == value
    assert first.header.version == written.version
    # The unary Get sees the same bytes and the metadata the stream's header carried.
    got = get(node, ns, b"huge", with_metadata=True)
    assert got.value == value and got.metadata == b'{"size":"25MiB"}'


def test_put_stream_header_value_is_ignored_and_chunks_concatenate(
    node: NodeProcess, ns: str
) -> None:
    header = pb.PutRequest(namespace_id=ns, key=b"k", value=b"ignored")

    def messages() -> Iterator[pb.PutStreamRequest]:
        yield pb.PutStreamRequest(header=header, chunk=b"one,")
        yield pb.PutStreamRequest(chunk=b"")
        yield pb.PutStreamRequest(chunk=b"two,")
        yield pb.PutStreamRequest(chunk=b"three", last=True)

    node.kv.PutStream(messages())
    assert get(node, ns, b"k").value == b"one,two,three"


def test_put_stream_over_the_limit_names_the_full_length(node: NodeProcess, ns: str) -> None:
    put(node, ns, b"big", b"previous")
    total = 30 * MIB + 1
    value = b"z" * total
    header = pb.PutRequest(namespace_id=ns, key=b"big")
    assert_invalid(
        lambda: node.kv.PutStream(_stream_messages(header, value, MIB)),
        f"Value length of {total} exceeds limit of 26214400.",
    )
    assert get(node, ns, b"big").value == b"previous"


def test_put_stream_one_byte_over_the_limit_is_rejected(node: NodeProcess, ns: str) -> None:
    header = pb.PutRequest(namespace_id=ns, key=b"big")
    value = b"z" * (MAX_VALUE + 1)
    assert_invalid(
        lambda: node.kv.PutStream(_stream_messages(header, value, MIB)),
        "Value length of 26214401 exceeds limit of 26214400.",
    )
    assert not get(node, ns, b"big").found


def test_put_replaces_value_metadata_and_expiration_together(node: NodeProcess, ns: str) -> None:
    put(node, ns, b"k", b"first", metadata=b'{"v":1}', expiration_ttl=3600)
    first = get(node, ns, b"k", with_metadata=True)
    assert first.metadata == b'{"v":1}' and first.expiration > 0
    put(node, ns, b"k", b"second")
    second = get(node, ns, b"k", with_metadata=True)
    assert second.value == b"second"
    assert not second.HasField("metadata")
    assert second.expiration == 0
    [info] = node.kv.List(pb.ListRequest(namespace_id=ns)).keys
    assert info.name == b"k"
    assert not info.HasField("metadata") and not info.HasField("expiration")


@pytest.mark.parametrize(
    ("sent", "returned"),
    [
        (b'{"a": 1}', b'{"a":1}'),
        (b'{ "nested" : { "list" : [1, 2, {"x": null}] }, "t": true }', None),
        (b"42", b"42"),
        (b"-1.5e3", b"-1500.0"),
        (b'"a string"', b'"a string"'),
        (b"[ ]", b"[]"),
        (b"null", b"null"),
        ('{"k": "é ✓"}'.encode(), '{"k":"é ✓"}'.encode()),
        (b'{"k": "\\u00e9"}', '{"k":"é"}'.encode()),
    ],
)
def test_metadata_comes_back_as_compact_json(
    node: NodeProcess, ns: str, sent: bytes, returned: bytes | None
) -> None:
    expected = returned or b'{"nested":{"list":[1,2,{"x":null}]},"t":true}'
    put(node, ns, b"k", b"v", metadata=sent)
    got = get(node, ns, b"k", pb.VALUE_TYPE_TEXT, with_metadata=True)
    assert got.text == "v"
    assert got.metadata == expected
    assert not get(node, ns, b"k").HasField("metadata")


def test_metadata_null_is_kept_apart_from_no_metadata(node: NodeProcess, ns: str) -> None:
    put(node, ns, b"null", metadata=b"null")
    put(node, ns, b"none")
    assert get(node, ns, b"null", with_metadata=True).metadata == b"null"
    assert not get(node, ns, b"none", with_metadata=True).HasField("metadata")


def test_version_increases_with_each_write(node: NodeProcess, ns: str) -> None:
    versions = []
    seqs = []
    for i in range(5):
        response = put(node, ns, b"k", b"%d" % i)
        versions.append((response.version.hlc, response.version.origin))
        seqs.append(response.seq)
        got = get(node, ns, b"k")
        assert (got.version.hlc, got.version.origin) == versions[-1]
    other = put(node, ns, b"other")
    deleted = node.kv.Delete(pb.DeleteRequest(namespace_id=ns, key=b"k"))
    versions += [(other.version.hlc, other.version.origin)]
    versions += [(deleted.version.hlc, deleted.version.origin)]
    seqs += [other.seq, deleted.seq]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert len({origin for _, origin in versions}) == 1  # one node: one origin
    again = put(node, ns, b"k", b"back")
    assert (again.version.hlc, again.version.origin) > versions[-1]
