"""The asyncio client: ``AsyncClient``, with the same surface as ``Client`` and ``await``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from typing import Any, TypeVar

import grpc
import grpc.aio

from rumor.client import batch, calls, codec, staleness
from rumor.client.batch_aio import AsyncBatcher
from rumor.client.calls import Call
from rumor.client.connection import (
    CHANNEL_OPTIONS,
    DEFAULT_TIMEOUT_S,
    TLS,
    Endpoints,
    call_metadata,
    credentials,
)
from rumor.client.errors import from_rpc_error
from rumor.client.models import (
    Change,
    KeyInfo,
    Listeners,
    ListResult,
    ValueWithMetadata,
    WriteResult,
)
from rumor.client.namespaces import AsyncNamespaces
from rumor.client.session import Session
from rumor.client.staleness import LagReport
from rumor.v1 import kv_pb2

R = TypeVar("R")


class AsyncClient:
    """A connection to a Rumor cluster for asyncio code.

    >>> async with AsyncClient("127.0.0.1:7401") as kv:   # doctest: +SKIP
    ...     ns = kv.namespace((await kv.namespaces.create("SESSIONS")).id)
    ...     await ns.put("k", "v")
    """

    def __init__(
        self,
        endpoints: str | Sequence[str],
        *,
        api_token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        tls: bool | TLS | None = None,
        batching: bool = True,
    ) -> None:
        self.endpoints = Endpoints(endpoints)
        self.timeout = timeout
        # Concurrent reads and writes ride shared frames of one Batch stream per node.
        self.batching = batching
        self._metadata = call_metadata(api_token)
        self._credentials = credentials(tls)
        self._channels: dict[int, grpc.aio.Channel] = {}
        self._batchers: dict[int, AsyncBatcher] = {}
        self.namespaces = AsyncNamespaces(self)

    async def listeners(self) -> Listeners:
        """Where the connected node serves (its HTTP listener carries the REST API
        and the Workers binding protocol)."""
        return await self.run(calls.listeners())

    def namespace(self, namespace_id: str) -> AsyncKVNamespace:
        """The namespace with this id (no call is made until you use it)."""
        return AsyncKVNamespace(self, namespace_id)

    def session(self, token: str | None = None) -> Session[AsyncKVNamespace]:
        """A session: read-your-writes, monotonic reads and writes, writes-follow-reads,
        whichever node serves each call. ``token`` resumes one (``Session.token``,
        perhaps from another process or client)."""
        return Session(
            lambda namespace_id, session: AsyncKVNamespace(self, namespace_id, session), token
        )

    async def close(self) -> None:
        for batcher in self._batchers.values():
            await batcher.close()
        self._batchers.clear()
        for channel in self._channels.values():
            await channel.close(None)
        self._channels.clear()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _channel(self, index: int) -> grpc.aio.Channel:
        if index not in self._channels:
            address = self.endpoints.addresses[index]
            self._channels[index] = (
                grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
                if self._credentials is None
                else grpc.aio.secure_channel(address, self._credentials, options=CHANNEL_OPTIONS)
            )
        return self._channels[index]

    async def _attempt(self, retry: bool, attempt: Any, method: str) -> Any:
        """Await ``attempt(channel)`` on the sticky endpoint, failing over on UNAVAILABLE."""
        tried: list[int] = []
        last: BaseException | None = None
        for index in self.endpoints.attempts(retry):
            try:
                return await attempt(self._channel(index))
            except grpc.RpcError as error:
                address = self.endpoints.addresses[index]
                if error.code() != grpc.StatusCode.UNAVAILABLE:
                    raise from_rpc_error(error, address, method) from None
                tried.append(index)
                last = from_rpc_error(error, address, method)
                self.endpoints.failed(index)
        assert last is not None
        raise self.endpoints.exhausted(tried, last) from None

    async def run(
        self,
        call: Call[R],
        session: Session[Any] | None = None,
        on_lag: LagReport | None = None,
    ) -> R:
        """Run one call: on the node's Batch stream when it can ride one, else unary;
        within ``session``, after its token, folding the answer's token back in. A read
        hands its answer's lag bound to ``on_lag``."""
        if session is not None:
            session.stamp(call.request)

        async def unary(channel: grpc.aio.Channel) -> Any:
            method = channel.unary_unary(
                call.path,
                request_serializer=_serialize,
                response_deserializer=call.response_class.FromString,
            )
            rpc = method(call.request, timeout=self.timeout, metadata=self._metadata)
            response = await rpc
            if on_lag is not None:
                on_lag(staleness.lag_bound_in(await rpc.trailing_metadata()))
            return response

        field = batch.field_of(call) if self.batching else None
        if field is None:
            return _answer(call, await self._attempt(call.retry, unary, call.method), session)

        async def batched(channel: grpc.aio.Channel) -> Any:
            batcher = self._batcher(channel)
            if batcher.unsupported:
                return await unary(channel)
            try:
                result = await batcher.result(field, call.request, self.timeout)
            except batch.BatchUnsupported:
                return await unary(channel)
            response = batch.response_of(field, result)
            if on_lag is not None:
                on_lag(staleness.lag_bound_of(result.lag_bound_ms))
            return response

        return _answer(call, await self._attempt(call.retry, batched, call.method), session)

    def _batcher(self, channel: grpc.aio.Channel) -> AsyncBatcher:
        key = id(channel)
        if key not in self._batchers:
            self._batchers[key] = AsyncBatcher(channel, self._metadata)
        return self._batchers[key]

    async def _put_stream(
        self,
        header: kv_pb2.PutRequest,
        source: codec.StreamSource,
        session: Session[Any] | None = None,
    ) -> WriteResult:
        if session is not None:
            session.stamp(header)

        async def attempt(channel: grpc.aio.Channel) -> Any:
            failure: list[Exception] = []

            async def messages() -> AsyncIterator[kv_pb2.PutStreamRequest]:
                yield kv_pb2.PutStreamRequest(header=header)
                try:
                    chunks = source.chunks()
                    if isinstance(chunks, AsyncIterable):
                        async for chunk in chunks:
                            yield kv_pb2.PutStreamRequest(chunk=codec.checked_chunk(chunk))
                    else:
                        for chunk in chunks:
                            yield kv_pb2.PutStreamRequest(chunk=codec.checked_chunk(chunk))
                except Exception as exc:  # grpc.aio would turn it into a cancellation
                    failure.append(exc)
                    raise
                yield kv_pb2.PutStreamRequest(last=True)

            method = channel.stream_unary(
                "/rumor.v1.KV/PutStream",
                request_serializer=_serialize,
                response_deserializer=kv_pb2.PutResponse.FromString,
            )
            try:
                return await method(messages(), timeout=self.timeout, metadata=self._metadata)
            except (grpc.RpcError, asyncio.CancelledError):
                if failure:
                    raise failure[0] from None
                raise

        response = await self._attempt(source.retryable, attempt, "PutStream")
        if session is not None:
            session.absorb(response)
        return codec.write_result(response.version, response.seq, response.expiration)

    async def _get_stream(
        self, request: kv_pb2.GetRequest, session: Session[Any] | None = None
    ) -> tuple[kv_pb2.GetResponse, AsyncIterator[bytes]] | None:
        """The header of a found key and its value in chunks; None when missing."""
        if session is not None:
            session.stamp(request)

        async def attempt(channel: grpc.aio.Channel) -> Any:
            method = channel.unary_stream(
                "/rumor.v1.KV/GetStream",
                request_serializer=_serialize,
                response_deserializer=kv_pb2.GetStreamResponse.FromString,
            )
            responses = method(request, timeout=self.timeout, metadata=self._metadata)
            return responses, await responses.read()

        responses, first = await self._attempt(True, attempt, "GetStream")
        if session is not None:
            session.absorb(first.header)
        if not first.header.found:
            responses.cancel()
            return None
        return first.header, _chunks(responses, self.endpoints.addresses[self.endpoints.current])


