"""What the adversarial suite measures of a node under attack: memory, writes, secrets.

Each module of tests/adversarial starts one node (or one small cluster) and
asserts three things of every attack: the node stays responsive (another
client's Get within a stated bound), its memory (RSS, from /proc) stays under
a stated bound, and nothing rejected is written (audit digest and record count
unchanged).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import grpc

from rumor.v1 import admin_pb2, admin_pb2_grpc, kv_pb2, kv_pb2_grpc
from tests.support.nodes import NodeProcess

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes(node: NodeProcess) -> int:
    """Resident memory of the node process, from /proc."""
    assert node.process is not None
    fields = Path(f"/proc/{node.process.pid}/statm").read_text().split()
    return int(fields[1]) * PAGE


def write_secret(path: Path, value: str) -> Path:
    path.write_text(value + "\n")
    path.chmod(0o600)
    return path


def digest(node: NodeProcess, metadata: tuple[tuple[str, str], ...] = ()) -> tuple[int, int]:
    """(audit digest, records held): unchanged when nothing was written."""
    stub = admin_pb2_grpc.AdminStub(node.channel)
    status: admin_pb2.StatusResponse = stub.Status(admin_pb2.StatusRequest(), metadata=metadata)
    return status.audit_digest, int(status.records_held)


class Watchdog:
    """While an attack runs: another client's Get latency, the node's RSS, and the
    peer's view of it (SWIM probes must keep succeeding: never suspect or dead)."""

    def __init__(self, target: NodeProcess, peer: NodeProcess, namespace: str, key: bytes) -> None:
        self.target, self.peer = target, peer
        self.request = kv_pb2.GetRequest(namespace_id=namespace, key=key)
        self.latencies: list[float] = []
        self.refusals: list[float] = []  # how long a RESOURCE_EXHAUSTED answer took
        self.failures: list[str] = []
        self.peak_rss = 0
        self.peer_saw_trouble: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Watchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        target_id = int(self.target.node_id, 16)
        with (
            grpc.insecure_channel(
                self.target.address, options=[("grpc.use_local_subchannel_pool", 1)]
            ) as channel,
            grpc.insecure_channel(self.peer.address) as peer_channel,
        ):
            kv = kv_pb2_grpc.KVStub(channel)
            peer = admin_pb2_grpc.AdminStub(peer_channel)
            while not self._stop.wait(0.05):
                started = time.perf_counter()
                try:
                    found = kv.Get(self.request, timeout=10)
                    assert found.found
                    self.latencies.append(time.perf_counter() - started)
                except grpc.RpcError as error:
                    self.failures.append(f"{error.code()}: {error.details()}")
                    if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                        self.refusals.append(time.perf_counter() - started)
                self.peak_rss = max(self.peak_rss, rss_bytes(self.target))
                view = peer.Status(admin_pb2.StatusRequest(), timeout=10)
                for member in view.members:
                    if member.member.id == target_id and member.member.state != 0:
                        self.peer_saw_trouble.append(member.member.state)

    def check(self, *, max_get_s: float, max_rss: int, refusals_allowed: bool = False) -> None:
        """The bounds held; with ``refusals_allowed`` (a flood past the client-call
        budget) a quick RESOURCE_EXHAUSTED counts as an answer."""
        answers = self.latencies + (self.refusals if refusals_allowed else [])
        failures = self.failures
        if refusals_allowed:
            failures = [failure for failure in failures if "RESOURCE_EXHAUSTED" not in failure]
        assert not failures, failures[:5]
        assert len(answers) >= 3, "the watchdog barely ran"
        assert max(answers) < max_get_s, sorted(answers)[-5:]
        assert self.peak_rss < max_rss, f"RSS {self.peak_rss >> 20} MiB"
        assert not self.peer_saw_trouble, f"the peer saw states {set(self.peer_saw_trouble)}"
