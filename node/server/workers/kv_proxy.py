"""A worker's KV calls: plain reads from its own view, the rest batched to the owner.

A plain Get or BulkGet — unary or inside a client's Batch frames, with no
session token and no staleness bound — is answered by the owner's own
``KVService`` code over the worker's secondary view of the database
(``secondary_reads``), once the view holds every write the node acknowledged.
Put, Delete, List, and reads the view cannot answer, become operations on the
worker's one Batch stream to its owner, coalesced with every other
connection's: the owner serves a frame in one step (one multi-get, one sync)
however many clients it came from. Either way the answer, or the error with
its code, message and HTTP status, is what the unary call on a
single-process node gives, the lag bound of a read in its trailers included.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import grpc.aio

from rumor.client.batch import response_of
from rumor.node.core.errors import InvalidRequest, RumorError
from rumor.node.server import access
from rumor.node.server.grpc.batch import error_result, refusal
from rumor.node.server.grpc.kv_service import KVService
from rumor.node.server.grpc.rpc import Context
from rumor.node.server.release import METADATA
from rumor.node.server.sessions import LAG_BOUND_KEY
from rumor.node.server.workers.owner_link import OwnerLink
from rumor.node.server.workers.secondary_reads import SecondaryReads
from rumor.v1 import kv_pb2

LOCAL_READS = ("get", "bulk_get")


class LocalReads:
    """The owner's KV service code over a worker's view: plain reads answered here."""

    def __init__(self, view: SecondaryReads, service: KVService) -> None:
        self.view = view
        self.service = service

    async def serves(self, field: str, request: Any) -> bool:
        """``request`` is answered here: a plain read, and the view is fresh for it."""
        return (
            field in LOCAL_READS
            and not request.after
            and not request.HasField("max_staleness_ms")
            and await self.view.fresh()
        )

    async def answer(self, field: str, request: Any, context: Any) -> Any:
        if field == "get":
            return await self.service.Get(request, context)
        return await self.service.BulkGet(request, context)


class _OpContext:
    """What a Batch operation answered here gives the unary code for a context: its
    deadline, and the trailers it sets (the lag bound goes in the result)."""

    def __init__(self, timeout_s: float | None) -> None:
        loop = asyncio.get_running_loop()
        self._deadline = None if timeout_s is None else loop.time() + timeout_s
        self.lag_bound = ""

    def time_remaining(self) -> float | None:
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - asyncio.get_running_loop().time())

    def set_trailing_metadata(self, trailers: Any) -> None:
        self.lag_bound = str(dict(trailers).get(LAG_BOUND_KEY, ""))


async def _abort(context: Context, error: grpc.RpcError) -> None:
    trailing: Any = error.trailing_metadata() or ()
    await context.abort(error.code(), error.details() or "", tuple(trailing))


class WorkerKV:
    """The KV methods a worker answers itself (plain reads, from its view) or batches to
    its owner (the others it forwards whole)."""

    def __init__(self, owner: OwnerLink, local: LocalReads | None = None) -> None:
        self._owner = owner
        self._local = local  # None: every read goes to the owner

    async def _call(self, field: str, request: Any, context: Context) -> Any:
        try:
            return await self._owner.call(field, request, context.time_remaining())
        except grpc.RpcError as error:
            await _abort(context, error)
            raise

    async def _read(self, field: str, request: Any, context: Context) -> Any:
        """``_call`` for a read: the owner's lag bound goes in the trailers, as its own."""
        try:
            result = await self._owner.result(field, request, context.time_remaining())
            if result.lag_bound_ms:
                trailers = ((LAG_BOUND_KEY, result.lag_bound_ms), *METADATA)
                context.set_trailing_metadata(trailers)
            return response_of(field, result)
        except grpc.RpcError as error:
            await _abort(context, error)
            raise

    async def Get(self, request: kv_pb2.GetRequest, context: Context) -> Any:  # noqa: N802
        local = self._local
        if local is not None and await local.serves("get", request):
            return await local.service.Get(request, context)
        return await self._read("get", request, context)

    async def BulkGet(self, request: kv_pb2.BulkGetRequest, context: Context) -> Any:  # noqa: N802
        local = self._local
        if local is not None and await local.serves("bulk_get", request):
            return await local.service.BulkGet(request, context)
        return await self._read("bulk_get", request, context)

    async def Put(self, request: kv_pb2.PutRequest, context: Context) -> Any:  # noqa: N802
        return await self._call("put", request, context)

    async def Delete(self, request: kv_pb2.DeleteRequest, context: Context) -> Any:  # noqa: N802
        return await self._call("delete", request, context)

    async def List(self, request: kv_pb2.ListRequest, context: Context) -> Any:  # noqa: N802
        return await self._read("list", request, context)

    async def Batch(  # noqa: N802
        self, requests: AsyncIterator[kv_pb2.BatchRequest], context: Context
    ) -> AsyncIterator[kv_pb2.BatchResponse]:
        # A scoped token's operations are checked one by one, as the owner would.
        permit = access.batch_op_check()
        async for response in _ProxiedBatch(self._owner, permit, self._local).serve(requests):
            yield response


