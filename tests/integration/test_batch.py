"""KV.Batch against a real node: every answer is its unary call's, and the SDK rides it.

The property test draws mixes of operations — valid and invalid keys, TTLs,
metadata, types, cursors and limits, missing namespaces — and checks that each
operation's answer in a frame is the unary call's: the same response, or the
same gRPC code, message and HTTP status.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import grpc.aio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rumor.client import AsyncClient, Client
from rumor.client.batch import BatchUnsupported
from rumor.client.batch_aio import AsyncBatcher
from rumor.client.errors import InvalidRequestError
from rumor.node.server.grpc.batch import MAX_FRAME_OPS
from rumor.v1 import kv_pb2, kv_pb2_grpc
from tests.support.nodes import NodeProcess, create_namespace

_titles = itertools.count()
KEYS = [b"a", b"b", b"c", b"", b".", b"x" * 513, b"\xff", b"dir/a"]
METADATA = [None, b'{"v": 1}', b"{not json", b'"' + b"m" * 1100 + b'"']
TTLS = [None, 60, 10, 0, -5]
TYPES = [kv_pb2.VALUE_TYPE_BYTES, kv_pb2.VALUE_TYPE_TEXT, kv_pb2.VALUE_TYPE_JSON, 9]


def _stub(node: NodeProcess) -> kv_pb2_grpc.KVStub:
    return kv_pb2_grpc.KVStub(node.channel)


def _unary(stub: kv_pb2_grpc.KVStub, field: str, request: Any) -> tuple[str, Any]:
    method = {
        "get": stub.Get,
        "bulk_get": stub.BulkGet,
        "put": stub.Put,
        "delete": stub.Delete,
        "list": stub.List,
    }[field]
    try:
        return "ok", method(request, timeout=10)
    except grpc.RpcError as error:
        trailing: Any = error.trailing_metadata() or ()
        http = dict(trailing).get("rumor-http-status", "0")
        return "error", (error.code().value[0], error.details(), int(http))


def _batched(stub: kv_pb2_grpc.KVStub, ops: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    frame = kv_pb2.BatchRequest()
    for op_id, (field, request) in enumerate(ops):
        op = frame.ops.add(id=op_id)
        getattr(op, field).CopyFrom(request)
    answers: dict[int, tuple[str, Any]] = {}
    for response in stub.Batch(iter([frame]), timeout=20):
        for result in response.results:
            kind = result.WhichOneof("result")
            if kind == "error":
                answers[result.id] = (
                    "error",
                    (result.error.code, result.error.message, result.error.http_status),
                )
            else:
                answers[result.id] = ("ok", getattr(result, kind))
    assert sorted(answers) == list(range(len(ops))), "every operation is answered once"
    return [answers[i] for i in range(len(ops))]


@pytest.fixture(scope="module")
def seeded(node: NodeProcess) -> str:
    namespace = create_namespace(node, f"batch-seeded-{next(_titles)}")
    stub = _stub(node)
    stub.Put(kv_pb2.PutRequest(namespace_id=namespace, key=b"a", value=b'{"j": 1}', metadata=b"1"))
    stub.Put(kv_pb2.PutRequest(namespace_id=namespace, key=b"b", value=b"not json"))
    stub.Put(kv_pb2.PutRequest(namespace_id=namespace, key=b"dir/a", value=b"\xff\xfe"))
    return namespace


def _read_op(draw: Any, namespace: str) -> tuple[str, Any]:
    ns = draw(st.sampled_from([namespace, namespace, "0" * 32, "not-an-id"]))
    kind = draw(st.sampled_from(["get", "get", "bulk_get", "list"]))
    if kind == "get":
        request = kv_pb2.GetRequest(
            namespace_id=ns,
            key=draw(st.sampled_from(KEYS)),
            type=draw(st.sampled_from(TYPES)),
            with_metadata=draw(st.booleans()),
        )
        cache_ttl = draw(st.sampled_from([None, 60, 5]))
        if cache_ttl is not None:
            request.cache_ttl = cache_ttl
        return kind, request
    if kind == "bulk_get":
        return kind, kv_pb2.BulkGetRequest(
            namespace_id=ns,
            keys=draw(st.lists(st.sampled_from(KEYS), max_size=3)),
            type=draw(st.sampled_from(TYPES)),
            with_metadata=draw(st.booleans()),
        )
    request_list = kv_pb2.ListRequest(
        namespace_id=ns,
        prefix=draw(st.sampled_from([b"", b"d", b"\xff"])),
        cursor=draw(st.sampled_from([b"", b"garbage"])),
    )
    limit = draw(st.sampled_from([None, 1, 0, 1001]))
    if limit is not None:
        request_list.limit = limit
    return "list", request_list


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_reads_in_a_frame_answer_as_their_unary_calls(
    node: NodeProcess, seeded: str, data: st.DataObject
) -> None:
    ops = [_read_op(data.draw, seeded) for _ in range(data.draw(st.integers(1, 12), label="count"))]
    stub = _stub(node)
    assert _batched(stub, ops) == [_unary(stub, field, request) for field, request in ops]


def _write_op(draw: Any, namespace: str) -> tuple[str, Any]:
    key = draw(st.sampled_from(KEYS))
    if draw(st.integers(0, 3)) == 0:
        return "delete", kv_pb2.DeleteRequest(namespace_id=namespace, key=key)
    request = kv_pb2.PutRequest(
        namespace_id=namespace, key=key, value=draw(st.sampled_from([b"v1", b"v2", b""]))
    )
    ttl = draw(st.sampled_from(TTLS))
    if ttl is not None:
        request.expiration_ttl = ttl
    metadata = draw(st.sampled_from(METADATA))
    if metadata is not None:
        request.metadata = metadata
    return "put", request


def _in(namespace: str, ops: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    moved = []
    for field, request in ops:
        copy = type(request)()
        copy.CopyFrom(request)
        copy.namespace_id = namespace
        moved.append((field, copy))
    return moved


def _state(stub: kv_pb2_grpc.KVStub, namespace: str) -> dict[bytes, tuple[bytes, bytes, int]]:
    state = {}
    for key in KEYS:
        found = _unary(
            stub, "get", kv_pb2.GetRequest(namespace_id=namespace, key=key, with_metadata=True)
        )
        if found[0] == "ok" and found[1].found:
            response = found[1]
            state[key] = (response.value, response.metadata, response.expiration)
    return state


def _outcome(answer: tuple[str, Any]) -> Any:
    """What must match between a batched and a unary write: the error, or the write's shape."""
    kind, body = answer
    if kind == "error":
        return body
    expiration = getattr(body, "expiration", 0) if body.DESCRIPTOR.name == "PutResponse" else 0
    return ("ok", body.DESCRIPTOR.name, body.seq > 0, body.version.hlc > 0, expiration // 10)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_writes_in_a_frame_answer_and_end_as_their_unary_calls_in_order(
    node: NodeProcess, data: st.DataObject
) -> None:
    stub = _stub(node)
    batched_ns = create_namespace(node, f"batch-w-{next(_titles)}")
    unary_ns = create_namespace(node, f"unary-w-{next(_titles)}")
    ops = [
        _write_op(data.draw, batched_ns) for _ in range(data.draw(st.integers(1, 10), label="n"))
    ]
    batched = _batched(stub, ops)
    unary = [_unary(stub, field, request) for field, request in _in(unary_ns, ops)]
    assert [_outcome(a) for a in batched] == [_outcome(a) for a in unary]
    # A key written twice in a frame ends as the later write, as two calls in turn leave it.
    left_batched = _state(stub, batched_ns)
    left_unary = _state(stub, unary_ns)
    assert {k: v[:2] for k, v in left_batched.items()} == {k: v[:2] for k, v in left_unary.items()}
    for key, (_, _, expiration) in left_batched.items():
        assert abs(expiration - left_unary[key][2]) <= 2


