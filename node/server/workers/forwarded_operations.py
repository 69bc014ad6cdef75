"""The KV operations a worker's HTTP listener calls: writes answered by the owner.

A worker serves the REST API's values routes and the Workers binding itself —
HTTP parsing, the token, the envelope, the headers — and hands the owner each
read and write as an operation on its batched stream (``owner_link``). The
owner checks and answers it as it would a call of its own; its error comes
back as the same ``RumorError`` (same HTTP status, same message), so the
worker's answer is the one a single-process node gives. ``ViewedOperations``
answers plain reads from the worker's own view instead (``secondary_reads``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import grpc

from rumor.node.core import paging, validation
from rumor.node.core.errors import InvalidRequest, RumorError
from rumor.node.core.record import RecordHeader
from rumor.node.replication import Applied
from rumor.node.server.errors import error_from_status
from rumor.node.server.operations import Found, KeyListing, Operations, PutItem
from rumor.node.server.workers.owner_link import OwnerLink
from rumor.node.server.workers.secondary_reads import SecondaryReads
from rumor.v1 import kv_pb2

_HTTP_STATUS_HEADER = "rumor-http-status"


def _rumor_error(error: grpc.RpcError) -> RumorError:
    trailing: Any = error.trailing_metadata() or ()
    http = str(dict(trailing).get(_HTTP_STATUS_HEADER, "0"))
    return error_from_status(
        error.code(), int(http) if http.isdigit() else 0, error.details() or ""
    )


def _header(
    version: kv_pb2.Version, expiration: int, metadata: bytes | None, seq: int = 0
) -> RecordHeader:
    return RecordHeader(version.hlc, version.origin, seq, expiration, False, metadata)


class ForwardedOperations(Operations):
    """``Operations`` for the routes a worker answers: every one goes to the owner."""

    def __init__(self, owner: OwnerLink) -> None:  # no replica here: the owner has it
        self._owner = owner

    async def _call(self, field: str, request: Any) -> Any:
        try:
            return await self._owner.call(field, request, None)
        except grpc.RpcError as error:
            raise _rumor_error(error) from None

    async def read(self, namespace_id: str, key: bytes, cache_ttl: object = None) -> Found | None:
        request = kv_pb2.GetRequest(namespace_id=namespace_id, key=key, with_metadata=True)
        ttl = validation.cache_ttl(cache_ttl)
        if ttl is not None:
            request.cache_ttl = ttl
        answer = await self._call("get", request)
        if not answer.found:
            return None
        metadata = answer.metadata if answer.HasField("metadata") else None
        return Found(_header(answer.version, answer.expiration, metadata), answer.value)

    async def read_many(
        self, namespace_id: str, keys: Sequence[bytes], cache_ttl: object = None
    ) -> list[Found | None]:
        validation.bulk_get_size(len(keys))
        found = await asyncio.gather(
            *(self.read(namespace_id, key, cache_ttl) for key in keys), return_exceptions=True
        )
        for result in found:  # the first failure in key order, as one bulk read reports it
            if isinstance(result, BaseException):
                raise result
        results: list[Found | None] = [r for r in found if not isinstance(r, BaseException)]
        validation.bulk_get_total(sum(len(f.value) for f in results if f is not None))
        return results

    def value_bytes(self, namespace_id: str, keys: Sequence[bytes]) -> int:
        return 0  # unknown before the owner answers: the read is held once it has

    def lag_bound(self) -> str | None:
        return None  # the owner's replica knows it; a session read goes there (session_header)

    async def put(
        self, namespace_id: str, item: PutItem, min_replicas: int = 0, *, gather: bool = False
    ) -> Applied:
        # Gathered or not, the write joins the owner link's next frame with every other.
        request = kv_pb2.PutRequest(
            namespace_id=namespace_id, key=item.key, value=item.value, min_replicas=min_replicas
        )
        try:
            if item.expiration is not None:
                request.expiration = item.expiration
            if item.expiration_ttl is not None:
                request.expiration_ttl = item.expiration_ttl
        except ValueError:  # beyond int64: refused as the owner's own check words it
            validation.expiration(
                item.expiration, item.expiration_ttl, now_s=time.time(), min_ttl=1
            )
            raise InvalidRequest("Invalid expiration.") from None
        if item.metadata is not None:
            request.metadata = item.metadata
        answer = await self._call("put", request)
        return Applied(_header(answer.version, answer.expiration, item.metadata, answer.seq), 0)

    async def delete(self, namespace_id: str, key: bytes, *, gather: bool = False) -> Applied:
        request = kv_pb2.DeleteRequest(namespace_id=namespace_id, key=key)
        answer = await self._call("delete", request)
        return Applied(_header(answer.version, 0, None, answer.seq), 0)

    async def list_keys(
        self, namespace_id: str, prefix: bytes, limit: int | None, cursor: bytes
    ) -> KeyListing:
        request = kv_pb2.ListRequest(namespace_id=namespace_id, prefix=prefix, cursor=cursor)
        if limit is not None:
            request.limit = paging.list_limit(limit)  # fits the message's uint32
        answer = await self._call("list", request)
        keys = [
            (
                info.name,
                RecordHeader(
                    0,
                    0,
                    0,
                    info.expiration if info.HasField("expiration") else 0,
                    False,
                    info.metadata if info.HasField("metadata") else None,
                ),
            )
            for info in answer.keys
        ]
        return KeyListing(keys, answer.list_complete, answer.cursor)


class ViewedOperations(ForwardedOperations):
    """``ForwardedOperations`` whose plain reads the worker's own view answers, with the
    owner's code (``secondary_reads``); a read it cannot answer still goes to the owner.
    (A request with a session token or a staleness bound never reaches it: the worker
    passes the whole request to the owner, ``session_header``.)"""

    def __init__(self, owner: OwnerLink, view: SecondaryReads) -> None:
        super().__init__(owner)
        self._view = view

    async def read(self, namespace_id: str, key: bytes, cache_ttl: object = None) -> Found | None:
        if await self._view.fresh():
            return self._view.operations.get(namespace_id, key, cache_ttl)
        return await super().read(namespace_id, key, cache_ttl)

    async def read_many(
        self, namespace_id: str, keys: Sequence[bytes], cache_ttl: object = None
    ) -> list[Found | None]:
        if await self._view.fresh():
            return self._view.operations.get_many(namespace_id, keys, cache_ttl)
        return await super().read_many(namespace_id, keys, cache_ttl)

    def lag_bound(self) -> str | None:
        return self._view.lag_bound()
