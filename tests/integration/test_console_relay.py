"""The console's relay of other members' Watch, against a real 2-node cluster.

A console open on node B receives, as ``applied`` events, each change node A
applies (from the Watch stream B holds to A), and B's own ``changes``; the
stream to A exists only while a console of B is open.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from rumor.v1 import kv_pb2, kv_pb2_grpc
from tests.support.cluster import Cluster
from tests.support.nodes import NodeProcess

WITHIN_S = 5.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    nodes = Cluster(tmp_path_factory.mktemp("relay"), 2, "--http", "127.0.0.1:0")
    try:
        yield nodes
    finally:
        nodes.stop()


def _call(node: NodeProcess, method: str, path: str, body: Any = None) -> Any:
    connection = http.client.HTTPConnection(node.http, timeout=10)
    try:
        data = None if body is None else json.dumps(body).encode()
        headers = {} if body is None else {"Content-Type": "application/json"}
        connection.request(method, "/ui/api" + path, body=data, headers=headers)
        answer = json.loads(connection.getresponse().read())
        assert answer["success"], answer
        return answer["result"]
    finally:
        connection.close()


class _Events:
    """One console's SSE stream: (event, data) pairs read with a deadline."""

    def __init__(self, node: NodeProcess, headers: dict[str, str] | None = None) -> None:
        self.connection = http.client.HTTPConnection(node.http, timeout=WITHIN_S)
        self.connection.request("GET", "/ui/api/events", headers=headers or {})
        self.response = self.connection.getresponse()
        assert self.response.status == 200

    def until(self, wanted: Any) -> Any:
        deadline = time.monotonic() + WITHIN_S
        name = ""
        while time.monotonic() < deadline:
            line = self.response.readline().decode().rstrip("\n")
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                found = wanted(name, json.loads(line[len("data: ") :]))
                if found is not None:
                    return found
        raise AssertionError(f"no wanted event within {WITHIN_S} s")

    def close(self) -> None:
        self.connection.close()


def _watchers(node: NodeProcess) -> int:
    count: int = _call(node, "GET", "/status")["node"]["watchers"]
    return count


def test_a_console_receives_every_members_apply_of_a_write(cluster: Cluster) -> None:
    a_node, b_node = cluster.nodes
    assert _watchers(a_node) == 0
    events = _Events(b_node)
    try:
        # B opens its stream to A: A then serves one watcher, B's.
        events.until(lambda name, data: True if name == "status" and data["node"]["watching"]
                     == [a_node.node_id] else None)  # fmt: skip
        assert _watchers(a_node) == 1
        namespace = _call(a_node, "POST", "/namespaces", {"title": "RELAY"})["id"]
        _call(a_node, "PUT", f"/namespaces/{namespace}/value", {"key": "k", "value": "v"})

        applied_on: dict[str, int] = {}

        def both(name: str, data: Any) -> dict[str, int] | None:
            if name in ("changes", "applied"):
                for record in data:
                    if record.get("namespace") == namespace and record["key"] == "k":
                        member = record.get("member", b_node.node_id)  # changes: B itself
                        applied_on[member] = record["applied_ms"] - record["written_ms"]
            return applied_on if len(applied_on) == 2 else None

        spread = events.until(both)
        assert set(spread) == {a_node.node_id, b_node.node_id}
        assert all(-1000 < ms < 5000 for ms in spread.values()), spread
    finally:
        events.close()
    # The last console of B closed: B closes its stream to A.
    deadline = time.monotonic() + WITHIN_S
    while _watchers(a_node) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _watchers(a_node) == 0


def test_with_an_api_token_the_stream_to_a_member_carries_it(tmp_path: Path) -> None:
    token = "relay-test-token"
    nodes = Cluster(tmp_path, 2, "--http", "127.0.0.1:0", "--api-token", token)
    try:
        a_node, b_node = nodes.nodes
        events = _Events(b_node, {"Authorization": f"Bearer {token}"})
        try:
            # A accepts B's Watch only with the token: the stream is open once it did.
            events.until(lambda name, data: True if name == "status" and data["node"]["watching"]
                         == [a_node.node_id] else None)  # fmt: skip
        finally:
            events.close()
    finally:
        nodes.stop()


def test_watch_of_every_namespace_cannot_name_one(cluster: Cluster) -> None:
    with grpc.insecure_channel(cluster.nodes[0].address) as channel:
        stream = kv_pb2_grpc.KVStub(channel).Watch(
            kv_pb2.WatchRequest(all_namespaces=True, namespace_id="x" * 32), timeout=5
        )
        with pytest.raises(grpc.RpcError) as raised:
            next(iter(stream))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
