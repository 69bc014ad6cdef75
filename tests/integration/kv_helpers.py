"""Small helpers shared by the KV integration tests.

They keep the tests about behaviour: catching a call that must fail and
reading its status, listing a namespace to the end with a cursor, and reading
a key back in one line.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

import grpc
import pytest

from rumor.v1 import kv_pb2 as pb
from tests.support.nodes import NodeProcess, poll


def failed_call(call: Callable[[], object]) -> grpc.Call:
    """Run ``call``, which must raise an RpcError; return it to read its code and details."""
    with pytest.raises(grpc.RpcError) as caught:
        call()
    error = caught.value
    assert isinstance(error, grpc.Call), f"not a finished call: {error!r}"
    return error


def assert_status(call: Callable[[], object], code: grpc.StatusCode, message: str) -> None:
    """``call`` fails with exactly this status code and this message."""
    error = failed_call(call)
    assert (error.code(), error.details()) == (code, message)


def assert_invalid(call: Callable[[], object], message: str) -> None:
    """``call`` fails with INVALID_ARGUMENT and exactly this message."""
    assert_status(call, grpc.StatusCode.INVALID_ARGUMENT, message)


def put(
    node: NodeProcess,
    ns: str,
    key: bytes,
    value: bytes = b"v",
    *,
    expiration: int | None = None,
    expiration_ttl: int | None = None,
    metadata: bytes | None = None,
) -> pb.PutResponse:
    """Put one key (None leaves an optional field unset)."""
    response: pb.PutResponse = node.kv.Put(
        pb.PutRequest(
            namespace_id=ns,
            key=key,
            value=value,
            expiration=expiration,
            expiration_ttl=expiration_ttl,
            metadata=metadata,
        )
    )
    return response


def get(
    node: NodeProcess,
    ns: str,
    key: bytes,
    value_type: pb.ValueType = pb.VALUE_TYPE_BYTES,
    *,
    with_metadata: bool = False,
) -> pb.GetResponse:
    response: pb.GetResponse = node.kv.Get(
        pb.GetRequest(namespace_id=ns, key=key, type=value_type, with_metadata=with_metadata)
    )
    return response


def list_pages(
    node: NodeProcess, ns: str, *, prefix: bytes = b"", limit: int | None = None
) -> Iterator[pb.ListResponse]:
    """Every page of a listing, following cursors until ``list_complete``."""
    cursor = b""
    for _ in range(100_000):
        request = pb.ListRequest(namespace_id=ns, prefix=prefix, cursor=cursor)
        if limit is not None:
            request.limit = limit
        page: pb.ListResponse = node.kv.List(request)
        yield page
        if page.list_complete:
            return
        assert page.cursor, "an incomplete page must carry a cursor"
        cursor = page.cursor
    raise AssertionError("the listing never completed")


def key_names(pages: Iterable[pb.ListResponse]) -> list[bytes]:
    return [info.name for page in pages for info in page.keys]


def listed(node: NodeProcess, ns: str, *, prefix: bytes = b"") -> list[bytes]:
    """Every live key name with ``prefix``, in the order the node lists them."""
    return key_names(list_pages(node, ns, prefix=prefix))


def bulk_put(node: NodeProcess, ns: str, pairs: Iterable[tuple[bytes, bytes]]) -> int:
    items = [pb.PutRequest(key=key, value=value) for key, value in pairs]
    response: pb.BulkPutResponse = node.kv.BulkPut(pb.BulkPutRequest(namespace_id=ns, items=items))
    return response.successful_key_count


def early_in_a_second(node: NodeProcess) -> None:
    """Wait (polling the clock, with a deadline) until less than half of this second is gone.

    Expirations are whole seconds; starting a short-lived write early in a second
    keeps a rounding of "now" from eating most of a 1 or 2 second lifetime.
    """
    poll(lambda: time.time() % 1 < 0.5, timeout=2.0, interval=0.005)
    assert node.alive()
