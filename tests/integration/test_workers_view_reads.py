"""Reads a worker answers from its own view of the owner's database (a RocksDB secondary).

Each test runs against a real node with ``--workers 2``. A write acknowledged
through one connection (gRPC or HTTP, whichever worker it reached) is read at
once through a new connection, many times over; a namespace created or deleted
through one connection reads so through another; and the answers a worker
gives from its view — values, misses, errors and their messages — are the
owner's own: a read carrying a staleness bound goes to the owner, so each is
compared with the same read answered there. The workers' metrics show the
reads were answered by their views.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from rumor.v1 import kv_pb2, kv_pb2_grpc
from tests.support.nodes import NodeProcess, create_namespace, poll

ROUNDS = 60
OWNER_ANSWERS = 10**6  # a staleness bound no standalone node exceeds: the owner answers


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    data_dir = tmp_path_factory.mktemp("view-reads") / "data"
    process = NodeProcess(data_dir, "--workers", "2", "--http", "127.0.0.1:0")
    process.start()
    try:
        yield process
    finally:
        process.stop()


class _Connection:
    """A gRPC channel of its own: a new connection, which the kernel gives to either worker."""

    def __init__(self, address: str) -> None:
        self.channel = grpc.insecure_channel(
            address, options=[("grpc.use_local_subchannel_pool", 1)]
        )
        self.kv = kv_pb2_grpc.KVStub(self.channel)

    def __enter__(self) -> kv_pb2_grpc.KVStub:
        return self.kv

    def __exit__(self, *_: object) -> None:
        self.channel.close()


def _values_url(node: NodeProcess, namespace: str, key: str) -> str:
    return f"http://{node.http}/client/v4/accounts/a/storage/kv/namespaces/{namespace}/values/{key}"


def _http(method: str, url: str, body: bytes | None = None) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # a new connection each
            return answer.status, answer.read(), dict(answer.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def _view_reads(node: NodeProcess) -> float:
    with urllib.request.urlopen(f"http://{node.http}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("rumor_worker_view_reads_total")
    )


def test_a_grpc_write_is_read_at_once_through_any_new_connection(node: NodeProcess) -> None:
    namespace = create_namespace(node, "view-grpc")
    for i in range(ROUNDS):
        value = f"v{i}".encode()
        with _Connection(node.address) as writer:
            writer.Put(kv_pb2.PutRequest(namespace_id=namespace, key=b"k", value=value))
        with _Connection(node.address) as reader:
            got = reader.Get(kv_pb2.GetRequest(namespace_id=namespace, key=b"k"), timeout=10)
            assert got.found and got.value == value, i
            many = reader.BulkGet(
                kv_pb2.BulkGetRequest(
                    namespace_id=namespace, keys=[b"k", b"none"], type=kv_pb2.VALUE_TYPE_TEXT
                ),
                timeout=10,
            )
            assert [entry.result.text for entry in many.entries] == [value.decode(), ""], i
    # Each worker publishes its series every second; the owner adds them up.
    poll(lambda: _view_reads(node) >= 2 * ROUNDS, timeout=20)


def test_an_http_write_is_read_at_once_through_any_new_connection(node: NodeProcess) -> None:
    namespace = create_namespace(node, "view-http")
    url = _values_url(node, namespace, "k")
    for i in range(ROUNDS):
        value = f"h{i}".encode()
        status, _, _ = _http("PUT", url, value)
        assert status == 200
        status, body, headers = _http("GET", url)
        assert (status, body) == (200, value), i
        assert headers["Rumor-Lag-Bound-Ms"] == "0"  # no member to lag
        with _Connection(node.address) as reader:  # and the other way round
            reader.Put(kv_pb2.PutRequest(namespace_id=namespace, key=b"g", value=value))
        assert _http("GET", _values_url(node, namespace, "g"))[1] == value, i


def test_a_batch_frame_reads_a_write_acknowledged_elsewhere(node: NodeProcess) -> None:
    namespace = create_namespace(node, "view-batch")
    for i in range(20):
        value = f"b{i}".encode()
        with _Connection(node.address) as writer:
            writer.Put(kv_pb2.PutRequest(namespace_id=namespace, key=b"k", value=value))
        with _Connection(node.address) as reader:
            frame = kv_pb2.BatchRequest(
                ops=[
                    kv_pb2.BatchOp(id=1, get=kv_pb2.GetRequest(namespace_id=namespace, key=b"k")),
                    kv_pb2.BatchOp(id=2, get=kv_pb2.GetRequest(namespace_id=namespace, key=b"")),
                ]
            )
            results: dict[int, Any] = {}
            for response in reader.Batch(iter([frame]), timeout=10):
                results |= {result.id: result for result in response.results}
            assert results[1].get.value == value and results[1].lag_bound_ms == "0", i
            assert results[2].WhichOneof("result") == "error", i


def test_namespaces_created_and_deleted_elsewhere_read_so(node: NodeProcess) -> None:
    for i in range(20):
        with _Connection(node.address) as admin:
            namespace = admin.CreateNamespace(kv_pb2.CreateNamespaceRequest(title=f"made-{i}")).id
        with _Connection(node.address) as reader:
            got = reader.Get(kv_pb2.GetRequest(namespace_id=namespace, key=b"k"), timeout=10)
            assert not got.found, i
        assert _http("GET", _values_url(node, namespace, "k"))[0] == 404
        with _Connection(node.address) as admin:
            admin.DeleteNamespace(kv_pb2.DeleteNamespaceRequest(namespace_id=namespace))
        with _Connection(node.address) as reader:
            with pytest.raises(grpc.RpcError) as refused:
                reader.Get(kv_pb2.GetRequest(namespace_id=namespace, key=b"k"), timeout=10)
            assert refused.value.code() is grpc.StatusCode.NOT_FOUND, i
        status, body, _ = _http("GET", _values_url(node, namespace, "k"))
        assert status == 404 and b"namespace not found" in body.lower(), i


def _answer(call: Any, request: Any) -> tuple[str, bytes, str, str]:
    """A unary read's outcome: code, answer, message and HTTP status, without the lag."""
    try:
        response = call(request, timeout=10)
    except grpc.RpcError as error:
        trailing: Any = error.trailing_metadata() or ()
        http_status = str(dict(trailing).get("rumor-http-status"))
        return error.code().name, b"", str(error.details()), http_status
    return "OK", response.SerializeToString(deterministic=True), "", ""