def test_a_frame_over_the_operation_limit_is_refused_for_what_exceeds_it(
    node: NodeProcess, ns: str
) -> None:
    ops = [("get", kv_pb2.GetRequest(namespace_id=ns, key=b"k"))] * (MAX_FRAME_OPS + 3)
    answers = _batched(_stub(node), ops)
    assert all(kind == "ok" and not body.found for kind, body in answers[:MAX_FRAME_OPS])
    for kind, (code, message, http) in answers[MAX_FRAME_OPS:]:
        assert kind == "error"
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
        assert f"at most {MAX_FRAME_OPS} operations" in message
        assert http == 503


def test_a_malformed_frame_ends_the_stream_with_invalid_argument(node: NodeProcess) -> None:
    method = node.channel.stream_stream(
        "/rumor.v1.KV/Batch",
        request_serializer=lambda b: b,
        response_deserializer=kv_pb2.BatchResponse.FromString,
    )
    with pytest.raises(grpc.RpcError) as raised:
        list(method(iter([b"\x0a\xff\xff\xff"]), timeout=10))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "malformed BatchRequest" in (raised.value.details() or "")


async def test_the_async_sdk_coalesces_calls_and_a_cancelled_one_fails_alone(
    node: NodeProcess, ns: str
) -> None:
    async with AsyncClient(node.address) as kv:
        space = kv.namespace(ns)
        await asyncio.gather(*(space.put(f"k{i}", f"v{i}") for i in range(200)))
        gets = [asyncio.create_task(space.get(f"k{i}")) for i in range(200)]
        gets[7].cancel()
        results = await asyncio.gather(*gets, return_exceptions=True)
        assert isinstance(results[7], asyncio.CancelledError)
        assert [r for i, r in enumerate(results) if i != 7] == [
            f"v{i}" for i in range(200) if i != 7
        ]
        # The stream carried on: a bad call fails alone, with the unary call's words.
        answers: Any = await asyncio.gather(space.get(""), space.get("k1"), return_exceptions=True)
        bad, good = answers
        assert isinstance(bad, InvalidRequestError)
        assert str(bad) == "KV GET failed: 400 Key name cannot be empty."
        assert good == "v1"
        batcher = next(iter(kv._batchers.values()))
        assert not batcher.unsupported


