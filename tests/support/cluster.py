"""A cluster of real node processes on 127.0.0.1 with protocol timers in milliseconds."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rumor.v1 import admin_pb2, admin_pb2_grpc, faults_pb2, faults_pb2_grpc
from tests.support.nodes import NodeProcess, poll

FAST_TIMERS = (
    "--gossip-interval-ms", "5",
    "--anti-entropy-interval-ms", "200",
    "--probe-interval-ms", "100",
    "--probe-timeout-ms", "100",
    "--suspicion-timeout-ms", "600",
    "--gc-grace-ms", "300",
    "--sweep-interval-ms", "50",
    "--min-expiration-ttl", "1",
    "--enable-fault-injection",
)  # fmt: skip


def admin(node: NodeProcess) -> admin_pb2_grpc.AdminStub:
    return admin_pb2_grpc.AdminStub(node.channel)


def faults(node: NodeProcess) -> faults_pb2_grpc.FaultsStub:
    return faults_pb2_grpc.FaultsStub(node.channel)


def status(node: NodeProcess) -> admin_pb2.StatusResponse:
    response: admin_pb2.StatusResponse = admin(node).Status(admin_pb2.StatusRequest())
    return response


def node_id(node: NodeProcess) -> int:
    return int(node.node_id, 16)


class Cluster:
    """``size`` nodes; the first starts the cluster, the others join through it."""

    def __init__(self, root: Path, size: int, *extra: str) -> None:
        self.root = root
        self.extra = (*FAST_TIMERS, *extra)
        self.nodes: list[NodeProcess] = []
        for index in range(size):
            self.add(f"n{index + 1}")

    def add(self, name: str, *extra: str) -> NodeProcess:
        seeds = ("--seeds", self.nodes[0].address) if self.nodes else ()
        node = NodeProcess(self.root / name, *self.extra, "--name", name, *seeds, *extra)
        node.start()
        self.nodes.append(node)
        return node

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def wait_converged(
        self, nodes: Sequence[NodeProcess] | None = None, timeout: float = 20.0
    ) -> None:
        """Until every (live) node reports the same audit digest and watermarks."""
        members = [n for n in (nodes or self.nodes) if n.alive()]

        def same() -> bool:
            states = [status(n) for n in members]
            digests = {s.audit_digest for s in states}
            marks = {tuple(sorted((o, m) for o, m in s.watermarks.items() if m)) for s in states}
            return len(digests) == 1 and len(marks) == 1

        poll(same, timeout=timeout, interval=0.05)

    def block(
        self,
        node: NodeProcess,
        peers: Sequence[NodeProcess] = (),
        direction: faults_pb2.Direction = faults_pb2.DIRECTION_BOTH,
    ) -> None:
        faults(node).Block(
            faults_pb2.BlockRequest(peers=[node_id(p) for p in peers], direction=direction)
        )

    def unblock(self, node: NodeProcess) -> None:
        faults(node).Clear(faults_pb2.Empty())
