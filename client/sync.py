"""The blocking client: ``Client``, its ``namespaces`` and ``KVNamespace``."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import grpc

from rumor.client import batch, calls, codec, staleness
from rumor.client.batch_sync import ThreadBatcher
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
from rumor.client.namespaces import Namespaces
from rumor.client.session import Session
from rumor.client.staleness import LagReport
from rumor.v1 import kv_pb2

R = TypeVar("R")


class Client:
    """A connection to a Rumor cluster through one or more node endpoints.

    >>> with Client(["127.0.0.1:7401", "127.0.0.1:7402"]) as kv:   # doctest: +SKIP
    ...     ns = kv.namespace(kv.namespaces.create("SESSIONS").id)
    ...     ns.put("k", "v")
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
        # Calls made from several threads at once ride shared frames of one Batch stream.
        self.batching = batching
        self._metadata = call_metadata(api_token)
        self._credentials = credentials(tls)
        self._channels: dict[int, grpc.Channel] = {}
        self._batchers: dict[int, ThreadBatcher] = {}
        self._batchers_lock = threading.Lock()
        self.namespaces = Namespaces(self)

    def listeners(self) -> Listeners:
        """Where the connected node serves (its HTTP listener carries the REST API
        and the Workers binding protocol)."""
        return self.run(calls.listeners())

    def namespace(self, namespace_id: str) -> KVNamespace:
        """The namespace with this id (no call is made until you use it)."""
        return KVNamespace(self, namespace_id)

    def session(self, token: str | None = None) -> Session[KVNamespace]:
        """A session: read-your-writes, monotonic reads and writes, writes-follow-reads,
        whichever node serves each call. ``token`` resumes one (``Session.token``,
        perhaps from another process or client)."""
        return Session(
            lambda namespace_id, session: KVNamespace(self, namespace_id, session), token
        )

    def close(self) -> None:
        for batcher in self._batchers.values():
            batcher.close()
        self._batchers.clear()
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _channel(self, index: int) -> grpc.Channel:
        if index not in self._channels:
            address = self.endpoints.addresses[index]
            self._channels[index] = (
                grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
                if self._credentials is None
                else grpc.secure_channel(address, self._credentials, options=CHANNEL_OPTIONS)
            )
        return self._channels[index]

    def _attempt(self, retry: bool, attempt: Any, method: str) -> Any:
        """Run ``attempt(channel)`` on the sticky endpoint, failing over on UNAVAILABLE."""
        tried: list[int] = []
        last: BaseException | None = None
        for index in self.endpoints.attempts(retry):
            try:
                return attempt(self._channel(index))
            except grpc.RpcError as error:
                address = self.endpoints.addresses[index]
                if error.code() != grpc.StatusCode.UNAVAILABLE:
                    raise from_rpc_error(error, address, method) from None
                tried.append(index)
                last = from_rpc_error(error, address, method)
                self.endpoints.failed(index)
        assert last is not None
        raise self.endpoints.exhausted(tried, last) from None

    def run(
        self,
        call: Call[R],
        session: Session[Any] | None = None,
        on_lag: LagReport | None = None,
    ) -> R:
        """Run one call: alone, unary; beside other calls of this client, on the Batch stream;
        within ``session``, after its token, folding the answer's token back in. A read
        hands its answer's lag bound to ``on_lag``."""
        if session is not None:
            session.stamp(call.request)

        def unary(channel: grpc.Channel) -> Any:
            method = channel.unary_unary(
                call.path,
                request_serializer=_serialize,
                response_deserializer=call.response_class.FromString,
            )
            if on_lag is None:
                return method(call.request, timeout=self.timeout, metadata=self._metadata)
            response, rpc = method.with_call(
                call.request, timeout=self.timeout, metadata=self._metadata
            )
            on_lag(staleness.lag_bound_in(rpc.trailing_metadata()))
            return response

        field = batch.field_of(call) if self.batching else None
        if field is None:
            return _answer(call, self._attempt(call.retry, unary, call.method), session)

        def batched(channel: grpc.Channel) -> Any:
            batcher = self._batcher(channel)
            alone = batcher.enter()
            try:
                if alone or batcher.unsupported:
                    return unary(channel)
                try:
                    result = batcher.result(field, call.request, self.timeout)
                except batch.BatchUnsupported:
                    return unary(channel)
                response = batch.response_of(field, result)
                if on_lag is not None:
                    on_lag(staleness.lag_bound_of(result.lag_bound_ms))
                return response
            finally:
                batcher.leave()

        return _answer(call, self._attempt(call.retry, batched, call.method), session)

    def _batcher(self, channel: grpc.Channel) -> ThreadBatcher:
        with self._batchers_lock:
            key = id(channel)
            if key not in self._batchers:
                self._batchers[key] = ThreadBatcher(channel, self._metadata)
            return self._batchers[key]

    def _put_stream(
        self,
        header: kv_pb2.PutRequest,
        source: codec.StreamSource,
        session: Session[Any] | None = None,
    ) -> WriteResult:
        if session is not None:
            session.stamp(header)

        def attempt(channel: grpc.Channel) -> Any:
            failure: list[Exception] = []

            def messages() -> Iterator[kv_pb2.PutStreamRequest]:
                yield kv_pb2.PutStreamRequest(header=header)
                try:
                    for chunk in source.chunks():
                        yield kv_pb2.PutStreamRequest(chunk=codec.checked_chunk(chunk))
                except Exception as exc:  # grpc would hide it behind UNKNOWN
                    failure.append(exc)
                    raise
                yield kv_pb2.PutStreamRequest(last=True)

            method = channel.stream_unary(
                "/rumor.v1.KV/PutStream",
                request_serializer=_serialize,
                response_deserializer=kv_pb2.PutResponse.FromString,
            )
            try:
                return method(messages(), timeout=self.timeout, metadata=self._metadata)
            except grpc.RpcError:
                if failure:
                    raise failure[0] from None
                raise

        response = self._attempt(source.retryable, attempt, "PutStream")
        if session is not None:
            session.absorb(response)
        return codec.write_result(response.version, response.seq, response.expiration)

    def _watch(self, request: kv_pb2.WatchRequest) -> Iterator[Change]:
        def attempt(channel: grpc.Channel) -> Any:
            method = channel.unary_stream(
                "/rumor.v1.KV/Watch",
                request_serializer=_serialize,
                response_deserializer=kv_pb2.WatchEvent.FromString,
            )
            return method(request, metadata=self._metadata)

        events = self._attempt(True, attempt, "Watch")
        address = self.endpoints.addresses[self.endpoints.current]
        try:
            for event in events:
                yield codec.change(event)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.CANCELLED:
                raise from_rpc_error(error, address, "Watch") from None
        finally:
            events.cancel()

    def _get_stream(
        self, request: kv_pb2.GetRequest, session: Session[Any] | None = None
    ) -> tuple[kv_pb2.GetResponse, Iterator[bytes]] | None:
        """The header of a found key and its value in chunks; None when missing."""
        if session is not None:
            session.stamp(request)

        def attempt(channel: grpc.Channel) -> Any:
            method = channel.unary_stream(
                "/rumor.v1.KV/GetStream",
                request_serializer=_serialize,
                response_deserializer=kv_pb2.GetStreamResponse.FromString,
            )
            responses: Any = method(request, timeout=self.timeout, metadata=self._metadata)
            return responses, next(responses)

        responses, first = self._attempt(True, attempt, "GetStream")
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


