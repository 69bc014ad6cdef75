"""A node out of file descriptors backs off accepting, keeps serving, and recovers.

The node starts under ``prlimit --nofile=256``; the test opens TCP connections
to its gRPC and HTTP listeners until every descriptor it may hold is taken.
Both accept loops then back off rather than spin: asyncio's (the HTTP
listener) pauses accepting for a second after EMFILE, grpc's core (the gRPC
listener) retries once a second ("File descriptor limit reached"). The node's
CPU stays low, a client connected before keeps being served, and once the
connections close new clients are served again.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from rumor.v1 import kv_pb2
from tests.adversarial.raw_http import request
from tests.support.nodes import NodeProcess, poll

LIMIT = 256
MAX_CPU_SHARE = 0.15  # of one core, while exhausted (the spin reported was 0.24)
TICKS = os.sysconf("SC_CLK_TCK")

pytestmark = pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs prlimit")


@pytest.fixture
def node(tmp_path: Path) -> Iterator[NodeProcess]:
    process = NodeProcess(
        tmp_path / "n1", "--http", "127.0.0.1:0", prefix=["prlimit", f"--nofile={LIMIT}:{LIMIT}"]
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


def _fds(node: NodeProcess) -> int:
    assert node.process is not None
    return len(os.listdir(f"/proc/{node.process.pid}/fd"))


def _cpu_seconds(node: NodeProcess) -> float:
    assert node.process is not None
    fields = Path(f"/proc/{node.process.pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _connect(address: str) -> socket.socket | None:
    host, _, port = address.rpartition(":")
    try:
        return socket.create_connection((host, int(port)), timeout=0.5)
    except OSError:
        return None  # the listen backlog is full too


def test_at_fd_exhaustion_the_node_backs_off_and_recovers(node: NodeProcess) -> None:
    # A client connected before the descriptors run out.
    node.kv.ListNamespaces(kv_pb2.ListNamespacesRequest(), timeout=10)
    held: list[socket.socket] = []
    try:
        failures = 0
        for index in range(2 * LIMIT):
            sock = _connect(node.http if index % 2 else node.address)
            if sock is None:
                failures += 1
                if failures == 4:
                    break
            else:
                held.append(sock)
        poll(lambda: _fds(node) >= LIMIT - 1, timeout=20, interval=0.05)
        started, cpu_before = time.monotonic(), _cpu_seconds(node)
        for _ in range(6):  # served meanwhile, on the connection it already had
            node.kv.ListNamespaces(kv_pb2.ListNamespacesRequest(), timeout=10)
            time.sleep(0.5)  # the interval CPU is measured over, not a synchronisation
        share = (_cpu_seconds(node) - cpu_before) / (time.monotonic() - started)
        print(f"{len(held)} connections, node fds {_fds(node)}, CPU {share:.1%} of a core")
        assert share < MAX_CPU_SHARE, f"the node used {share:.0%} of a core at fd exhaustion"
    finally:
        for sock in held:
            sock.close()

    def served_again() -> bool:
        try:
            answer = request(node.http, "GET", "/healthz", timeout=5)
            with grpc.insecure_channel(node.address) as channel:
                grpc.channel_ready_future(channel).result(timeout=5)
        except (OSError, grpc.FutureTimeoutError):
            return False
        return answer.status == 200

    poll(served_again, timeout=30, interval=0.2)
    assert node.alive()
    log = node.log()
    assert "File descriptor limit reached" in log or "out of system resource" in log, log[-2000:]