def test_a_worker_answers_each_read_as_its_owner_does(node: NodeProcess) -> None:
    namespace = create_namespace(node, "view-answers")
    with _Connection(node.address) as kv:
        kv.Put(
            kv_pb2.PutRequest(
                namespace_id=namespace,
                key=b"meta",
                value=b'{"a": 1}',
                metadata=json.dumps({"m": True}).encode(),
                expiration_ttl=3600,
            )
        )
    missing = "0" * 32
    gets = [
        kv_pb2.GetRequest(namespace_id=namespace, key=b"meta", with_metadata=True),
        kv_pb2.GetRequest(namespace_id=namespace, key=b"meta", type=kv_pb2.VALUE_TYPE_JSON),
        kv_pb2.GetRequest(namespace_id=namespace, key=b"absent"),
        kv_pb2.GetRequest(namespace_id=namespace, key=b""),
        kv_pb2.GetRequest(namespace_id=namespace, key=b"x" * 600),
        kv_pb2.GetRequest(namespace_id=missing, key=b"k"),
        kv_pb2.GetRequest(namespace_id="not-an-id", key=b"k"),
        kv_pb2.GetRequest(namespace_id=namespace, key=b"meta", cache_ttl=10),
    ]
    text, as_json = kv_pb2.VALUE_TYPE_TEXT, kv_pb2.VALUE_TYPE_JSON
    bulk = [
        kv_pb2.BulkGetRequest(namespace_id=namespace, keys=[b"meta", b"absent"], type=text),
        kv_pb2.BulkGetRequest(
            namespace_id=namespace, keys=[b"meta"], type=as_json, with_metadata=True
        ),
        kv_pb2.BulkGetRequest(namespace_id=namespace, keys=[b"meta"]),  # no type: refused
        kv_pb2.BulkGetRequest(namespace_id=namespace, keys=[b"k"] * 101, type=text),
        kv_pb2.BulkGetRequest(namespace_id=namespace, keys=[b""], type=text),
        kv_pb2.BulkGetRequest(namespace_id=missing, keys=[b"k"], type=text),
    ]
    with _Connection(node.address) as kv:
        for request in gets:
            owners = kv_pb2.GetRequest()
            owners.CopyFrom(request)
            owners.max_staleness_ms = OWNER_ANSWERS
            assert _answer(kv.Get, request) == _answer(kv.Get, owners), request
        for many in bulk:
            owners_many = kv_pb2.BulkGetRequest()
            owners_many.CopyFrom(many)
            owners_many.max_staleness_ms = OWNER_ANSWERS
            assert _answer(kv.BulkGet, many) == _answer(kv.BulkGet, owners_many), many


