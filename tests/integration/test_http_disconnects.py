"""A client that goes away mid-request is no error: no log, no 500, a counter moves.

Raw sockets on a real node: a PUT whose client closes after part of its body
(REST values route answered before routing, the same route through aiohttp's
router, the Workers binding), and a GET whose client resets the connection
while a large value is being written. Each time the node logs no internal
error, ``rumor_requests_total`` gains no 500, ``rumor_http_client_disconnects_total``
moves, and the node goes on serving.
"""

from __future__ import annotations

import json
import socket
import struct
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.nodes import NodeProcess, poll

TOKEN = "disconnect-token"
BASE = "/client/v4/accounts/acct/storage/kv/namespaces"
LARGE_VALUE = 20 * 1024 * 1024  # far more than the socket buffers hold


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    root: Path = tmp_path_factory.mktemp("disconnects")
    process = NodeProcess(root / "data", "--http", "127.0.0.1:0", "--api-token", TOKEN)
    process.start()
    try:
        yield process
    finally:
        process.stop()


def _call(node: NodeProcess, method: str, path: str, body: bytes | None = None) -> bytes:
    request = urllib.request.Request(f"http://{node.http}{path}", data=body, method=method)
    request.add_header("Authorization", f"Bearer {TOKEN}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        return bytes(response.read())


@pytest.fixture(scope="module")
def namespace(node: NodeProcess) -> str:
    answer = json.loads(_call(node, "POST", BASE, json.dumps({"title": "gone"}).encode()))
    return str(answer["result"]["id"])


def _metric(text: str, name: str, *labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and all(label in line for label in labels):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _scrape(node: NodeProcess) -> tuple[float, float]:
    """(client disconnects, HTTP answers with status 500) so far."""
    with urllib.request.urlopen(f"http://{node.http}/metrics", timeout=10) as response:
        text = response.read().decode()
    return (
        _metric(text, "rumor_http_client_disconnects_total"),
        _metric(text, "rumor_requests_total", 'api="http"', 'status="500"'),
    )


def _connect(node: NodeProcess) -> socket.socket:
    host, _, port = node.http.rpartition(":")
    return socket.create_connection((host, int(port)), timeout=30)


def _put_part_of_body(node: NodeProcess, path: str, headers: str = "") -> None:
    """A PUT announcing 1 MB that sends 1,000 bytes and closes its connection."""
    with _connect(node) as sock:
        head = (
            f"PUT {path} HTTP/1.1\r\nHost: {node.http}\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: 1000000\r\n{headers}\r\n"
        )
        sock.sendall(head.encode() + b"x" * 1000)


def _assert_gone_quietly(node: NodeProcess, before: tuple[float, float], count: int) -> None:
    disconnects, errors = before
    poll(lambda: _scrape(node)[0] >= disconnects + count, timeout=20)
    assert _scrape(node) == (disconnects + count, errors)
    log = node.log_path.read_text(errors="replace")
    assert "internal_error" not in log and "Traceback" not in log


def _assert_serves(node: NodeProcess, namespace: str) -> None:
    path = f"{BASE}/{namespace}/values/after"
    _call(node, "PUT", path, b"still here")
    assert _call(node, "GET", path) == b"still here"


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("{base}/{ns}/values/cut", ""),  # answered before aiohttp's router
        ("{base}/{ns}/values/cut%2Frouted", ""),  # percent-escaped: through the router
        ("/cut?urlencoded=true", "Rumor-Namespace: {ns}\r\n"),  # the Workers binding
    ],
    ids=["values", "routed", "binding"],
)
def test_a_put_whose_client_leaves_mid_body_is_no_error(
    node: NodeProcess, namespace: str, path: str, headers: str
) -> None:
    before = _scrape(node)
    _put_part_of_body(node, path.format(base=BASE, ns=namespace), headers.format(ns=namespace))
    _assert_gone_quietly(node, before, 1)
    _assert_serves(node, namespace)


def test_a_get_whose_client_resets_while_the_value_is_written_is_no_error(
    node: NodeProcess, namespace: str
) -> None:
    path = f"{BASE}/{namespace}/values/large"
    _call(node, "PUT", path, b"v" * LARGE_VALUE)
    before = _scrape(node)
    with _connect(node) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {node.http}\r\n"
            f"Authorization: Bearer {TOKEN}\r\n\r\n".encode()
        )
        assert sock.recv(12) == b"HTTP/1.1 200"  # the answer is being written
        # Reset, not a graceful close: the node's next write fails at once.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    _assert_gone_quietly(node, before, 1)
    _assert_serves(node, namespace)
