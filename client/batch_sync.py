"""``ThreadBatcher``: a ``Client``'s concurrent calls (from several threads) in shared frames.

A call made while no other call of this client waits on the node goes alone
as a unary call: nothing to coalesce it with, and a blocking unary call costs
less than handing it to the stream's threads. Calls made while others wait
ride the node's Batch stream: the stream's request iterator blocks for the
first queued operation, then takes every other one already queued (up to
``MAX_FRAME_OPS``) into the same frame, so a frame goes as soon as there is
something to send. A reader thread hands each answer to its caller by id.

Deadlines, cancellation and failures behave as in ``batch_aio``: a call that
times out stops waiting (the node is told to skip it), a broken stream fails
every call waiting on it with its error, and a node without Batch is spoken
to in unary from then on.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import grpc

from rumor.client import batch
from rumor.v1 import kv_pb2

_CLOSE = object()


class ThreadBatcher:
    def __init__(self, channel: grpc.Channel, metadata: Sequence[tuple[str, str]]) -> None:
        self._channel = channel
        self._metadata = tuple(metadata)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._waiting: dict[int, Future[kv_pb2.BatchResult]] = {}
        self._queue: queue.SimpleQueue[Any] | None = None
        self._calls_in_progress = 0
        self.unsupported = False

    def enter(self) -> bool:
        """A call begins; whether it is this client's only one on the node."""
        with self._lock:
            self._calls_in_progress += 1
            return self._calls_in_progress == 1

    def leave(self) -> None:
        with self._lock:
            self._calls_in_progress -= 1

    def call(self, field: str, request: Any, timeout: float | None) -> Any:
        """The unary response for ``request`` (a ``field`` operation), or its RpcError."""
        return batch.response_of(field, self.result(field, request, timeout))

    def result(self, field: str, request: Any, timeout: float | None) -> kv_pb2.BatchResult:
        """The node's whole ``BatchResult`` for ``request`` (an error result included)."""
        future: Future[kv_pb2.BatchResult] = Future()
        with self._lock:
            if len(self._waiting) >= batch.MAX_IN_FLIGHT:
                raise batch.BatchCallError(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"more than {batch.MAX_IN_FLIGHT} calls wait on this client's stream",
                )
            outgoing = self._open()
            op_id = next(self._ids)
            self._waiting[op_id] = future
        outgoing.put(batch.op(op_id, field, request, timeout))
        try:
            result = future.result(timeout)
        except FutureTimeout:
            with self._lock:
                forgotten = self._waiting.pop(op_id, None) is not None
            if forgotten:
                outgoing.put(("cancel", op_id))
            raise batch.deadline_error() from None
        return result

    def _open(self) -> queue.SimpleQueue[Any]:
        """The queue of the open stream (opened now if none is); holds the lock."""
        if self._queue is not None:
            return self._queue
        outgoing: queue.SimpleQueue[Any] = queue.SimpleQueue()
        responses = self._channel.stream_stream(
            batch.BATCH_PATH,
            request_serializer=kv_pb2.BatchRequest.SerializeToString,
            response_deserializer=kv_pb2.BatchResponse.FromString,
        )(_frames(outgoing), metadata=self._metadata)
        self._queue = outgoing
        threading.Thread(
            target=self._read, args=(outgoing, responses), name="rumor-batch-reader", daemon=True
        ).start()
        return outgoing

    def _read(self, outgoing: queue.SimpleQueue[Any], responses: Any) -> None:
        failure: BaseException
        try:
            for response in responses:
                for result in response.results:
                    with self._lock:
                        future = self._waiting.pop(result.id, None)
                    if future is not None:
                        future.set_result(result)
            failure = batch.BatchCallError(
                grpc.StatusCode.UNAVAILABLE, "the node ended the Batch stream"
            )
        except grpc.RpcError as error:
            failure = error
        with self._lock:
            if self._queue is outgoing:
                self._queue = None
            if batch.is_unsupported(failure):
                self.unsupported = True
                failure = batch.BatchUnsupported()
            waiting, self._waiting = self._waiting, {}
        outgoing.put(_CLOSE)
        for future in waiting.values():
            future.set_exception(failure)

    def close(self) -> None:
        with self._lock:
            outgoing, self._queue = self._queue, None
        if outgoing is not None:
            outgoing.put(_CLOSE)


def _frames(outgoing: queue.SimpleQueue[Any]) -> Iterator[kv_pb2.BatchRequest]:
    """Frames of whatever is queued: block for the first item, then take what else waits."""
    while True:
        item = outgoing.get()
        ops: list[kv_pb2.BatchOp] = []
        cancel: list[int] = []
        while True:
            if item is _CLOSE:
                if ops or cancel:
                    yield kv_pb2.BatchRequest(ops=ops, cancel=cancel)
                return
            if isinstance(item, tuple):
                cancel.append(item[1])
            else:
                ops.append(item)
            if len(ops) >= batch.MAX_FRAME_OPS:
                break
            try:
                item = outgoing.get_nowait()
            except queue.Empty:
                break
        yield kv_pb2.BatchRequest(ops=ops, cancel=cancel)