def _chunks(responses: Any, address: str) -> Iterator[bytes]:
    try:
        for message in responses:
            yield message.chunk
    except grpc.RpcError as error:
        raise from_rpc_error(error, address, "GetStream") from None


class KVNamespace:
    """The keys of one namespace, with the Workers KV methods."""

    def __init__(
        self, client: Client, namespace_id: str, session: Session[Any] | None = None
    ) -> None:
        self._client = client
        self.id = namespace_id
        self._session = session  # None: plain calls, each served by whichever node
        # The lag bound (ms) the node reported with the latest read through this object;
        # None before any, or when the node could not say. A stream read leaves it be.
        self.lag_bound_ms: int | None = None

    def put(
        self,
        key: str,
        value: Any,
        *,
        expiration: int | None = None,
        expiration_ttl: int | None = None,
        metadata: Any = None,
        min_replicas: int | None = None,
    ) -> WriteResult:
        """Write ``value`` under ``key``, replacing value, metadata and expiration together.

        ``value`` is str, bytes, bytearray or memoryview (sent in one message), or a
        binary file object or an iterable of bytes (streamed in chunks, never read
        whole). ``expiration`` is absolute seconds since the epoch; ``expiration_ttl``
        is seconds from now and wins if both are given. ``metadata`` is any JSON value.
        ``min_replicas=k`` waits until k nodes (the accepting one included) hold the
        write; if they do not in time, ``ReplicationTimeoutError`` says the write is
        applied locally and still spreading.
        """
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
            return self._client.run(calls.put(request), self._session)
        header = codec.put_request(
            self.id,
            key,
            b"",
            expiration=expiration,
            expiration_ttl=expiration_ttl,
            metadata=metadata,
            min_replicas=min_replicas,
        )
        return self._client._put_stream(
            header, codec.stream_source(value, allow_async=False), self._session
        )

    def get(
        self,
        key: str | Sequence[str],
        type: str = "text",
        *,
        cache_ttl: int | None = None,
        max_staleness_ms: int | None = None,
    ) -> Any:
        """The value of ``key`` as ``type`` (text, json, bytes, arrayBuffer or stream).

        None if the key is missing, deleted or expired. Given a list of at most 100
        keys (type text or json), returns a dict of key to value (None when missing).
        With type "stream", returns an iterator of byte chunks. ``cache_ttl``
        (Workers KV's cacheTtl, at least 30) is checked and otherwise ignored:
        every read is served by the node's own copy. ``max_staleness_ms``: answered
        only by a node that knows it lags every alive member by less (else the next
        endpoint is tried; ``UnavailableError`` when none can); the answer's lag bound
        is kept in ``lag_bound_ms``.
        """
        return self._read(key, type, False, cache_ttl, max_staleness_ms)

    def get_with_metadata(
        self,
        key: str | Sequence[str],
        type: str = "text",
        *,
        cache_ttl: int | None = None,
        max_staleness_ms: int | None = None,
    ) -> Any:
        """``ValueWithMetadata(value, metadata)`` for a key (both None if missing),
        or for a list of keys a dict of them (None for a missing key, as workerd
        answers). With type "stream" the value is an iterator of byte chunks.
        ``max_staleness_ms`` as in ``get``."""
        return self._read(key, type, True, cache_ttl, max_staleness_ms)

    def _read(
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
            return client.run(call, session, self._saw_lag)
        request = codec.get_request(self.id, key, type, with_metadata, cache_ttl)
        found = client._get_stream(staleness.stamp(request, max_staleness_ms), session)
        if not with_metadata:
            return None if found is None else found[1]
        if found is None:
            return ValueWithMetadata(None, None)
        header, chunks = found
        return ValueWithMetadata(chunks, codec.decode_metadata(header))

    def _saw_lag(self, bound_ms: int | None) -> None:
        self.lag_bound_ms = bound_ms

    def delete(self, key: str) -> WriteResult:
        """Delete ``key`` (succeeds for a missing key too: the delete is recorded)."""
        return self._client.run(calls.delete(self.id, key), self._session)

    def list(
        self,
        prefix: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        *,
        max_staleness_ms: int | None = None,
    ) -> ListResult:
        """One page of keys in byte order: ``ListResult(keys, list_complete, cursor)``.
        ``max_staleness_ms`` as in ``get``."""
        call = calls.list_keys(self.id, prefix, limit, cursor, max_staleness_ms)
        return self._client.run(call, self._session, self._saw_lag)

    def iter_keys(
        self, prefix: str | None = None, *, max_staleness_ms: int | None = None
    ) -> Iterator[KeyInfo]:
        """Every key with ``prefix``, following cursors page by page."""
        cursor = None
        while True:
            page = self.list(prefix=prefix, cursor=cursor, max_staleness_ms=max_staleness_ms)
            yield from page.keys
            if page.list_complete or page.cursor is None:
                return
            cursor = page.cursor

    def bulk_put(self, items: Sequence[Any]) -> int:
        """Write up to 10,000 items ``{key, value, expiration?, expiration_ttl?, metadata?,
        base64?}`` at once; one bad item fails the whole request and writes nothing."""
        return self._client.run(calls.bulk_put(self.id, items), self._session)

    def bulk_delete(self, keys: Sequence[str]) -> int:
        """Delete up to 10,000 keys at once."""
        return self._client.run(calls.bulk_delete(self.id, list(keys)), self._session)

    def watch(self, prefix: str | None = None, *, buffer: int = 0) -> Iterator[Change]:
        """Every change the connected node applies to keys with ``prefix``, as it happens.

        Runs until you stop iterating (or the node goes away). If you read too
        slowly, the node drops changes and yields a ``Change(fell_behind=True,
        dropped=n)`` notice; writes are never slowed down by a watcher.
        """
        request = codec.watch_request(self.id, prefix, buffer)
        return self._client._watch(request)