def test_the_sync_sdk_batches_calls_from_many_threads(node: NodeProcess, ns: str) -> None:
    with Client(node.address) as kv:
        space = kv.namespace(ns)
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda i: space.put(f"t{i}", str(i)), range(300)))
            values = list(pool.map(lambda i: space.get(f"t{i}"), range(300)))
        assert values == [str(i) for i in range(300)]
        assert kv._batchers, "calls from several threads rode the Batch stream"
        with pytest.raises(InvalidRequestError, match="Key name cannot be empty"):
            space.get("")


class _OlderNode:
    """A KV server without Batch (an older release): every unary call forwarded to a node."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.server = grpc.aio.server()
        self.address = ""
        self.batch_calls = 0

    async def start(self) -> None:
        channel = grpc.aio.insecure_channel(self.target)
        descriptor = kv_pb2.DESCRIPTOR.services_by_name["KV"]
        handlers = {}
        for method in descriptor.methods:
            if method.client_streaming or method.server_streaming:
                continue
            forward = channel.unary_unary(
                f"/rumor.v1.KV/{method.name}",
                request_serializer=None,
                response_deserializer=None,
            )

            async def handle(request: bytes, context: Any, forward: Any = forward) -> bytes:
                try:
                    return bytes(await forward(request, timeout=10))
                except grpc.aio.AioRpcError as error:
                    await context.abort(
                        error.code(), error.details(), tuple(error.trailing_metadata() or ())
                    )
                    raise

            handlers[method.name] = grpc.unary_unary_rpc_method_handler(handle)
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("rumor.v1.KV", handlers),)
        )
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.address = f"127.0.0.1:{port}"
        await self.server.start()


@pytest.fixture
async def older_node(node: NodeProcess) -> AsyncIterator[_OlderNode]:
    older = _OlderNode(node.address)
    await older.start()
    try:
        yield older
    finally:
        await older.server.stop(None)


async def test_the_sdk_speaks_unary_to_a_node_without_batch(
    older_node: _OlderNode, ns: str
) -> None:
    async with AsyncClient(older_node.address) as kv:
        space = kv.namespace(ns)
        await asyncio.gather(*(space.put(f"o{i}", str(i)) for i in range(20)))
        assert await asyncio.gather(*(space.get(f"o{i}") for i in range(20))) == [
            str(i) for i in range(20)
        ]
        batcher = next(iter(kv._batchers.values()))
        assert batcher.unsupported
        with pytest.raises(InvalidRequestError, match="Key name cannot be empty"):
            await space.get("")


async def test_a_server_without_batch_is_told_apart_on_every_new_stream() -> None:
    # grpc.aio reports INTERNAL, not the server's UNIMPLEMENTED, when a frame is written
    # as the server ends the call (grpc/grpc#36066): the batcher writes nothing before
    # the node has answered the stream's opening. Many fresh streams, each a chance.
    server = grpc.aio.server()
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    outcomes: dict[str, int] = {}
    try:
        for _ in range(300):
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                batcher = AsyncBatcher(channel, ())
                puts = [kv_pb2.PutRequest(key=b"k%d" % i, value=b"v") for i in range(20)]
                answers = await asyncio.gather(
                    *(batcher.result("put", put, 5.0) for put in puts), return_exceptions=True
                )
                await batcher.close()
                assert batcher.unsupported
                for answer in answers:
                    kind = type(answer).__name__
                    if isinstance(answer, grpc.RpcError):
                        kind = f"{kind} {answer.code().name}"
                    outcomes[kind] = outcomes.get(kind, 0) + 1
    finally:
        await server.stop(None)
    assert outcomes == {BatchUnsupported.__name__: 300 * 20}


def test_a_batched_call_past_its_deadline_fails_as_a_unary_call_does(
    node: NodeProcess, ns: str
) -> None:
    # A stopped node: the call waits out its own deadline, then fails like a unary call.
    assert node.process is not None
    node.process.send_signal(signal.SIGSTOP)
    try:

        async def slow() -> tuple[BaseException, float]:
            async with AsyncClient(node.address, timeout=0.5) as kv:
                start = time.monotonic()
                try:
                    await kv.namespace(ns).get("k")
                except Exception as failure:
                    return failure, time.monotonic() - start
                raise AssertionError("a stopped node answered")

        failure, waited = asyncio.run(slow())
    finally:
        node.process.send_signal(signal.SIGCONT)

    async def unary() -> BaseException:
        async with AsyncClient(node.address, timeout=0.5, batching=False) as kv:
            try:
                await kv.namespace(ns).get("k")
            except Exception as failure:
                return failure
            raise AssertionError("a stopped node answered")

    node.process.send_signal(signal.SIGSTOP)
    try:
        unary_failure = asyncio.run(unary())
    finally:
        node.process.send_signal(signal.SIGCONT)
    assert type(failure) is type(unary_failure)
    assert str(failure) == str(unary_failure)
    assert waited < 5


def test_batched_calls_with_different_deadlines_each_fail_at_their_own(
    node: NodeProcess, ns: str
) -> None:
    """A call whose deadline falls before those already queued (a shorter timeout) is
    not held to theirs, and an answered call leaves no deadline behind."""

    async def run() -> tuple[tuple[float, ...], int]:
        async with grpc.aio.insecure_channel(node.address) as channel:
            batcher = AsyncBatcher(channel, ())
            request = kv_pb2.GetRequest(namespace_id=ns, key=b"k")
            await batcher.result("get", request, 10)  # the stream is open
            assert process is not None
            process.send_signal(signal.SIGSTOP)
            try:

                async def waited(timeout: float) -> float:
                    start = time.monotonic()
                    with pytest.raises(grpc.RpcError) as raised:
                        await batcher.result("get", request, timeout)
                    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
                    return time.monotonic() - start

                times = await asyncio.gather(waited(1.5), waited(0.2), waited(1.5))
            finally:
                process.send_signal(signal.SIGCONT)
            again = (batcher.result("get", request, 10) for _ in range(50))
            answered = await asyncio.gather(*again)
            assert all(result.WhichOneof("result") == "get" for result in answered)
            left = len(batcher._deadlines)
            await batcher.close()
            return times, left

    process = node.process
    times, left = asyncio.run(run())
    assert times[1] < 1.0 <= min(times[0], times[2])
    assert left == 0


@pytest.fixture(scope="module")
def tight_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """A node whose read budget holds less than one value of the largest size: after a
    frame's first Get, the others reserve an estimate from the headers first."""
    process = NodeProcess(
        tmp_path_factory.mktemp("tight") / "data", "--max-read-bytes-in-flight", "4096"
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


def test_gets_beyond_what_the_read_budget_admits_unread_answer_as_their_unary_calls(
    tight_node: NodeProcess,
) -> None:
    namespace = create_namespace(tight_node, "batch-tight")
    stub = _stub(tight_node)
    for index in range(20):
        stub.Put(kv_pb2.PutRequest(namespace_id=namespace, key=b"t%d" % index, value=b"v" * index))
    ops = [
        ("get", kv_pb2.GetRequest(namespace_id=namespace, key=b"t%d" % (index % 25)))
        for index in range(60)
    ]
    batched = _batched(stub, ops)
    assert batched == [_unary(stub, field, request) for field, request in ops]
    assert [body.value for _, body in batched[:20]] == [b"v" * index for index in range(20)]
