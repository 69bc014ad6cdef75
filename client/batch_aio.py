"""``AsyncBatcher``: an ``AsyncClient``'s concurrent calls to one node, coalesced into frames.

One Batch stream per channel, opened on first use. A call adds its operation
to the queue and wakes the writer task, which runs on the loop's next turn:
every call made meanwhile rides in the same frame, and a lone call goes at
once (never held back waiting for company). While a frame is being written,
new calls gather for the next one (client-go's batching loop). A reader task
hands each answer to its call by id.

Each call keeps its own deadline and cancellation: it stops waiting, and the
node is told to skip the work it has not started. When the stream breaks
(the node went away), every call waiting on it fails with the stream's error
— UNAVAILABLE fails over as a unary call would — and the next call opens a
new stream. A node without Batch answers UNIMPLEMENTED: the batcher says so
once (``unsupported``) and the client speaks to that node in unary.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from typing import Any

import grpc
import grpc.aio
from grpc.aio import EOF  # type: ignore[attr-defined]  # missing from grpc-stubs

from rumor.client import batch
from rumor.v1 import kv_pb2


class AsyncBatcher:
    def __init__(
        self,
        channel: grpc.aio.Channel,
        metadata: Sequence[tuple[str, str]],
        *,
        gather_s: float = 0.0,
    ) -> None:
        self._channel = channel
        # While earlier operations still wait for answers, wait this long for more to
        # join the next frame (0: send what is there at once).
        self._gather_s = gather_s
        self._metadata = tuple(metadata)
        self._ids = itertools.count(1)
        self._queued: list[kv_pb2.BatchOp] = []
        self._cancelled: list[int] = []
        self._waiting: dict[int, asyncio.Future[kv_pb2.BatchResult]] = {}
        self._stream: Any = None
        self._ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.unsupported = False

    async def call(self, field: str, request: Any, timeout: float | None) -> Any:
        """The unary response for ``request`` (a ``field`` operation), or its RpcError."""
        return batch.response_of(field, await self.result(field, request, timeout))

    async def result(self, field: str, request: Any, timeout: float | None) -> kv_pb2.BatchResult:
        """The node's whole ``BatchResult`` for ``request`` (an error result included)."""
        if len(self._waiting) >= batch.MAX_IN_FLIGHT:
            raise batch.BatchCallError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"more than {batch.MAX_IN_FLIGHT} calls wait on this client's stream",
            )
        self._open()
        op_id = next(self._ids)
        future: asyncio.Future[kv_pb2.BatchResult] = asyncio.get_running_loop().create_future()
        self._waiting[op_id] = future
        self._queued.append(batch.op(op_id, field, request, timeout))
        self._ready.set()
        try:
            # asyncio.timeout, not wait_for: no task of its own per call.
            async with asyncio.timeout(timeout):
                result = await future
        except TimeoutError:
            self._forget(op_id)
            raise batch.deadline_error() from None
        except asyncio.CancelledError:
            self._forget(op_id)
            raise
        return result

    def _forget(self, op_id: int) -> None:
        if self._waiting.pop(op_id, None) is not None:
            self._cancelled.append(op_id)
            self._ready.set()

    def _open(self) -> None:
        if self._stream is not None:
            return
        # No request iterator: frames go with write() as calls come.
        open_stream: Any = self._channel.stream_stream(
            batch.BATCH_PATH,
            request_serializer=kv_pb2.BatchRequest.SerializeToString,
            response_deserializer=kv_pb2.BatchResponse.FromString,
        )
        self._stream = open_stream(metadata=self._metadata)
        stream = self._stream
        self._tasks = [
            asyncio.create_task(self._write(stream)),
            asyncio.create_task(self._read(stream)),
        ]

    async def _write(self, stream: Any) -> None:
        while True:
            await self._ready.wait()
            if self._gather_s and len(self._waiting) > len(self._queued):
                await asyncio.sleep(self._gather_s)  # busy: let the frame fill
            self._ready.clear()
            while self._queued or self._cancelled:
                ops = self._queued[: batch.MAX_FRAME_OPS]
                del self._queued[: len(ops)]
                cancel, self._cancelled = self._cancelled, []
                try:
                    await stream.write(kv_pb2.BatchRequest(ops=ops, cancel=cancel))
                except Exception as error:  # the stream broke: the reader hears why
                    self._broken(stream, error)
                    return

    async def _read(self, stream: Any) -> None:
        try:
            while True:
                response = await stream.read()
                if response is EOF:
                    raise batch.BatchCallError(
                        grpc.StatusCode.UNAVAILABLE, "the node ended the Batch stream"
                    )
                for result in response.results:
                    future = self._waiting.pop(result.id, None)
                    if future is not None and not future.done():
                        future.set_result(result)
        except (grpc.RpcError, asyncio.CancelledError) as error:
            self._broken(stream, error)
            if isinstance(error, asyncio.CancelledError):
                raise

    def _broken(self, stream: Any, error: BaseException) -> None:
        """The stream is over: fail every call waiting on it; the next call opens another."""
        if stream is not self._stream:
            return
        self._stream = None
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        stream.cancel()
        if batch.is_unsupported(error):
            self.unsupported = True
            failure: BaseException = batch.BatchUnsupported()
        elif isinstance(error, grpc.RpcError):
            failure = error
        else:
            failure = batch.cancelled_error()
        waiting, self._waiting = self._waiting, {}
        self._queued.clear()
        self._cancelled.clear()
        for future in waiting.values():
            if not future.done():
                future.set_exception(failure)

    async def close(self) -> None:
        stream = self._stream
        if stream is not None:
            self._broken(stream, batch.cancelled_error())
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
