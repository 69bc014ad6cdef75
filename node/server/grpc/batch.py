"""KV.Batch: many calls on one stream, a request frame handled as one step of the node.

A frame's Gets are read with one multi-get per namespace, its Puts and
Deletes staged together (one propose, so one staging batch) and covered by one
group-commit sync; BulkGet and List run as the unary calls do, each in its own
task, and so do a Get, Put or Delete whose session token (``after``) names
writes this node cannot read yet: it waits exactly as its unary call does.
Every operation is answered exactly as its unary call would be — the
same response, or the same error with the same gRPC code, message and HTTP
status — and one bad operation fails alone; a read's result also carries the
lag bound the unary call gives in its trailers (``lag_bound_ms``). Answers go
back as soon as they are ready, in any order: a frame's reads right after the
multi-get, its writes once the sync covers them.

An operation may carry its own deadline (``timeout_ms``, as a unary call's
grpc-timeout): the unary call serving it sees that deadline, so a session
wait gives up in time to answer UNAVAILABLE before the client stops waiting,
exactly as its unary call does.

Bounds: at most ``MAX_FRAME_OPS`` operations in a frame and
``MAX_OPS_IN_FLIGHT`` unanswered on a stream; operations beyond either are
answered RESOURCE_EXHAUSTED, the others are served. A frame's bytes are bound
by the server's message size limit, as any request's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import grpc.aio
import structlog

from rumor.client.session_token import SessionToken
from rumor.node.core import validation
from rumor.node.core.errors import InvalidRequest, Overloaded, RumorError
from rumor.node.replication import Applied
from rumor.node.replication.replica.local_writes import Write
from rumor.node.server import access, sessions
from rumor.node.server.admission import ByteBudget, Reservation
from rumor.node.server.errors import status_of
from rumor.node.server.grpc.kv_messages import (
    checked_type,
    fill_delete_response,
    fill_get_response,
    fill_put_response,
    put_item,
)
from rumor.node.server.grpc.rpc import Context
from rumor.node.server.log_throttle import LogThrottle
from rumor.node.server.operations import Found, Operations
from rumor.v1 import kv_pb2

log = structlog.get_logger(__name__)
_throttled = LogThrottle(log)

MAX_FRAME_OPS = 1024
# The operations that read: their results carry the node's lag bound (``lag_bound_ms``).
_READS = frozenset({"get", "bulk_get", "list"})
MAX_OPS_IN_FLIGHT = 8192

# The unary answers a frame's slower operations reuse: (request, context) -> response.
UnaryCall = Callable[[Any, Any], Awaitable[Any]]


def error_result(op_id: int, error: BaseException) -> kv_pb2.BatchResult:
    """The answer the unary call gives for ``error``: same code, message and HTTP status."""
    status = status_of(error)
    if isinstance(error, RumorError):
        message = str(error)
    else:
        _throttled.error(
            "rpc.internal_error", type(error).__name__, error=repr(error), exc_info=error
        )
        message = f"internal error: {error!r}"
    code = status.grpc_code.value[0]
    return kv_pb2.BatchResult(
        id=op_id,
        error=kv_pb2.BatchError(code=code, message=message, http_status=status.http_status),
    )


def refusal(index: int, frame_ops: int, in_flight: int) -> Overloaded | None:
    """Why a stream refuses the ``index``-th operation of a frame, if it does."""
    if index >= MAX_FRAME_OPS:
        return Overloaded(
            f"A Batch frame carries at most {MAX_FRAME_OPS} operations;"
            f" this one carried {frame_ops}."
        )
    if in_flight >= MAX_OPS_IN_FLIGHT:
        return Overloaded(
            f"At most {MAX_OPS_IN_FLIGHT} operations may wait for their answers"
            " on one Batch stream; wait for some answers first."
        )
    return None


def _write_result(
    op_id: int, applied: Applied, kind: str, after: SessionToken | None
) -> kv_pb2.BatchResult:
    result = kv_pb2.BatchResult(id=op_id)
    if kind == "put":
        fill_put_response(result.put, applied, after)
    else:
        fill_delete_response(result.delete, applied, after)
    return result


# A Get that passed its checks: its op id, request, key and session token.
_Get = tuple[int, kv_pb2.GetRequest, bytes, SessionToken | None]


@dataclass(slots=True)
class _Reads:
    """A frame's Gets that passed their checks, by namespace, in arrival order."""

    by_namespace: dict[bytes, list[_Get]] = field(default_factory=dict)


