"""Uploads: the bytes of request bodies and streams the node holds while a client sends them.

An upload (an HTTP body: a value's PUT, multipart, a bulk PUT, any JSON body;
a gRPC PutStream) is kept in memory until it has arrived whole, so a client
that sends most of one and stalls would hold it for as long as it likes.
Mirroring the read budget (``admission.ByteBudget``), two bounds hold:

- Room. ``UploadBudget`` counts the bytes of unfinished uploads, node-wide and
  per client connection (HTTP/2 carries many uploads on one). An upload takes
  room for what it declares (an HTTP Content-Length) before reading any of it,
  and for what it receives beyond that as it arrives. What finds no room waits
  at most ``admission_timeout_s`` (the client is not read meanwhile: its bytes
  stay in its own buffers), then is refused ``Overloaded`` (gRPC
  RESOURCE_EXHAUSTED, HTTP 503 with Retry-After). An upload alone on the node
  (or on its connection) is always admitted, so a body larger than a budget
  can still be sent to an idle node.
- Time. An upload that sends nothing for ``idle_timeout_s``, or has not
  arrived whole ``total_timeout_s`` after it started, is refused
  ``UploadTimedOut`` (gRPC DEADLINE_EXCEEDED, HTTP 408).

Either way, and when the client goes away, what the upload held is let go at
once (``Upload`` is an async context manager: leaving it releases the room and
stops its clock). The room is held until the upload has arrived whole: what
the node does with it afterwards (decode it, write it) waits on no client.

A body that had arrived whole before its handler ran (a small PUT comes in one
segment with its headers) waits on nobody: the HTTP reader takes it without an
``Upload``, so the hot path pays for neither bound.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from rumor.node.core.errors import Overloaded, UploadTimedOut
from rumor.node.server.admission import Waiters


class UploadBudget:
    """Bytes of unfinished uploads: at most ``capacity`` on the node, ``per_connection`` on one
    client connection; each upload's idle and total deadlines."""

    def __init__(
        self,
        capacity: int,
        per_connection: int,
        *,
        admission_timeout_s: float,
        idle_timeout_s: float,
        total_timeout_s: float,
    ) -> None:
        self.capacity = capacity
        self.per_connection = per_connection
        self.admission_timeout_s = admission_timeout_s
        self.idle_timeout_s = idle_timeout_s
        self.total_timeout_s = total_timeout_s
        self.in_flight = 0
        self.by_connection: dict[str, int] = {}
        self.refused = 0
        self.timed_out = 0
        self._waiters = Waiters()

    @classmethod
    def unbounded(cls) -> UploadBudget:
        """No bound at all (a gateway built without one, in tests)."""
        return cls(2**62, 2**62, admission_timeout_s=0, idle_timeout_s=2**31, total_timeout_s=2**31)

    def upload(self, connection: str = "") -> Upload:
        """A new upload on ``connection`` (empty: counted node-wide only, as on HTTP/1.1,
        where a connection carries one request at a time)."""
        return Upload(self, connection)

    def _fits(self, upload: Upload, extra: int) -> bool:
        # Alone (nothing held but its own): always admitted.
        if self.in_flight > upload.held and self.in_flight + extra > self.capacity:
            return False
        connection = upload.connection
        if connection:
            on_connection = self.by_connection.get(connection, 0)
            if on_connection > upload.held and on_connection + extra > self.per_connection:
                return False
        return True

    async def _wait_for_room(self, upload: Upload, extra: int) -> None:
        if not await self._waiters.wait_until(
            lambda: self._fits(upload, extra), self.admission_timeout_s
        ):
            self.refused += 1
            raise Overloaded(self._refusal(upload, extra))

    def _refusal(self, upload: Upload, extra: int) -> str:
        on_connection = self.by_connection.get(upload.connection, 0)
        if upload.connection and on_connection + extra > self.per_connection:
            return (
                f"this connection is sending {on_connection} bytes of uploads to the node"
                f" (limit {self.per_connection}); try again later, nothing was written"
            )
        return (
            f"the node is receiving {self.in_flight} bytes of uploads (limit {self.capacity});"
            " try again later, nothing was written"
        )

    def _take(self, upload: Upload, extra: int) -> None:
        self.in_flight += extra
        upload.held += extra
        if upload.connection:
            self.by_connection[upload.connection] = (
                self.by_connection.get(upload.connection, 0) + extra
            )

    def _give_back(self, upload: Upload) -> None:
        held, upload.held = upload.held, 0
        self.in_flight -= held
        connection = upload.connection
        if connection:
            left = self.by_connection.pop(connection) - held
            if left:
                self.by_connection[connection] = left
        self._waiters.wake_all()


