"""Clock fencing covers reads: real nodes, their clocks shifted by the Faults service.

A node whose clock is ten minutes off from its two peers is fenced: it is not
ready (``/healthz`` 503 naming the offset, gRPC health NOT_SERVING, reads
refused UNAVAILABLE so clients fail over, Admin Status ``ready`` false), its
peers hear why it takes no writes, and it judges the records it receives by
its peers' time: ten minutes behind it defers none of them, ten minutes ahead
it purges no TTL-60 key written elsewhere. Back in range it serves them at
once. Every wait polls with a deadline.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from rumor.v1 import admin_pb2, faults_pb2
from tests.integration.kv_helpers import failed_call, get, put
from tests.integration.test_replication import everyone_alive, new_namespace, running_cluster
from tests.support.cluster import Cluster, admin, faults, node_id, status
from tests.support.nodes import NodeProcess, poll

TEN_MINUTES_MS = 600_000


RELEASE_FIELDS = {"version", "protocol", "oldest_protocol", "features"}


def healthz(node: NodeProcess) -> tuple[int, dict[str, Any]]:
    """``/healthz``'s status and body, without the release fields every body has."""
    try:
        with urllib.request.urlopen(f"http://{node.http}/healthz", timeout=10) as answer:
            code, body = answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        code, body = error.code, json.loads(error.read())
    assert body.keys() >= RELEASE_FIELDS
    return code, {k: v for k, v in body.items() if k not in RELEASE_FIELDS}


def grpc_health(node: NodeProcess) -> int:
    stub = health_pb2_grpc.HealthStub(node.channel)
    answer = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
    return int(answer.status)


def held_keys(node: NodeProcess, ns: str) -> set[bytes]:
    """The keys ``node`` stores in ``ns``, read through Admin (no readiness check)."""
    return {info.key for info in admin(node).Records(admin_pb2.RecordsRequest(namespace_id=ns))}


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root: Path = tmp_path_factory.mktemp("fence")
    with running_cluster(root, 3, "--http", "127.0.0.1:0") as cluster:
        poll(lambda: everyone_alive(cluster.nodes), timeout=20)
        yield cluster


@pytest.mark.parametrize("offset_ms", [-TEN_MINUTES_MS, TEN_MINUTES_MS])
def test_a_node_fenced_for_its_clock_is_not_ready_and_judges_records_by_its_peers_time(
    three: Cluster, offset_ms: int
) -> None:
    n1, n2, n3 = three.nodes
    ns = new_namespace(three, f"fence{offset_ms}")
    assert healthz(n2) == (200, {"status": "ok"})
    faults(n2).SetClockOffset(faults_pb2.ClockOffsetRequest(offset_ms=offset_ms))
    try:
        poll(lambda: status(n2).fenced, timeout=20, interval=0.1)
        sign = "+" if offset_ms > 0 else "-"
        code, body = healthz(n2)
        assert code == 503 and body["status"] == "unavailable", body
        assert body["reason"].startswith(f"clock offset too large: {sign}"), body
        assert abs(float(body["reason"].split(": ")[1].split()[0])) > TEN_MINUTES_MS * 0.9
        assert grpc_health(n2) == health_pb2.HealthCheckResponse.NOT_SERVING
        assert not status(n2).ready
        refused = failed_call(lambda: get(n2, ns, b"anything"))
        assert refused.code() == grpc.StatusCode.UNAVAILABLE
        assert (refused.details() or "").startswith(f"clock offset too large: {sign}")
        # The peers know why it takes no writes, and are themselves fine.
        for peer in (n1, n3):

            def told(peer: NodeProcess = peer) -> bool:
                said = {m.member.id: m.writes_refused for m in status(peer).members}
                return said[node_id(n2)].startswith(f"clock offset too large: {sign}")

            poll(told, timeout=10)  # the next message from n2 says so
            assert healthz(peer) == (200, {"status": "ok"})
        # A TTL-60 key written elsewhere reaches it: not deferred (behind), not purged
        # as expired (ahead).
        put(n1, ns, b"ttl-60", b"v", expiration_ttl=60)
        poll(lambda: b"ttl-60" in held_keys(n2, ns), timeout=20)
        assert status(n2).deferred_records == 0
        assert b"ttl-60" in held_keys(n2, ns)
    finally:
        faults(n2).SetClockOffset(faults_pb2.ClockOffsetRequest(offset_ms=0))
    poll(lambda: status(n2).ready, timeout=30, interval=0.1)
    assert grpc_health(n2) == health_pb2.HealthCheckResponse.SERVING
    assert get(n2, ns, b"ttl-60").found  # served at once: it was held all along
    if offset_ms < 0:
        poll(lambda: healthz(n2) == (200, {"status": "ok"}), timeout=20)
        poll(lambda: not any(m.writes_refused for m in status(n1).members), timeout=20)
    else:
        # Before the fence, the clock ahead carried its HLC ahead: writes (which carry
        # it) stay refused until the wall clock gets there; reads are served.
        code, body = healthz(n2)
        assert code == 200 or (
            body["status"] == "read_only" and body["reason"].startswith("clock offset")
        ), body
