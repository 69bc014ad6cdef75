"""``AsyncBatcher``: an ``AsyncClient``'s concurrent calls to one node, coalesced into frames.

One Batch stream per channel, opened on first use. A call adds its operation
to the open frame and wakes the writer task, which runs on the loop's next
turn: every call made meanwhile rides in the same frame, and a lone call goes
at once (never held back waiting for company). A frame takes at most half the
calls waiting (``batch.frame_limit``), so two are in flight and the node works
on one while the client answers the other; a frame of writes only takes them
all (their answers wait for the node's WAL sync either way). While a frame is
being written, new calls gather for the next one (client-go's batching loop).
A reader task hands each answer to its call by id.

Each call keeps its own deadline and cancellation: it stops waiting, and the
node is told to skip the work it has not started. Deadlines wait in one queue
in the order they fall due, watched by one timer (calls of a client share its
timeout, so a new call's deadline is the latest), rather than a timer per call.
When the stream breaks (the node went away), every call waiting on it fails
with the stream's error — UNAVAILABLE fails over as a unary call would — and
the next call opens a new stream. A node without Batch answers UNIMPLEMENTED:
the batcher says so once (``unsupported``) and the client speaks to that node
in unary.
"""

from __future__ import annotations

import asyncio
import collections
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
        # Frames not yet written, in order; calls add their operation to the last.
        self._frames: collections.deque[kv_pb2.BatchRequest] = collections.deque()
        self._writes_only = True  # the last frame carries writes only (Put, Delete)
        self._cancelled: list[int] = []
        self._waiting: dict[int, asyncio.Future[kv_pb2.BatchResult]] = {}
        self._stream: Any = None
        self._ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        # (loop time, op id) in the order they fall due; the timer fires at the first.
        self._deadlines: collections.deque[tuple[float, int]] = collections.deque()
        self._deadline_timer: asyncio.TimerHandle | None = None
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
        loop = asyncio.get_running_loop()
        future: asyncio.Future[kv_pb2.BatchResult] = loop.create_future()
        self._waiting[op_id] = future
        frames = self._frames
        write = field in batch.WRITE_FIELDS
        limit = batch.frame_limit(len(self._waiting), write and self._writes_only)
        if not frames or len(frames[-1].ops) >= limit:
            frames.append(kv_pb2.BatchRequest())
            self._writes_only = True
        self._writes_only = self._writes_only and write
        batch.fill_op(frames[-1].ops.add(), op_id, field, request, timeout)
        self._ready.set()
        if timeout is not None:
            self._expire_at(loop, loop.time() + timeout, op_id)
        try:
            return await future
        except asyncio.CancelledError:
            self._forget(op_id)
            raise
        finally:
            self._drop_answered_deadlines()

    def _drop_answered_deadlines(self) -> None:
        """Forget the deadlines at the front of the queue whose calls were answered."""
        deadlines = self._deadlines
        while deadlines and deadlines[0][1] not in self._waiting:
            deadlines.popleft()

    def _expire_at(self, loop: asyncio.AbstractEventLoop, when: float, op_id: int) -> None:
        deadlines = self._deadlines
        if deadlines and when < deadlines[-1][0]:
            # Sooner than a deadline already queued (a shorter timeout): a timer of its own.
            loop.call_at(when, self._expire, op_id)
            return
        deadlines.append((when, op_id))
        if self._deadline_timer is None:
            self._deadline_timer = loop.call_at(when, self._expire_due)

    def _expire_due(self) -> None:
        """The deadline timer: every call whose deadline has passed fails DEADLINE_EXCEEDED."""
        self._deadline_timer = None
        deadlines = self._deadlines
        loop = asyncio.get_running_loop()
        now = loop.time()
        while deadlines and deadlines[0][0] <= now:
            self._expire(deadlines.popleft()[1])
        self._drop_answered_deadlines()
        if deadlines:
            self._deadline_timer = loop.call_at(deadlines[0][0], self._expire_due)

    def _expire(self, op_id: int) -> None:
        future = self._waiting.get(op_id)
        if future is None:
            return  # answered in time
        self._forget(op_id)
        if not future.done():
            future.set_exception(batch.deadline_error())

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
        # A node serving Batch sends its initial metadata as the stream opens; one
        # without Batch ends the call instead. Nothing is written before that is
        # known: a frame written as the call ends fails in grpc.aio, and its INTERNAL
        # replaces the node's UNIMPLEMENTED (grpc/grpc#36066).
        try:
            await stream.initial_metadata()
        except Exception as error:
            self._broken(stream, error)
            return
        if stream.done():
            return  # the reader hears why
        while True:
            await self._ready.wait()
            frames = self._frames
            if self._gather_s and len(self._waiting) > sum(len(f.ops) for f in frames):
                await asyncio.sleep(self._gather_s)  # busy: let the frame fill
            self._ready.clear()
            while frames or self._cancelled:
                frame = frames.popleft() if frames else kv_pb2.BatchRequest()
                if self._cancelled:
                    frame.cancel.extend(self._cancelled)
                    self._cancelled = []
                try:
                    await stream.write(frame)
                except Exception as error:
                    if not stream.done():
                        self._broken(stream, error)
                    # else the call is over: the reader hears why (UNIMPLEMENTED: no Batch)
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
        self._deadlines.clear()
        self._frames.clear()
        self._cancelled.clear()
        for future in waiting.values():
            if not future.done():
                future.set_exception(failure)

    async def close(self) -> None:
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
            self._deadline_timer = None
        stream = self._stream
        if stream is not None:
            self._broken(stream, batch.cancelled_error())
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
