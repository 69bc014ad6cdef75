"""Uploads that stall: they hold at most the upload budget, and time out.

A 2-node cluster whose node 1 takes 64 MiB of uploads at once (32 MiB on one
connection), lets an upload wait 1 s for room and 3 s without a byte. 40
clients each start a 25 MiB upload and stall just before its end: 20 HTTP
PUTs that send all but the last byte of their body, and 20 PutStreams that
send 24 of their 25 one-MiB chunks and never the ``last`` one. Throughout,
the watchdog of tests/adversarial asserts that another client's Get answers
within ``MAX_GET_S``, that node 1's RSS stays within the budget plus a
constant, and that node 2 never suspects node 1.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator

import grpc
import pytest

from rumor.experiments.lab.processes import CHANNEL_OPTIONS
from rumor.v1 import kv_pb2, kv_pb2_grpc
from tests.adversarial.node_health import Watchdog, digest, rss_bytes
from tests.adversarial.raw_http import request
from tests.support.cluster import Cluster
from tests.support.nodes import NodeProcess, create_namespace, poll

MIB = 1024 * 1024
BUDGET = 64 * MIB
# What else 40 uploads hold: grpc's window of each stream (the message it asked for and
# 64 KiB), aiohttp's buffer of each request, the copies a message passes through.
SLACK = 200 * MIB
MAX_GET_S = 2.0
IDLE_S = 3.0
STALLED = 20  # of each kind
LIMITS = (
    "--http", "127.0.0.1:0",
    "--max-upload-bytes-in-flight", str(BUDGET),
    "--max-upload-bytes-per-connection", str(32 * MIB),
    "--upload-admission-timeout-ms", "1000",
    "--upload-idle-timeout-ms", str(int(IDLE_S * 1000)),
    "--upload-timeout-ms", "60000",
    "--probe-interval-ms", "200", "--probe-timeout-ms", "1000", "--suspicion-timeout-ms", "3000",
)  # fmt: skip


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    nodes = Cluster(tmp_path_factory.mktemp("uploads"), 2, *LIMITS)
    try:
        nodes.wait_converged()
        yield nodes
    finally:
        nodes.stop()


@pytest.fixture(scope="module")
def ns(cluster: Cluster) -> str:
    n1 = cluster.nodes[0]
    namespace = create_namespace(n1, "uploads")
    n1.kv.Put(kv_pb2.PutRequest(namespace_id=namespace, key=b"small", value=b"v"))
    return namespace


class StalledPut(threading.Thread):
    """An HTTP PUT that sends ``head`` and ``body`` and no more, then waits for the
    answer: the status it got, or how its connection ended. By default a 25 MiB value
    of which all but the last byte is sent."""

    def __init__(self, address: str, path: str, head: str = "", body: bytes | None = None) -> None:
        super().__init__(daemon=True)
        self.address, self.path = address, path
        self.head = head or f"Content-Length: {25 * MIB}\r\n"
        self.body = b"x" * (25 * MIB - 1) if body is None else body
        self.outcome = ""
        self.answer = b""

    def run(self) -> None:
        host, _, port = self.address.rpartition(":")
        head = f"PUT {self.path} HTTP/1.1\r\nHost: {self.address}\r\n{self.head}\r\n".encode()
        with socket.create_connection((host, int(port)), timeout=60) as sock:
            with contextlib.suppress(OSError):  # refused and closed before the whole body
                sock.sendall(head + self.body)
            received = bytearray()
            try:
                while chunk := sock.recv(65536):
                    received += chunk
            except OSError as error:
                self.outcome = self.outcome or type(error).__name__
        self.answer = bytes(received)
        if received.startswith(b"HTTP/1.1 "):
            self.outcome = received[9:12].decode()


def _chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _stalled_stream(
    ns: str, key: bytes, release: threading.Event
) -> Iterator[kv_pb2.PutStreamRequest]:
    yield kv_pb2.PutStreamRequest(header=kv_pb2.PutRequest(namespace_id=ns, key=key))
    for _ in range(24):
        yield kv_pb2.PutStreamRequest(chunk=b"s" * MIB)
    release.wait(120)  # never the last chunk, until the test ends


def _connection(address: str) -> grpc.Channel:
    """A channel on its own TCP connection (grpc shares one between equal channels)."""
    options = [("grpc.use_local_subchannel_pool", 1), *CHANNEL_OPTIONS]
    return grpc.insecure_channel(address, options=options)


def test_forty_stalled_uploads_hold_at_most_the_budget_and_time_out(
    cluster: Cluster, ns: str
) -> None:
    n1, n2 = cluster.nodes
    before = digest(n1)
    rss_before = rss_bytes(n1)
    path = f"/client/v4/accounts/a/storage/kv/namespaces/{ns}/values/"
    release = threading.Event()
    channels = [_connection(n1.address) for _ in range(4)]
    puts = [StalledPut(n1.http, f"{path}put{index}") for index in range(STALLED)]
    codes: Counter[str] = Counter()
    details: list[str] = []
    started = time.monotonic()
    try:
        with Watchdog(n1, n2, ns, b"small") as watchdog:
            streams = [
                kv_pb2_grpc.KVStub(channels[index % 4]).PutStream.future(
                    _stalled_stream(ns, f"stream{index}".encode(), release), timeout=120
                )
                for index in range(STALLED)
            ]
            for put in puts:
                put.start()
            for stream in streams:
                try:
                    stream.result(timeout=120)
                    codes["OK"] += 1
                except grpc.RpcError as error:
                    codes[error.code().name] += 1
                    details.append(error.details() or "")
            for put in puts:
                put.join(120)
                codes["HTTP " + put.outcome] += 1
            settled = time.monotonic() - started
        watchdog.check(max_get_s=MAX_GET_S, max_rss=rss_before + BUDGET + SLACK)
    finally:
        release.set()
        for channel in channels:
            channel.close()
    print(f"outcomes {dict(codes)}, settled in {settled:.1f} s,"
          f" RSS {rss_before >> 20} -> peak {watchdog.peak_rss >> 20} MiB")  # fmt: skip
    # Each was refused for room (after 1 s) or timed out idle (3 s after it stalled).
    assert codes["RESOURCE_EXHAUSTED"] + codes["DEADLINE_EXCEEDED"] == STALLED, codes
    assert codes["HTTP 503"] + codes["HTTP 408"] == STALLED, codes
    assert codes["RESOURCE_EXHAUSTED"] + codes["HTTP 503"] > 0, codes
    assert codes["DEADLINE_EXCEEDED"] + codes["HTTP 408"] > 0, codes
    assert all("nothing was written" in detail for detail in details), set(details)
    refused = next(put for put in puts if put.outcome == "503")
    assert b"retry-after: 1" in refused.answer.lower()
    assert b'"success":false' in refused.answer and b"bytes of uploads" in refused.answer
    assert settled < 60, settled
    assert digest(n1) == before  # nothing of a stalled upload was written
    # Whatever ended them, nothing of theirs is held any more, and it was counted.
    assert _metric(n1, "rumor_upload_bytes_in_flight") == 0
    assert _metric(n1, "rumor_upload_refusals_total") >= 1
    assert _metric(n1, "rumor_upload_timeouts_total") >= 1


def test_a_stalled_upload_alone_is_admitted_then_cut_when_idle(cluster: Cluster, ns: str) -> None:
    """Room for all four (a value's PUT, a chunked multipart PUT, a bulk PUT, a
    PutStream): each is read until it stalls, then cut 3 s later with the reason."""
    n1 = cluster.nodes[0]
    before = digest(n1)
    release = threading.Event()
    base = f"/client/v4/accounts/a/storage/kv/namespaces/{ns}"
    put = StalledPut(n1.http, f"{base}/values/alone")
    part = b'--b\r\nContent-Disposition: form-data; name="value"\r\n\r\n' + b"m" * (4 * MIB)
    multipart = StalledPut(  # chunked: no length declared, room taken as it arrives
        n1.http,
        f"{base}/values/multipart",
        "Content-Type: multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\n",
        _chunked(part),
    )
    bulk = StalledPut(
        n1.http,
        f"{base}/bulk",
        f"Content-Type: application/json\r\nContent-Length: {8 * MIB}\r\n",
        b'[{"key": "k", "value": "' + b"j" * (4 * MIB),
    )
    with _connection(n1.address) as channel:
        stream = kv_pb2_grpc.KVStub(channel).PutStream.future(
            _stalled_stream(ns, b"alone", release), timeout=60
        )
        for stalled in (put, multipart, bulk):
            stalled.start()
        try:
            with pytest.raises(grpc.RpcError) as cut:
                stream.result(timeout=60)
            for stalled in (put, multipart, bulk):
                stalled.join(60)
        finally:
            release.set()
    assert cut.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert cut.value.details() == (
        f"the upload sent nothing for 3 s (after {24 * MIB} bytes); nothing was written"
    )
    assert put.outcome == "408", put.answer[:300]
    assert b"the upload sent nothing for 3 s (after 26214399 bytes)" in put.answer
    assert b"connection: close" in put.answer.lower()
    for stalled in (multipart, bulk):
        assert stalled.outcome == "408", stalled.answer[:300]
        assert b"the upload sent nothing for 3 s" in stalled.answer
    assert digest(n1) == before


def test_a_client_that_goes_away_frees_its_room_at_once(cluster: Cluster, ns: str) -> None:
    """Before any deadline: the room comes back when the connection or the call ends."""
    n1 = cluster.nodes[0]
    timeouts = _metric(n1, "rumor_upload_timeouts_total")
    host, _, port = n1.http.rpartition(":")
    release = threading.Event()
    path = f"/client/v4/accounts/a/storage/kv/namespaces/{ns}/values/gone"
    with _connection(n1.address) as channel:
        stream = kv_pb2_grpc.KVStub(channel).PutStream.future(
            _stalled_stream(ns, b"gone", release), timeout=60
        )
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            head = f"PUT {path} HTTP/1.1\r\nHost: {n1.http}\r\nContent-Length: {25 * MIB}\r\n\r\n"
            sock.sendall(head.encode())
            sock.sendall(b"g" * (10 * MIB))
            # Both held: the PUT its declared 25 MiB, the stream its 24 chunks.
            poll(
                lambda: _metric(n1, "rumor_upload_bytes_in_flight") >= 49 * MIB,
                timeout=IDLE_S * 0.8,
            )
        stream.cancel()
        release.set()
        poll(lambda: _metric(n1, "rumor_upload_bytes_in_flight") == 0, timeout=30)
    assert _metric(n1, "rumor_upload_timeouts_total") == timeouts  # not cut: let go


def _metric(node: NodeProcess, name: str) -> float:
    text = request(node.http, "GET", "/metrics").body.decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no {name} in /metrics")


def test_uploads_are_served_again_once_the_stalled_ones_are_gone(cluster: Cluster, ns: str) -> None:
    n1 = cluster.nodes[0]
    answer = request(
        n1.http,
        "PUT",
        f"/client/v4/accounts/a/storage/kv/namespaces/{ns}/values/after",
        body=b"a" * (5 * MIB),
        timeout=30,
    )
    assert answer.status == 200, answer.body[:200]

    def whole() -> Iterator[kv_pb2.PutStreamRequest]:
        yield kv_pb2.PutStreamRequest(header=kv_pb2.PutRequest(namespace_id=ns, key=b"after2"))
        yield kv_pb2.PutStreamRequest(chunk=b"b" * MIB, last=True)

    n1.kv.PutStream(whole(), timeout=30)
    found = n1.kv.Get(kv_pb2.GetRequest(namespace_id=ns, key=b"after"), timeout=10)
    assert found.value == b"a" * (5 * MIB)
    found = n1.kv.Get(kv_pb2.GetRequest(namespace_id=ns, key=b"after2"), timeout=10)
    assert found.value == b"b" * MIB
