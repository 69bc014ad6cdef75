"""A node with worker processes: shared listeners, per-node read-your-writes, worker deaths.

Each test starts a real node with ``--workers 2``: an owner process and two
workers sharing its gRPC and HTTP ports.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from rumor.v1 import kv_pb2, kv_pb2_grpc
from tests.support.nodes import NodeProcess, create_namespace, poll


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def workers_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    data_dir = tmp_path_factory.mktemp("workers") / "data"
    node = NodeProcess(data_dir, "--workers", "2", "--http", "127.0.0.1:0")
    node.start()
    try:
        yield node
    finally:
        node.stop()


def _fresh_stub(address: str) -> tuple[grpc.Channel, kv_pb2_grpc.KVStub]:
    # A channel of its own: a new connection, which the kernel gives to either worker.
    channel = grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
    return channel, kv_pb2_grpc.KVStub(channel)


def test_the_node_runs_two_workers_beside_its_owner(workers_node: NodeProcess) -> None:
    assert workers_node.process is not None
    workers = _children(workers_node.process.pid)
    assert len(workers) == 2, workers


def test_a_write_acknowledged_through_one_connection_is_read_through_any_other(
    workers_node: NodeProcess,
) -> None:
    namespace = create_namespace(workers_node, "read-your-writes")
    for i in range(60):
        writer, write_stub = _fresh_stub(workers_node.address)
        reader, read_stub = _fresh_stub(workers_node.address)
        try:
            value = f"v{i}".encode()
            write_stub.Put(kv_pb2.PutRequest(namespace_id=namespace, key=b"k", value=value))
            got = read_stub.Get(kv_pb2.GetRequest(namespace_id=namespace, key=b"k"), timeout=10)
            assert got.found and got.value == value, i
        finally:
            writer.close()
            reader.close()


def test_http_goes_through_the_workers_too(workers_node: NodeProcess) -> None:
    with urllib.request.urlopen(f"http://{workers_node.http}/healthz", timeout=10) as answer:
        assert answer.status == 200
        assert json.loads(answer.read())["status"] == "ok"


def test_a_worker_killed_under_load_loses_no_acknowledged_write_and_is_restarted(
    workers_node: NodeProcess,
) -> None:
    assert workers_node.process is not None
    owner = workers_node.process.pid
    namespace = create_namespace(workers_node, "killed-worker")
    acknowledged: list[bytes] = []
    stop = threading.Event()
    failures: list[str] = []

    def write() -> None:
        i = 0
        channel, stub = _fresh_stub(workers_node.address)
        while not stop.is_set():
            key = f"w{i}".encode()
            try:
                stub.Put(kv_pb2.PutRequest(namespace_id=namespace, key=key, value=key), timeout=5)
                acknowledged.append(key)
                i += 1
            except grpc.RpcError as error:
                failures.append(error.code().name)  # its worker died: reconnect
                channel.close()
                channel, stub = _fresh_stub(workers_node.address)
        channel.close()

    writers = [threading.Thread(target=write) for _ in range(4)]
    for writer in writers:
        writer.start()
    try:
        poll(lambda: len(acknowledged) > 50, timeout=30)
        victim = _children(owner)[0]
        os.kill(victim, signal.SIGKILL)
        before = len(acknowledged)
        poll(lambda: len(acknowledged) > before + 100, timeout=30)
        poll(lambda: len(_children(owner)) == 2 and victim not in _children(owner), timeout=30)
    finally:
        stop.set()
        for writer in writers:
            writer.join(timeout=30)
    channel, stub = _fresh_stub(workers_node.address)
    try:
        for key in acknowledged:
            got = stub.Get(kv_pb2.GetRequest(namespace_id=namespace, key=key), timeout=10)
            assert got.found and got.value == key
    finally:
        channel.close()
    assert set(failures) <= {"UNAVAILABLE", "CANCELLED", "UNKNOWN", "INTERNAL"}


def test_workers_exit_when_their_owner_dies(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "data", "--workers", "2")
    node.start()
    try:
        assert node.process is not None
        workers = _children(node.process.pid)
        assert len(workers) == 2
        node.process.send_signal(signal.SIGKILL)
        node.process.wait(timeout=10)
        poll(lambda: not any(_alive(pid) for pid in workers), timeout=20)
    finally:
        node.kill()


def test_metrics_add_up_every_worker_s_requests(workers_node: NodeProcess) -> None:
    namespace = create_namespace(workers_node, "metrics")
    channels = [_fresh_stub(workers_node.address) for _ in range(8)]
    try:
        for _, stub in channels:
            stub.Get(kv_pb2.GetRequest(namespace_id=namespace, key=b"k"))
    finally:
        for channel, _ in channels:
            channel.close()

    def gets_counted() -> float:
        url = f"http://{workers_node.http}/metrics"
        with urllib.request.urlopen(url, timeout=10) as answer:
            text = answer.read().decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith("rumor_requests_total{") and 'method="Get"' in line:
                total += float(line.rsplit(" ", 1)[1])
        return total

    # Each worker publishes its series every second; the owner adds them up.
    poll(lambda: gets_counted() >= 8, timeout=20)
