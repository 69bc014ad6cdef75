"""The HTTP gateway, API tokens, /metrics and /healthz on a real node process."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from rumor.client import Client
from rumor.client.errors import AuthenticationError
from tests.support.nodes import NodeProcess

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    root: Path = tmp_path_factory.mktemp("secured")
    token_file = root / "tokens"
    token_file.write_text("# one per line\nsecond-token\n")
    node = NodeProcess(
        root / "data", "--http", "127.0.0.1:0", "--api-token", TOKEN,
        "--api-token-file", str(token_file), "--min-expiration-ttl", "1",
    )  # fmt: skip
    node.start()
    try:
        yield node
    finally:
        node.stop()


def _request(
    url: str,
    token: str | None = None,
    method: str = "GET",
    body: bytes | None = None,
    content_type: str = "application/octet-stream",
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method)
    request.add_header("Content-Type", content_type)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_grpc_needs_a_token(secured: NodeProcess) -> None:
    with Client(secured.address, timeout=5) as anonymous, pytest.raises(AuthenticationError):
        anonymous.namespaces.list()
    with (
        Client(secured.address, api_token="wrong", timeout=5) as wrong,
        pytest.raises(AuthenticationError) as failure,
    ):
        wrong.namespaces.list()
    assert "API token" in str(failure.value)
    with Client(secured.address, api_token=TOKEN) as client:
        assert isinstance(client.namespaces.list(), list)
    with Client(secured.address, api_token="second-token") as client:  # from the file
        assert isinstance(client.namespaces.list(), list)


def test_http_needs_a_token_and_serves_the_cloudflare_api(secured: NodeProcess) -> None:
    base = f"http://{secured.http}/client/v4/accounts/acct/storage/kv/namespaces"
    status, body = _request(base)
    assert status == 401 and json.loads(body)["success"] is False
    assert _request(base, "wrong")[0] == 403
    title = json.dumps({"title": "HTTP"}).encode()
    assert _request(base, TOKEN, "POST", title)[0] == 415  # JSON only as application/json
    status, body = _request(base, TOKEN, "POST", title, "application/json")
    assert status == 200
    namespace = json.loads(body)["result"]["id"]
    status, _ = _request(f"{base}/{namespace}/values/a%2Fb", TOKEN, "PUT", b"hello")
    assert status == 200
    status, body = _request(f"{base}/{namespace}/values/a%2Fb", TOKEN)
    assert (status, body) == (200, b"hello")
    with Client(secured.address, api_token=TOKEN) as client:  # one store behind both APIs
        assert client.namespace(namespace).get("a/b") == "hello"
    status, body = _request(f"{base}/{namespace}/values/missing", TOKEN)
    assert status == 404 and json.loads(body)["errors"][0]["code"] == 10009


def test_metrics_and_health_are_open(secured: NodeProcess) -> None:
    status, body = _request(f"http://{secured.http}/healthz")
    assert status == 200
    status, body = _request(f"http://{secured.http}/metrics")
    text = body.decode()
    assert status == 200
    for name in (
        "rumor_requests_total",
        "rumor_request_seconds",
        "rumor_records_held",
        "rumor_tombstones_held",
        "rumor_push_queue_drops_total",
    ):
        assert name in text, name
    assert 'api="grpc"' in text and 'api="http"' in text


def test_health_service_stays_open(secured: NodeProcess) -> None:
    with grpc.insecure_channel(secured.address) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


def _metric(text: str, name: str, *labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and all(label in line for label in labels):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_move_with_traffic(secured: NodeProcess) -> None:
    url = f"http://{secured.http}/metrics"
    before = _request(url)[1].decode()
    with Client(secured.address, api_token=TOKEN) as client:
        namespace = client.namespace(client.namespaces.create("METRICS").id)
        for i in range(5):
            namespace.put(f"k{i}", "v")
    after = _request(url)[1].decode()
    puts = ('method="Put"', 'api="grpc"')
    assert _metric(after, "rumor_requests_total", *puts) >= (
        _metric(before, "rumor_requests_total", *puts) + 5
    )
    assert _metric(after, "rumor_records_held") >= _metric(before, "rumor_records_held") + 5
    assert _metric(after, "rumor_request_seconds_count", *puts) >= 5


def test_concurrent_writes_each_get_their_own_answer(secured: NodeProcess) -> None:
    """HTTP writes that arrive together are proposed together (one per turn of the node's
    loop): each still gets what it would alone, and a bad one fails alone."""
    base = f"http://{secured.http}/client/v4/accounts/acct/storage/kv/namespaces"
    title = json.dumps({"title": "together"}).encode()
    namespace = json.loads(_request(base, TOKEN, "POST", title, "application/json")[1])["result"][
        "id"
    ]
    values = f"{base}/{namespace}/values"
    for i in range(8):
        assert _request(f"{values}/old{i}", TOKEN, "PUT", b"old")[0] == 200
    headers = {"Authorization": f"Bearer {TOKEN}"}

    async def burst() -> list[tuple[str, int]]:
        async with aiohttp.ClientSession(headers=headers) as session:

            async def call(method: str, path: str, body: bytes | None = None) -> tuple[str, int]:
                async with session.request(method, f"{values}/{path}", data=body) as answer:
                    await answer.read()
                    return path, answer.status

            calls = [call("PUT", f"k{i}", b"v%d" % i) for i in range(40)]
            calls += [call("PUT", "shared", b"s%d" % i) for i in range(16)]
            calls += [call("DELETE", f"old{i}") for i in range(8)]
            calls.append(call("PUT", "bad?expiration_ttl=soon", b"never"))
            return await asyncio.gather(*calls)

    answers = asyncio.run(burst())
    assert [status for path, status in answers if not path.startswith("bad")] == [200] * 64
    assert dict(answers)["bad?expiration_ttl=soon"] == 400
    for i in range(40):
        assert _request(f"{values}/k{i}", TOKEN) == (200, b"v%d" % i)
    status, shared = _request(f"{values}/shared", TOKEN)
    assert status == 200 and shared in {b"s%d" % i for i in range(16)}
    for i in range(8):
        assert _request(f"{values}/old{i}", TOKEN)[0] == 404
    assert _request(f"{values}/bad", TOKEN)[0] == 404
