"""Every unary call of the SDK, described once: method, request, decoder, retry policy.

``Client`` runs a ``Call`` with blocking gRPC, ``AsyncClient`` with grpc.aio;
neither builds a request or decodes a response itself. Reads, puts, deletes
and bulk calls are retried on another endpoint when one is UNAVAILABLE (a
repeated put is harmless under last-writer-wins); namespace creation is not,
since a retry could create two namespaces.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from google.protobuf.message import Message

from rumor.client import codec, staleness
from rumor.client.models import (
    Listeners,
    ListResult,
    NamespaceInfo,
    NamespacePage,
    ValueWithMetadata,
    WriteResult,
)
from rumor.v1 import kv_pb2

R = TypeVar("R")
SERVICE = "/rumor.v1.KV/"


@dataclass(frozen=True, slots=True)
class Call(Generic[R]):
    method: str
    request: Message
    response_class: type[Message]
    decode: Callable[[Any], R]
    retry: bool = True

    @property
    def path(self) -> str:
        return SERVICE + self.method


def _namespace(message: kv_pb2.Namespace) -> NamespaceInfo:
    return NamespaceInfo(message.id, message.title)


def create_namespace(title: str) -> Call[NamespaceInfo]:
    return Call(
        "CreateNamespace",
        kv_pb2.CreateNamespaceRequest(title=title),
        kv_pb2.Namespace,
        _namespace,
        retry=False,
    )


NAMESPACE_PAGE = 1000  # what ``namespaces.list()`` asks for at a time (the node's most)


def _namespace_page(response: kv_pb2.ListNamespacesResponse) -> NamespacePage:
    # A node from before paging ignores the limit, answers every namespace and sets
    # neither field: no cursor means complete.
    done = response.list_complete or not response.cursor
    namespaces = [_namespace(n) for n in response.namespaces]
    return NamespacePage(namespaces, done, None if done else response.cursor)


def list_namespaces(limit: int = NAMESPACE_PAGE, cursor: str | None = None) -> Call[NamespacePage]:
    return Call(
        "ListNamespaces",
        kv_pb2.ListNamespacesRequest(limit=limit, cursor=cursor or ""),
        kv_pb2.ListNamespacesResponse,
        _namespace_page,
    )


def get_namespace(namespace_id: str) -> Call[NamespaceInfo]:
    return Call(
        "GetNamespace",
        kv_pb2.GetNamespaceRequest(namespace_id=namespace_id),
        kv_pb2.Namespace,
        _namespace,
    )


def rename_namespace(namespace_id: str, title: str) -> Call[NamespaceInfo]:
    return Call(
        "RenameNamespace",
        kv_pb2.RenameNamespaceRequest(namespace_id=namespace_id, title=title),
        kv_pb2.Namespace,
        _namespace,
    )


def delete_namespace(namespace_id: str) -> Call[None]:
    return Call(
        "DeleteNamespace",
        kv_pb2.DeleteNamespaceRequest(namespace_id=namespace_id),
        kv_pb2.DeleteNamespaceResponse,
        lambda _: None,
    )


def put(request: kv_pb2.PutRequest) -> Call[WriteResult]:
    return Call(
        "Put",
        request,
        kv_pb2.PutResponse,
        lambda r: codec.write_result(r.version, r.seq, r.expiration),
    )


def get(
    namespace_id: str,
    key: str,
    value_type: str,
    with_metadata: bool,
    cache_ttl: int | None = None,
    max_staleness_ms: int | None = None,
) -> Call[Any]:
    request = staleness.stamp(
        codec.get_request(namespace_id, key, value_type, with_metadata, cache_ttl),
        max_staleness_ms,
    )
    if with_metadata:
        decode: Callable[[Any], Any] = lambda r: ValueWithMetadata(  # noqa: E731
            codec.decode_value(r, value_type), codec.decode_metadata(r)
        )
    else:
        decode = lambda r: codec.decode_value(r, value_type)  # noqa: E731
    return Call("Get", request, kv_pb2.GetResponse, decode)


def get_many(
    namespace_id: str,
    keys: Sequence[str],
    value_type: str,
    with_metadata: bool,
    cache_ttl: int | None = None,
    max_staleness_ms: int | None = None,
) -> Call[dict[str, Any]]:
    def decode(response: kv_pb2.BulkGetResponse) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, entry in zip(keys, response.entries, strict=True):
            value = codec.decode_value(entry.result, value_type)
            if with_metadata:
                # A missing key is None, not ValueWithMetadata(None, None), as in workerd.
                found = entry.result.found
                result[key] = (
                    ValueWithMetadata(value, codec.decode_metadata(entry.result)) if found else None
                )
            else:
                result[key] = value
        return result

    return Call(
        "BulkGet",
        staleness.stamp(
            codec.bulk_get_request(namespace_id, keys, value_type, with_metadata, cache_ttl),
            max_staleness_ms,
        ),
        kv_pb2.BulkGetResponse,
        decode,
    )


def read(
    namespace_id: str,
    key: str | Sequence[str],
    value_type: str,
    with_metadata: bool,
    cache_ttl: int | None = None,
    max_staleness_ms: int | None = None,
) -> Call[Any]:
    """A Get of ``key``, or a BulkGet when ``key`` is a list of keys."""
    if isinstance(key, str):
        return get(namespace_id, key, value_type, with_metadata, cache_ttl, max_staleness_ms)
    keys = list(key)
    return get_many(namespace_id, keys, value_type, with_metadata, cache_ttl, max_staleness_ms)


def delete(namespace_id: str, key: str) -> Call[WriteResult]:
    return Call(
        "Delete",
        kv_pb2.DeleteRequest(namespace_id=namespace_id, key=codec.key_bytes(key)),
        kv_pb2.DeleteResponse,
        lambda r: codec.write_result(r.version, r.seq),
    )


def list_keys(
    namespace_id: str,
    prefix: str | None,
    limit: int | None,
    cursor: str | None,
    max_staleness_ms: int | None = None,
) -> Call[ListResult]:
    return Call(
        "List",
        staleness.stamp(codec.list_request(namespace_id, prefix, limit, cursor), max_staleness_ms),
        kv_pb2.ListResponse,
        codec.list_result,
    )


def bulk_put(namespace_id: str, items: Sequence[Any]) -> Call[int]:
    return Call(
        "BulkPut",
        codec.bulk_put_request(namespace_id, items),
        kv_pb2.BulkPutResponse,
        lambda r: int(r.successful_key_count),
    )


def bulk_delete(namespace_id: str, keys: Sequence[str]) -> Call[int]:
    return Call(
        "BulkDelete",
        kv_pb2.BulkDeleteRequest(
            namespace_id=namespace_id, keys=[codec.key_bytes(key) for key in keys]
        ),
        kv_pb2.BulkDeleteResponse,
        lambda r: int(r.successful_key_count),
    )


def listeners() -> Call[Listeners]:
    return Call(
        "Listeners",
        kv_pb2.ListenersRequest(),
        kv_pb2.ListenersResponse,
        lambda r: Listeners(r.grpc, r.http or None),
    )