class _ProxiedBatch:
    """A client's Batch stream through a worker: each operation becomes one on the
    worker's own stream to the owner; answers go back as they come, in any order."""

    def __init__(
        self, owner: OwnerLink, permit: access.BatchOpCheck | None, local: LocalReads | None
    ) -> None:
        self._owner = owner
        self._permit = permit  # None: every operation is allowed
        self._local = local
        self._results: asyncio.Queue[kv_pb2.BatchResult | None] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._by_id: dict[int, asyncio.Task[None]] = {}  # for cancellation: the latest

    async def serve(
        self, requests: AsyncIterator[kv_pb2.BatchRequest]
    ) -> AsyncIterator[kv_pb2.BatchResponse]:
        reader = asyncio.create_task(self._read(requests))
        results = self._results
        try:
            while (first := await results.get()) is not None:
                batch = [first]
                while not results.empty():
                    more = results.get_nowait()
                    if more is None:
                        results.put_nowait(None)
                        break
                    batch.append(more)
                yield kv_pb2.BatchResponse(results=batch)
            await reader
        finally:
            reader.cancel()
            for task in list(self._tasks):
                task.cancel()

    async def _read(self, requests: AsyncIterator[kv_pb2.BatchRequest]) -> None:
        try:
            async for frame in requests:
                for op_id in frame.cancel:
                    cancelled = self._by_id.pop(op_id, None)
                    if cancelled is not None:
                        cancelled.cancel()
                for index, op in enumerate(frame.ops):
                    reason = refusal(index, len(frame.ops), len(self._tasks))
                    if reason is not None:
                        self._results.put_nowait(error_result(op.id, reason))
                        continue
                    task = asyncio.create_task(self._one(op))
                    self._tasks.add(task)
                    self._by_id[op.id] = task
                    task.add_done_callback(self._tasks.discard)
            while self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
        finally:
            self._results.put_nowait(None)

    async def _one(self, op: kv_pb2.BatchOp) -> None:
        field = op.WhichOneof("op")
        if field is None:
            result = error_result(op.id, InvalidRequest("A Batch operation must carry a request."))
        else:
            try:
                if self._permit is not None:
                    await self._permit(field, getattr(op, field))
                # The client's deadline goes on to the owner, as a unary call's would.
                timeout = op.timeout_ms / 1000 if op.timeout_ms else None
                request = getattr(op, field)
                local = self._local
                if local is not None and await local.serves(field, request):
                    context = _OpContext(timeout)
                    response = await local.answer(field, request, context)
                    lag_bound = context.lag_bound
                else:
                    answered = await self._owner.result(field, request, timeout)
                    response = response_of(field, answered)
                    lag_bound = answered.lag_bound_ms
                result = kv_pb2.BatchResult(id=op.id, lag_bound_ms=lag_bound)
                getattr(result, field).CopyFrom(response)
            except RumorError as error:
                result = error_result(op.id, error)
            except grpc.RpcError as error:
                result = _error(op.id, error)
        if self._by_id.get(op.id) is asyncio.current_task():
            del self._by_id[op.id]
        self._results.put_nowait(result)


def _error(op_id: int, error: grpc.RpcError) -> kv_pb2.BatchResult:
    """The owner's failure of one operation, passed on as it came."""
    trailing: Any = error.trailing_metadata() or ()
    http = str(dict(trailing).get("rumor-http-status", "0"))
    return kv_pb2.BatchResult(
        id=op_id,
        error=kv_pb2.BatchError(
            code=error.code().value[0],
            message=error.details() or "",
            http_status=int(http) if http.isdigit() else 0,
        ),
    )