def test_a_worker_killed_while_reading_from_its_view_is_restarted_with_a_fresh_one(
    node: NodeProcess,
) -> None:
    assert node.process is not None
    owner = node.process.pid
    namespace = create_namespace(node, "view-killed")
    acknowledged: list[bytes] = []
    wrong: list[str] = []
    stop = threading.Event()

    def write() -> None:
        i = 0
        while not stop.is_set():
            key = f"w{i}".encode()
            try:
                with _Connection(node.address) as kv:
                    for _ in range(20):
                        kv.Put(kv_pb2.PutRequest(namespace_id=namespace, key=key, value=key))
                        acknowledged.append(key)
                        i += 1
                        key = f"w{i}".encode()
            except grpc.RpcError:
                continue  # its worker died: reconnect

    def read() -> None:
        while not stop.is_set():
            try:
                with _Connection(node.address) as kv:
                    for _ in range(20):
                        if not acknowledged:
                            continue
                        key = acknowledged[-1]
                        got = kv.Get(kv_pb2.GetRequest(namespace_id=namespace, key=key), timeout=5)
                        if not got.found or got.value != key:
                            wrong.append(key.decode())
            except grpc.RpcError:
                continue

    threads = [threading.Thread(target=write) for _ in range(2)]
    threads += [threading.Thread(target=read) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        poll(lambda: len(acknowledged) > 50, timeout=30)
        workers = [int(pid) for pid in _children(owner)]
        os.kill(workers[0], signal.SIGKILL)
        before = len(acknowledged)
        poll(lambda: len(acknowledged) > before + 100, timeout=30)
        poll(
            lambda: len(_children(owner)) == 2 and workers[0] not in _children(owner),
            timeout=30,
        )
        restarted = len(acknowledged)
        poll(lambda: len(acknowledged) > restarted + 50, timeout=30)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert wrong == []


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as handle:
            return [int(child) for child in handle.read().split()]
    except OSError:
        return []


def test_under_durability_wal_a_write_is_read_at_once_too(tmp_path: Path) -> None:
    # No sync: the owner publishes the write's seq before ``durable`` returns.
    wal_node = NodeProcess(
        tmp_path / "data", "--workers", "2", "--durability", "wal", "--http", "127.0.0.1:0"
    )
    wal_node.start()
    try:
        namespace = create_namespace(wal_node, "view-wal")
        for i in range(ROUNDS):
            value = f"w{i}".encode()
            with _Connection(wal_node.address) as writer:
                writer.Put(kv_pb2.PutRequest(namespace_id=namespace, key=b"k", value=value))
            with _Connection(wal_node.address) as reader:
                got = reader.Get(kv_pb2.GetRequest(namespace_id=namespace, key=b"k"), timeout=10)
                assert got.found and got.value == value, i
        poll(lambda: _view_reads(wal_node) >= ROUNDS, timeout=20)
    finally:
        wal_node.stop()
