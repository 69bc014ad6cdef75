"""Bootstrap by snapshot in the simulator: a peer's consistent copy, carried to a joiner.

The engine decides (``Ready.snapshot_fetch``, ``Done.snapshot_fetched`` or
``snapshot_failed``, ``NoticeKind.INSTALL_SNAPSHOT``); this module plays the
part of the node's snapshot client and server, and decides nothing.

Model (stated, simple):

- The joiner opens the stream (``FetchSnapshot``): the request takes one
  latency draw to the peer. A link blocked in *refuse* style, or nothing
  listening there, fails after one more draw ("unreachable"); a link blocked
  in *drop* style fails after the joiner's ``rpc_timeout_ms`` ("deadline").
- Where it arrives, the peer's driver asks its engine ``may_serve(joiner)``
  (as ``SnapshotServer`` does; no: "not admitted for a snapshot") and takes a
  consistent copy of the peer's store at that moment: everything written,
  synced or not (a RocksDB checkpoint includes the memtable).
- The copy then takes ``latency + size / bytes_per_ms`` to arrive: a fixed
  link rate, 4 kB/s by default, so the ~6 kB store of a fuzz schedule takes
  about 1.5 s, several GC graces of ``ProtocolConfig.local()``, as a
  real copy of many gigabytes takes several real graces: writes, deletes and
  purges go on meanwhile.
  A stream broken in between resumes, as the real client resumes it, so only
  the end matters: the copy is fetched unless by then the peer process that
  took it is gone (crashed or restarted: its checkpoints are removed at
  start-up, nothing to resume from) or a link between them is blocked.
- A joiner that crashed (or stopped) meanwhile simply loses the fetch; its
  next process starts afresh on its disk.
"""

from __future__ import annotations

from collections.abc import Callable

from rumor.experiments.sim.disk import SimulatedDisk
from rumor.experiments.sim.loop import EventLoop
from rumor.experiments.sim.network import REFUSE, Network
from rumor.experiments.sim.process import SimulatedProcess
from rumor.node.replication.engine.messages import SnapshotFetch

SNAPSHOT_BYTES_PER_MS = 4.0  # see the model above


class SnapshotTransfers:
    """Carries copies between processes on the cluster's network; counts what happened."""

    def __init__(
        self,
        loop: EventLoop,
        network: Network,
        draw_latency: Callable[[], float],
        bytes_per_ms: float = SNAPSHOT_BYTES_PER_MS,
    ) -> None:
        self.loop = loop
        self.network = network
        self.draw_latency = draw_latency
        self.bytes_per_ms = bytes_per_ms
        self.started = 0
        self.fetched = 0
        self.failed: dict[str, int] = {}  # cause -> how many

    def fetch(self, joiner: SimulatedProcess, fetch: SnapshotFetch) -> None:
        """The joiner's driver was handed ``fetch``: open the stream."""
        self.started += 1
        style = self.network.blocked.get((joiner.address, fetch.address))
        if style is not None and style != REFUSE:
            timeout = joiner.settings.protocol.rpc_timeout_ms
            self._fail_after(joiner, float(timeout), "deadline: the peer does not answer")
            return
        if style is not None:
            self._fail_after(joiner, self.draw_latency(), "unreachable: connection refused")
            return
        self.loop.after(self.draw_latency(), lambda: self._arrive(joiner, fetch))

    def _arrive(self, joiner: SimulatedProcess, fetch: SnapshotFetch) -> None:
        peer = self.network.listeners.get(fetch.address)
        if peer is None or not peer.running:
            self._fail_after(joiner, self.draw_latency(), "unreachable: nothing listens")
            return
        server = peer if isinstance(peer, SimulatedProcess) else None
        if server is None or not server.engine.snapshots.may_serve(joiner.node_id):
            self._fail_after(joiner, self.draw_latency(), "not admitted for a snapshot")
            return
        copy = server.disk.copy()
        size = copy.size_bytes()
        delay = (
            self.draw_latency()
            + self.network.extra_delay_ms.get(server.address, 0.0)
            + size / self.bytes_per_ms
        )
        self.loop.after(delay, lambda: self._arrived(joiner, server, copy))

    def _arrived(
        self, joiner: SimulatedProcess, server: SimulatedProcess, copy: SimulatedDisk
    ) -> None:
        if not joiner.running:
            return  # the joiner crashed: the fetch is lost with it
        blocked = self.network.blocked
        if not server.running:
            self._failed(joiner, "unreachable: the peer went down during the transfer")
        elif (server.address, joiner.address) in blocked or (
            joiner.address,
            server.address,
        ) in blocked:
            self._failed(joiner, "unreachable: the link broke during the transfer")
        else:
            self.fetched += 1
            joiner.snapshot_fetched(copy)

    def _fail_after(self, joiner: SimulatedProcess, delay_ms: float, cause: str) -> None:
        self.loop.after(delay_ms, lambda: self._failed(joiner, cause))

    def _failed(self, joiner: SimulatedProcess, cause: str) -> None:
        if not joiner.running:
            return
        key = cause.split(":", 1)[0]
        self.failed[key] = self.failed.get(key, 0) + 1
        joiner.snapshot_failed(cause)
