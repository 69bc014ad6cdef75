"""A worker's KV calls: each read and write rides the worker's batched stream to the owner.

Get, BulkGet, Put, Delete and List — unary or inside a client's Batch frames —
become operations on the worker's one Batch stream to its owner, coalesced
with every other connection's: the owner serves a frame in one step (one
multi-get, one sync) however many clients it came from. The answer, or the
error with its code, message and HTTP status, is the owner's, so it is what
the unary call on a single-process node gives. Reads are served by the owner
too, so a read that starts after any worker acknowledged a write sees it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from rumor.client.batch import BatchCallError
from rumor.node.core.errors import RumorError
from rumor.node.server import access
from rumor.node.server.grpc.batch import error_result
from rumor.node.server.workers.owner_link import OwnerLink
from rumor.v1 import kv_pb2

# A client's Batch stream through a worker: operations waiting for the owner's answer.
MAX_OPS_IN_FLIGHT = 8192


async def _abort(context: Any, error: grpc.RpcError) -> None:
    trailing: Any = error.trailing_metadata() or ()
    await context.abort(error.code(), error.details() or "", tuple(trailing))


class WorkerKV:
    """The KV methods a worker batches to its owner (the others it forwards whole)."""

    def __init__(self, owner: OwnerLink) -> None:
        self._owner = owner

    async def _call(self, field: str, request: Any, context: Any) -> Any:
        try:
            return await self._owner.call(field, request, context.time_remaining())
        except grpc.RpcError as error:
            await _abort(context, error)
            raise

    async def Get(self, request: kv_pb2.GetRequest, context: Any) -> Any:  # noqa: N802
        return await self._call("get", request, context)

    async def BulkGet(self, request: kv_pb2.BulkGetRequest, context: Any) -> Any:  # noqa: N802
        return await self._call("bulk_get", request, context)

    async def Put(self, request: kv_pb2.PutRequest, context: Any) -> Any:  # noqa: N802
        return await self._call("put", request, context)

    async def Delete(self, request: kv_pb2.DeleteRequest, context: Any) -> Any:  # noqa: N802
        return await self._call("delete", request, context)

    async def List(self, request: kv_pb2.ListRequest, context: Any) -> Any:  # noqa: N802
        return await self._call("list", request, context)

    async def Batch(  # noqa: N802
        self, requests: AsyncIterator[kv_pb2.BatchRequest], context: Any
    ) -> AsyncIterator[kv_pb2.BatchResponse]:
        results: asyncio.Queue[kv_pb2.BatchResult | None] = asyncio.Queue()
        pending: dict[int, asyncio.Task[None]] = {}
        permit = access.batch_op_check()

        async def one(op: kv_pb2.BatchOp) -> None:
            field = op.WhichOneof("op")
            try:
                if permit is not None and field is not None:
                    try:
                        await permit(field, getattr(op, field))  # a scoped token
                    except RumorError as error:
                        results.put_nowait(error_result(op.id, error))
                        return
                if field is None:
                    raise BatchCallError(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        "A Batch operation must carry a request.",
                        400,
                    )
                response = await self._owner.call(field, getattr(op, field), None)
                result = kv_pb2.BatchResult(id=op.id)
                getattr(result, field).CopyFrom(response)
            except grpc.RpcError as error:
                trailing: Any = error.trailing_metadata() or ()
                http = dict(trailing).get("rumor-http-status", "0")
                result = kv_pb2.BatchResult(
                    id=op.id,
                    error=kv_pb2.BatchError(
                        code=error.code().value[0],
                        message=error.details() or "",
                        http_status=int(http) if str(http).isdigit() else 0,
                    ),
                )
            results.put_nowait(result)

        async def read() -> None:
            try:
                async for frame in requests:
                    for op_id in frame.cancel:
                        task = pending.pop(op_id, None)
                        if task is not None:
                            task.cancel()
                    for op in frame.ops:
                        if len(pending) >= MAX_OPS_IN_FLIGHT:
                            results.put_nowait(_refused(op.id))
                            continue
                        task = asyncio.create_task(one(op))
                        pending[op.id] = task
                        task.add_done_callback(_forget(pending, op.id))
                if pending:
                    await asyncio.gather(*pending.values(), return_exceptions=True)
            finally:
                results.put_nowait(None)

        reader = asyncio.create_task(read())
        try:
            while True:
                first = await results.get()
                if first is None:
                    break
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
            for task in list(pending.values()):
                task.cancel()


def _forget(
    pending: dict[int, asyncio.Task[None]], op_id: int
) -> Callable[[asyncio.Task[None]], None]:
    def forget(_: asyncio.Task[None]) -> None:
        pending.pop(op_id, None)

    return forget


def _refused(op_id: int) -> kv_pb2.BatchResult:
    return kv_pb2.BatchResult(
        id=op_id,
        error=kv_pb2.BatchError(
            code=grpc.StatusCode.RESOURCE_EXHAUSTED.value[0],
            message=(
                f"At most {MAX_OPS_IN_FLIGHT} operations may wait for their answers"
                " on one Batch stream; wait for some answers first."
            ),
            http_status=503,
        ),
    )