def _answer(call: Call[R], response: Any, session: Session[Any] | None) -> R:
    if session is not None:
        session.absorb(response)
    return call.decode(response)


def _serialize(message: Any) -> bytes:
    data: bytes = message.SerializeToString()
    return data


async def _chunks(responses: Any, address: str) -> AsyncIterator[bytes]:
    try:
        while True:  # read() was used for the header, so the iterator API cannot be
            message = await responses.read()
            if message is grpc.aio.EOF:  # type: ignore[attr-defined]
                return
            yield message.chunk
    except grpc.RpcError as error:
        raise from_rpc_error(error, address, "GetStream") from None


class AsyncKVNamespace:
    """The keys of one namespace, with the Workers KV methods (awaitable)."""

    def __init__(
        self, client: AsyncClient, namespace_id: str, session: Session[Any] | None = None
    ) -> None:
        self._client = client
        self.id = namespace_id
        self._session = session  # None: plain calls, each served by whichever node
        self.lag_bound_ms: int | None = None  # as ``KVNamespace.lag_bound_ms``

    async def put(
        self,
        key: str,
        value: Any,
        *,
        expiration: int | None = None,
        expiration_ttl: int | None = None,
        metadata: Any = None,
        min_replicas: int | None = None,
    ) -> WriteResult:
        """Write ``value`` under ``key``; see ``KVNamespace.put``. Also takes an async
        iterable of bytes, streamed."""
        data = codec.small_value(value)
        if data is not None:
            request = codec.put_request(
                self.id,
                key,
                data,
                expiration=expiration,
                expiration_ttl=expiration_ttl,
                metadata=metadata,
                min_replicas=min_replicas,
            )
            return await self._client.run(calls.put(request), self._session)
        header = codec.put_request(
            self.id,
            key,
            b"",
            expiration=expiration,
            expiration_ttl=expiration_ttl,
            metadata=metadata,
            min_replicas=min_replicas,
        )
        return await self._client._put_stream(
            header, codec.stream_source(value, allow_async=True), self._session
        )

    async def get(
        self,
        key: str | Sequence[str],
        type: str = "text",
        *,
        cache_ttl: int | None = None,
        max_staleness_ms: int | None = None,
    ) -> Any:
        """The value of ``key`` as ``type``; see ``KVNamespace.get``. With type "stream",
        returns an async iterator of byte chunks."""
        return await self._read(key, type, False, cache_ttl, max_staleness_ms)

    async def get_with_metadata(
        self,
        key: str | Sequence[str],
        type: str = "text",
        *,
        cache_ttl: int | None = None,
        max_staleness_ms: int | None = None,
    ) -> Any:
        """``ValueWithMetadata(value, metadata)``; see ``KVNamespace.get_with_metadata``.
        With type "stream" the value is an async iterator of byte chunks."""
        return await self._read(key, type, True, cache_ttl, max_staleness_ms)

    async def _read(
        self,
        key: str | Sequence[str],
        type: str,
        with_metadata: bool,
        cache_ttl: int | None,
        max_staleness_ms: int | None,
    ) -> Any:
        client, session = self._client, self._session
        if type != "stream" or not isinstance(key, str):
            call = calls.read(self.id, key, type, with_metadata, cache_ttl, max_staleness_ms)
            return await client.run(call, session, self._saw_lag)
        request = codec.get_request(self.id, key, type, with_metadata, cache_ttl)
        found = await client._get_stream(staleness.stamp(request, max_staleness_ms), session)
        if not with_metadata:
            return None if found is None else found[1]
        if found is None:
            return ValueWithMetadata(None, None)
        header, chunks = found
        return ValueWithMetadata(chunks, codec.decode_metadata(header))

    def _saw_lag(self, bound_ms: int | None) -> None:
        self.lag_bound_ms = bound_ms

    async def delete(self, key: str) -> WriteResult:
        """Delete ``key`` (succeeds for a missing key too)."""
        return await self._client.run(calls.delete(self.id, key), self._session)

    async def list(
        self,
        prefix: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        *,
        max_staleness_ms: int | None = None,
    ) -> ListResult:
        """One page of keys in byte order: ``ListResult(keys, list_complete, cursor)``."""
        call = calls.list_keys(self.id, prefix, limit, cursor, max_staleness_ms)
        return await self._client.run(call, self._session, self._saw_lag)

    async def iter_keys(
        self, prefix: str | None = None, *, max_staleness_ms: int | None = None
    ) -> AsyncIterator[KeyInfo]:
        """Every key with ``prefix``, following cursors page by page."""
        cursor = None
        while True:
            page = await self.list(prefix=prefix, cursor=cursor, max_staleness_ms=max_staleness_ms)
            for key in page.keys:
                yield key
            if page.list_complete or page.cursor is None:
                return
            cursor = page.cursor

    async def bulk_put(self, items: Sequence[Any]) -> int:
        """Write up to 10,000 items at once; see ``KVNamespace.bulk_put``."""
        return await self._client.run(calls.bulk_put(self.id, items), self._session)

    async def bulk_delete(self, keys: Sequence[str]) -> int:
        """Delete up to 10,000 keys at once."""
        return await self._client.run(calls.bulk_delete(self.id, list(keys)), self._session)

    async def watch(self, prefix: str | None = None, *, buffer: int = 0) -> AsyncIterator[Change]:
        """Every change the connected node applies to keys with ``prefix``; see
        ``KVNamespace.watch``."""
        request = codec.watch_request(self.id, prefix, buffer)
        channel = self._client._channel(self._client.endpoints.current)
        address = self._client.endpoints.addresses[self._client.endpoints.current]
        method = channel.unary_stream(
            "/rumor.v1.KV/Watch",
            request_serializer=_serialize,
            response_deserializer=kv_pb2.WatchEvent.FromString,
        )
        call = method(request, metadata=self._client._metadata)
        try:
            while True:
                event: Any = await call.read()
                if event is grpc.aio.EOF:  # type: ignore[attr-defined]
                    return
                yield codec.change(event)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.CANCELLED:
                raise from_rpc_error(error, address) from None
        finally:
            call.cancel()
