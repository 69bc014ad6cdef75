"""The KV gRPC service: translates rumor.v1 messages to and from ``Operations``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from rumor.client.session_token import EMPTY, SessionToken
from rumor.node.core import validation
from rumor.node.core.errors import InvalidRequest
from rumor.node.core.namespaces import id_text, is_reserved
from rumor.node.core.record import RecordHeader
from rumor.node.server import access, auth
from rumor.node.server.admission import ByteBudget
from rumor.node.server.grpc.batch import BatchStream, UnaryCall
from rumor.node.server.grpc.bulk_put_request import plain_columns
from rumor.node.server.grpc.kv_messages import (
    cache_ttl,
    checked_type,
    delete_response,
    found_header,
    get_response,
    namespace_message,
    put_item,
    put_response,
    type_name,
)
from rumor.node.server.grpc.rpc import CLIENT_PEER_HEADER, Context, own_trailers
from rumor.node.server.operations import Operations
from rumor.node.server.release import METADATA
from rumor.node.server.sessions import LAG_BOUND_KEY, answer_token, write_token
from rumor.node.server.upload_budget import UploadBudget
from rumor.node.server.watch import ANY_NAMESPACE, WatchHub
from rumor.v1 import kv_pb2

STREAM_CHUNK_BYTES = 1024 * 1024


def _release_when_done(context: Context, release: Any) -> None:
    """Run ``release`` once the call is over: grpc holds a unary answer until it is sent."""
    add_done_callback = getattr(context, "add_done_callback", None)
    if add_done_callback is None:
        release()
    else:
        add_done_callback(lambda _: release())


def _time_remaining(context: Context, after: str) -> float | None:
    """The seconds left before the call's deadline (None: no deadline), for a request
    with the session token ``after``: without one nothing waits, so None."""
    if not after:
        return None
    time_remaining = getattr(context, "time_remaining", None)
    remaining = None if time_remaining is None else time_remaining()
    return None if remaining is None else float(remaining)


def _max_staleness(request: Any) -> int | None:
    return int(request.max_staleness_ms) if request.HasField("max_staleness_ms") else None


def _connection(context: Context) -> str:
    """The client's connection: the caller's, or the one a worker forwarded the call from
    (a worker calls over the owner's private Unix socket and names its client's)."""
    try:
        peer = str(context.peer())
    except (AttributeError, NotImplementedError):
        return ""
    if peer.startswith("unix:"):
        for key, value in context.invocation_metadata() or ():
            if key == CLIENT_PEER_HEADER:
                return f"{peer} {value!s}"
    return peer


class KVService:
    def __init__(
        self,
        operations: Operations,
        watches: WatchHub,
        reads: ByteBudget | None = None,
        uploads: UploadBudget | None = None,
    ) -> None:
        self.ops = operations
        self.watches = watches
        self.reads = reads or ByteBudget(2**62, 0)
        self.uploads = uploads or UploadBudget.unbounded()
        # Filled in once the listeners are bound (the HTTP one may be absent).
        self.grpc_address = ""
        self.http_address = ""

    # ---- namespaces -----------------------------------------------------

    async def CreateNamespace(
        self, request: kv_pb2.CreateNamespaceRequest, context: Context
    ) -> kv_pb2.Namespace:
        return namespace_message(await self.ops.create_namespace(request.title))

    async def ListNamespaces(
        self, request: kv_pb2.ListNamespacesRequest, context: Context
    ) -> kv_pb2.ListNamespacesResponse:
        grant = auth.caller()
        page, cursor = self.ops.namespace_page(
            request.limit,
            request.cursor.encode(),
            lambda info: access.may_see(grant, info),
        )
        return kv_pb2.ListNamespacesResponse(
            namespaces=[namespace_message(info) for info in page],
            cursor=cursor.decode(),
            list_complete=not cursor,
        )

    async def GetNamespace(
        self, request: kv_pb2.GetNamespaceRequest, context: Context
    ) -> kv_pb2.Namespace:
        return namespace_message(self.ops.get_namespace(request.namespace_id))

    async def RenameNamespace(
        self, request: kv_pb2.RenameNamespaceRequest, context: Context
    ) -> kv_pb2.Namespace:
        return namespace_message(
            await self.ops.rename_namespace(request.namespace_id, request.title)
        )

    async def DeleteNamespace(
        self, request: kv_pb2.DeleteNamespaceRequest, context: Context
    ) -> kv_pb2.DeleteNamespaceResponse:
        await self.ops.delete_namespace(request.namespace_id)
        return kv_pb2.DeleteNamespaceResponse()

    # ---- keys -----------------------------------------------------------

    async def Put(self, request: kv_pb2.PutRequest, context: Context) -> kv_pb2.PutResponse:
        after = await self.ops.sessions.after(
            request.after, _time_remaining(context, request.after)
        )
        applied = await self.ops.put(request.namespace_id, put_item(request), request.min_replicas)
        return put_response(applied, after)

    async def PutStream(
        self, requests: AsyncIterator[kv_pb2.PutStreamRequest], context: Context
    ) -> kv_pb2.PutResponse:
        header, value, length = await self._receive_stream(requests, _connection(context))
        validation.value_length(length)
        after = await self.ops.sessions.after(header.after, _time_remaining(context, header.after))
        applied = await self.ops.put(
            header.namespace_id, put_item(header, bytes(value)), header.min_replicas
        )
        return put_response(applied, after)

    async def _receive_stream(
        self, requests: AsyncIterator[kv_pb2.PutStreamRequest], connection: str
    ) -> tuple[kv_pb2.PutRequest, bytearray, int]:
        """A PutStream's header, its value (buffered up to the value limit) and its length,
        received under the upload budget and its clocks (``upload_budget``)."""
        header: kv_pb2.PutRequest | None = None
        value = bytearray()
        length = 0
        finished = False
        async with self.uploads.upload(connection) as upload:
            async for message in requests:
                if header is None:
                    if not message.HasField("header"):
                        raise InvalidRequest("The first PutStream message must carry the header.")
                    header = message.header
                elif message.HasField("header"):
                    # Its bytes would go to the first header's key: refuse rather than guess.
                    raise InvalidRequest(
                        "Only the first PutStream message carries a header; nothing was written."
                    )
                if finished:
                    raise InvalidRequest("PutStream received a message after the last one.")
                size = len(message.chunk)
                length += size
                # Past the limit, keep reading only to report the whole length.
                kept = size if length <= validation.MAX_VALUE_BYTES else 0
                if kept:
                    value += message.chunk
                await upload.received(size, kept)
                finished = message.last
        if header is None:
            raise InvalidRequest("PutStream received no messages.")
        if not finished:
            # grpc.aio ends the stream the same way when the client cancels it.
            raise InvalidRequest("PutStream ended without its last message; nothing was written.")
        return header, value, length

    @own_trailers  # _before_read
    async def Get(self, request: kv_pb2.GetRequest, context: Context) -> kv_pb2.GetResponse:
        value_type = checked_type(request.type)
        if request.after:
            after = await self._before_read(request, context)
        else:  # no session: nothing to wait for (and no coroutine to run)
            after = None
            self._read_checks(request, context)
        reads = self.reads
        if reads.admits(validation.MAX_VALUE_BYTES):
            # Any one value would be admitted: read it, then hold what was read (no
            # header read first for an estimate).
            found = self.ops.get(request.namespace_id, request.key, cache_ttl(request))
            reservation = reads.hold(0 if found is None else len(found.value))
        else:
            reservation = await reads.reserve(
                self.ops.value_bytes(request.namespace_id, [request.key])
            )
            try:
                found = self.ops.get(request.namespace_id, request.key, cache_ttl(request))
            except BaseException:
                reservation.release()
                raise
            reservation.settle(0 if found is None else len(found.value))
        try:
            response = get_response(request.key, found, value_type, request.with_metadata)
            if after is not None:
                response.session = self.ops.sessions.read_token(
                    after,
                    self.ops.namespace_bytes(request.namespace_id),
                    [(request.key, None if found is None else found.header)],
                )
        except BaseException:
            reservation.release()
            raise
        if reservation.held:
            _release_when_done(context, reservation.release)
        else:
            reservation.release()
        return response

    async def GetStream(
        self, request: kv_pb2.GetRequest, context: Context
    ) -> AsyncIterator[kv_pb2.GetStreamResponse]:
        checked_type(request.type)
        after = await self._before_read(request, context)
        reservation = await self.reads.reserve(
            self.ops.value_bytes(request.namespace_id, [request.key])
        )
        try:
            found = self.ops.get(request.namespace_id, request.key, cache_ttl(request))
            session = ""
            if after is not None:
                session = self.ops.sessions.read_token(
                    after,
                    self.ops.namespace_bytes(request.namespace_id),
                    [(request.key, None if found is None else found.header)],
                )
            if found is None:
                reservation.release()
                missing = kv_pb2.GetResponse(found=False, session=session)
                yield kv_pb2.GetStreamResponse(header=missing)
                return
            reservation.settle(len(found.value))
            header = found_header(found.header, request.with_metadata)
            header.session = session
            yield kv_pb2.GetStreamResponse(header=header, value_length=len(found.value))
            view = memoryview(found.value)
            for start in range(0, len(view), STREAM_CHUNK_BYTES):
                chunk = bytes(view[start : start + STREAM_CHUNK_BYTES])
                yield kv_pb2.GetStreamResponse(chunk=chunk)
        finally:
            reservation.release()

    @own_trailers  # _before_read
    async def BulkGet(
        self, request: kv_pb2.BulkGetRequest, context: Context
    ) -> kv_pb2.BulkGetResponse:
        value_type = request.type
        if value_type not in (kv_pb2.VALUE_TYPE_TEXT, kv_pb2.VALUE_TYPE_JSON):
            validation.bulk_get_type(type_name(value_type))
        keys = list(request.keys)
        after = await self._before_read(request, context)
        reservation = await self.reads.reserve(self.ops.value_bytes(request.namespace_id, keys))
        try:
            results = self.ops.get_many(request.namespace_id, keys, cache_ttl(request))
            reservation.settle(sum(len(found.value) for found in results if found is not None))
            response = kv_pb2.BulkGetResponse(
                entries=[
                    kv_pb2.BulkGetEntry(
                        key=key,
                        result=get_response(
                            key, found, value_type, request.with_metadata, bulk=True
                        ),
                    )
                    for key, found in zip(keys, results, strict=True)
                ]
            )
            if after is not None:
                response.session = self.ops.sessions.read_token(
                    after,
                    self.ops.namespace_bytes(request.namespace_id),
                    [
                        (key, None if found is None else found.header)
                        for key, found in zip(keys, results, strict=True)
                    ],
                )
        except BaseException:
            reservation.release()
            raise
        _release_when_done(context, reservation.release)
        return response

    async def Delete(
        self, request: kv_pb2.DeleteRequest, context: Context
    ) -> kv_pb2.DeleteResponse:
        after = await self.ops.sessions.after(
            request.after, _time_remaining(context, request.after)
        )
        applied = await self.ops.delete(request.namespace_id, request.key)
        return delete_response(applied, after)

    @own_trailers  # _before_read
    async def List(self, request: kv_pb2.ListRequest, context: Context) -> kv_pb2.ListResponse:
        after = await self._before_read(request, context)
        listing = await self.ops.list_keys(
            request.namespace_id,
            request.prefix,
            request.limit if request.HasField("limit") else None,
            request.cursor,
        )
        keys = []
        for name, header in listing.keys:
            info = kv_pb2.KeyInfo(name=name)
            if header.expiration:
                info.expiration = header.expiration
            if header.metadata is not None:
                info.metadata = header.metadata
            keys.append(info)
        response = kv_pb2.ListResponse(
            keys=keys, list_complete=listing.complete, cursor=listing.cursor
        )
        if after is not None:
            response.session = answer_token(after, (header for _, header in listing.keys))
        return response

    async def BulkPut(
        self, request: kv_pb2.BulkPutRequest, context: Context
    ) -> kv_pb2.BulkPutResponse:
        after = await self.ops.sessions.after(
            request.after, _time_remaining(context, request.after)
        )
        columns = plain_columns(request)
        if columns is None:
            items = [put_item(item) for item in request.items]
            written = await self.ops.bulk_put(request.namespace_id, items)
        else:
            written = await self.ops.bulk_put_plain(request.namespace_id, *columns)
        return kv_pb2.BulkPutResponse(
            successful_key_count=written.key_count, session=self._bulk_token(after, written.seq)
        )

    async def BulkDelete(
        self, request: kv_pb2.BulkDeleteRequest, context: Context
    ) -> kv_pb2.BulkDeleteResponse:
        after = await self.ops.sessions.after(
            request.after, _time_remaining(context, request.after)
        )
        written = await self.ops.bulk_delete(request.namespace_id, list(request.keys))
        return kv_pb2.BulkDeleteResponse(
            successful_key_count=written.key_count, session=self._bulk_token(after, written.seq)
        )

    async def _before_read(self, request: Any, context: Context) -> SessionToken | None:
        """A read's session wait and staleness check; its lag bound goes in the trailers."""
        after = request.after
        token = await self.ops.sessions.after(after, _time_remaining(context, after))
        self._read_checks(request, context)
        return token

    def _read_checks(self, request: Any, context: Context) -> None:
        """``_before_read`` once the session's writes are readable (at once without one)."""
        sessions = self.ops.sessions
        sessions.check_staleness(_max_staleness(request))
        set_trailers = getattr(context, "set_trailing_metadata", None)
        if set_trailers is not None:
            # Replaces any trailers the call began with: the release goes again.
            set_trailers(((LAG_BOUND_KEY, sessions.lag_bound()), *METADATA))

    def _bulk_token(self, after: SessionToken | None, seq: int) -> str:
        if not seq:  # nothing written (no keys)
            return (after or EMPTY).encode()
        return write_token(after, self.ops.replica.node_id, seq)

    async def Watch(
        self, request: kv_pb2.WatchRequest, context: Context
    ) -> AsyncIterator[kv_pb2.WatchEvent]:
        if request.all_namespaces:
            if request.namespace_id:
                raise InvalidRequest("Give a namespace_id or all_namespaces, not both.")
            namespace = ANY_NAMESPACE
        else:
            namespace = self.ops.namespace_bytes(request.namespace_id)
        prefix = validation.prefix(request.prefix)
        node_id = self.ops.replica.node_id
        connection = _connection(context)
        watcher = self.watches.open(namespace, prefix, request.buffer, connection)
        try:
            # The watcher is registered: the caller learns it from the initial metadata.
            await context.send_initial_metadata(())
            async for dropped, change in self.watches.follow(watcher):
                if change is None:
                    yield kv_pb2.WatchEvent(fell_behind=True, dropped=dropped)
                    continue
                if is_reserved(change.namespace):
                    continue  # namespace records and other internals: not keys
                header = RecordHeader.decode(change.header)
                yield kv_pb2.WatchEvent(
                    key=change.key,
                    version=kv_pb2.Version(hlc=header.hlc, origin=header.origin),
                    seq=header.seq,
                    tombstone=header.tombstone,
                    expiration=header.expiration,
                    applied_wall_ms=change.applied_wall_ms,
                    applied_monotonic_ns=change.applied_monotonic_ns,
                    local=header.origin == node_id,
                    namespace_id=id_text(change.namespace),
                )
        finally:
            self.watches.close(watcher, connection)

    async def Listeners(
        self, request: kv_pb2.ListenersRequest, context: Context
    ) -> kv_pb2.ListenersResponse:
        return kv_pb2.ListenersResponse(grpc=self.grpc_address, http=self.http_address)

    async def Batch(
        self, requests: AsyncIterator[kv_pb2.BatchRequest], context: Context
    ) -> AsyncIterator[kv_pb2.BatchResponse]:
        unary: dict[str, UnaryCall] = {
            "get": self.Get,
            "bulk_get": self.BulkGet,
            "list": self.List,
            "put": self.Put,
            "delete": self.Delete,
        }
        async for response in BatchStream(self.ops, self.reads, unary, context).serve(requests):
            yield response
