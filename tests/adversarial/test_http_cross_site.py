"""The HTTP API refuses cross-site use and answers every malformed request 4xx, never 500.

One node with an API token (from a file) and an HTTP listener on 127.0.0.1:
a foreign Origin is 403, a Host not on the allowlist is 403 unless the
request carries the token, JSON sent as anything but application/json is 415,
and a non-UTF-8 Authorization header, a lone surrogate in JSON, a malformed
or oversized multipart body are 4xx in Cloudflare's envelope. Nothing refused
is written (the audit digest and record count do not move).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from tests.adversarial.node_health import digest, rss_bytes, write_secret
from tests.adversarial.raw_http import Answer, request
from tests.support.nodes import NodeProcess

TOKEN = "cross-site-test-token"
AUTH = (b"Authorization", b"Bearer " + TOKEN.encode())
JSON = (b"Content-Type", b"application/json")
BASE = "/client/v4/accounts/x/storage/kv/namespaces"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    root = tmp_path_factory.mktemp("cross-site")
    tokens = write_secret(root / "tokens", TOKEN)
    process = NodeProcess(
        root / "data", "--http", "127.0.0.1:0", "--api-token-file", str(tokens),
        "--http-allowed-hosts", "rumor.test",
    )  # fmt: skip
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def namespace(node: NodeProcess) -> str:
    answer = request(node.http, "POST", BASE, headers=[AUTH, JSON], body=b'{"title": "xs"}')
    assert answer.status == 200, answer.body
    return str(answer.json()["result"]["id"])


def _error(answer: Answer) -> tuple[int, str]:
    body = answer.json()
    assert body["success"] is False
    return body["errors"][0]["code"], body["errors"][0]["message"]


def test_a_foreign_origin_is_refused_and_the_own_origin_served(
    node: NodeProcess, namespace: str
) -> None:
    before = digest(node)
    path = f"{BASE}/{namespace}/values/k"
    for origin in (b"https://evil.example", b"null", b"http://127.0.0.1:1"):
        answer = request(node.http, "PUT", path, headers=[AUTH, (b"Origin", origin)], body=b"v")
        assert answer.status == 403, (origin, answer.body)
        assert "cross-site" in _error(answer)[1]
    assert digest(node) == before
    own = b"http://" + node.http.encode()
    answer = request(node.http, "PUT", path, headers=[AUTH, (b"Origin", own)], body=b"v")
    assert answer.status == 200, answer.body


def test_an_unknown_host_is_refused_without_a_token(node: NodeProcess) -> None:
    for host in (b"attacker.example", b"attacker.example:8781", b"localhost.attacker.example"):
        answer = request(node.http, "GET", "/healthz", host=host)
        assert answer.status == 403, host
        assert "--http-allowed-hosts" in _error(answer)[1]
    for host in (b"localhost", b"127.0.0.1:9", b"[::1]:1", b"rumor.test", b"RUMOR.test:80"):
        assert request(node.http, "GET", "/healthz", host=host).status == 200, host
    # A rebinding page cannot know the token: with it, any Host is served.
    assert request(node.http, "GET", BASE, headers=[AUTH], host=b"lb.example").status == 200


def test_json_only_as_application_json(node: NodeProcess, namespace: str) -> None:
    before = digest(node)
    body = json.dumps([{"key": "form", "value": "v"}]).encode()
    for content_type in (b"text/plain", b"application/x-www-form-urlencoded", b""):
        answer = request(
            node.http, "PUT", f"{BASE}/{namespace}/bulk",
            headers=[AUTH, (b"Content-Type", content_type)], body=body,
        )  # fmt: skip
        assert answer.status == 415, content_type
        assert _error(answer)[0] == 10001
    assert digest(node) == before


def test_malformed_input_is_400_never_500(node: NodeProcess, namespace: str) -> None:
    before = digest(node)
    values = f"{BASE}/{namespace}/values/k"
    # Authorization that is not UTF-8: an authentication failure, not a crash.
    for value in (b"Bearer \xff\xfe", b"\xc3\x28", b"Bearer " + TOKEN.encode() + b"\x80"):
        answer = request(node.http, "GET", values, headers=[(b"Authorization", value)])
        assert answer.status in (401, 403), (value, answer.status, answer.body)
        assert _error(answer)[1] == "Authentication error"
    # Lone surrogates in JSON bodies, in every JSON route.
    cases = [
        ("POST", BASE, b'{"title": "\\ud800"}'),
        ("PUT", f"{BASE}/{namespace}", b'{"title": "a\\udfff"}'),
        ("PUT", f"{BASE}/{namespace}/bulk", b'[{"key": "\\ud800", "value": "v"}]'),
        ("PUT", f"{BASE}/{namespace}/bulk", b'[{"key": "k", "value": "\\udbff"}]'),
        ("POST", f"{BASE}/{namespace}/bulk/delete", b'["\\ud800"]'),
        ("POST", f"{BASE}/{namespace}/bulk/get", b'{"keys": ["\\ud800"]}'),
        ("POST", BASE, b'{"title": NaN}'),
        ("POST", BASE, b"[" * 100_000),
    ]
    for method, path, body in cases:
        answer = request(node.http, method, path, headers=[AUTH, JSON], body=body)
        assert answer.status == 400, (path, body[:40], answer.body)
        assert _error(answer)[0] == 10001
    # Malformed multipart bodies.
    multipart = [
        (b"multipart/form-data", b"--x\r\n\r\nv\r\n--x--\r\n"),
        (b"multipart/form-data; boundary=x", b"garbage without any boundary"),
        (b"multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data\r\n"),
        (b"multipart/form-data; boundary=x", b'--x\r\nContent-Disposition: form-data; name="a"'),
        (b"multipart/mixed; boundary=x", b"--x\r\n\r\n--x--\r\n"),
    ]
    for content_type, body in multipart:
        headers = [AUTH, (b"Content-Type", content_type)]
        answer = request(node.http, "PUT", values, headers=headers, body=body)
        assert answer.status == 400, (content_type, body, answer.body)
        assert _error(answer)[0] == 10001
    assert digest(node) == before


def test_a_huge_multipart_part_is_refused_as_it_streams(node: NodeProcess, namespace: str) -> None:
    """A 400 MB part: refused once the body limit is crossed, without buffering it."""
    before, rss_before = digest(node), rss_bytes(node)
    host, _, port = node.http.rpartition(":")
    head = (
        f"PUT {BASE}/{namespace}/values/huge HTTP/1.1\r\nHost: {node.http}\r\n"
        f"Authorization: Bearer {TOKEN}\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    part = b'--b\r\nContent-Disposition: form-data; name="value"; filename="upload"\r\n\r\n'
    chunk = b"x" * (1 << 20)
    sent = 0
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head + b"%x\r\n%s\r\n" % (len(part), part))
        try:
            while sent < 400 * (1 << 20):
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        sock.settimeout(10)
        try:
            answer = sock.recv(4096)
        except (ConnectionResetError, TimeoutError):
            answer = b""
    assert sent < 200 * (1 << 20), "the node read far past the 128 MiB body limit"
    assert answer.startswith(b"HTTP/1.1 413") or answer == b"", answer[:100]
    assert rss_bytes(node) - rss_before < 100 * (1 << 20)
    assert digest(node) == before
