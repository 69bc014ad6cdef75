"""The node never goes down: garbage bytes, oversized messages, broken streams, odd enums.

Every KV method gets raw bytes through the channel with identity serializers,
so nothing on the client side can tidy them up. A request that does not decode
is INVALID_ARGUMENT; one that decodes is answered like any other request; no
request is ever an internal error. The last test checks the process is alive
and still serving.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from functools import partial

import grpc
import pytest
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import DecodeError, Message

from rumor.v1 import kv_pb2 as pb
from tests.integration.kv_helpers import assert_invalid, failed_call, get, put
from tests.support.nodes import NodeProcess

KV = pb.DESCRIPTOR.services_by_name["KV"]
METHODS: list[MethodDescriptor] = list(KV.methods)
ANSWERS_TO_DECODABLE_REQUESTS = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
}
DEEP_JSON = b"[" * 100_000 + b"]" * 100_000


def _identity(data: bytes) -> bytes:
    return data


def _raw_call(node: NodeProcess, method: MethodDescriptor) -> Callable[[list[bytes]], object]:
    """Call ``method`` with raw request bytes (several messages for a client stream)."""
    path = f"/{KV.full_name}/{method.name}"
    channel = node.channel
    if method.client_streaming:
        stream_unary = channel.stream_unary(path, _identity, _identity)
        return lambda messages: stream_unary(iter(messages), timeout=30)
    if method.server_streaming:
        unary_stream = channel.unary_stream(path, _identity, _identity)
        return lambda messages: list(unary_stream(messages[0], timeout=30))
    unary_unary = channel.unary_unary(path, _identity, _identity)
    return lambda messages: unary_unary(messages[0], timeout=30)


def _decodes(method: MethodDescriptor, data: bytes) -> bool:
    request_class: type[Message] = getattr(pb, method.input_type.name)
    try:
        request_class.FromString(data)
    except (DecodeError, RuntimeError, ValueError):
        return False
    return True


def _status_of(call: Callable[[], object]) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as error:
        assert isinstance(error, grpc.Call)
        code: grpc.StatusCode = error.code()
        return code
    return grpc.StatusCode.OK


def _garbage(rng: random.Random) -> bytes:
    length = rng.choice([1, 2, 3, 5, 8, 16, 64, 300, 4096])
    return rng.randbytes(length)


@pytest.mark.parametrize("method", METHODS, ids=lambda method: method.name)
def test_random_garbage_never_breaks_a_method(node: NodeProcess, method: MethodDescriptor) -> None:
    rng = random.Random(f"garbage-{method.name}")
    call = _raw_call(node, method)
    undecodable = 0
    for _ in range(60):
        data = _garbage(rng)
        code = _status_of(partial(call, [data]))
        if _decodes(method, data):
            assert code in ANSWERS_TO_DECODABLE_REQUESTS, f"{data!r} -> {code}"
        else:
            undecodable += 1
            assert code == grpc.StatusCode.INVALID_ARGUMENT, f"{data!r} -> {code}"
    assert undecodable > 0, "the seed produced no undecodable request"
    assert node.alive()


UNDECODABLE = [
    pytest.param(b"\xff" * 12, id="bad-varint"),
    pytest.param(b"\x0a\x05ab", id="truncated-length-delimited"),
    pytest.param(b"\x12\xff\xff\xff\xff\x0f", id="huge-length"),
    pytest.param(b"\x07", id="field-zero"),
    pytest.param(b"\x0c", id="end-group-without-start"),
]


@pytest.mark.parametrize("data", UNDECODABLE)
@pytest.mark.parametrize("method", METHODS, ids=lambda method: method.name)
def test_undecodable_request_is_invalid_argument(
    node: NodeProcess, method: MethodDescriptor, data: bytes
) -> None:
    assert not _decodes(method, data)
    error = failed_call(lambda: _raw_call(node, method)([data]))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert method.input_type.name in error.details()  # it says what failed to decode


def test_truncated_requests_are_answered_not_crashed(node: NodeProcess, ns: str) -> None:
    request = pb.PutRequest(
        namespace_id=ns, key=b"whole", value=b"v" * 100, metadata=b'{"a":1}', expiration_ttl=60
    ).SerializeToString()
    put_raw = _raw_call(node, KV.methods_by_name["Put"])
    for cut in range(1, len(request)):
        code = _status_of(partial(put_raw, [request[:cut]]))
        if _decodes(KV.methods_by_name["Put"], request[:cut]):
            assert code in ANSWERS_TO_DECODABLE_REQUESTS, f"cut at {cut} -> {code}"
        else:
            assert code == grpc.StatusCode.INVALID_ARGUMENT, f"cut at {cut} -> {code}"
    put_raw([request])
    assert get(node, ns, b"whole").value == b"v" * 100


def test_garbage_after_a_valid_put_stream_header_is_invalid_and_writes_nothing(
    node: NodeProcess, ns: str
) -> None:
    header = pb.PutStreamRequest(header=pb.PutRequest(namespace_id=ns, key=b"k"), chunk=b"part")
    put_stream = _raw_call(node, KV.methods_by_name["PutStream"])
    error = failed_call(lambda: put_stream([header.SerializeToString(), b"\xff" * 8]))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert not get(node, ns, b"k").found


def test_many_concurrent_garbage_requests(node: NodeProcess, ns: str) -> None:
    rng = random.Random("concurrent")
    put_raw = node.channel.unary_unary(f"/{KV.full_name}/Put", _identity, _identity)
    futures = [put_raw.future(b"\xff" * 11 + rng.randbytes(32), timeout=30) for _ in range(300)]
    codes = {future.code() for future in futures}
    assert codes == {grpc.StatusCode.INVALID_ARGUMENT}
    put(node, ns, b"after", b"still serving")
    assert get(node, ns, b"after").value == b"still serving"


def test_message_over_128_mib_is_resource_exhausted(node: NodeProcess, ns: str) -> None:
    """The server's 128 MiB receive limit refuses it; the node stays up."""
    unlimited = grpc.insecure_channel(
        node.address,
        options=[("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)],
    )
    try:
        stub_put = unlimited.unary_unary(
            f"/{KV.full_name}/Put",
            request_serializer=pb.PutRequest.SerializeToString,
            response_deserializer=pb.PutResponse.FromString,
        )
        request = pb.PutRequest(namespace_id=ns, key=b"huge", value=bytes(130 * 1024 * 1024))
        error = failed_call(lambda: stub_put(request, timeout=60))
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        unlimited.close()
    assert node.alive()
    assert not get(node, ns, b"huge").found


def test_a_second_put_stream_header_is_invalid_and_writes_nothing(
    node: NodeProcess, ns: str
) -> None:
    messages = iter(
        [
            pb.PutStreamRequest(header=pb.PutRequest(namespace_id=ns, key=b"first"), chunk=b"a"),
            pb.PutStreamRequest(header=pb.PutRequest(namespace_id=ns, key=b"second"), chunk=b"b"),
            pb.PutStreamRequest(last=True),
        ]
    )
    assert_invalid(
        lambda: node.kv.PutStream(messages),
        "Only the first PutStream message carries a header; nothing was written.",
    )
    assert not get(node, ns, b"first").found
    assert not get(node, ns, b"second").found


def test_put_stream_without_a_header_is_invalid(node: NodeProcess, ns: str) -> None:
    chunks = iter([pb.PutStreamRequest(chunk=b"a"), pb.PutStreamRequest(chunk=b"b")])
    assert_invalid(
        lambda: node.kv.PutStream(chunks), "The first PutStream message must carry the header."
    )


def test_empty_put_stream_is_invalid(node: NodeProcess) -> None:
    assert_invalid(lambda: node.kv.PutStream(iter([])), "PutStream received no messages.")


def test_put_stream_without_its_last_message_writes_nothing(node: NodeProcess, ns: str) -> None:
    put(node, ns, b"k", b"old")
    header = pb.PutStreamRequest(header=pb.PutRequest(namespace_id=ns, key=b"k"), chunk=b"new")
    assert_invalid(
        lambda: node.kv.PutStream(iter([header])),
        "PutStream ended without its last message; nothing was written.",
    )
    assert get(node, ns, b"k").value == b"old"


def test_cancelled_put_stream_writes_nothing(node: NodeProcess, ns: str) -> None:
    """A client that fails half way cancels the call: the half-sent value must not be stored.

    A cancellation reaches the handler as the end of its request stream or as a
    cancelled task, whichever comes first, so one attempt proves little: twenty do.
    """
    put(node, ns, b"k", b"old")

    def messages() -> Iterator[pb.PutStreamRequest]:
        yield pb.PutStreamRequest(header=pb.PutRequest(namespace_id=ns, key=b"k"), chunk=b"new-")
        yield pb.PutStreamRequest(chunk=b"b" * 1024)
        raise RuntimeError("the client gives up half way")

    stored_after_cancel = []
    for attempt in range(20):
        error = failed_call(lambda: node.kv.PutStream(messages()))
        assert error.code() in {grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN}
        value = get(node, ns, b"k").value
        if value != b"old":
            stored_after_cancel.append((attempt, len(value)))
            put(node, ns, b"k", b"old")
    assert stored_after_cancel == [], (
        f"{len(stored_after_cancel)} of 20 cancelled PutStreams replaced the value;"
        f" (attempt, stored length): {stored_after_cancel}"
    )
    assert node.alive()


def test_get_stream_abandoned_half_way_leaves_the_node_serving(node: NodeProcess, ns: str) -> None:
    value = bytes(8 * 1024 * 1024)
    node.kv.PutStream(
        iter(
            [
                pb.PutStreamRequest(
                    header=pb.PutRequest(namespace_id=ns, key=b"k"), chunk=value, last=True
                )
            ]
        )
    )
    stream = node.kv.GetStream(pb.GetRequest(namespace_id=ns, key=b"k"))
    first = next(stream)
    assert first.header.found and first.value_length == len(value)
    stream.cancel()
    assert get(node, ns, b"k").value == value


def _with_type(request: Message, value_type: int) -> bytes:
    """``request`` serialized with its ``type`` field (number 3) set to ``value_type``."""
    return request.SerializeToString() + bytes([0x18]) + _varint(value_type)


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte, number = number & 0x7F, number >> 7
        out.append(byte | (0x80 if number else 0))
        if not number:
            return bytes(out)


@pytest.mark.parametrize("value_type", [3, 99, 2**31 - 1])
def test_bulk_get_with_an_unknown_type_is_invalid_argument(
    node: NodeProcess, ns: str, value_type: int
) -> None:
    put(node, ns, b"k", b"v")
    bulk_get = _raw_call(node, KV.methods_by_name["BulkGet"])
    request = pb.BulkGetRequest(namespace_id=ns, keys=[b"k"])
    error = failed_call(lambda: bulk_get([_with_type(request, value_type)]))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert error.details() == (f'"{value_type}" is not a valid type. Use "json" or "text"'), (
        error.details()
    )


@pytest.mark.parametrize("method_name", ["Get", "GetStream"])
@pytest.mark.parametrize("value_type", [3, 99, 2**31 - 1])
def test_get_with_an_unknown_type_is_never_an_internal_error(
    node: NodeProcess, ns: str, method_name: str, value_type: int
) -> None:
    put(node, ns, b"k", b"v")
    call = _raw_call(node, KV.methods_by_name[method_name])
    request = pb.GetRequest(namespace_id=ns, key=b"k")
    code = _status_of(lambda: call([_with_type(request, value_type)]))
    assert code in {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT}


def test_deeply_nested_metadata_is_invalid_argument(node: NodeProcess, ns: str) -> None:
    error = failed_call(lambda: put(node, ns, b"k", metadata=DEEP_JSON))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert not get(node, ns, b"k").found


def test_deeply_nested_json_value_read_as_json_is_never_an_internal_error(
    node: NodeProcess, ns: str
) -> None:
    put(node, ns, b"deep", DEEP_JSON)
    for call in (
        lambda: get(node, ns, b"deep", pb.VALUE_TYPE_JSON),
        lambda: node.kv.BulkGet(
            pb.BulkGetRequest(namespace_id=ns, keys=[b"deep"], type=pb.VALUE_TYPE_JSON)
        ),
    ):
        try:
            call()
        except grpc.RpcError as error:
            assert isinstance(error, grpc.Call)
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()


def test_metadata_with_a_lone_surrogate_is_invalid_argument(node: NodeProcess, ns: str) -> None:
    assert_invalid(
        lambda: put(node, ns, b"k", metadata=b'{"s": "\\ud800"}'), "Metadata must be valid JSON."
    )


def test_node_is_alive_and_serving_after_everything(node: NodeProcess, ns: str) -> None:
    assert node.alive()
    put(node, ns, b"final", b"still here")
    got = get(node, ns, b"final", pb.VALUE_TYPE_TEXT)
    assert got.found and got.text == "still here"
    assert node.alive()