class Upload:
    """One upload's room and clock; use as ``async with budget.upload(connection) as upload``.

    ``await upload.declare(size)`` before reading a body of a known size,
    ``await upload.received(size, kept)`` for each chunk as it arrives. Leaving the
    block releases the room; a deadline passed inside it raises ``UploadTimedOut``.

    The clock is one timer per upload, not one per chunk: a chunk only notes when it
    came, and the timer, when it fires, sleeps again until the upload's next due
    time or cancels the task that receives it (as ``asyncio.timeout`` would).
    """

    __slots__ = (
        "_budget",
        "_cancelling",
        "_end",
        "_expired",
        "_last",
        "_loop",
        "_task",
        "_timer",
        "connection",
        "held",
        "kept",
        "total",
    )

    def __init__(self, budget: UploadBudget, connection: str) -> None:
        self._budget = budget
        self.connection = connection
        self.held = 0
        self.total = 0  # bytes received so far
        self.kept = 0  # of which buffered
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[object] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._end = self._last = 0.0
        self._expired = False
        self._cancelling = 0

    async def __aenter__(self) -> Upload:
        loop = self._loop = asyncio.get_running_loop()
        task = self._task = asyncio.current_task()
        assert task is not None, "an upload is received by a task"
        self._cancelling = task.cancelling()
        budget = self._budget
        now = self._last = loop.time()
        self._end = now + budget.total_timeout_s
        self._timer = loop.call_at(min(now + budget.idle_timeout_s, self._end), self._due)
        return self

    def _due(self) -> None:
        assert self._loop is not None and self._task is not None
        now = self._loop.time()
        due = min(self._last + self._budget.idle_timeout_s, self._end)
        if now < due:
            self._timer = self._loop.call_at(due, self._due)
            return
        self._timer = None
        self._expired = True
        self._task.cancel()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        budget = self._budget
        if self.held:
            budget._give_back(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._expired:
            return
        assert self._task is not None and self._loop is not None
        # Our cancel, not another's (the client gone, the node stopping): say why.
        if self._task.uncancel() > self._cancelling or kind is not asyncio.CancelledError:
            return
        budget.timed_out += 1
        if self._loop.time() >= self._end:
            raise UploadTimedOut(
                f"the upload was not complete after {budget.total_timeout_s:g} s (after"
                f" {self.total} bytes); nothing was written"
            ) from None
        raise UploadTimedOut(
            f"the upload sent nothing for {budget.idle_timeout_s:g} s (after {self.total}"
            " bytes); nothing was written"
        ) from None

    async def declare(self, size: int) -> None:
        """Take room for ``size`` bytes in all before reading them (waits for room)."""
        if size > self.held:
            await self._room(size - self.held)

    async def received(self, size: int, kept: int) -> None:
        """``size`` more bytes arrived, ``kept`` of them buffered (past a limit, a body is
        only counted): take room for what is kept beyond the room held, and restart the
        idle clock."""
        self.total += size
        self.kept += kept
        if self.kept > self.held:
            await self._room(self.kept - self.held)
        assert self._loop is not None
        self._last = self._loop.time()

    async def _room(self, extra: int) -> None:
        budget = self._budget
        if not budget._fits(self, extra):
            await budget._wait_for_room(self, extra)
        budget._take(self, extra)