@dataclass(slots=True)
class _Writes:
    """A frame's Puts and Deletes that passed their checks, in arrival order."""

    ops: list[tuple[int, str, Write, SessionToken | None]] = field(default_factory=list)


class BatchStream:
    """One client's Batch stream: reads frames, answers every operation once."""

    def __init__(
        self,
        ops: Operations,
        reads: ByteBudget,
        unary: dict[str, UnaryCall],
        context: Context,
    ) -> None:
        self._ops = ops
        self._reads = reads
        self._unary = unary
        self._context = context
        self._out: asyncio.Queue[tuple[kv_pb2.BatchResponse, Reservation | None] | None] = (
            asyncio.Queue()
        )
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        # The task serving an operation that can be cancelled, by the client's id (ids
        # are the client's: a repeated one names the latest).
        self._by_id: dict[int, asyncio.Task[None]] = {}

    async def serve(
        self, requests: AsyncIterator[kv_pb2.BatchRequest]
    ) -> AsyncIterator[kv_pb2.BatchResponse]:
        send_initial_metadata = getattr(self._context, "send_initial_metadata", None)
        if send_initial_metadata is not None:
            # The client learns at once that its stream is served (a node without Batch
            # ends it instead) and sends its next frames only then.
            await send_initial_metadata(())
        reader = asyncio.create_task(self._read(requests))
        try:
            while True:
                item = await self._out.get()
                if item is None:
                    break
                response, reservation = item
                try:
                    yield response
                finally:
                    if reservation is not None:
                        reservation.release()
            await reader  # re-raises what ended the reading (a malformed frame)
        finally:
            reader.cancel()
            for task in list(self._tasks):
                task.cancel()
            while not self._out.empty():
                queued = self._out.get_nowait()
                if queued is not None and queued[1] is not None:
                    queued[1].release()

    async def _read(self, requests: AsyncIterator[kv_pb2.BatchRequest]) -> None:
        try:
            async for frame in requests:
                for op_id in frame.cancel:
                    task = self._by_id.pop(op_id, None)
                    if task is not None:
                        task.cancel()
                if frame.ops:
                    await self._frame(frame.ops)
            while self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
        finally:
            self._out.put_nowait(None)

    def _send(
        self, results: list[kv_pb2.BatchResult], reservation: Reservation | None = None
    ) -> None:
        if results:
            self._in_flight -= len(results)
            self._out.put_nowait((kv_pb2.BatchResponse(results=results), reservation))
        elif reservation is not None:
            reservation.release()

    def _admitted(self, ops: Any) -> tuple[list[kv_pb2.BatchOp], list[kv_pb2.BatchResult]]:
        """The operations this stream takes now, and the answers of those it refuses."""
        taken: list[kv_pb2.BatchOp] = []
        refused: list[kv_pb2.BatchResult] = []
        for index, op in enumerate(ops):
            reason = refusal(index, len(ops), self._in_flight)
            self._in_flight += 1
            if reason is None:
                taken.append(op)
            else:
                refused.append(error_result(op.id, reason))
        return taken, refused

    async def _frame(self, ops: Any) -> None:
        taken, refused = self._admitted(ops)
        self._send(refused)
        reads = _Reads()
        writes = _Writes()
        # Namespace ids this frame found live (a frame is one step: none can go meanwhile).
        live: dict[str, bytes] = {}
        early: list[kv_pb2.BatchResult] = []
        now_s = self._ops.clock.now_s()
        permit = access.batch_op_check()
        read_at = time.monotonic()
        for op in taken:
            kind = op.WhichOneof("op")
            deadline = read_at + op.timeout_ms / 1000 if op.timeout_ms else None
            try:
                if permit is not None and kind is not None:
                    await permit(kind, getattr(op, kind))  # a scoped token: each op as its call
                if kind == "get":
                    self._check_get(op.id, op.get, reads, live)
                elif kind in ("put", "delete"):
                    after = self._session(kind, getattr(op, kind))
                    write = self._checked_write(op, kind, now_s, live)
                    writes.ops.append((op.id, kind, write, after))
                elif kind in ("bulk_get", "list"):
                    self._spawn(op.id, kind, getattr(op, kind), deadline)
                else:
                    raise InvalidRequest("A Batch operation must carry a request.")
            except _Slow as slow:
                self._spawn(op.id, slow.kind, slow.request, deadline)
            except Exception as error:
                early.append(error_result(op.id, error))
        self._send(early)
        if reads.by_namespace:
            await self._answer_reads(reads)
        if writes.ops:
            self._propose(writes)

    # ---- reads ------------------------------------------------------------

    def _session(self, kind: str, request: Any) -> SessionToken | None:
        """The request's session token, if this node can serve it now; else _Slow."""
        after = sessions.parse(request.after)
        if after is not None and not self._ops.sessions.covered(after):
            raise _Slow(kind, request)  # waits for this node to catch up: as the unary call does
        return after

    def _check_get(
        self, op_id: int, request: kv_pb2.GetRequest, reads: _Reads, live: dict[str, bytes]
    ) -> None:
        # The unary Get's checks, in its order: type, session, staleness, namespace, key,
        # cache_ttl. (Its lag bound goes in its result, ``lag_bound_ms``.)
        checked_type(request.type)
        self._ops.replication.check_readable()
        after = self._session("get", request)
        if request.HasField("max_staleness_ms"):
            self._ops.sessions.check_staleness(request.max_staleness_ms)
        namespace = self._live(request.namespace_id, live)
        key = validation.key(request.key)
        validation.cache_ttl(request.cache_ttl if request.HasField("cache_ttl") else None)
        reads.by_namespace.setdefault(namespace, []).append((op_id, request, key, after))

    async def _answer_reads(self, reads: _Reads) -> None:
        """Read the frame's Gets and answer them, within the read budget.

        While the budget has room for values of the largest size, Gets read in
        runs of as many as fit and hold what they read (nothing else runs in
        between): no header is read twice. The rest reserves an estimate from
        the headers first and may wait for room, as the unary Get does.
        """
        pending = [(ns, get) for ns, gets in reads.by_namespace.items() for get in gets]
        budget = self._reads
        results: list[kv_pb2.BatchResult] = []
        reservation = budget.hold(0)
        # As many Gets as values of the largest size fit read without a header estimate.
        while pending and (fit := budget.room_for(validation.MAX_VALUE_BYTES)):
            run, pending = pending[:fit], pending[fit:]
            reservation.settle(reservation.held + self._read_gets(run, results))
        if not pending:
            self._send(results, reservation)
            return
        if results:
            self._send(results, reservation)
            results = []
        estimate = sum(self._ops.held_value_bytes(ns, [key]) for ns, (_, _, key, _) in pending)
        try:
            reservation = await budget.reserve(estimate)
        except Exception as error:
            self._send([error_result(op_id, error) for _, (op_id, _, _, _) in pending])
            return
        reservation.settle(self._read_gets(pending, results))
        self._send(results, reservation)

    def _read_gets(self, gets: list[tuple[bytes, _Get]], results: list[kv_pb2.BatchResult]) -> int:
        """Answer ``gets`` into ``results`` (one multi-get per namespace); the bytes read."""
        by_namespace: dict[bytes, list[_Get]] = {}
        for namespace, get in gets:
            by_namespace.setdefault(namespace, []).append(get)
        size = 0
        now_s = self._ops.clock.now_s()
        replica = self._ops.replica
        lag = self._ops.sessions.lag_bound()
        for namespace, each in by_namespace.items():
            found_all = replica.read_many(namespace, [key for _, _, key, _ in each], now_s)
            for (op_id, request, key, after), found in zip(each, found_all, strict=True):
                try:
                    value = None if found is None else Found(*found)
                    size += 0 if value is None else len(value.value)
                    result = kv_pb2.BatchResult(id=op_id, lag_bound_ms=lag)
                    response = result.get
                    fill_get_response(response, key, value, request.type, request.with_metadata)
                    if after is not None:
                        header = None if value is None else value.header
                        response.session = self._ops.sessions.read_token(
                            after, namespace, [(key, header)]
                        )
                    results.append(result)
                except Exception as error:
                    results.append(error_result(op_id, error))
        return size

    # ---- writes -----------------------------------------------------------

    def _checked_write(
        self, op: kv_pb2.BatchOp, kind: str, now_s: float, live: dict[str, bytes]
    ) -> Write:
        if kind == "put":
            put = op.put
            if put.min_replicas > 1:
                raise _Slow("put", put)  # waits for other nodes: as the unary call does
            return self._ops.validated(self._live(put.namespace_id, live), put_item(put), now_s)
        delete = op.delete
        return Write(
            self._live(delete.namespace_id, live), validation.key(delete.key), tombstone=True
        )

    def _live(self, namespace_id: str, live: dict[str, bytes]) -> bytes:
        """The raw id of a live namespace, looked up once per frame."""
        namespace = live.get(namespace_id)
        if namespace is None:
            namespace = live[namespace_id] = self._ops.namespace_bytes(namespace_id)
        return namespace

    def _propose(self, writes: _Writes) -> None:
        try:
            self._ops.replication.check_clock()
            # One propose even when a key is written twice: each write takes its own seq
            # and HLC tick in frame order, and the later replaces what the batch staged
            # for the key, so it wins as it would for two calls in turn.
            applied = self._ops.replication.propose([write for _, _, write, _ in writes.ops])
        except Exception as error:
            self._send([error_result(op_id, error) for op_id, _, _, _ in writes.ops])
            return
        ticket = max(a.ticket for a in applied)
        answers = [
            _write_result(op_id, done, kind, after)
            for (op_id, kind, _, after), done in zip(writes.ops, applied, strict=True)
        ]
        task = asyncio.create_task(self._when_durable(ticket, answers))
        # Keyed by a negative number: never an op id, so a cancel cannot stop a sync's answers.
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _when_durable(self, ticket: int, answers: list[kv_pb2.BatchResult]) -> None:
        try:
            await self._ops.commit.durable(ticket)
        except Exception as error:
            self._send([error_result(answer.id, error) for answer in answers])
            return
        self._send(answers)

    # ---- operations served as their unary calls -----------------------------

    def _spawn(self, op_id: int, kind: str, request: Any, deadline: float | None) -> None:
        method = self._unary[kind]
        context = self._context if deadline is None else _OpContext(self._context, deadline)

        async def run() -> None:
            try:
                response = await method(request, context)
                result = kv_pb2.BatchResult(id=op_id)
                getattr(result, kind).CopyFrom(response)
                if kind in _READS:
                    result.lag_bound_ms = self._ops.sessions.lag_bound()
            except asyncio.CancelledError:
                result = kv_pb2.BatchResult(
                    id=op_id,
                    error=kv_pb2.BatchError(
                        code=grpc.StatusCode.CANCELLED.value[0], message="cancelled by the client"
                    ),
                )
            except Exception as error:
                result = error_result(op_id, error)
            self._send([result])

        task = asyncio.create_task(run())
        self._tasks.add(task)
        self._by_id[op_id] = task
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda done: self._forget(op_id, done))

    def _forget(self, op_id: int, task: asyncio.Task[None]) -> None:
        if self._by_id.get(op_id) is task:
            del self._by_id[op_id]


class _OpContext:
    """The stream's context as one operation's unary call sees it: with the operation's
    own deadline (``time.monotonic()`` seconds), or the stream's if that is sooner."""

    def __init__(self, stream: Context, deadline: float) -> None:
        self._stream = stream
        self._deadline = deadline

    def time_remaining(self) -> float | None:
        mine = max(0.0, self._deadline - time.monotonic())
        time_remaining = getattr(self._stream, "time_remaining", None)
        theirs = None if time_remaining is None else time_remaining()
        return mine if theirs is None else min(mine, float(theirs))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _Slow(Exception):
    """An operation that must run as its unary call (a Put waiting for replicas)."""

    def __init__(self, kind: str, request: Any) -> None:
        self.kind = kind
        self.request = request
