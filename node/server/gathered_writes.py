"""Client writes that reach the node in one turn of its event loop, proposed together.

Concurrent HTTP writes reach the node together: one WAL sync answers them all,
their clients send the next ones at once, and aiohttp starts those requests'
handlers in one turn of the event loop (under h2load with 64 connections, 63
or 64 PUTs in most turns). Proposed one by one, each write costs a staging
batch, a RocksDB write and a pump of the engine; gathered, the writes of a
turn cost one of each, as a Batch frame's writes do. A write is proposed at
the end of the turn it arrived in (``call_soon``), so a lone write waits for
nothing but that.

Each write gets what proposing it alone would give: its own ``Applied``, in
arrival order (a key written twice in a turn takes two seqs, and the later
wins, as two writes in turn would), or the error that refused the
proposal (a fenced clock, a full disk: the same for every write of the
turn). A write whose caller went away before its turn ended (a client that
disconnected) is not proposed; one already proposed stands.

gRPC's unary calls gain nothing here: grpc.aio starts each call in a turn of
its own, so they are proposed at once (``Operations.put``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from rumor.node.replication import Applied
from rumor.node.replication.replica.replica import Write


class GatheredWrites:
    def __init__(self, propose: Callable[[Sequence[Write]], list[Applied]]) -> None:
        """``propose`` checks that writes are taken now and proposes them together."""
        self._propose = propose
        self._pending: list[tuple[Write, asyncio.Future[Applied]]] = []
        self.proposals = 0  # proposals made (a turn's writes make one)

    async def write(self, write: Write) -> Applied:
        """``write`` proposed with the others of this turn; its ``Applied``."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Applied] = loop.create_future()
        if not self._pending:  # the turn's first write: the proposal comes once it ends
            loop.call_soon(self._flush)
        self._pending.append((write, future))
        return await future

    def _flush(self) -> None:
        pending = [(write, future) for write, future in self._pending if not future.done()]
        self._pending = []
        if not pending:
            return
        self.proposals += 1
        try:
            applied = self._propose([write for write, _ in pending])
        except Exception as error:
            for _, future in pending:
                future.set_exception(error)
            return
        for (_, future), done in zip(pending, applied, strict=True):
            future.set_result(done)
