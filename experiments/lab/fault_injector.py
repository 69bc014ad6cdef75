"""A scenario's faults applied to the running nodes, and each fault's window recorded.

``FaultInjector.apply`` carries out one step of a scenario's schedule — each
``FaultKind`` the lab can inject and each ``Recovery`` — through the nodes'
Faults service (blocks, partitions, loss, clock offsets), their processes
(SIGKILL and restart, SIGSTOP and SIGCONT, a restart under ``faketime``) or,
with network namespaces, the kernel's routes (``isolate``/``reconnect``).
Every fault opened is a ``FaultWindow`` in the history once it is healed;
``heal`` ends them all (what the harness does after the workload).
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable
from typing import Any

import grpc

from rumor.experiments.faults import FaultKind
from rumor.experiments.lab import netns
from rumor.experiments.lab.history import FaultWindow, History
from rumor.experiments.lab.processes import NodeProcess, unary
from rumor.experiments.lab.scenario import Action, FaultStep, Recovery
from rumor.v1 import faults_pb2

DIRECTIONS = {
    "both": faults_pb2.DIRECTION_BOTH,
    "outbound": faults_pb2.DIRECTION_OUTBOUND,
    "inbound": faults_pb2.DIRECTION_INBOUND,
}


class FaultInjector:
    """Breaks and heals the harness's nodes (``nodes`` and their ``ids`` as they are
    started); what it cannot inject is said and added to ``skipped``."""

    def __init__(
        self,
        nodes: list[NodeProcess],
        ids: list[int],
        history: History,
        *,
        skipped: list[str],
        say: Callable[[str], None],
    ) -> None:
        self.nodes = nodes
        self.ids = ids
        self.history = history
        self.skipped = skipped
        self.say = say
        self.network: netns.NamespaceNetwork | None = None  # set once the namespaces exist
        self.killed: set[int] = set()
        self.paused: set[int] = set()
        self._isolated: set[int] = set()
        self._open_faults: dict[str, tuple[int, str]] = {}

    def skip(self, message: str) -> None:
        if message not in self.skipped:
            self.skipped.append(message)
        self.say(f"  skipped: {message}")

    def prefix(self, index: int) -> list[str]:
        """What node ``index``'s command runs under: its network namespace, if any."""
        return self.network.prefix(index) if self.network is not None else []

    def serving(self, index: int) -> bool:
        """Node ``index`` is neither killed nor paused."""
        return index not in self.killed and index not in self.paused

    def _faults_call(self, index: int, method: str, request: Any) -> None:
        call = unary(self.nodes[index].channel, "Faults", method, faults_pb2.FaultState)
        call(request, timeout=5)

    def _open(self, kind: str, detail: str) -> None:
        self._open_faults[f"{kind}:{detail}"] = (time.monotonic_ns(), detail)

    def _close(self, kind: str, detail: str) -> None:
        opened = self._open_faults.pop(f"{kind}:{detail}", None)
        if opened is not None:
            self.history.faults.append(FaultWindow(kind, opened[0], time.monotonic_ns(), opened[1]))

    def _close_all(self) -> None:
        now = time.monotonic_ns()
        for name, (start, detail) in self._open_faults.items():
            self.history.faults.append(FaultWindow(name.split(":")[0], start, now, detail))
        self._open_faults.clear()

    def apply(self, step: FaultStep) -> None:
        self.say(f"  t={step.at_s:>5.1f}s fault: {step.action} {step.params or ''}")
        self.appliers()[step.action](int(step.params.get("node", 0)), step.params)

    def appliers(self) -> dict[Action, Callable[[int, dict[str, Any]], None]]:
        """Per scenario action, what applies it (given the node and the step's parameters)."""
        return {
            FaultKind.PARTITION: self._partition,
            FaultKind.BLOCK: self._block,
            FaultKind.LOSS: self._loss,
            FaultKind.SKEW: self._skew,
            FaultKind.CRASH: self._crash,
            FaultKind.PAUSE: self._pause,
            FaultKind.FAKETIME: lambda n, p: self._faketime(n, float(p.get("offset_s", 5))),
            FaultKind.ISOLATE: lambda n, _: self._isolate(n),
            Recovery.RESTART: self._restart_crashed,
            Recovery.RESUME: self._resume,
            Recovery.RECONNECT: lambda n, _: self._reconnect(n),
            Recovery.HEAL: lambda _n, _p: self.heal(),
        }

    def _partition(self, _: int, p: dict[str, Any]) -> None:
        groups = [list(map(int, g)) for g in p["groups"]]
        for group in groups:
            others = [self.ids[i] for i in range(len(self.nodes)) if i not in group]
            for member in group:
                self._faults_call(member, "Block", faults_pb2.BlockRequest(peers=others))
        self._open(FaultKind.PARTITION, str(groups))

    def _block(self, node: int, p: dict[str, Any]) -> None:
        direction = DIRECTIONS[str(p.get("direction", "both"))]
        peers = [self.ids[int(i)] for i in p.get("peers", [])]
        self._faults_call(node, "Block", faults_pb2.BlockRequest(peers=peers, direction=direction))
        self._open(FaultKind.BLOCK, f"n{node + 1} {p.get('direction', 'both')}")

    def _loss(self, _: int, p: dict[str, Any]) -> None:
        request = faults_pb2.LossRequest(
            drop_fraction=float(p.get("drop", 0)),
            delay_fraction=float(p.get("delay_fraction", 0)),
            delay_ms=int(p.get("delay_ms", 0)),
        )
        for index in range(len(self.nodes)):
            if index not in self.killed:
                self._faults_call(index, "SetLoss", request)
        self._open(FaultKind.LOSS, f"drop {p.get('drop', 0)}")

    def _skew(self, node: int, p: dict[str, Any]) -> None:
        for name in [
            n for n in self._open_faults if n.startswith(f"{FaultKind.SKEW}:n{node + 1} ")
        ]:
            kind, _, detail = name.partition(":")
            self._close(kind, detail)
        offset_ms = int(p["offset_ms"])
        if offset_ms == 0:
            self._faults_call(node, "SetClockOffset", faults_pb2.ClockOffsetRequest())
            return
        self._faults_call(
            node, "SetClockOffset", faults_pb2.ClockOffsetRequest(offset_ms=offset_ms)
        )
        self._open(FaultKind.SKEW, f"n{node + 1} {p['offset_ms']} ms")

    def _crash(self, node: int, _: dict[str, Any]) -> None:
        self.nodes[node].kill()
        self.killed.add(node)
        self._open(FaultKind.CRASH, f"n{node + 1}")

    def _restart_crashed(self, node: int, _: dict[str, Any]) -> None:
        self._restart(node)
        self._close(FaultKind.CRASH, f"n{node + 1}")

    def _pause(self, node: int, _: dict[str, Any]) -> None:
        self.nodes[node].pause()
        self.paused.add(node)
        self._open(FaultKind.PAUSE, f"n{node + 1}")

    def _resume(self, node: int, _: dict[str, Any]) -> None:
        self.nodes[node].resume()
        self.paused.discard(node)
        self._close(FaultKind.PAUSE, f"n{node + 1}")

    def _isolate(self, node: int) -> None:
        if node in self._isolated:
            return
        if self.network is not None:
            self.network.isolate(node)
        else:
            self.skip("isolate without network namespaces: Faults Block of the node instead")
            others = [self.ids[i] for i in range(len(self.nodes)) if i != node]
            self._faults_call(node, "Block", faults_pb2.BlockRequest(peers=others))
        self._isolated.add(node)
        self._open(FaultKind.ISOLATE, f"n{node + 1}")

    def _reconnect(self, node: int) -> None:
        if node not in self._isolated:
            return
        self._isolated.discard(node)
        if self.network is not None:
            self.network.restore(node)
        else:
            with contextlib.suppress(grpc.RpcError):
                self._faults_call(node, "Clear", faults_pb2.Empty())
        self._close(FaultKind.ISOLATE, f"n{node + 1}")

    def _restart(self, node: int) -> None:
        if node in self.killed:
            self.nodes[node].start()
            self.killed.discard(node)

    def _faketime(self, node: int, offset_s: float) -> None:
        if shutil.which("faketime") is None:
            message = "faketime is not installed (apt-get install faketime): real skew skipped"
            self.skipped.append(message)
            self.say(f"  skipped: {message}")
            return
        process = self.nodes[node]
        process.stop()
        process.prefix = [*self.prefix(node), "faketime", "-f", f"{offset_s:+g}s"]
        process.start()
        self._open(FaultKind.FAKETIME, f"n{node + 1} {offset_s:+g} s")

    def heal(self) -> None:
        """Every node resumed, restarted and reconnected, every Faults rule cleared, and
        every open fault's window closed."""
        for node in sorted(self.paused):
            self.nodes[node].resume()
        self.paused.clear()
        for node in sorted(self.killed):
            self._restart(node)
        if self.network is not None:
            self.network.restore_all()
        self._isolated.clear()
        for index in range(len(self.nodes)):
            with contextlib.suppress(grpc.RpcError):
                self._faults_call(index, "Clear", faults_pb2.Empty())
        self._close_all()
