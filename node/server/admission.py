"""Admission control: what clients may hold of the node at once, and who waits.

Two budgets, both node-wide and both for clients only (Replication, Admin and
health calls never take from them, so a client flood cannot starve peers):

- ``ByteBudget``: bytes of values read for clients and not yet sent. rocksdict
  has no partial get, so a value is read whole; before reading, a read
  reserves the value's length as its header gives it (headers and values are
  stored apart), ``settle``s the reservation to what it actually read (a
  write in between may have changed it) and releases it once the answer is
  sent. A read that finds no room waits, and past its deadline is refused
  ``Overloaded`` (RESOURCE_EXHAUSTED / HTTP 503). When nothing is in flight a
  read is always admitted, so one value larger than the budget is still served.
  While the budget has room for the largest value, a read needs no estimate:
  it reads, then ``hold``s what it read (nothing else ran in between).
- ``CallBudget``: client calls served at once (KV over gRPC, HTTP requests).
  A call beyond it is refused at once: queueing would only hold more memory.

What clients send the node (request bodies, PutStreams) has its own budget,
built on the same ``Waiters``: ``upload_budget``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from rumor.node.core.errors import Overloaded


class Waiters:
    """Tasks waiting for room in a budget; each looks again whenever room is given back
    (a small release may fit a small request, not a large one)."""

    def __init__(self) -> None:
        self._waiting: deque[asyncio.Future[None]] = deque()

    async def wait_until(self, fits: Callable[[], bool], timeout_s: float) -> bool:
        """Whether ``fits()`` came true within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while not fits():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            try:
                await asyncio.wait_for(waiter, remaining)
            except TimeoutError:
                pass
            finally:
                if waiter in self._waiting:
                    self._waiting.remove(waiter)
        return True

    def wake_all(self) -> None:
        waiting, self._waiting = self._waiting, deque()
        for waiter in waiting:
            if not waiter.done():
                waiter.set_result(None)


class Reservation:
    """Bytes held against a ``ByteBudget``; ``settle`` to what was read, ``release`` once sent."""

    __slots__ = ("_budget", "held")

    def __init__(self, budget: ByteBudget, held: int) -> None:
        self._budget = budget
        self.held = held

    def settle(self, size: int) -> None:
        """Hold ``size`` bytes: what was read (more than reserved is taken without waiting)."""
        if size < self.held:
            self._budget._give_back(self.held - size)
        else:
            self._budget.in_flight += size - self.held
        self.held = size

    def release(self) -> None:
        if self.held:
            self._budget._give_back(self.held)
            self.held = 0


class ByteBudget:
    def __init__(self, capacity: int, timeout_s: float) -> None:
        self.capacity = capacity
        self.timeout_s = timeout_s
        self.in_flight = 0
        self.refused = 0
        self._waiters = Waiters()

    def _fits(self, size: int) -> bool:
        return size == 0 or self.in_flight == 0 or self.in_flight + size <= self.capacity

    def admits(self, size: int) -> bool:
        """Whether a reservation of ``size`` bytes would be taken now, without waiting."""
        return self._fits(size)

    def room_for(self, size: int) -> int:
        """How many reads of up to ``size`` bytes each ``admits`` now, one after another
        (one when nothing is in flight: any read is then admitted)."""
        fit = max(0, (self.capacity - self.in_flight) // max(size, 1))
        return max(fit, 1) if self.in_flight == 0 else fit

    def hold(self, size: int) -> Reservation:
        """Take ``size`` bytes now, room or not: for what was read while ``admits`` said so."""
        self.in_flight += size
        return Reservation(self, size)

    async def reserve(self, size: int) -> Reservation:
        """Room for ``size`` bytes, waiting at most ``timeout_s`` (Overloaded after)."""
        if not await self._waiters.wait_until(lambda: self._fits(size), self.timeout_s):
            self.refused += 1
            raise Overloaded(
                f"the node is sending {self.in_flight} bytes of values to clients (limit"
                f" {self.capacity}); try again later"
            )
        self.in_flight += size
        return Reservation(self, size)

    def _give_back(self, size: int) -> None:
        self.in_flight -= size
        self._waiters.wake_all()


class CallBudget:
    """At most ``capacity`` client calls at once; ``enter`` refuses the next one."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.active = 0
        self.refused = 0

    def enter(self) -> None:
        if self.active >= self.capacity:
            self.refused += 1
            raise Overloaded(
                f"the node is serving {self.active} client calls (limit {self.capacity});"
                " try again later"
            )
        self.active += 1

    def leave(self) -> None:
        self.active -= 1
